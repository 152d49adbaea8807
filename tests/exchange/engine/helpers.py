"""Command builders and event readers shared by the engine tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from exchange.engine.abi import (
    COMMAND_DTYPE,
    EVENT_FIELDS,
    CmdType,
    EventType,
    OrderType,
    Side,
    TimeInForce,
)
from exchange.engine.config import InstrumentConfig

IID = 12612  # H100 Dec 2026
IID2 = 22612  # H200 Dec 2026 (pro-rata in tests)

FIFO_CFG = InstrumentConfig(
    instrument_id=IID,
    min_price_ticks=1,
    max_price_ticks=200,
    reference_price_ticks=100,
    price_limit_ticks=50,
    min_qty=1,
    max_qty=1000,
    market_protection_ticks=5,
)
PRO_RATA_CFG = InstrumentConfig(
    instrument_id=IID2,
    min_price_ticks=1,
    max_price_ticks=200,
    reference_price_ticks=100,
    price_limit_ticks=50,
    min_qty=1,
    max_qty=1000,
    matching_algorithm=1,
    market_protection_ticks=5,
)


def cmd(cmd_type: int = CmdType.NEW, **fields: Any) -> np.ndarray:
    """One command record (as a length-1 array) with sensible NEW defaults."""
    c = np.zeros(1, dtype=COMMAND_DTYPE)
    c["cmd_type"] = cmd_type
    if cmd_type == CmdType.NEW:
        c["instrument_id"] = IID
        c["order_type"] = OrderType.LIMIT
        c["tif"] = TimeInForce.GTC
        c["account"] = 1
    for k, v in fields.items():
        c[k] = v
    return c


def new(side: int, qty: int, price: int = 0, **fields: Any) -> np.ndarray:
    return cmd(CmdType.NEW, side=side, qty=qty, price=price, **fields)


def buy(qty: int, price: int, **fields: Any) -> np.ndarray:
    return new(Side.BUY, qty, price, **fields)


def sell(qty: int, price: int, **fields: Any) -> np.ndarray:
    return new(Side.SELL, qty, price, **fields)


def rows(events: np.ndarray, etype: int | None = None) -> list[dict[str, int]]:
    """Events as dicts, optionally only one EventType."""
    out = []
    for e in events:
        if etype is None or int(e["event_type"]) == etype:
            out.append({f: int(e[f]) for f in EVENT_FIELDS})
    return out


def kinds(events: np.ndarray) -> list[str]:
    return [EventType(int(t)).name for t in events["event_type"]]


def order_id(events: np.ndarray) -> int:
    """The order id of the ACCEPTED event in ``events``."""
    acc = rows(events, EventType.ACCEPTED)
    assert acc, f"no ACCEPTED in {kinds(events)}"
    return acc[0]["order_id"]


def trades(events: np.ndarray) -> list[tuple[int, int, int]]:
    """(order_id, price, qty) of each TRADE event."""
    return [(r["order_id"], r["price"], r["qty"]) for r in rows(events, EventType.TRADE)]
