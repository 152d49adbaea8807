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
from pathlib import Path

import msgspec

from contracts.calendar import BusinessCalendar, Contract, listed_contracts
from contracts.errors import FlopexError
from contracts.registry import load_products
from exchange.auth import AccessConfig
from exchange.engine.abi import InstrumentStatus
from exchange.engine.config import InstrumentConfig, instrument_config_from_spec
from exchange.gateway import Gateway
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
) -> Gateway:
    """Everything a trading day needs, wired together (no sockets yet)."""
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
    return Gateway(
        access,
        contracts,
        trade_date,
        Sequencer(engine),
        risk,
        data_dir=data_dir,
        replay_limit=replay_limit,
    )
