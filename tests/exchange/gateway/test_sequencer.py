"""The sequencer: strictly increasing timestamps, and batch size never changes the events."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.calendar import listed_contracts
from contracts.registry import load_products
from exchange.engine.abi import CmdType, EventType, OrderType, Side, TimeInForce
from exchange.engine.reference import ReferenceBook
from exchange.sequencer import Sequencer
from exchange.venue import engine_configs

CONTRACTS = listed_contracts(load_products(), dt.date(2026, 11, 25))[:2]
CONFIGS = engine_configs(CONTRACTS, {})
IID = CONTRACTS[0].instrument_id


def _new(ref: int, side: int, price: int, qty: int) -> tuple:
    return (
        0, ref, ref, 0, price, 0, qty, 0, 0, 0, IID, 1 + ref % 3, 0, CmdType.NEW, side,
        OrderType.LIMIT, TimeInForce.DAY, 0, 0, 0, 0,
    )  # fmt: skip


orders = st.lists(
    st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(995, 1005), st.integers(1, 9)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(orders, st.integers(1, 20))
def test_events_do_not_depend_on_batch_size(cmds, batch) -> None:
    # Arrange: the same commands, all at once and in batches of `batch`
    rows = [_new(i + 1, *c) for i, c in enumerate(cmds)]
    one = Sequencer(ReferenceBook(CONFIGS), clock=lambda: 1_000)
    many = Sequencer(ReferenceBook(CONFIGS), clock=lambda: 1_000)
    # Act
    _, all_at_once = one.submit(rows, list(range(len(rows))), len(rows))
    in_batches = []
    for k in range(0, len(rows), batch):
        part = rows[k : k + batch]
        in_batches += many.submit(part, list(range(len(part))), len(part))[1]
    # Assert
    assert in_batches == all_at_once
    assert all(e[0] != EventType.LEVEL for e in all_at_once)


def test_timestamps_strictly_increase_even_if_the_clock_stalls() -> None:
    seen = []
    seq = Sequencer(ReferenceBook(CONFIGS), clock=lambda: 5)
    seq.journal.append(lambda cmds: seen.extend(cmds["timestamp"].tolist()))
    for _ in range(3):
        seq.submit([_new(1, Side.BUY, 1000, 1)] * 2, [0, 1], 2)
    assert seen == [5, 6, 7, 8, 9, 10]
    assert seq.snapshot()["commands"] == 6


def test_event_listeners_see_level_events_sessions_do_not() -> None:
    levels = []
    seq = Sequencer(ReferenceBook(CONFIGS), clock=lambda: 1)
    seq.event_listeners.append(
        lambda ev: levels.extend(np.flatnonzero(ev["event_type"] == EventType.LEVEL))
    )
    _, events = seq.submit([_new(1, Side.BUY, 1000, 1)], [0], 1)
    assert not levels  # published after the replies, not during the batch
    seq.publish()
    assert levels and [e[0] for e in events] == [EventType.ACCEPTED]
