"""The exchange's daily files that clearing reads: trade log and close record.

Formats (documented in ``docs/clearing.md``), under an exchange data directory:

* ``tradelog/YYYY-MM-DD.csv`` — one row per fill per side::

    trade_date,seq,ts_ns,match_id,symbol,instrument_id,account,side,price_ticks,price,quantity,aggressor

* ``close/YYYY-MM-DD.csv`` — one row per instrument at the close::

    trade_date,symbol,instrument_id,close_ts_ns,best_bid_ticks,best_bid_qty,best_ask_ticks,best_ask_qty

  (empty fields when a side of the book is empty).

Both are read into struct-of-arrays (numpy int64) so settlement is vectorised. Every
malformed line raises :class:`~contracts.errors.FlopexError` naming the file, line and
field; a file whose fills do not balance (bought != sold per instrument) is refused.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clearing.fastcsv import parse_tradelog_fast
from contracts.errors import FlopexError

TRADELOG_HEADER = (
    "trade_date",
    "seq",
    "ts_ns",
    "match_id",
    "symbol",
    "instrument_id",
    "account",
    "side",
    "price_ticks",
    "price",
    "quantity",
    "aggressor",
)
CLOSE_HEADER = (
    "trade_date",
    "symbol",
    "instrument_id",
    "close_ts_ns",
    "best_bid_ticks",
    "best_bid_qty",
    "best_ask_ticks",
    "best_ask_qty",
)
NO_PRICE = np.iinfo(np.int64).min  # an empty side of the book in CloseBook arrays


def tradelog_path(data_dir: str | Path, day: dt.date) -> Path:
    return Path(data_dir) / "tradelog" / f"{day.isoformat()}.csv"


def close_path(data_dir: str | Path, day: dt.date) -> Path:
    return Path(data_dir) / "close" / f"{day.isoformat()}.csv"


@dataclass
class TradeLog:
    """One day's fills, one row per fill per side, as parallel int64 arrays.

    ``account`` indexes ``account_names``; ``side`` is +1 for a buy, -1 for a sell.
    ``symbols`` maps each instrument id present to its symbol.
    """

    day: dt.date
    ts_ns: np.ndarray
    match_id: np.ndarray
    instrument_id: np.ndarray
    account: np.ndarray
    side: np.ndarray
    price_ticks: np.ndarray
    quantity: np.ndarray
    aggressor: np.ndarray
    account_names: list[str]
    symbols: dict[int, str]

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    @classmethod
    def empty(cls, day: dt.date) -> TradeLog:
        z = np.zeros(0, np.int64)
        return cls(day, z, z, z, z, z, z, z, np.zeros(0, bool), [], {})


@dataclass
class CloseBook:
    """Best bid and offer per instrument at the close (``NO_PRICE`` for an empty side)."""

    day: dt.date
    instrument_id: np.ndarray
    close_ts_ns: np.ndarray
    bid_ticks: np.ndarray
    bid_qty: np.ndarray
    ask_ticks: np.ndarray
    ask_qty: np.ndarray
    symbols: dict[int, str]

    def row(self, iid: int) -> int | None:
        """Index of instrument ``iid`` or None. O(n)."""
        hits = np.flatnonzero(self.instrument_id == iid)
        return int(hits[0]) if hits.size else None


def _int(text: str, where: str, field: str) -> int:
    t = text.strip()
    if not t or not (t.isdigit() or (t[0] == "-" and t[1:].isdigit())):
        raise FlopexError(f"{where}: {field}: expected an integer, got {text!r}")
    return int(t)


def _open_csv(path: Path, header: Sequence[str], what: str) -> tuple[list[list[str]], int]:
    try:
        fh = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise FlopexError(f"{path}: no {what} for this trading day") from None
    with fh:
        reader = csv.reader(fh)
        got = next(reader, None)
        if got is None or [h.strip() for h in got] != list(header):
            raise FlopexError(f"{path}:1: header: expected {','.join(header)}")
        return list(reader), len(header)


def read_tradelog(path: str | Path, day: dt.date) -> TradeLog:
    """Parse and validate one trade-log file. O(rows).

    Files in the exchange's plain form take the one-pass numba parser
    (:mod:`clearing.fastcsv`); anything else (quoted fields, errors) goes through the
    :mod:`csv`-based reader below, which names the bad line and field. Both apply the
    same checks and return the same arrays.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise FlopexError(f"{p}: no trade log for this trading day") from None
    fast = parse_tradelog_fast(data, ",".join(TRADELOG_HEADER).encode(), day.isoformat())
    if fast is None:
        return read_tradelog_csv(p, day)
    ts, mid, iid, acct, side, px, qty, aggr, names, symbols, ids, net_q, net_n = fast
    bad = np.flatnonzero((net_q != 0) | (net_n != 0))
    if bad.size:
        k = int(bad[0])
        raise FlopexError(
            f"{p}: {symbols[int(ids[k])]}: bought and sold sides do not balance "
            f"(net quantity {int(net_q[k])}, net notional {int(net_n[k])} ticks)"
        )
    return TradeLog(day, ts, mid, iid, acct, side, px, qty, aggr, names, symbols)


def read_tradelog_csv(path: str | Path, day: dt.date) -> TradeLog:
    """The :mod:`csv`-module trade-log reader (reference and error reporter). O(rows).

    Checks: header, field count, integer fields, side B/S, aggressor Y/N, positive
    quantity and price, trade_date equal to ``day``, one symbol per instrument id, and
    that each instrument's bought quantity and notional equal its sold ones (every fill
    has two sides), which is what makes variation margin sum to zero.
    """
    p = Path(path)
    rows, width = _open_csv(p, TRADELOG_HEADER, "trade log")
    n = len(rows)
    ts = np.empty(n, np.int64)
    mid = np.empty(n, np.int64)
    iid = np.empty(n, np.int64)
    acct = np.empty(n, np.int64)
    side = np.empty(n, np.int64)
    px = np.empty(n, np.int64)
    qty = np.empty(n, np.int64)
    aggr = np.empty(n, bool)
    names: dict[str, int] = {}
    symbols: dict[int, str] = {}
    day_s = day.isoformat()
    for i, row in enumerate(rows):
        where = f"{p}:{i + 2}"
        if len(row) != width:
            raise FlopexError(f"{where}: expected {width} fields, got {len(row)}")
        d, _seq, t, m, sym, inst, account, sd, ticks, _price, q, ag = row
        if d != day_s:
            raise FlopexError(f"{where}: trade_date: {d!r} is not {day_s}")
        try:
            ts[i] = int(t)
            mid[i] = int(m)
            iid[i] = int(inst)
            px[i] = int(ticks)
            qty[i] = int(q)
        except ValueError:
            for field, text in (
                ("ts_ns", t),
                ("match_id", m),
                ("instrument_id", inst),
                ("price_ticks", ticks),
                ("quantity", q),
            ):
                _int(text, where, field)
            raise  # pragma: no cover - one of the above raised
        if sd == "B":
            side[i] = 1
        elif sd == "S":
            side[i] = -1
        else:
            raise FlopexError(f"{where}: side: expected B or S, got {sd!r}")
        if ag == "Y":
            aggr[i] = True
        elif ag == "N":
            aggr[i] = False
        else:
            raise FlopexError(f"{where}: aggressor: expected Y or N, got {ag!r}")
        if not account:
            raise FlopexError(f"{where}: account: missing")
        a = names.get(account)
        if a is None:
            a = names[account] = len(names)
        acct[i] = a
        known = symbols.get(iid[i])
        if known is None:
            symbols[int(iid[i])] = sym
        elif known != sym:
            raise FlopexError(f"{where}: symbol: {sym!r} but instrument {iid[i]} is {known!r}")
    if n:
        bad = np.flatnonzero((qty <= 0) | (px <= 0))
        if bad.size:
            i = int(bad[0])
            field = "quantity" if qty[i] <= 0 else "price_ticks"
            raise FlopexError(f"{p}:{i + 2}: {field}: must be positive")
        _check_balanced(p, iid, side, qty, px, symbols)
    return TradeLog(day, ts, mid, iid, acct, side, px, qty, aggr, list(names), symbols)


def _check_balanced(
    p: Path, iid: np.ndarray, side: np.ndarray, qty: np.ndarray, px: np.ndarray, symbols
) -> None:
    """Refuse a log where some instrument's buys and sells differ in quantity or notional."""
    uniq, inv = np.unique(iid, return_inverse=True)
    net_q = np.zeros(uniq.size, np.int64)
    net_n = np.zeros(uniq.size, np.int64)
    np.add.at(net_q, inv, side * qty)
    np.add.at(net_n, inv, side * qty * px)
    bad = np.flatnonzero((net_q != 0) | (net_n != 0))
    if bad.size:
        k = int(bad[0])
        raise FlopexError(
            f"{p}: {symbols[int(uniq[k])]}: bought and sold sides do not balance "
            f"(net quantity {int(net_q[k])}, net notional {int(net_n[k])} ticks)"
        )


def read_close(path: str | Path, day: dt.date) -> CloseBook:
    """Parse one close-record file (best bid/offer per instrument at the close)."""
    p = Path(path)
    rows, width = _open_csv(p, CLOSE_HEADER, "close record")
    n = len(rows)
    cols = [np.empty(n, np.int64) for _ in range(6)]
    symbols: dict[int, str] = {}
    day_s = day.isoformat()
    for i, row in enumerate(rows):
        where = f"{p}:{i + 2}"
        if len(row) != width:
            raise FlopexError(f"{where}: expected {width} fields, got {len(row)}")
        d, sym, inst, cts, bt, bq, at, aq = row
        if d != day_s:
            raise FlopexError(f"{where}: trade_date: {d!r} is not {day_s}")
        iid = _int(inst, where, "instrument_id")
        if iid in symbols:
            raise FlopexError(f"{where}: instrument_id: {iid} appears twice")
        symbols[iid] = sym
        cols[0][i] = iid
        cols[1][i] = _int(cts, where, "close_ts_ns")
        for k, (text, field) in enumerate(
            (
                (bt, "best_bid_ticks"),
                (bq, "best_bid_qty"),
                (at, "best_ask_ticks"),
                (aq, "best_ask_qty"),
            ),
            start=2,
        ):
            cols[k][i] = NO_PRICE if not text.strip() else _int(text, where, field)
        if (cols[2][i] == NO_PRICE) != (cols[3][i] == NO_PRICE) or (
            (cols[4][i] == NO_PRICE) != (cols[5][i] == NO_PRICE)
        ):
            raise FlopexError(f"{where}: a book side has a price without a quantity or vice versa")
        if cols[2][i] != NO_PRICE and cols[4][i] != NO_PRICE and cols[2][i] >= cols[4][i]:
            raise FlopexError(f"{where}: best_bid_ticks {cols[2][i]} is not below the ask")
    return CloseBook(day, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], symbols)


def write_tradelog(path: str | Path, log: TradeLog, tick_size: dict[int, str]) -> None:
    """Write a trade log in the agreed CSV format (``tick_size`` per instrument id)."""
    from contracts.units import ticks_to_price

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    day_s = log.day.isoformat()
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TRADELOG_HEADER)
        names = log.account_names
        for i in range(len(log)):
            inst = int(log.instrument_id[i])
            w.writerow(
                (
                    day_s,
                    i + 1,
                    int(log.ts_ns[i]),
                    int(log.match_id[i]),
                    log.symbols[inst],
                    inst,
                    names[int(log.account[i])],
                    "B" if log.side[i] > 0 else "S",
                    int(log.price_ticks[i]),
                    ticks_to_price(int(log.price_ticks[i]), tick_size[inst]),
                    int(log.quantity[i]),
                    "Y" if log.aggressor[i] else "N",
                )
            )


def write_close(path: str | Path, book: CloseBook) -> None:
    """Write a close record in the agreed CSV format."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)

    def f(v: int) -> str:
        return "" if v == NO_PRICE else str(int(v))

    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(CLOSE_HEADER)
        for i in range(book.instrument_id.shape[0]):
            inst = int(book.instrument_id[i])
            w.writerow(
                (
                    book.day.isoformat(),
                    book.symbols[inst],
                    inst,
                    int(book.close_ts_ns[i]),
                    f(book.bid_ticks[i]),
                    f(book.bid_qty[i]),
                    f(book.ask_ticks[i]),
                    f(book.ask_qty[i]),
                )
            )
