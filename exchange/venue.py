"""Assemble a trading day: listed contracts, reference prices, engine, risk, sequencer, gateway.

Reference prices (the centre of the daily price limits), first match wins:

1. the latest ``DATA_DIR/settlement/*.csv`` dated before the trade date (clearing's
   settlement prices, column ``settlement_ticks``);
2. ``--reference-prices FILE``: a CSV with columns ``symbol,price`` (decimal prices,
   exact on the tick grid);
3. none: the contract trades without daily price limits (the product's price band still
   applies) until a settlement price exists. This is documented in ``docs/gateway.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from contracts.calendar import BusinessCalendar, Contract, listed_contracts
from contracts.errors import FlopexError
from contracts.registry import load_products
from exchange.auth import AccessConfig
from exchange.core.gateway import CoreGateway
from exchange.engine.abi import EventType, InstrumentStatus
from exchange.engine.config import InstrumentConfig, instrument_config_from_spec
from exchange.gateway import Gateway, GatewayImage
from exchange.risk import RiskChecker
from exchange.sequencer import BatchEngine, Sequencer
from exchange.tradelog import read_reference_prices

log = logging.getLogger("flopex.gateway")


def read_reference_file(path: Path, contracts: list[Contract]) -> dict[str, int]:
    """``symbol,price`` CSV -> ticks by symbol; FlopexError names the line and field."""
    by_symbol = {c.symbol: c for c in contracts}
    out: dict[str, int] = {}
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise FlopexError(f"{path}: cannot read reference prices ({exc.strerror})") from None
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not {"symbol", "price"} <= set(reader.fieldnames):
        raise FlopexError(f"{path}: needs columns 'symbol' and 'price'")
    for lineno, row in enumerate(reader, start=2):
        c = by_symbol.get(row["symbol"])
        if c is None:
            raise FlopexError(f"{path}:{lineno}: symbol {row['symbol']!r} is not listed")
        try:
            out[c.symbol] = c.product.to_ticks(row["price"] or "")
        except FlopexError as exc:
            raise FlopexError(f"{path}:{lineno}: {exc}") from None
    return out


def reference_ticks(
    contracts: list[Contract], trade_date: dt.date, data_dir: Path | None, ref_file: Path | None
) -> dict[int, int]:
    """Reference price in ticks by instrument id, by the rules in the module docstring."""
    by_symbol: dict[str, int] = {}
    if ref_file is not None:
        by_symbol.update(read_reference_file(ref_file, contracts))
    if data_dir is not None:
        by_symbol.update(read_reference_prices(data_dir, trade_date))
    return {c.instrument_id: by_symbol[c.symbol] for c in contracts if c.symbol in by_symbol}


def engine_configs(contracts: list[Contract], refs: dict[int, int]) -> list[InstrumentConfig]:
    """One engine config per contract; no reference price = no daily limits."""
    out = []
    for c in contracts:
        ref = refs.get(c.instrument_id)
        cfg = instrument_config_from_spec(
            c.product, c.instrument_id, ref, initial_status=InstrumentStatus.OPEN
        )
        if ref is None:
            cfg = msgspec.structs.replace(cfg, price_limit_ticks=0)
        out.append(cfg)
    return out


def make_engine(
    configs: list[InstrumentConfig], kind: str = "numba", max_orders: int = 1 << 20
) -> BatchEngine:
    """The matching engine: ``"numba"`` (the batch kernel, production) or ``"reference"``
    (the plain-Python book with identical semantics: instant start-up, slow matching)."""
    if kind == "reference":
        from exchange.engine.reference import ReferenceBook

        return ReferenceBook(configs, max_orders=min(max_orders, 1 << 18))
    if kind != "numba":
        raise FlopexError(f"engine: {kind!r} is not 'numba' or 'reference'")
    from exchange.engine.book import MatchingEngine

    return MatchingEngine(configs, max_orders=max_orders)


def build_gateway(
    access: AccessConfig,
    trade_date: dt.date,
    data_dir: Path | None = None,
    reference_file: Path | None = None,
    default_max_notional_minor: int = 0,
    replay_limit: int = 1_000_000,
    engine: BatchEngine | str = "numba",
    products: dict | None = None,
    compiled: bool = True,
) -> Gateway:
    """Everything a trading day needs, wired together (no sockets yet). The gateway is
    the compiled-core one (:class:`exchange.core.gateway.CoreGateway`); ``compiled=False``
    gives the plain-Python reference gateway it is tested against."""
    products = products if products is not None else load_products()
    cal = BusinessCalendar.default()
    if not cal.is_business_day(trade_date):
        nxt = cal.next_business_day(trade_date)
        raise FlopexError(f"trade date {trade_date} is not a business day (next: {nxt})")
    contracts = list(listed_contracts(products, trade_date, cal))
    if not contracts:
        raise FlopexError(f"trade date {trade_date}: no contracts listed")
    refs = reference_ticks(contracts, trade_date, data_dir, reference_file)
    if isinstance(engine, str):
        engine = make_engine(engine_configs(contracts, refs), engine)
    risk = RiskChecker(contracts, trade_date, refs, default_max_notional_minor)
    return (CoreGateway if compiled else Gateway)(
        access,
        contracts,
        trade_date,
        Sequencer(engine),
        risk,
        data_dir=data_dir,
        replay_limit=replay_limit,
    )


# --------------------------------------------------------------------------- recovery
@dataclass
class Recovery:
    """What start-up recovery found in a data directory (see :func:`recover_venue`)."""

    engine: Any = None  # the engine of the last journaled trading day (None: nothing yet)
    day: Any = None  # that day's DayNote
    image: GatewayImage | None = None  # the gateway's state at the end of the journal
    events: int = 0  # the sequencer's event counter
    snapshot_seq: int = 0  # 0: no snapshot used
    tail_records: int = 0  # journal command records replayed after the snapshot
    replayed: int = 0  # commands replayed after the snapshot
    last_seq: int = 0  # last command sequence number recovered
    gseq: int = 0  # last gateway note number
    tradelog_rows: int = 0  # trade-log rows rewritten from the journal tail


def recover_venue(dd: Any, journal: Any, trade_date: str | None = None) -> Recovery:
    """Rebuild the engine and the gateway's state: newest snapshot + journal tail.

    ``journal`` is open for writing (its torn tail, including an incomplete commit, is
    already cut). The trade log of the last journaled day is reconciled with the journal:
    cut back to the snapshot's size and the tail's fills rewritten, so it holds exactly
    the committed trades, byte for byte what ``flopex journal tradelog`` regenerates.
    With ``trade_date`` (YYYY-MM-DD), a journal that already traded a later day is refused
    (FlopexError) before anything is written.
    O(snapshot + journal tail)."""
    from exchange.cli_journal import EngineReplay
    from exchange.engine.abi import Side
    from exchange.journal import decode_gateway_note, decode_note
    from exchange.snapshot import recover

    out = Recovery()
    fills: list[tuple] = []  # the last day's fills after the snapshot (trade-log rows)
    _TRADE = int(EventType.TRADE)
    _BUYS = int(Side.BUY)

    def on_events(rep: Any, _seq: int, _cmds: Any, events: Any) -> None:
        if out.image is None:
            return
        sel = events[events["event_type"] == _TRADE]
        if not len(sel):
            return
        cols = [
            sel[f].tolist()
            for f in ("timestamp", "match_id", "instrument_id", "account", "side", "price",
                      "qty", "aggressor_side")
        ]  # fmt: skip
        img = out.image
        for ts, mid, inst, acct, side, px, qty, aggr in zip(*cols, strict=True):
            buy = side == _BUYS
            img.on_fill(acct, inst, buy, qty)
            fills.append((ts, mid, inst, acct, buy, px, qty, aggr == side))

    rep = EngineReplay(on_events)

    def on_snapshot(snap: Any) -> None:
        rep.on_snapshot(snap)
        meta = snap.meta
        out.snapshot_seq = snap.seq
        out.gseq = int(meta.get("gseq", 0))
        if isinstance(meta.get("gateway"), dict):
            out.image = GatewayImage.from_meta(
                meta["gateway"], out.gseq, meta.get("tradelog_bytes")
            )
        else:
            out.image = GatewayImage(rep.day.trade_date)
            out.image.g = out.gseq

    def on_note(payload: Any) -> None:
        gn = decode_gateway_note(payload)
        if gn is not None:
            g = int(gn["gw"])
            if out.image is not None and g > out.image.g:
                out.image.apply(gn)
                out.image.g = g
            out.gseq = max(out.gseq, g)
            return
        note = decode_note(payload)
        if note is not None and note != rep.day:  # equal: the snapshot's own day
            rep.on_note(payload)
            out.image = GatewayImage(note.trade_date)
            out.image.g = out.gseq
            fills.clear()

    def on_batch(seq: int, cmds: Any) -> None:
        rep.on_batch(seq, cmds)
        out.tail_records += 1

    res = recover(
        journal, dd.snapshot_dir, on_snapshot=on_snapshot, on_note=on_note, on_batch=on_batch
    )
    out.engine, out.day, out.events = rep.engine, rep.day, rep.events
    out.replayed, out.last_seq = res.replayed, journal.next_seq - 1
    if out.day is not None and trade_date is not None and out.day.trade_date > trade_date:
        raise FlopexError(
            f"--trade-date {trade_date}: the data directory has already traded "
            f"{out.day.trade_date}; refusing to go back in time"
        )
    if out.day is not None and out.image is not None:
        out.tradelog_rows = _reconcile_tradelog(dd.root, out.day, out.image, fills)
    return out


def _reconcile_tradelog(root: Path, day: Any, image: GatewayImage, fills: list[tuple]) -> int:
    """Make ``tradelog/<day>.csv`` hold exactly the journaled fills. Returns rows written."""
    from contracts.calendar import contract_for_instrument_id, parse_date
    from exchange.tradelog import TradeLog

    path = Path(root) / "tradelog" / f"{day.trade_date}.csv"
    keep = image.tradelog_bytes or 0
    if keep and (not path.exists() or path.stat().st_size < keep):
        # the file lost rows the snapshot had: rebuild the whole day from the journal
        from exchange.cli_journal import regenerate_tradelog

        data = regenerate_tradelog(Path(root), parse_date(day.trade_date, "trade date"))
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return max(0, len(data.splitlines()) - 1)
    if path.exists():
        with open(path, "r+b") as fh:
            fh.truncate(keep)
    if not fills and keep:
        return 0
    products = load_products()
    contracts = [
        contract_for_instrument_id(int(c["instrument_id"]), products) for c in day.engine_configs
    ]
    names = day.accounts
    log_ = TradeLog(Path(root), parse_date(day.trade_date, "trade date"), contracts)
    try:
        for ts, mid, inst, acct, buy, px, qty, aggr in fills:
            log_.fill(ts, mid, inst, names.get(acct, str(acct)), buy, px, qty, aggr)
    finally:
        log_.close()
    return len(fills)
