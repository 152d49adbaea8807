"""The one-call path (``CoreGateway.on_read``) against the Python gateway, read by read.

The streams of ``test_core_vs_gateway`` are cut into *reads*: consecutive messages of one
session, as a connection would receive them in one ``data_received``. The Python gateway
gets each read's messages and a flush; the compiled core gets the read's framed bytes
through ``on_read`` (and, where that declines, the same messages through ``on_message``
and a flush, as the connection does). Every session must end with the same packets, the
same working quantities and positions, and the same number of working orders; the
streams must have taken the one-call path as well as each of its ways back to the batch
path. Both gateways publish to a market data feed (the core's one-call path encodes it in
its compiled call): the feeds must match packet for packet, live and in replay.
"""

from __future__ import annotations

from hypothesis import event

from exchange.core import fused as F
from exchange.core import kernel as K
from exchange.core.gateway import CoreGateway
from exchange.marketdata import FeedPublisher, FeedSink
from exchange.protocol import soupbintcp as soup
from tests.exchange.core.test_core_vs_gateway import (
    _assert_same,
    _Clock,
    _e,
    _Encoder,
    _enter_bytes,
    _pair,
    streams,
)
from tests.exchange.marketdata.conftest import history

MAX = soup.MAX_INBOUND_PACKET


class _Results:
    """Counts of what ``read_batch`` returned, by result and apply status."""

    def __init__(self, core: CoreGateway) -> None:
        self.counts: dict[str, int] = {}
        ep = core._read_ep

        def counted(*args: object) -> tuple:
            r = ep(*args)
            key = ["fallback", "decoded", "engine", "applied"][r[0]]
            if r[0] == F.R_APPLIED and r[15] != K.AP_DONE:
                key = "applied, Python's event"
            self.counts[key] = self.counts.get(key, 0) + 1
            if r[19] >= 0:
                self.counts["feed in the call"] = self.counts.get("feed in the call", 0) + 1
            return r

        core._read_ep = counted


def _steps(ops: list) -> list:
    """The stream as reads ``("read", user, [message bytes])`` and the other steps:
    consecutive messages of one session make one read."""
    encode = _Encoder()
    steps: list = []
    for o in ops:
        if o[0] in ("flush", "tick", "disconnect"):
            steps.append(o)
            continue
        u, data = encode(o)
        if steps and steps[-1][0] == "read" and steps[-1][1] == u:
            steps[-1][2].append(data)
        else:
            steps.append(("read", u, [data]))
    return steps


class _Sink(FeedSink):
    """A feed subscriber that keeps every byte it is handed."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    def deliver(self, blob: bytes, next_seq: int) -> None:
        self.got.append(blob)


def _feeds(py: object, core: CoreGateway, listeners: int = 0) -> tuple:
    """A feed publisher (with a subscriber) on each gateway, and on the core ``listeners``
    more event listeners."""
    pubs = FeedPublisher(session="T"), FeedPublisher(session="T")
    sinks = _Sink(), _Sink()
    for gw, pub, sink in zip((py, core), pubs, sinks, strict=True):
        gw.attach_feed(pub)
        pub.sinks.append(sink)
    for _ in range(listeners):
        core.sequencer.event_listeners.append(lambda events: None)
    return pubs, sinks


def _run(ops: list, listeners: int = 0) -> dict[str, int]:
    clock = _Clock()
    py, core, sessions = _pair(clock)
    pubs, sinks = _feeds(py, core, listeners)
    assert core._warm_read()
    results = _Results(core)
    taken = 0
    for step in _steps(ops):
        if step[0] == "tick":
            clock.now += step[1]
        elif step[0] == "disconnect":
            py.cancel_all(sessions[step[1]][0], ord("D"))
            core.cancel_all(sessions[step[1]][1], ord("D"))
            py.flush()
            core.flush()
        elif step[0] == "read":
            _, u, msgs = step
            ps, cs = sessions[u]
            for data in msgs:
                py.on_message(ps, data)
            py.flush()
            framed = b"".join(soup.unsequenced(d) for d in msgs)
            if core.on_read(cs, framed, MAX):
                taken += 1
            else:
                for data in msgs:
                    core.on_message(cs, data)
                core.flush()
    py.flush()
    core.flush()
    _assert_same(py, core, sessions)
    assert core.sequencer.last_ts == py.sequencer.last_ts
    assert b"".join(sinks[1].got) == b"".join(sinks[0].got)
    assert pubs[1].next_seq == pubs[0].next_seq
    assert history(pubs[1]) == history(pubs[0])
    assert pubs[1].snapshot_packets() == pubs[0].snapshot_packets()
    results.counts["taken"] = taken
    return results.counts


@streams(max_examples=120)
def test_one_call_path_sends_what_the_python_gateway_sends(ops: list) -> None:
    for key in _run(ops):
        event(f"read_batch: {key}")


def test_each_way_through_the_one_call_path_is_taken() -> None:
    # Arrange: reads for every outcome of read_batch
    ops = [
        _e("alice"),  # applied
        _e("bob", side=ord("S"), qty=5),  # applied, with a fill (and a trade-log row)
        ("flush",),
        _e("carol"),
        ("replace", "carol", 0, 2801, 2, 0, 1),  # decoded: a Replace is Python's
        ("flush",),
        _e("alice"),
        ("cancel", "alice", 1),  # decoded: the Cancel of an order of this read
        ("flush",),
        ("tick", 10**9),
        _e("slow"),
        ("junk", "slow", b"?abc"),  # decoded: a malformed message
    ]
    # Act
    counts = _run(ops)
    # Assert
    assert counts.get("applied", 0) >= 2, counts
    assert counts.get("decoded", 0) >= 3, counts
    assert counts.get("feed in the call", 0) == counts["applied"], counts
    taken = sum(v for k, v in counts.items() if k not in ("taken", "feed in the call"))
    assert counts["taken"] == taken, counts


def test_with_another_event_listener_the_feed_is_published_by_the_listeners() -> None:
    # Arrange: the feed is not the only listener (the kernel cannot serve the other)
    ops = [_e("alice"), _e("bob", side=ord("S"), qty=5), ("flush",), _e("carol")]
    # Act
    counts = _run(ops, listeners=1)
    # Assert: the same feed (checked in _run), none of it from the compiled call
    assert counts.get("applied", 0) >= 2 and "feed in the call" not in counts, counts


def test_a_read_that_is_not_whole_unsequenced_packets_is_declined() -> None:
    # Arrange
    clock = _Clock()
    _, core, sessions = _pair(clock)
    cs = sessions["alice"][1]
    order = soup.unsequenced(_enter_bytes(dict(_e("alice")[1], token=1)))
    before = cs.next_seq
    # Act / Assert: nothing is done for any of them
    assert not core.on_read(cs, order[:-1], MAX)  # a partial frame
    assert not core.on_read(cs, soup.CLIENT_HEARTBEAT_PACKET + order, MAX)
    assert not core.on_read(cs, order + soup.packet(b"O"), MAX)  # then a logout
    assert not core.on_read(cs, order, len(order) - 3)  # longer than the connection allows
    assert not core.on_read(cs, bytearray(order), MAX)  # not bytes: the batch path's
    assert cs.next_seq == before and core.tables.G[K.G_ORDERS] == 0
    # and a whole one is taken
    assert core.on_read(cs, order, MAX)
    assert cs.next_seq == before + 1 and core.tables.G[K.G_ORDERS] == 1
