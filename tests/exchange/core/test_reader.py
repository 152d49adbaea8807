"""The reader (``exchange.core.reader``): a connection's reads as one function, against the
methods whose common case it spells out.

Two journaled core gateways, each with a market data feed and a subscriber, get the same
streams through connections (``SoupServerConnection`` on a transport that keeps what is
written to it). One reader spells the common case out (the default); the other hands
every read the kernel ran to the methods (``read_spelled_out = False``): the connection's
``write_now``, ``Session.keep_blob``, ``GatewayJournal.commit_frames`` and
``Journal.wrote_frames``, the engine's ``kernel_window`` and ``kernel_skip``. Every
connection must have been written the same bytes, read by read, and the two gateways must
end with the same session stores, the same journal byte for byte, the same engine state,
feed and connection bookkeeping.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event

from exchange.connection import SoupServerConnection
from exchange.core import kernel as K
from exchange.core.gateway import CoreGateway
from exchange.datadir import DataDir
from exchange.journal import GatewayJournal, Journal, SyncPolicy, list_segments
from exchange.marketdata import FeedPublisher
from exchange.protocol import messages as m
from exchange.protocol import soupbintcp as soup
from exchange.venue import build_gateway
from tests.exchange.core.test_core_vs_gateway import USERS, _Clock, _e, _enter_bytes, streams
from tests.exchange.core.test_one_call import _Sink, _steps
from tests.exchange.gateway.conftest import ACCESS, PASSWORDS, TRADE_DATE


class _Transport:
    """An asyncio transport that keeps every byte written to it."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False
        self.protocols: list[Any] = []
        self.buffered = 0  # what get_write_buffer_size reports

    def write(self, data: bytes) -> None:
        self.out += data

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return None

    def close(self) -> None:
        self.closed = True

    abort = close

    def set_protocol(self, protocol: Any) -> None:
        self.protocols.append(protocol)


class _Venue:
    """A journaled core gateway with a feed, its connections (one per user, logged in)
    and a count of the reads its readers handed to ``_read_rest``."""

    def __init__(self, root: Path, clock: _Clock, spelled_out: bool) -> None:
        dd = DataDir.open(root, create=True)
        gw = build_gateway(ACCESS, TRADE_DATE, data_dir=root, engine="numba")
        assert isinstance(gw, CoreGateway)
        gw.read_spelled_out = spelled_out
        gw.sequencer.clock = lambda: 1_000
        gw.mono_clock = clock
        gw.tables.SESS[:, K.S_LAST_NS] = clock()
        self.journal = Journal(dd.journal_dir, SyncPolicy("off"), segment_bytes=1 << 16)
        self.gj = GatewayJournal(gw, dd, SyncPolicy("off"), journal=self.journal)
        self.pub = FeedPublisher(session="T")
        self.sink = _Sink()
        self.pub.sinks.append(self.sink)
        gw.attach_feed(self.pub)
        assert gw._warm_read()
        self.gw, self.root = gw, root
        self.rest = 0
        rest = gw._read_rest

        def counted(*args: Any) -> None:
            self.rest += 1
            rest(*args)

        gw._read_rest = counted  # type: ignore[method-assign]
        self.conns: dict[str, SoupServerConnection] = {}
        for u in USERS:
            self.conns[u] = self.login(u)

    def login(self, user: str) -> SoupServerConnection:
        conn = SoupServerConnection(self.gw, set(), 1 << 20)
        t = _Transport()
        conn.connection_made(t)  # type: ignore[arg-type]
        conn.data_received(soup.login_request(user, PASSWORDS[user], "", 0))
        assert conn.session is not None, user
        # the reader took data_received's place, and the transport was told
        assert "data_received" in vars(conn) and t.protocols == [conn]
        return conn

    def read(self, user: str, data: bytes) -> None:
        self.conns[user].data_received(data)
        self.gw.flush()  # what the ordinary path queued (the loop would flush it)

    def written(self, user: str) -> bytes:
        return bytes(self.conns[user].transport.out)  # type: ignore[union-attr]

    def journal_bytes(self) -> list[bytes]:
        self.journal.commit()
        return [p.read_bytes() for _, p in list_segments(DataDir.open(self.root).journal_dir)]


def _both(tmp: Path) -> tuple[_Venue, _Venue, _Clock]:
    clock = _Clock()
    fast = _Venue(tmp / "spelled", clock, spelled_out=True)
    ref = _Venue(tmp / "methods", clock, spelled_out=False)
    return fast, ref, clock


def _assert_same(fast: _Venue, ref: _Venue) -> None:
    for u in USERS:
        assert fast.written(u) == ref.written(u), u
        fs, rs = fast.conns[u].session, ref.conns[u].session
        assert fs is not None and rs is not None
        assert fs.replay_from(1) == rs.replay_from(1), u
        assert fs.next_seq == rs.next_seq, u
        assert fast.conns[u].decoder._consumed == ref.conns[u].decoder._consumed, u
    assert fast.gw.sequencer.engine.state_digest() == ref.gw.sequencer.engine.state_digest()
    assert fast.gw.sequencer.last_ts == ref.gw.sequencer.last_ts
    assert fast.gw.sequencer.commands == ref.gw.sequencer.commands
    assert fast.gw.sequencer.events == ref.gw.sequencer.events
    assert fast.gj.gseq == ref.gj.gseq
    assert fast.journal.next_seq == ref.journal.next_seq
    assert fast.journal.committed_seq == ref.journal.committed_seq
    assert fast.journal_bytes() == ref.journal_bytes()
    assert b"".join(fast.sink.got) == b"".join(ref.sink.got)
    assert fast.pub.next_seq == ref.pub.next_seq


def _run(ops: list, tmp: Path) -> tuple[_Venue, _Venue]:
    fast, ref, clock = _both(tmp)
    for step in _steps(ops):
        if step[0] == "tick":
            clock.now += step[1]
        elif step[0] == "flush":
            fast.gw.flush()
            ref.gw.flush()
        elif step[0] == "disconnect":
            for v in (fast, ref):
                s = v.conns[step[1]].session
                v.gw.cancel_all(s, ord("D"))
                v.gw.flush()
        else:
            _, u, msgs = step
            framed = b"".join(soup.unsequenced(d) for d in msgs)
            fast.read(u, framed)
            ref.read(u, framed)
            assert fast.written(u) == ref.written(u), (u, msgs)
    _assert_same(fast, ref)
    return fast, ref


@streams(max_examples=60)
def test_the_reader_writes_and_keeps_what_the_methods_do(tmp_path_factory, ops: list) -> None:
    fast, ref = _run(ops, tmp_path_factory.mktemp("r"))
    event(f"spelled out: {'some' if fast.rest < ref.rest else 'none'}")


def test_the_common_reads_are_spelled_out_and_the_rest_take_the_methods(tmp_path: Path) -> None:
    # Arrange: resting orders and cancels (the common case), a fill (the methods: its
    # trade report and the other side's reply), a Replace (decoded by Python), a journal
    # long enough to roll its 64 KiB segments (groups that did not fit the map)
    ops: list = []
    for i in range(300):
        ops += [_e("alice", price=2790 + i % 10), ("flush",), ("cancel", "alice", i)]
        ops += [("flush",), _e("bob", price=2780 + i % 10), ("flush",)]
    ops += [_e("carol", side=ord("S"), price=2780, qty=3)]
    ops += [_e("carol"), ("replace", "carol", 1, 2801, 2, 0, 1)]
    # Act
    fast, ref = _run(ops, tmp_path)
    # Assert: most reads were spelled out; the same reads took the methods in both
    reads = len([s for s in _steps(ops) if s[0] == "read"])
    assert ref.rest == reads
    assert fast.rest < reads // 10, (fast.rest, reads)
    assert len(list_segments(DataDir.open(fast.root).journal_dir)) >= 3


def _order(token: int, price: int = 2799) -> bytes:
    return soup.unsequenced(_enter_bytes(dict(_e("alice", price=price)[1], token=token)))


def test_a_partial_frame_takes_the_ordinary_path_and_the_next_read_the_reader(
    tmp_path: Path,
) -> None:
    # Arrange
    fast, ref, _ = _both(tmp_path)
    one, two = _order(1), _order(2)
    # Act: order 1 cut in two reads, then order 2 whole
    for v in (fast, ref):
        v.read("alice", one[:7])
        v.read("alice", one[7:] + two[:3])
        v.read("alice", two[3:])
        v.read("alice", _order(3))
    # Assert: three Accepted, the same as the methods; the stream offset counts every byte
    _assert_same(fast, ref)
    acks = fast.conns["alice"].session.replay_from(1)  # type: ignore[union-attr]
    assert [m.decode_outbound(p[3:]).__class__.__name__ for p in acks][-3:] == ["Accepted"] * 3
    login = len(soup.login_request("alice", PASSWORDS["alice"], "", 0))
    assert fast.conns["alice"].decoder._consumed == login + 3 * len(one)


def test_a_slow_consumer_is_disconnected_by_the_reader_and_keeps_its_replies(
    tmp_path: Path,
) -> None:
    # Arrange: alice's transport reports more unsent bytes than the connection allows
    fast, _, _ = _both(tmp_path)
    conn = fast.conns["alice"]
    conn.transport.buffered = 2 << 20  # type: ignore[union-attr]
    before = conn.session.next_seq  # type: ignore[union-attr]
    # Act
    fast.read("alice", _order(1))
    # Assert: the reply was written and stored, then the connection dropped
    assert conn.closing and conn.transport.closed  # type: ignore[union-attr]
    assert conn.session.next_seq == before + 1  # type: ignore[union-attr]
    assert fast.rest == 0


def test_a_bug_in_a_read_costs_that_connection_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange: the compiled entry point raises for alice's read
    fast, _, _ = _both(tmp_path)
    ep = fast.gw._read_ep

    def broken(*args: Any) -> tuple:
        raise RuntimeError("boom")

    fast.gw._read_ep = broken
    # Act
    with caplog.at_level(logging.ERROR, logger="flopex.gateway"):
        fast.read("alice", _order(1))
    fast.gw._read_ep = ep
    fast.read("bob", soup.unsequenced(_enter_bytes(dict(_e("bob")[1], token=1))))
    # Assert: alice is disconnected and logged; bob still trades
    assert fast.conns["alice"].closing and "internal error" in caplog.text
    assert fast.conns["bob"].session.next_seq > 2  # type: ignore[union-attr]


def test_a_lost_connection_drops_its_reader_and_a_new_login_gets_one(tmp_path: Path) -> None:
    # Arrange
    fast, _, _ = _both(tmp_path)
    old = fast.conns["alice"]
    fast.read("alice", _order(1))
    # Act
    old.connection_lost(None)
    new = fast.login("alice")  # asserts the new connection's reader
    fast.conns["alice"] = new
    fast.read("alice", _order(2))
    # Assert: the old connection no longer holds the session's reader; the new one traded
    assert "data_received" not in vars(old)
    s = new.session
    assert s is not None
    kinds = [m.decode_outbound(p[3:]).__class__.__name__ for p in s.replay_from(1)]
    assert kinds.count("Accepted") == 2, kinds
