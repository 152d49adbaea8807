"""A random trading run through the reference book, for the feed tests."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np

from exchange.engine.abi import (
    COMMAND_DTYPE,
    CmdType,
    EventType,
    InstrumentStatus,
    OrderType,
    Side,
    TimeInForce,
)
from exchange.engine.config import InstrumentConfig
from exchange.engine.reference import ReferenceBook
from exchange.marketdata import FeedPublisher

INSTRUMENTS = (12607, 12608, 22607)


def make_book() -> ReferenceBook:
    return ReferenceBook(
        [
            InstrumentConfig(
                instrument_id=iid,
                min_price_ticks=1,
                max_price_ticks=2000,
                reference_price_ticks=1000,
                initial_status=InstrumentStatus.PRE_OPEN,
            )
            for iid in INSTRUMENTS
        ],
        max_orders=4096,
    )


def run(seed: int, n_batches: int, batch: int = 20) -> Iterator[tuple[ReferenceBook, np.ndarray]]:
    """Drive a reference book with random commands; yields ``(book, events)`` per batch."""
    rng = random.Random(seed)
    book = make_book()
    live: list[tuple[int, int]] = []  # (order_id, account)
    ts = 1_000
    # open everything after a short pre-open
    for i in range(n_batches):
        cmds = np.zeros(batch, dtype=COMMAND_DTYPE)
        for k in range(batch):
            c = cmds[k]
            ts += 1
            c["timestamp"] = ts
            c["instrument_id"] = rng.choice(INSTRUMENTS)
            c["account"] = rng.randint(1, 4)
            c["user_ref"] = c["account"]
            c["client_token"] = ts
            r = rng.random()
            if i == 2 and k < len(INSTRUMENTS):
                c["cmd_type"] = CmdType.SET_STATUS
                c["instrument_id"] = INSTRUMENTS[k]
                c["status"] = InstrumentStatus.OPEN
            elif r < 0.03:
                c["cmd_type"] = CmdType.SET_STATUS
                c["status"] = rng.choice([InstrumentStatus.HALTED, InstrumentStatus.OPEN])
            elif r < 0.04:
                c["cmd_type"] = CmdType.SET_REFERENCE
                c["price"] = rng.randint(980, 1020)
            elif r < 0.25 and live:
                oid, acct = live.pop(rng.randrange(len(live)))
                c["cmd_type"] = CmdType.CANCEL
                c["order_id"] = oid
                c["account"] = acct
            elif r < 0.32 and live:
                oid, acct = rng.choice(live)
                c["cmd_type"] = CmdType.REPLACE
                c["order_id"] = oid
                c["account"] = acct
                c["price"] = rng.randint(985, 1015)
                c["qty"] = rng.randint(1, 20)
            else:
                c["cmd_type"] = CmdType.NEW
                side = rng.choice([Side.BUY, Side.SELL])
                c["side"] = side
                c["order_type"] = OrderType.MARKET if r > 0.97 else OrderType.LIMIT
                c["tif"] = TimeInForce.IOC if r > 0.97 else TimeInForce.GTC
                mid = 1000
                off = rng.randint(-12, 6)
                c["price"] = mid + off if side == Side.BUY else mid - off
                c["qty"] = rng.randint(1, 25)
                if rng.random() < 0.1:
                    c["display_qty"] = 2
        events = book.process(cmds)
        for e in events[events["event_type"] == EventType.ACCEPTED]:
            live.append((int(e["order_id"]), int(e["account"])))
        yield book, events


def engine_levels(book: ReferenceBook) -> dict[int, tuple[list, list]]:
    snap = book.snapshot()["instruments"]
    return {
        iid: ([tuple(x) for x in s["bids"]], [tuple(x) for x in s["asks"]])
        for iid, s in snap.items()
    }


def history(pub: FeedPublisher) -> bytes:
    """Every packet the publisher can replay, framed, in order."""
    return pub.replay_packets(pub.history_first, 1 << 40)[0]
