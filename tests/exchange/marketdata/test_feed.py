"""The feed rebuilds every book exactly: in process, over TCP, across gaps and reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import numpy as np
import pytest

from exchange.bookbuilder import BookBuilder, FeedClient, SequenceGap, decode
from exchange.engine.abi import EventType, InstrumentStatus, Side
from exchange.marketdata import FeedPublisher, FeedServer, FeedSink
from exchange.protocol import soupbintcp as soup
from tests.exchange.marketdata.conftest import INSTRUMENTS, engine_levels, history, run


class Collector(FeedSink):
    """An in-process subscriber: decodes live packets into a builder."""

    def __init__(self, builder: BookBuilder) -> None:
        self.builder = builder
        self.decoder = soup.FrameDecoder()

    def deliver(self, blob: bytes, next_seq: int) -> None:
        for ptype, payload in self.decoder.feed(blob):
            assert ptype == ord("S")
            self.builder.apply_payload(payload)


def _new_publisher() -> FeedPublisher:
    pub = FeedPublisher(session="TEST")
    for iid in INSTRUMENTS:
        pub.add_instrument(iid, InstrumentStatus.PRE_OPEN, 1000)
    return pub


def _builder_levels(b: BookBuilder) -> dict[int, tuple[list, list]]:
    return {
        iid: (b.book(iid).levels(Side.BUY), b.book(iid).levels(Side.SELL)) for iid in INSTRUMENTS
    }


def _snapshot_into(pub: FeedPublisher, b: BookBuilder) -> None:
    blob, _ = pub.snapshot_packets()
    for _, payload in soup.FrameDecoder().feed(blob):
        b.apply_payload(payload)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_builder_equals_engine_book_at_every_checkpoint(seed: int) -> None:
    # Arrange
    pub = _new_publisher()
    builder = BookBuilder()
    _snapshot_into(pub, builder)
    pub.sinks.append(Collector(builder))
    trades = 0
    # Act / Assert: after every batch
    for book, events in run(seed, 150):
        pub.publish_events(events)
        trades += int(np.sum(events["event_type"] == EventType.TRADE)) // 2
        assert _builder_levels(builder) == engine_levels(book)
        snap = book.snapshot()["instruments"]
        assert {i: builder.book(i).status for i in INSTRUMENTS} == {
            i: snap[i]["status"] for i in INSTRUMENTS
        }
        assert {i: builder.book(i).reference for i in INSTRUMENTS} == {
            i: snap[i]["reference"] for i in INSTRUMENTS
        }
    assert trades > 50  # the run really traded
    assert len(builder.trades) == trades
    assert builder.next_seq == pub.next_seq


def test_late_joiner_snapshot_plus_incrementals_equals_engine() -> None:
    pub = _new_publisher()
    late = BookBuilder()
    last = None
    for i, (book, events) in enumerate(run(7, 120)):
        last = book
        pub.publish_events(events)
        if i == 60:
            _snapshot_into(pub, late)
            pub.sinks.append(Collector(late))
    assert last is not None and _builder_levels(late) == engine_levels(last)


def _apply(builder: BookBuilder, blob: bytes) -> None:
    for _, payload in soup.FrameDecoder().feed(blob):
        builder.apply_payload(payload)


def test_gap_is_detected_and_replay_from_next_seq_repairs_it() -> None:
    # Arrange: a builder that misses the messages of five batches
    pub = _new_publisher()
    builder = BookBuilder()
    _snapshot_into(pub, builder)
    gaps = 0
    last = None
    for i, (book, events) in enumerate(run(11, 80)):
        last = book
        start = pub.next_seq
        pub.publish_events(events)
        if 20 <= i < 25:
            continue  # lost
        blob, _ = pub.replay_packets(start)
        # Act: the first message after the loss reveals the gap; replay from next_seq
        try:
            _apply(builder, blob)
        except SequenceGap as gap:
            assert gap.expected == builder.next_seq
            gaps += 1
            _apply(builder, pub.replay_packets(builder.next_seq, max_bytes=1 << 30)[0])
    # Assert
    assert gaps == 1
    assert last is not None and _builder_levels(builder) == engine_levels(last)


def test_duplicate_messages_from_overlapping_replay_are_ignored() -> None:
    pub = _new_publisher()
    builder = BookBuilder()
    _snapshot_into(pub, builder)
    for _book, events in run(5, 30):
        pub.publish_events(events)
    blob, _ = pub.replay_packets(1, max_bytes=1 << 30)
    for _ in range(2):
        for _, payload in soup.FrameDecoder().feed(blob):
            builder.apply_payload(payload)
    assert builder.next_seq == pub.next_seq
    assert _builder_levels(builder) == {
        iid: (pub.levels(iid, Side.BUY), pub.levels(iid, Side.SELL)) for iid in INSTRUMENTS
    }


def test_daily_settlement_is_published_and_in_snapshots() -> None:
    pub = _new_publisher()
    live = BookBuilder()
    _snapshot_into(pub, live)
    pub.sinks.append(Collector(live))
    pub.publish_settlement(INSTRUMENTS[0], 20260610, 1234, ts=5)
    late = BookBuilder()
    _snapshot_into(pub, late)
    for b in (live, late):
        assert (b.book(INSTRUMENTS[0]).settlement, b.book(INSTRUMENTS[0]).settlement_date) == (
            1234,
            20260610,
        )


def test_history_is_bounded_and_too_old_replay_is_refused() -> None:
    pub = FeedPublisher(session="T", history_limit=50)
    for _book, events in run(3, 40):
        pub.publish_events(events)
    assert pub.history_first == pub.next_seq - 50
    with pytest.raises(ValueError, match="not in the replay history"):
        pub.replay_packets(1)


def test_private_events_are_not_published() -> None:
    pub = _new_publisher()
    _book, events = next(iter(run(1, 1)))
    accepted = events[events["event_type"] == EventType.ACCEPTED]
    assert pub.publish_events(accepted) == 0


# ---- over TCP ----------------------------------------------------------------------------


async def _tcp_run(seed: int, max_buffer: int = 4 << 20) -> None:
    pub = _new_publisher()
    server = FeedServer(pub, max_buffer=max_buffer)
    port = await server.start()
    early = FeedClient("127.0.0.1", port)
    await early.sync(0)  # snapshot of the empty books
    late = FeedClient("127.0.0.1", port)
    try:
        for i, (book, events) in enumerate(run(seed, 120)):
            pub.publish_events(events)
            if i == 40:
                await late.sync(pub.next_seq - 1)  # joins mid-run: snapshot then live
            if i == 70:
                # the early client loses its connection; it re-logs in with replay
                assert early._writer is not None
                early._writer.transport.abort()
            if i % 10 == 9:
                for c in (early, late) if i > 40 else (early,):
                    await c.sync(pub.next_seq - 1)
                    assert _builder_levels(c.builder) == engine_levels(book)
        assert early.reconnects >= 1
        assert early.builder.snapshots_applied == 1  # recovered by replay, not snapshot
        assert late.builder.snapshots_applied == 1
    finally:
        await early.close()
        await late.close()
        await server.close()


def test_tcp_clients_rebuild_books_across_a_disconnect() -> None:
    asyncio.run(_tcp_run(21))


async def _slow_consumer() -> None:
    pub = _new_publisher()
    server = FeedServer(pub, max_buffer=64 * 1024, sndbuf=16 * 1024)
    port = await server.start()
    # a subscriber that logs in and then never reads
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        slow.connect(("127.0.0.1", port))
    await asyncio.sleep(0.05)
    slow.send(soup.login_request("slow", "", "", 0))
    fast = FeedClient("127.0.0.1", port)
    await fast.sync(0)
    await asyncio.sleep(0.05)
    batches = [events for _book, events in run(4, 30)]
    rounds = 0
    while not server.slow_disconnects and rounds < 2000:
        for events in batches:
            pub.publish_events(events)
        rounds += 1
        await fast.sync(pub.next_seq - 1)  # the fast consumer keeps up throughout
    assert server.slow_disconnects == 1
    assert len(pub.sinks) == 1  # only the fast client is still live
    assert fast.builder.next_seq == pub.next_seq
    slow.close()
    await fast.close()
    await server.close()


def test_slow_consumer_is_disconnected_and_never_blocks_publishing() -> None:
    asyncio.run(_slow_consumer())


async def _reconnect_after_slow_disconnect() -> None:
    pub = _new_publisher()
    server = FeedServer(pub, max_buffer=32 * 1024, sndbuf=8 * 1024)
    port = await server.start()
    client = FeedClient("127.0.0.1", port)
    await client.sync(0)
    # the client does not read while a lot is published: the server drops it
    last = None
    for book, events in run(9, 400):
        last = book
        pub.publish_events(events)
    assert last is not None
    assert server.slow_disconnects == 1
    # Act: it reads again, finds the connection gone, re-logs in and replays
    await client.sync(pub.next_seq - 1, timeout=20)
    # Assert
    assert client.reconnects >= 1
    assert _builder_levels(client.builder) == engine_levels(last)
    await client.close()
    await server.close()


def test_dropped_consumer_recovers_on_reconnect() -> None:
    asyncio.run(_reconnect_after_slow_disconnect())


def test_decode_rejects_wrong_lengths_and_types() -> None:
    with pytest.raises(ValueError, match="unknown feed message type"):
        decode(b"Z123")
    with pytest.raises(ValueError, match="Level Update: 3 bytes"):
        decode(b"L12")


def _events(*rows: dict) -> np.ndarray:
    from exchange.engine.abi import EVENT_DTYPE

    ev = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, r in enumerate(rows):
        for k, v in r.items():
            ev[i][k] = v
    return ev


def test_indicative_opening_price_reaches_the_book_builder() -> None:
    # Arrange
    pub, builder = _new_publisher(), BookBuilder()
    _snapshot_into(pub, builder)
    pub.sinks.append(Collector(builder))
    iop = dict(event_type=11, timestamp=5, instrument_id=12607, price=1002, qty=7,
               side=Side.SELL, leaves=3)  # fmt: skip
    # Act
    pub.publish_events(_events(iop))
    # Assert: price, matched quantity, imbalance side and quantity
    assert builder.book(12607).indicative == (1002, 7, int(Side.SELL), 3)


def test_an_opening_auction_fill_is_one_trade_without_aggressor() -> None:
    # Arrange: both sides of one auction match, aggressor_side 0 (buy side first)
    pub, builder = _new_publisher(), BookBuilder()
    _snapshot_into(pub, builder)
    pub.sinks.append(Collector(builder))
    side = dict(event_type=EventType.TRADE, timestamp=9, instrument_id=12608, price=1001,
                qty=4, match_id=77, aggressor_side=0)  # fmt: skip
    # Act
    pub.publish_events(_events({**side, "side": Side.BUY}, {**side, "side": Side.SELL}))
    # Assert
    assert [(t.match_id, t.qty, t.aggressor_side) for t in builder.trades] == [(77, 4, 0)]


@pytest.mark.parametrize("seed", [4, 5])
def test_events_read_from_the_array_bytes_publish_what_numpy_reads(seed: int) -> None:
    # Arrange: the same random run, once as arrays (unpacked from their bytes with a
    # struct) and once as numpy's own tuples
    from_bytes, from_numpy = _new_publisher(), _new_publisher()
    # Act
    for _book, events in run(seed, 60, batch=6):
        from_bytes.publish_events(events)
        from_numpy._publish_rows(events.tolist())
    # Assert: identical packets, sequence numbers and books
    assert history(from_numpy) == history(from_bytes) and from_numpy.next_seq > 50
    assert from_numpy.snapshot_packets() == from_bytes.snapshot_packets()


def test_a_publisher_seeded_from_a_recovered_engine_shows_its_book() -> None:
    # Arrange: an engine that traded for a while (as after a restart's recovery)
    book = [b for b, _events in run(6, 40)][-1]
    pub, builder = FeedPublisher(session="NEW"), BookBuilder()
    # Act
    pub.seed_from_engine(book.snapshot()["instruments"])
    _snapshot_into(pub, builder)
    # Assert: the feed snapshot is the engine's book
    assert _builder_levels(builder) == engine_levels(book)
    assert any(levels[0] for levels in engine_levels(book).values())
