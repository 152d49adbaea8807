"""PacketLog keeps exactly the newest packets and reads them back as a plain list would."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.packetlog import PacketLog, split_packets
from exchange.protocol import soupbintcp as soup

_PACKET = st.binary(max_size=40).map(soup.sequenced)
_OPS = st.one_of(
    st.tuples(st.just("add"), st.lists(_PACKET, min_size=1, max_size=9)),
    st.tuples(st.just("extend"), st.lists(_PACKET, max_size=4)),
    st.tuples(st.just("read"), st.integers(0, 10_000), st.integers(-1, 300)),
    st.tuples(st.just("reset"), st.integers(1, 50), st.lists(_PACKET, max_size=12)),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 25), st.lists(_OPS, max_size=40))
def test_the_log_behaves_as_the_newest_packets_of_a_list(limit: int, ops: list) -> None:
    # Arrange: the model is every packet numbered from 1 and the first number kept
    log, every, first = PacketLog(limit), [], 1
    for op in ops:
        # Act
        if op[0] == "add":
            log.add(b"".join(op[1]), len(op[1]))
            every += op[1]
        elif op[0] == "extend":
            log.extend(op[1])
            every += op[1]
        elif op[0] == "reset":
            next_seq = len(every) + len(op[2]) + op[1]
            every = [b""] * (next_seq - 1 - len(op[2])) + op[2]
            first = next_seq - min(len(op[2]), limit)  # only the packets given are kept
            log.reset(next_seq, op[2])
        else:
            seq = log.first + op[1] % (len(log) + 1)
            blob, nxt = log.read(seq, op[2])
            want, size = [], 0
            for p in every[seq - 1 :]:
                if op[2] >= 0 and size >= op[2]:
                    break
                want.append(p)
                size += len(p)
            assert (blob, nxt) == (b"".join(want), seq + len(want))
            assert log.packets(seq) == every[seq - 1 :]
        # Assert: the newest `limit` packets are kept, numbered as appended
        first = max(first, len(every) + 1 - limit)
        assert (log.first, log.next, len(log)) == (first, len(every) + 1, len(every) + 1 - first)
        assert log.packets(log.first) == every[log.first - 1 :]


def test_a_number_outside_the_kept_range_is_refused() -> None:
    # Arrange
    log = PacketLog(2)
    log.extend([soup.sequenced(b"a"), soup.sequenced(b"b"), soup.sequenced(b"c")])
    # Act / Assert
    with pytest.raises(ValueError, match="sequence 1 is not kept"):
        log.read(1)
    with pytest.raises(ValueError, match="sequence 5 is not kept"):
        log.read(5)
    assert log.read(4) == (b"", 4)


def test_many_dropped_chunks_are_forgotten() -> None:
    # Arrange: far more one-packet chunks than the limit
    log = PacketLog(10)
    # Act
    for i in range(1000):
        log.add(soup.sequenced(i.to_bytes(2, "big")), 1)
    # Assert: the chunk list stays near the limit, the newest ten read back
    assert len(log._chunks) < 200
    assert split_packets(log.read(991)[0]) == [
        soup.sequenced(i.to_bytes(2, "big")) for i in range(990, 1000)
    ]
