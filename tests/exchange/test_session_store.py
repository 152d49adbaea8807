"""A session's store: packets kept whole (keep_blob) or one by one read back alike."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.auth import Login
from exchange.protocol import soupbintcp as soup
from exchange.session import ReplayGap, Session

_PACKET = st.binary(max_size=30).map(soup.sequenced)
_OPS = st.one_of(
    st.tuples(st.just("append"), _PACKET),
    st.tuples(st.just("extend"), st.lists(_PACKET, max_size=4)),
    st.tuples(st.just("blob"), st.lists(_PACKET, min_size=1, max_size=4)),
    st.tuples(st.just("replay"), st.integers(0, 300)),
    st.tuples(st.just("unjournaled"), st.just(0)),
)


class _Sink:
    def __init__(self) -> None:
        self.sent = b""

    def send(self, data: bytes) -> None:
        self.sent += data

    def write_now(self, data: bytes) -> bool:
        return False


def _session(limit: int) -> Session:
    return Session(Login("u", "", "U", frozenset()), replay_limit=limit)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 30), st.lists(_OPS, max_size=80))
def test_blobs_and_packets_are_numbered_kept_and_replayed_in_order(limit, ops) -> None:
    # Arrange: the model is every packet in order; a journal tracking unjournaled ones
    s, every, touched, journaled = _session(limit), [], [], 0
    s.track(touched)
    for op in ops:
        # Act
        if op[0] == "append":
            s.append(op[1])
            every.append(op[1])
        elif op[0] == "extend":
            s.extend(b"".join(op[1]), len(op[1]))
            every += op[1]
        elif op[0] == "blob":
            s.keep_blob(b"".join(op[1]), len(op[1]))
            every += op[1]
        elif op[0] == "unjournaled":
            got = s.take_unjournaled()
            assert got == b"".join(every[max(journaled, len(every) - limit) :])
            journaled = len(every)
            touched.clear()
        else:
            seq = s.first_seq + op[1] % (len(every) + 2 - s.first_seq)
            assert s.replay_from(seq) == every[seq - 1 :]
        # Assert: numbering, the newest `limit` kept, the journal told of new packets
        assert s.next_seq == len(every) + 1
        assert s.first_seq == max(1, len(every) + 1 - limit)
        assert bool(touched) == (len(every) > journaled)
    if s.first_seq > 1:  # a dropped packet is refused
        with pytest.raises(ReplayGap):
            s.replay_from(s.first_seq - 1)


def test_a_batch_is_kept_whole_and_single_packets_join_in_bulk() -> None:
    # Arrange
    s = _session(1000)
    packets = [soup.sequenced(bytes([i])) for i in range(200)]
    # Act: 50 batches of two kept whole, then 100 packets appended one by one
    for i in range(0, 100, 2):
        s.keep_blob(packets[i] + packets[i + 1], 2)
    for p in packets[100:]:
        s.append(p)
    # Assert: one chunk per batch, the singles in chunks of 64 (36 still waiting); the
    # store replays every packet in order
    assert len(s._log._chunks) == 50 + 1 and len(s._tail) == 36
    assert s.replay_from(1) == packets and s.replay_from(150) == packets[149:]
