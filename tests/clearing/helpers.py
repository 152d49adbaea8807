"""Builders shared by the clearing tests (trade logs and close books by hand)."""

from __future__ import annotations

import datetime as dt

import numpy as np

from clearing.tradelog import NO_PRICE, CloseBook, TradeLog
from contracts.calendar import Contract, contract_for_symbol
from contracts.registry import load_products

PRODUCTS = load_products()


def contract(symbol: str) -> Contract:
    return contract_for_symbol(symbol, PRODUCTS)


def close_ns(c: Contract, day: dt.date) -> int:
    end = c.product.trading_hours.close_on(day)
    assert end is not None
    return int(end.timestamp()) * 1_000_000_000


def trade_log(day: dt.date, fills: list[tuple]) -> TradeLog:
    """``fills``: (symbol, buyer, seller, price_ticks, qty, seconds_before_close)."""
    names: dict[str, int] = {}
    rows = []
    symbols: dict[int, str] = {}
    for m, (sym, buyer, seller, px, qty, before) in enumerate(fills, start=1):
        c = contract(sym)
        symbols[c.instrument_id] = sym
        ts = close_ns(c, day) - before * 1_000_000_000
        for acct, side in ((buyer, 1), (seller, -1)):
            a = names.setdefault(acct, len(names))
            rows.append((ts, m, c.instrument_id, a, side, px, qty, side == 1))
    if not rows:
        return TradeLog.empty(day)
    cols = list(zip(*rows, strict=True))
    arr = [np.array(col, np.int64) for col in cols[:7]]
    return TradeLog(day, *arr, np.array(cols[7], bool), list(names), symbols)


def close_book(day: dt.date, quotes: dict[str, tuple[int | None, int | None]]) -> CloseBook:
    """``quotes``: symbol -> (bid_ticks, ask_ticks), None for an empty side."""
    iids, ts, bid, bq, ask, aq, symbols = [], [], [], [], [], [], {}
    for sym, (b, a) in quotes.items():
        c = contract(sym)
        symbols[c.instrument_id] = sym
        iids.append(c.instrument_id)
        ts.append(close_ns(c, day))
        bid.append(NO_PRICE if b is None else b)
        bq.append(NO_PRICE if b is None else 5)
        ask.append(NO_PRICE if a is None else a)
        aq.append(NO_PRICE if a is None else 5)
    arr = [np.array(x, np.int64) for x in (iids, ts, bid, bq, ask, aq)]
    return CloseBook(day, *arr, symbols)
