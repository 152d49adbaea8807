"""The exchange's files for clearing: the trade log (one row per fill per side) and the close.

Formats (agreed with clearing, see ``docs/clearing.md``):

* ``DATA_DIR/tradelog/YYYY-MM-DD.csv`` —
  ``trade_date,seq,ts_ns,match_id,symbol,instrument_id,account,side,price_ticks,price,quantity,aggressor``
* ``DATA_DIR/close/YYYY-MM-DD.csv`` —
  ``trade_date,symbol,instrument_id,close_ts_ns,best_bid_ticks,best_bid_qty,best_ask_ticks,best_ask_qty``

Rows are appended in sequencer order and flushed once per engine batch, so the file is
never behind what clients were told by more than the batch being written. Prices are
formatted from ticks with :mod:`contracts.units` only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from contracts.calendar import Contract
from contracts.units import ticks_to_price

TRADELOG_HEADER = (
    "trade_date,seq,ts_ns,match_id,symbol,instrument_id,account,side,"
    "price_ticks,price,quantity,aggressor"
)
CLOSE_HEADER = (
    "trade_date,symbol,instrument_id,close_ts_ns,best_bid_ticks,best_bid_qty,"
    "best_ask_ticks,best_ask_qty"
)


class TradeLog:
    """Append-only writer of ``DATA_DIR/tradelog/<date>.csv``; resumes an existing file."""

    def __init__(self, data_dir: Path, trade_date: dt.date, contracts: list[Contract]) -> None:
        self.trade_date = trade_date.isoformat()
        self.path = Path(data_dir) / "tradelog" / f"{self.trade_date}.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        #: rows already in the file (a restarted gateway continues the numbering)
        self.rows = 0 if fresh else max(0, len(self.path.read_bytes().splitlines()) - 1)
        self._fh = self.path.open("a", encoding="ascii", newline="")
        if fresh:
            self._fh.write(TRADELOG_HEADER + "\n")
            self._fh.flush()
        self._meta = {c.instrument_id: (c.symbol, c.product.tick_size) for c in contracts}
        self._price_cache: dict[tuple[int, int], str] = {}

    def _price(self, inst: int, ticks: int) -> str:
        key = (inst, ticks)
        s = self._price_cache.get(key)
        if s is None:
            s = self._price_cache[key] = ticks_to_price(ticks, self._meta[inst][1])
        return s

    def fill(
        self,
        ts_ns: int,
        match_id: int,
        inst: int,
        account: str,
        side_buy: bool,
        price_ticks: int,
        qty: int,
        aggressor: bool,
    ) -> None:
        """Append one side of one fill (buffered until :meth:`flush`). O(1).

        ``seq`` is the row's number in the day's trade log (1, 2, ...): unique per row,
        in sequencer order.
        """
        symbol = self._meta[inst][0]
        self.rows += 1
        seq = self.rows
        self._fh.write(
            f"{self.trade_date},{seq},{ts_ns},{match_id},{symbol},{inst},{account},"
            f"{'B' if side_buy else 'S'},{price_ticks},{self._price(inst, price_ticks)},"
            f"{qty},{'Y' if aggressor else 'N'}\n"
        )

    def flush(self) -> None:
        """Push buffered rows to the OS."""
        self._fh.flush()

    def size(self) -> int:
        """Bytes in the file including buffered rows."""
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


def write_close_record(
    data_dir: Path,
    trade_date: dt.date,
    close_ts_ns: int,
    tops: list[tuple[Contract, int | None, int, int | None, int]],
) -> Path:
    """Write ``DATA_DIR/close/<date>.csv``: one row per instrument (bid, bid qty, ask, ask qty).

    An empty side is written as empty fields. Written to a temp file then renamed, so a
    reader never sees half a file. Returns the path.
    """
    path = Path(data_dir) / "close" / f"{trade_date.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [CLOSE_HEADER]
    for c, bid, bid_qty, ask, ask_qty in tops:
        b = (str(bid), str(bid_qty)) if bid is not None else ("", "")
        a = (str(ask), str(ask_qty)) if ask is not None else ("", "")
        lines.append(
            f"{trade_date.isoformat()},{c.symbol},{c.instrument_id},{close_ts_ns},"
            f"{b[0]},{b[1]},{a[0]},{a[1]}"
        )
    tmp = path.with_suffix(".csv.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
    tmp.replace(path)
    return path


def read_reference_prices(data_dir: Path, before: dt.date) -> dict[str, int]:
    """Settlement ticks by symbol from the latest ``DATA_DIR/settlement/*.csv`` before ``before``.

    Returns ``{}`` when there is no settlement file yet.
    """
    sdir = Path(data_dir) / "settlement"
    if not sdir.is_dir():
        return {}
    files = sorted(p for p in sdir.glob("*.csv") if p.stem < before.isoformat())
    if not files:
        return {}
    return _read_symbol_ticks(files[-1], "settlement_ticks")


def _read_symbol_ticks(path: Path, column: str) -> dict[str, int]:
    import csv

    from contracts.errors import FlopexError

    out: dict[str, int] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if (
            reader.fieldnames is None
            or "symbol" not in reader.fieldnames
            or (column not in reader.fieldnames)
        ):
            raise FlopexError(f"{path}: needs columns 'symbol' and '{column}'")
        for lineno, row in enumerate(reader, start=2):
            try:
                out[row["symbol"]] = int(row[column])
            except (TypeError, ValueError):
                raise FlopexError(
                    f"{path}:{lineno}: {column} {row[column]!r} is not an integer"
                ) from None
    return out
