"""A bounded, numbered log of framed SoupBinTCP packets, kept in chunks.

:class:`PacketLog` holds the newest ``limit`` packets of one sequence (a session's
Sequenced Data for re-login replay, the market data feed's history). A batch's packets
arrive as one byte string and stay one: adding them is O(1), with no per-packet object,
which is what a batch costs on the order path. Reading splits a chunk by its SoupBinTCP
length prefixes, O(packets read + the offset into their chunk); reads are rare (a
re-login, a feed subscriber catching up).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable


def split_packets(blob: bytes) -> list[bytes]:
    """The framed packets of ``blob`` (whole packets back to back)."""
    out: list[bytes] = []
    pos, n = 0, len(blob)
    while pos < n:
        end = pos + 2 + ((blob[pos] << 8) | blob[pos + 1])
        out.append(blob[pos:end])
        pos = end
    return out


class PacketLog:
    """The newest ``limit`` packets of a sequence: ``first`` is the number of the oldest
    kept, ``next`` the number the next packet gets (``first == next`` when none is kept).

    Invariants: the live chunks hold exactly packets ``first .. next - 1`` (the oldest
    live chunk may start before ``first``); ``_firsts`` is increasing."""

    __slots__ = ("_chunks", "_counts", "_firsts", "_lo", "first", "limit", "next")

    def __init__(self, limit: int, next_seq: int = 1) -> None:
        self.limit = limit
        self.first = self.next = next_seq
        # three parallel lists (no tuple per chunk: nothing here for the cyclic GC to
        # track): each chunk's framed packets, how many, and the number of its first
        self._chunks: list[bytes] = []
        self._counts: list[int] = []
        self._firsts: list[int] = []
        self._lo = 0  # chunks before this one hold only dropped packets

    def __len__(self) -> int:
        return self.next - self.first

    def add(self, blob: bytes, n: int) -> None:
        """Append ``n`` framed packets, ``blob`` (whole packets back to back, n >= 1),
        numbered ``next ..``; drop the oldest beyond ``limit``. O(1) amortized."""
        self._chunks.append(blob)
        self._counts.append(n)
        self._firsts.append(self.next)
        self.next += n
        if self.next - self.first > self.limit:
            self._drop(self.next - self.limit)

    def extend(self, packets: Iterable[bytes]) -> None:
        """Append framed packets given one by one (one chunk)."""
        packets = list(packets)
        if packets:
            self.add(b"".join(packets), len(packets))

    def reset(self, next_seq: int, packets: list[bytes]) -> None:
        """Hold exactly ``packets`` (the newest ``limit`` of them), the last numbered
        ``next_seq - 1``."""
        kept = packets[-self.limit :] if self.limit else []
        self._chunks, self._counts, self._firsts, self._lo = [], [], [], 0
        self.first = self.next = next_seq - len(kept)
        if kept:
            self.add(b"".join(kept), len(kept))

    def _drop(self, first: int) -> None:
        self.first = first
        chunks, counts, firsts = self._chunks, self._counts, self._firsts
        lo = self._lo
        while lo < len(chunks) and firsts[lo] + counts[lo] <= first:
            lo += 1
        if lo > 64 and 2 * lo > len(chunks):  # forget the dropped chunks
            del chunks[:lo], counts[:lo], firsts[:lo]
            lo = 0
        self._lo = lo

    def read(self, seq: int, max_bytes: int = -1) -> tuple[bytes, int]:
        """Packets ``seq ..`` concatenated, stopping once more than ``max_bytes`` are
        taken (``-1``: all), and the number after the last taken. ``seq`` must be in
        ``[first, next]``. O(packets read + offset into the first chunk)."""
        if not self.first <= seq <= self.next:
            raise ValueError(f"sequence {seq} is not kept (kept: {self.first}..{self.next - 1})")
        chunks, firsts = self._chunks, self._firsts
        i = bisect.bisect_right(firsts, seq, self._lo) - 1
        out: list[bytes] = []
        size = 0
        while 0 <= i < len(chunks) and seq < self.next and (max_bytes < 0 or size < max_bytes):
            blob, n = chunks[i], self._counts[i]
            skip = seq - firsts[i]
            pos = 0
            for _ in range(skip):  # to the first packet wanted
                pos += 2 + ((blob[pos] << 8) | blob[pos + 1])
            if max_bytes < 0 or size + len(blob) - pos < max_bytes:
                out.append(blob[pos:] if pos else blob)  # the rest of the chunk
                size += len(blob) - pos
                seq += n - skip
            else:
                end = pos
                while end < len(blob) and size < max_bytes:
                    step = 2 + ((blob[end] << 8) | blob[end + 1])
                    size += step
                    end += step
                    seq += 1
                out.append(blob[pos:end])
            i += 1
        return b"".join(out), seq

    def packets(self, seq: int) -> list[bytes]:
        """Packets ``seq .. next - 1``, one bytes object each. O(packets + offset)."""
        return split_packets(self.read(seq)[0])
