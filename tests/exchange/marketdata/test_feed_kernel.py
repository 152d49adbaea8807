"""The compiled feed batch (exchange.feed_kernel) writes what the struct path writes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange import feed_kernel
from exchange.engine.abi import EVENT_DTYPE, EventType, InstrumentStatus, Side
from exchange.marketdata import _FEED_BATCH as FEED_BATCH
from exchange.marketdata import _FEED_ROWS as FEED_ROWS
from exchange.marketdata import FeedPublisher, FeedSink
from tests.exchange.marketdata.conftest import INSTRUMENTS, history, run

_PRIVATE = [
    EventType.ACCEPTED,
    EventType.REJECTED,
    EventType.CANCELLED,
    EventType.REPLACED,
    EventType.STOP_TRIGGERED,
    EventType.MASS_CANCEL_DONE,
]
_SIDES = [int(Side.BUY), int(Side.SELL), 0]
_I64 = st.integers(-(2**63), 2**63 - 1)
_U63 = st.integers(0, 2**63 - 1)


def _publisher() -> FeedPublisher:
    pub = FeedPublisher(session="TEST")
    for iid in INSTRUMENTS:
        pub.add_instrument(iid, InstrumentStatus.OPEN, 1000)
    return pub


@st.composite
def _event(draw: st.DrawFn, rare: bool) -> dict:
    kinds = [EventType.LEVEL, EventType.TRADE, *_PRIVATE]
    if rare:
        kinds += [EventType.STATUS, EventType.REFERENCE, EventType.INDICATIVE_PRICE]
    kind = draw(st.sampled_from(kinds))
    ev = dict(
        event_type=int(kind),
        timestamp=draw(_U63),
        instrument_id=draw(st.sampled_from([*INSTRUMENTS, 2**32 - 1])),
        price=draw(st.one_of(st.integers(-5, 2000), _I64)),
        qty=draw(st.one_of(st.integers(0, 50), _U63)),
        leaves=draw(st.one_of(st.integers(0, 9), st.integers(0, 2**32 - 1))),
        match_id=draw(_U63),
        side=draw(st.sampled_from(_SIDES)),
        aggressor_side=draw(st.sampled_from(_SIDES)),
    )
    if kind == EventType.STATUS:
        ev["qty"] = int(draw(st.sampled_from(list(InstrumentStatus))))
    return ev


def _array(events: list[dict]) -> np.ndarray:
    out = np.zeros(len(events), EVENT_DTYPE)
    for i, ev in enumerate(events):
        for k, v in ev.items():
            out[i][k] = v
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_event(rare=True), max_size=12), max_size=6))
def test_the_compiled_batch_publishes_the_same_bytes_books_and_numbers(batches) -> None:
    # Arrange: the same batches through publish_events (compiled where it can) and
    # through the struct path alone
    compiled, plain = _publisher(), _publisher()
    for events in map(_array, batches):
        # Act
        got = compiled.publish_events(events)
        want = plain._publish_rows(events.tolist())
        # Assert: what each call returns, then everything the publisher keeps
        assert got == want
    assert history(compiled) == history(plain)
    assert compiled.next_seq == plain.next_seq
    assert compiled.snapshot_packets() == plain.snapshot_packets()


@settings(max_examples=100, deadline=None)
@given(st.lists(_event(rare=False), min_size=1, max_size=12))
def test_levels_and_trades_take_the_compiled_batch(events) -> None:
    # Arrange
    pub = _publisher()
    # Act
    pub.next_seq = 7
    k = feed_kernel.encode_feed(_array(events), pub._out, pub._pk, pub._fs)
    # Assert: encoded, the state advanced, packet rows end where the bytes end
    fs = pub._fs.tolist()
    nb = fs[feed_kernel.FS_P]
    assert k >= 0 and fs[feed_kernel.FS_K] == k and fs[feed_kernel.FS_SEQ] == 7 + k
    assert (k == 0 and nb == 0) or int(pub._pk[k - 1, feed_kernel.PK_END]) == nb


def test_a_status_batch_is_left_to_the_struct_path() -> None:
    # Arrange: a level update, then a Trading Status in the same batch
    level = dict(event_type=int(EventType.LEVEL), instrument_id=INSTRUMENTS[0], price=1000,
                 qty=3, leaves=1, side=int(Side.BUY))  # fmt: skip
    status = dict(event_type=int(EventType.STATUS), instrument_id=INSTRUMENTS[0],
                  qty=int(InstrumentStatus.HALTED))  # fmt: skip
    pub = _publisher()
    events = _array([level, status])
    # Act
    k = feed_kernel.encode_feed(events, pub._out, pub._pk, pub._fs)
    untouched = pub._fs.tolist()
    published = pub.publish_events(events)
    # Assert: declined (the state untouched), then published whole by the struct path
    assert k == feed_kernel.DECLINED and untouched == [1, 0, 0]
    assert published == 2 and pub.next_seq == 3


def _levels(n: int, first_price: int = 900) -> np.ndarray:
    return _array(
        [dict(event_type=int(EventType.LEVEL), instrument_id=INSTRUMENTS[i % 3],
              price=first_price + i % 700, qty=i % 4, leaves=1, side=int(Side.SELL))
         for i in range(n)]
    )  # fmt: skip


def test_a_batch_over_the_batch_limit_is_left_to_the_struct_path() -> None:
    # Arrange: one batch of more events than the compiled path takes
    pub, plain = _publisher(), _publisher()
    events = _levels(FEED_BATCH + 1)
    # Act
    published = pub.publish_events(events)
    # Assert
    assert published == FEED_BATCH + 1 == plain._publish_rows(events.tolist())
    assert history(pub) == history(plain)


class _Sink(FeedSink):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, int]] = []

    def deliver(self, blob: bytes, next_seq: int) -> None:
        self.got.append((blob, next_seq))


def test_full_buffers_flush_into_the_history_and_the_book() -> None:
    # Arrange: small batches adding up to more packets than the buffers hold, read back
    # part-way (a replay or a snapshot flushes what is pending), a short history
    compiled, plain = _publisher(), _publisher()
    compiled.history_limit = plain.history_limit = 5000
    a, b = _Sink(), _Sink()
    compiled.sinks.append(a)
    plain.sinks.append(b)
    # Act
    for i in range(FEED_ROWS // 100 * 3):
        events = _levels(100, first_price=900 + i)
        compiled.publish_events(events)
        plain._publish_rows(events.tolist())
        if i == 0:
            assert compiled._fs[feed_kernel.FS_K] == 100  # pending, not yet in the book
        if i % 50 == 49:  # after the buffers filled once (41 batches)
            assert compiled.snapshot_packets() == plain.snapshot_packets()
    # Assert: the same bytes live, in the history and in the book
    assert a.got == b.got and len(a.got) == FEED_ROWS // 100 * 3
    assert compiled.history_first == plain.history_first > 1
    assert history(compiled) == history(plain)
    assert compiled.snapshot_packets() == plain.snapshot_packets()
    assert compiled.levels(INSTRUMENTS[1], Side.SELL) == plain.levels(INSTRUMENTS[1], Side.SELL)


def test_a_trading_run_publishes_the_same_through_both_paths() -> None:
    # Arrange: a random run of the reference book (fills, cancels, session changes)
    compiled, plain = _publisher(), _publisher()
    # Act
    for _book, events in run(11, 200, batch=8):
        compiled.publish_events(events)
        plain._publish_rows(events.tolist())
    # Assert
    assert history(compiled) == history(plain) and plain.next_seq > 100
    assert compiled.snapshot_packets() == plain.snapshot_packets()


def _framed_packets(blob: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(blob):
        end = pos + 2 + int.from_bytes(blob[pos : pos + 2], "big")
        out.append(blob[pos:end])
        pos = end
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(_event(rare=True), max_size=10), min_size=1, max_size=12),
    st.integers(0, 40),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 400)), max_size=6),
)
def test_replay_serves_the_newest_packets_from_any_number(batches, limit, reads) -> None:
    # Arrange: every packet ever published, as a live sink saw it; a short history
    pub, sink = _publisher(), _Sink()
    pub.sinks.append(sink)
    pub.history_limit = limit
    for events in map(_array, batches):
        pub.publish_events(events)
    pub.publish_settlement(INSTRUMENTS[0], 20261203, 1001, 5)
    every = [p for blob, _ in sink.got for p in _framed_packets(blob)]
    # Act / Assert: the history keeps the newest `limit`; a replay from any kept number
    # returns whole packets in order until it passes max_bytes
    first = pub.history_first
    assert first == max(1, pub.next_seq - limit) and len(every) == pub.next_seq - 1
    for pick, max_bytes in reads:
        seq = first + pick % (pub.next_seq - first + 1)
        blob, nxt = pub.replay_packets(seq, max_bytes)
        want, size = [], 0
        for p in every[seq - 1 :]:
            if size >= max_bytes:
                break
            want.append(p)
            size += len(p)
        assert blob == b"".join(want) and nxt == seq + len(want)
