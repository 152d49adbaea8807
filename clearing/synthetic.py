"""SYNTHETIC exchange output (trade logs, close records) and index quote files, for tests,
the demo and the benchmark when the live exchange is not running. Never real data: every
account is named ``SYN-…`` and every provider ``synthetic-…``.

Deterministic for a seed. Fills are two-sided (one buy row and one sell row per match at
the same price and quantity), so positions net to zero per contract as on a real venue.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clearing.index import Fixing, fix_index
from clearing.methodology import IndexMethod, default_methods
from clearing.quotegen import generate_quotes
from clearing.quotes import write_quotes_csv
from clearing.settlement_prices import index_to_ticks
from clearing.tradelog import (
    NO_PRICE,
    CloseBook,
    TradeLog,
    close_path,
    tradelog_path,
    write_close,
    write_tradelog,
)
from contracts.calendar import BusinessCalendar, Contract, listed_contracts
from contracts.registry import load_products
from contracts.spec import ProductSpec


def account_name(k: int) -> str:
    return f"SYN-{k:06d}"


def synthetic_day(
    day: dt.date,
    contracts: Sequence[Contract],
    ref_ticks: Sequence[int],
    n_accounts: int,
    n_matches: int,
    rng: np.random.Generator,
    window_share: float = 0.1,
) -> tuple[TradeLog, CloseBook]:
    """One day's SYNTHETIC fills and close book, as arrays (no files). O(n_matches).

    Each match picks a contract, a buyer and a different seller uniformly, a quantity of
    1..10 lots and a price within +-1 % of the contract's reference; ``window_share`` of
    them fall in the closing window. Close books alternate tight, wide and one-sided so
    every settlement tier occurs.
    """
    n_c = len(contracts)
    ref = np.asarray(ref_ticks, np.int64)
    c = rng.integers(0, n_c, n_matches)
    buyer = rng.integers(0, n_accounts, n_matches)
    seller = (buyer + rng.integers(1, max(2, n_accounts), n_matches)) % max(1, n_accounts)
    qty = rng.integers(1, 11, n_matches)
    spread = np.maximum(1, ref[c] // 100)
    price = np.maximum(1, ref[c] + rng.integers(-1, 2, n_matches) * rng.integers(0, spread + 1))
    opens = np.array([_session(k, day)[0] for k in contracts], np.int64)
    closes = np.array([_session(k, day)[1] for k in contracts], np.int64)
    windows = np.array(
        [k.product.daily_settlement.closing_window_seconds for k in contracts], np.int64
    )
    in_window = rng.random(n_matches) < window_share
    start = np.where(in_window, closes[c] - windows[c] * 1_000_000_000, opens[c])
    ts = start + (rng.random(n_matches) * (closes[c] - start)).astype(np.int64)
    order = np.argsort(ts, kind="stable")
    c, buyer, seller, qty, price, ts = (x[order] for x in (c, buyer, seller, qty, price, ts))
    iids = np.array([k.instrument_id for k in contracts], np.int64)
    match = np.arange(1, n_matches + 1, dtype=np.int64)
    log = TradeLog(
        day=day,
        ts_ns=np.repeat(ts, 2),
        match_id=np.repeat(match, 2),
        instrument_id=np.repeat(iids[c], 2),
        account=np.stack([buyer, seller], axis=1).ravel(),
        side=np.tile(np.array([1, -1], np.int64), n_matches),
        price_ticks=np.repeat(price, 2),
        quantity=np.repeat(qty, 2),
        aggressor=np.tile(np.array([True, False]), n_matches),
        account_names=[account_name(k) for k in range(n_accounts)],
        symbols={int(i): k.symbol for i, k in zip(iids, contracts, strict=True)},
    )
    kind = np.arange(n_c) % 3  # 0 tight, 1 wide, 2 one-sided
    width = np.where(kind == 0, 4, 10 * np.maximum(1, ref // 50))
    bid = np.where(kind == 2, NO_PRICE, np.maximum(1, ref - width // 2))
    ask = np.maximum(1, ref - width // 2) + width
    book = CloseBook(
        day=day,
        instrument_id=iids,
        close_ts_ns=closes,
        bid_ticks=bid,
        bid_qty=np.where(bid == NO_PRICE, NO_PRICE, 5),
        ask_ticks=ask,
        ask_qty=np.full(n_c, 7, np.int64),
        symbols=dict(log.symbols),
    )
    return log, book


def _session(c: Contract, day: dt.date) -> tuple[int, int]:
    spans = c.product.trading_hours.sessions_on(day)
    o, e = spans[0][0], spans[-1][1]
    return int(o.timestamp()) * 1_000_000_000, int(e.timestamp()) * 1_000_000_000


def write_quote_files(
    data_dir: Path, start: dt.date, end: dt.date, seed: int = 7, thin_days: Sequence = ()
) -> None:
    """SYNTHETIC quotes from ``start - 1 day`` to ``end``, one file per calendar day in
    ``DATA_DIR/index/YYYY-MM-DD.csv``."""
    quotes = generate_quotes(start - dt.timedelta(days=1), end, seed=seed, thin_days=thin_days)
    by_day: dict[dt.date, list] = defaultdict(list)
    for q in quotes:
        by_day[q.when.date()].append(q)
    for day, qs in by_day.items():
        write_quotes_csv(Path(data_dir) / "index" / f"{day.isoformat()}.csv", qs)


def write_exchange_days(
    data_dir: Path,
    days: Sequence[dt.date],
    n_accounts: int = 20,
    matches_per_day: int = 60,
    months: int = 3,
    seed: int = 11,
    products: dict[str, ProductSpec] | None = None,
    methods: dict[str, IndexMethod] | None = None,
    calendar: BusinessCalendar | None = None,
) -> None:
    """SYNTHETIC trade logs and close records for ``days`` in ``DATA_DIR/{tradelog,close}``.

    Trades are in the first ``months`` listed months of each product, priced around the
    index fixing (read from the quote files already in ``DATA_DIR/index``) plus a contango
    of 0.2 % per month.
    """
    products = products or load_products()
    methods = methods or default_methods()
    calendar = calendar or BusinessCalendar.default()
    rng = np.random.default_rng(seed)
    from clearing.batch import load_quotes_for

    fixings: dict[str, Fixing] = {}
    for day in days:
        quotes = load_quotes_for(data_dir, day)
        contracts = []
        refs = []
        for c in listed_contracts(products, day, calendar):
            if not c.is_trading_day(day):
                continue
            k = (c.year - day.year) * 12 + c.month - day.month
            if k >= months:
                continue
            idx = c.product.underlying_index
            f = fixings.get(idx)
            if f is None or f.day != day:
                f = fixings[idx] = fix_index(methods[idx], quotes, day, f)
            contracts.append(c)
            refs.append(index_to_ticks(f.value * (1000 + 2 * k), 1000, c))
        log, book = synthetic_day(day, contracts, refs, n_accounts, matches_per_day, rng)
        write_tradelog(
            tradelog_path(data_dir, day), log, {c.instrument_id: str(c.product.tick_size)
                                                for c in contracts}
        )  # fmt: skip
        write_close(close_path(data_dir, day), book)
