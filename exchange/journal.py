"""The sequenced command journal: append-only, CRC-checked, group-committed, replayable.

Every state-changing command (a ``COMMAND_DTYPE`` record stamped by the sequencer) is
appended here, and the batch is committed, before any reply for it leaves the gateway.
The engine is a pure function of the command stream, so replaying the journal after the
newest snapshot rebuilds the exact state.

On-disk format (little-endian; full tables in ``docs/durability.md``)
--------------------------------------------------------------------
``DATA_DIR/journal/<first_seq:020d>.jnl`` segment files. Each starts with a 24-byte
segment header::

    magic b"FLXJRNL\\0" | uint16 version | uint16 reserved | uint32 command itemsize |
    uint64 first sequence number of the segment

followed by records, each a 20-byte header and a payload::

    uint16 magic 0xF10E | uint8 record type | uint8 flags | uint32 payload length |
    uint64 sequence number | uint32 CRC32 (of the first 16 header bytes + payload)

Record types: ``COMMANDS`` (1) holds ``n`` consecutive ``COMMAND_DTYPE`` records with
sequence numbers ``seq .. seq+n-1`` (one record per engine batch, so replay decodes a
whole batch with one ``np.frombuffer``); ``NOTE`` (2) holds opaque bytes for the gateway
(``seq`` = the next command sequence number; it consumes none).

Crash safety
------------
A commit is one copy of every record buffered since the last commit into the segment's
shared memory map (the kernel's page cache for the file: a process crash after it loses
nothing, as after a ``write``), followed by one ``fsync`` when the :class:`SyncPolicy`
says so. The writer grows a segment file in :data:`MAP_CHUNK` steps ahead of its data, so
a segment being written (or left by a crash) ends in zero bytes: readers stop at an
all-zero tail as at the end of the file; a clean close truncates it. After a crash only
the last commit can be incomplete: on opening, an incomplete or CRC-failing record
*with no valid record after it* in the last segment is a torn tail; it is truncated and
logged. Anything else that
does not check out (a bad record followed by a valid one, a bad record in an older
segment, a sequence gap) is corruption: opening refuses with a FlopexError naming the file
and byte offset. A segment or record type from a newer format is refused likewise.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import mmap
import os
import re
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from contracts.errors import FlopexError
from exchange.datadir import fsync_dir, numbered_files
from exchange.engine.abi import COMMAND_DTYPE

log = logging.getLogger("flopex.journal")

#: Journal format version written in every segment header.
JOURNAL_VERSION = 1
SEGMENT_MAGIC = b"FLXJRNL\x00"
SEGMENT_HEADER = struct.Struct("<8sHHIQ")
RECORD_MAGIC = 0xF10E
RECORD_HEADER = struct.Struct("<HBBIQI")
_CRC_SPAN = 16  # header bytes covered by the CRC (all but the CRC itself)
_MAGIC_BYTES = struct.pack("<H", RECORD_MAGIC)
#: Largest payload a record may declare (a sanity bound for corrupted length fields).
MAX_RECORD_BYTES = 256 * 1024 * 1024
#: Default size after which a new segment file is started.
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
#: The writer maps (and grows) a segment file in steps of this many bytes.
MAP_CHUNK = 4 * 1024 * 1024
#: madvise(2) advice (Linux 5.14+): fault pages in writable now. A page faulted in by the
#: first copy into it costs ~6 µs on this VM, one populated ahead ~3.9 (measured).
MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)
_SEGMENT_RE = re.compile(r"^(\d{20})\.jnl$")
#: Record flag: the last record of a commit. A commit is all-or-nothing: in a segment
#: whose header has :data:`SEG_COMMIT_GROUPS`, records after the last COMMIT_END are an
#: incomplete commit (torn by a crash) and are cut with the torn tail.
FLAG_COMMIT_END = 0x01
#: Segment header ``reserved`` bit: the writer marks commit ends (see FLAG_COMMIT_END).
SEG_COMMIT_GROUPS = 0x0001
CMD_SIZE = COMMAND_DTYPE.itemsize


class RecordType(IntEnum):
    """Journal record types; numeric values are part of the on-disk format."""

    COMMANDS = 1
    NOTE = 2


@dataclass(frozen=True)
class SyncPolicy:
    """When a commit fsyncs: ``batch`` (every commit), ``interval`` (at most every N ms), ``off``.

    Every policy *writes* each commit before it returns, so an acknowledged command
    survives a process crash (kill -9) under all three; ``batch`` also survives power loss,
    ``interval`` loses at most the last N ms on power loss, ``off`` is for tests.
    """

    mode: str = "batch"
    interval_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> SyncPolicy:
        """``"batch"``, ``"off"``, ``"interval:5"`` or ``"5ms"`` (N ms); FlopexError otherwise."""
        t = text.strip().lower()
        if t in ("batch", "every-batch", "always"):
            return cls("batch")
        if t in ("off", "none", "never"):
            return cls("off")
        m = re.fullmatch(r"(?:interval:)?(\d+)(?:ms)?", t)
        if m and (t.startswith("interval:") or t.endswith("ms")):
            ms = int(m.group(1))
            if ms <= 0:
                raise FlopexError(f"journal sync policy {text!r}: interval must be positive")
            return cls("interval", ms)
        raise FlopexError(
            f"journal sync policy {text!r}: expected 'batch', 'off' or 'interval:N' (ms)"
        )

    def __str__(self) -> str:
        return f"interval:{self.interval_ms}" if self.mode == "interval" else self.mode


@dataclass(frozen=True)
class Record:
    """One journal record as read back: where it is, its sequence number and payload."""

    path: Path
    offset: int
    rtype: int
    seq: int
    payload: memoryview

    @property
    def count(self) -> int:
        """Sequence numbers this record consumes (commands in it; 0 for a note)."""
        return len(self.payload) // CMD_SIZE if self.rtype == RecordType.COMMANDS else 0

    def commands(self) -> np.ndarray:
        """The ``COMMAND_DTYPE`` records of a COMMANDS record (read-only view, no copy)."""
        return np.frombuffer(self.payload, dtype=COMMAND_DTYPE)


def clip_batch(
    seq: int, cmds: np.ndarray, from_seq: int, to_seq: int | None
) -> tuple[int, np.ndarray]:
    """A batch whose first command has sequence ``seq``, sliced to ``[from_seq, to_seq]``:
    ``(first sequence kept, commands kept)``, the commands possibly empty. O(1), a view."""
    if seq < from_seq:
        cmds = cmds[from_seq - seq :]
        seq = from_seq
    if to_seq is not None:
        cmds = cmds[: max(0, to_seq - seq + 1)]
    return seq, cmds


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}.jnl"


def list_segments(journal_dir: Path) -> list[tuple[int, Path]]:
    """``(first_seq, path)`` of every segment, in sequence order."""
    return numbered_files(journal_dir, _SEGMENT_RE)


_HEAD16 = struct.Struct("<HBBIQ")
_CRC = struct.Struct("<I")


def encode_record(rtype: int, seq: int, payload: bytes | memoryview, flags: int = 0) -> bytes:
    """One framed record: header (with CRC32) + payload. O(len(payload))."""
    head = _HEAD16.pack(RECORD_MAGIC, rtype, flags, len(payload), seq)
    crc = zlib.crc32(payload, zlib.crc32(head))
    return b"".join((head, _CRC.pack(crc), payload))


def _record_ok(data: bytes, pos: int) -> bool:
    """True if a complete record with a valid CRC starts at ``pos``."""
    n = len(data)
    if n - pos < RECORD_HEADER.size:
        return False
    magic, _rt, _fl, length, _seq, crc = RECORD_HEADER.unpack_from(data, pos)
    if magic != RECORD_MAGIC or length > MAX_RECORD_BYTES:
        return False
    end = pos + RECORD_HEADER.size + length
    if end > n:
        return False
    mv = memoryview(data)
    return (
        zlib.crc32(mv[pos + RECORD_HEADER.size : end], zlib.crc32(mv[pos : pos + _CRC_SPAN])) == crc
    )


def _valid_record_after(data: bytes, start: int) -> int:
    """Offset of the first valid record at or after ``start``, or -1. Failure path only."""
    pos = data.find(_MAGIC_BYTES, start)
    while pos >= 0:
        if _record_ok(data, pos):
            return pos
        pos = data.find(_MAGIC_BYTES, pos + 1)
    return -1


def _all_zero(data: bytes, start: int) -> bool:
    """True if every byte from ``start`` to the end is zero. O(bytes), no copy."""
    return not np.frombuffer(data, np.uint8, offset=start).any()


@dataclass
class _Segment:
    first_seq: int
    path: Path
    data: bytes
    records: list[Record]
    end: int  # offset just past the last valid record
    next_seq: int
    torn_at: int = -1  # offset of a torn tail, -1 if none
    padded: int = 0  # zero bytes after the last record (a mapped writer's room), not torn


def _read_segment(path: Path, first_seq: int, is_last: bool, expect_seq: int | None) -> _Segment:
    """Parse and CRC-check one segment file. Guarantees: every returned record is valid and
    the sequence numbers are contiguous; a torn tail is reported only for the last segment;
    any other defect raises FlopexError naming ``path`` and the byte offset. O(bytes)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FlopexError(f"{path}: cannot read journal segment: {exc.strerror}") from None
    n = len(data)
    if n < SEGMENT_HEADER.size:
        if is_last:
            return _Segment(first_seq, path, data, [], 0, first_seq, torn_at=0)
        raise FlopexError(f"{path}: journal segment header truncated at byte offset {n}")
    magic, version, seg_flags, itemsize, hdr_seq = SEGMENT_HEADER.unpack_from(data, 0)
    if magic != SEGMENT_MAGIC:
        raise FlopexError(f"{path}: not a flopex journal segment (bad magic at byte offset 0)")
    if version > JOURNAL_VERSION:
        raise FlopexError(
            f"{path}: journal format version {version} is newer than this flopex understands"
            f" ({JOURNAL_VERSION})"
        )
    if itemsize != CMD_SIZE:
        raise FlopexError(
            f"{path}: journal commands are {itemsize} bytes, this flopex uses {CMD_SIZE}"
            " (byte offset 12)"
        )
    if hdr_seq != first_seq:
        raise FlopexError(
            f"{path}: segment header says first sequence {hdr_seq}, file name says {first_seq}"
            " (byte offset 16)"
        )
    if expect_seq is not None and first_seq != expect_seq:
        raise FlopexError(
            f"{path}: sequence gap: segment starts at {first_seq}, expected {expect_seq}"
            " (byte offset 0)"
        )
    mv = memoryview(data)
    pos = SEGMENT_HEADER.size
    seq = first_seq
    records: list[Record] = []
    commit_ends = 0  # records up to the last one flagged FLAG_COMMIT_END
    unpack = RECORD_HEADER.unpack_from
    hsize = RECORD_HEADER.size
    crc32 = zlib.crc32
    while pos < n:
        reason = ""
        if n - pos < hsize:
            reason = "record header truncated"
        else:
            magic_r, rtype, _fl, length, rseq, crc = unpack(data, pos)
            end = pos + hsize + length
            if magic_r != RECORD_MAGIC:
                reason = "bad record magic"
            elif length > MAX_RECORD_BYTES:
                reason = f"record length {length} too large"
            elif end > n:
                reason = "record truncated"
            elif crc32(mv[pos + hsize : end], crc32(mv[pos : pos + _CRC_SPAN])) != crc:
                reason = "CRC mismatch"
        if reason:
            if is_last and _all_zero(data, pos):  # the writer's mapped room: the end
                seg = _Segment(first_seq, path, data, records, pos, seq, padded=n - pos)
                return _cut_incomplete_commit(seg, seg_flags, commit_ends)
            if is_last and _valid_record_after(data, pos + 1) < 0:
                seg = _Segment(first_seq, path, data, records, pos, seq, torn_at=pos)
                return _cut_incomplete_commit(seg, seg_flags, commit_ends)
            raise FlopexError(f"{path}: corrupt journal record at byte offset {pos}: {reason}")
        if rtype == RecordType.COMMANDS:
            if length % CMD_SIZE:
                raise FlopexError(
                    f"{path}: command record at byte offset {pos} has length {length},"
                    f" not a multiple of {CMD_SIZE}"
                )
            count = length // CMD_SIZE
        elif rtype == RecordType.NOTE:
            count = 0
        else:
            raise FlopexError(
                f"{path}: record type {rtype} at byte offset {pos} is from a newer flopex"
            )
        if rseq != seq:
            raise FlopexError(
                f"{path}: sequence gap at byte offset {pos}: record has {rseq}, expected {seq}"
            )
        records.append(Record(path, pos, rtype, rseq, mv[pos + hsize : end]))
        if _fl & FLAG_COMMIT_END:
            commit_ends = len(records)
        seq += count
        pos = end
    seg = _Segment(first_seq, path, data, records, pos, seq)
    return _cut_incomplete_commit(seg, seg_flags, commit_ends) if is_last else seg


def _cut_incomplete_commit(seg: _Segment, seg_flags: int, commit_ends: int) -> _Segment:
    """In a segment written with commit groups, records after the last commit end belong
    to a commit that never completed: they join the torn tail (never acknowledged)."""
    if not seg_flags & SEG_COMMIT_GROUPS or commit_ends >= len(seg.records):
        return seg
    cut = seg.records[commit_ends].offset
    kept = seg.records[:commit_ends]
    next_seq = kept[-1].seq + kept[-1].count if kept else seg.first_seq
    return _Segment(seg.first_seq, seg.path, seg.data, kept, cut, next_seq, torn_at=cut)


class Journal:
    """A journal directory opened for reading and (unless ``read_only``) appending.

    Opening validates the last segment and, when writable, truncates a torn tail (logged).
    ``next_seq`` is the sequence number the next appended command gets. Reading methods
    validate every record they yield; a defect raises FlopexError (file + byte offset).
    """

    def __init__(
        self,
        journal_dir: str | os.PathLike[str],
        policy: SyncPolicy | None = None,
        *,
        read_only: bool = False,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self.dir = Path(journal_dir)
        self.policy = policy or SyncPolicy()
        self.read_only = read_only
        self.segment_bytes = segment_bytes
        self.torn_tail: tuple[Path, int, int] | None = None  # (file, offset, bytes dropped)
        self._fd: int | None = None
        self._map: mmap.mmap | None = None  # the open segment, mapped (grown by MAP_CHUNK)
        self._seg_size = 0
        #: where a compiled caller may write the next commit group itself (then call
        #: :meth:`wrote_frames`): the map's address (0: nowhere, no map is open) and the
        #: offset it may write up to (the map's end or the segment's, the nearer); the
        #: group starts at :attr:`size`. Valid until the next call into the journal
        self.map_addr = 0
        self.map_end = 0
        self._pending: list[tuple[int, int, bytes]] = []  # (type, seq, payload)
        self._pending_bytes = 0
        self._pending_first = 0
        self._last_sync = time.monotonic_ns()
        self.unsynced = False
        if not self.dir.is_dir():
            if read_only:
                raise FlopexError(f"{self.dir}: no journal directory")
            self.dir.mkdir(parents=True)
        segs = list_segments(self.dir)
        if not segs:
            self.next_seq = 1
            self.committed_seq = 0
            return
        first, path = segs[-1]
        seg = _read_segment(path, first, True, None)
        if seg.torn_at >= 0:
            dropped = len(seg.data) - seg.torn_at
            self.torn_tail = (path, seg.torn_at, dropped)
            if not read_only:
                log.warning(
                    "journal: torn tail in %s at byte offset %d: %d bytes truncated",
                    path,
                    seg.torn_at,
                    dropped,
                )
                self._truncate(path, seg.torn_at, first)
        elif seg.padded and not read_only:  # a mapped writer's room, left by a crash
            self._truncate(path, seg.end, first)
        self.next_seq = seg.next_seq
        self.committed_seq = self.next_seq - 1

    @property
    def policy(self) -> SyncPolicy:
        """The fsync policy."""
        return self._policy

    @policy.setter
    def policy(self, policy: SyncPolicy) -> None:
        self._policy = policy
        self._sync_mode = policy.mode != "off"  # write_frames' one test

    @staticmethod
    def _truncate(path: Path, offset: int, first_seq: int) -> None:
        if offset < SEGMENT_HEADER.size:
            # the segment never got a complete header: rewrite it
            with open(path, "r+b") as fh:
                fh.truncate(0)
                fh.write(
                    SEGMENT_HEADER.pack(
                        SEGMENT_MAGIC, JOURNAL_VERSION, SEG_COMMIT_GROUPS, CMD_SIZE, first_seq
                    )
                )
                fh.flush()
                os.fsync(fh.fileno())
            return
        with open(path, "r+b") as fh:
            fh.truncate(offset)
            os.fsync(fh.fileno())

    # ---- reading ----------------------------------------------------------------------

    @property
    def segments(self) -> list[Path]:
        return [p for _, p in list_segments(self.dir)]

    def records(self, from_seq: int = 1) -> Iterator[Record]:
        """Every valid record whose commands reach ``from_seq`` or later, in order.

        Segments wholly before ``from_seq`` are skipped without reading. A torn tail is
        not yielded. O(bytes read)."""
        segs = list_segments(self.dir)
        start = 0
        for i in range(len(segs)):
            if segs[i][0] <= from_seq:
                start = i
        expect: int | None = None
        for i in range(start, len(segs)):
            first, path = segs[i]
            seg = _read_segment(path, first, i == len(segs) - 1, expect)
            expect = seg.next_seq
            for rec in seg.records:
                if rec.seq + rec.count > from_seq or (rec.count == 0 and rec.seq >= from_seq):
                    yield rec

    def batches(
        self, from_seq: int = 1, to_seq: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_seq, commands)`` for the commands with ``from_seq <= seq <= to_seq``.

        Batches are zero-copy read-only views; the first and last are sliced to the range."""
        for rec in self.records(from_seq):
            if rec.rtype != RecordType.COMMANDS:
                continue
            if to_seq is not None and rec.seq > to_seq:
                return
            seq, cmds = clip_batch(rec.seq, rec.commands(), from_seq, to_seq)
            if len(cmds):
                yield seq, cmds

    def verify_all(self) -> int:
        """Read and check every segment from the first; returns the number of commands.

        Unlike :meth:`records`, also checks that segments follow each other without gaps."""
        total = 0
        for rec in self.records(1):
            total += rec.count
        return total

    # ---- writing ----------------------------------------------------------------------

    def append(self, cmds: np.ndarray, first_seq: int | None = None) -> int:
        """Buffer one batch of commands; returns the sequence number of its first command.

        Nothing reaches the file until :meth:`commit`. If ``first_seq`` is given it must be
        ``next_seq`` (the sequencer and the journal agree). O(batch bytes)."""
        if self.read_only:
            raise RuntimeError("journal opened read-only")
        if cmds.dtype is not COMMAND_DTYPE and cmds.dtype != COMMAND_DTYPE:
            raise TypeError("journal.append wants COMMAND_DTYPE records")
        seq = self.next_seq
        if first_seq is not None and first_seq != seq:
            raise ValueError(f"journal expects sequence {seq}, got {first_seq}")
        if len(cmds) == 0:
            return seq
        if not self._pending:
            self._pending_first = seq
        payload = cmds.tobytes()  # C order whatever the array's layout
        self._pending.append((RecordType.COMMANDS, seq, payload))
        self._pending_bytes += RECORD_HEADER.size + len(payload)
        self.next_seq = seq + len(cmds)
        return seq

    def note(self, payload: bytes) -> None:
        """Buffer an opaque NOTE record (gateway metadata) at the current position."""
        if self.read_only:
            raise RuntimeError("journal opened read-only")
        if not self._pending:
            self._pending_first = self.next_seq
        if type(payload) is not bytes:
            payload = bytes(payload)
        self._pending.append((RecordType.NOTE, self.next_seq, payload))
        self._pending_bytes += RECORD_HEADER.size + len(payload)

    def commit(self) -> int:
        """Write everything buffered with one ``write`` (+ one ``fsync`` per the policy).

        Returns the last sequence number written. When this returns, the commands are in
        the OS (safe from a process crash) and, under ``batch``, on disk."""
        if self._pending:
            pending = self._pending
            last = len(pending) - 1
            parts: list[bytes] = []
            pack, crc32 = _HEAD16.pack, zlib.crc32
            for i, (t, q, p) in enumerate(pending):  # encode_record, one join for all
                head = pack(RECORD_MAGIC, t, FLAG_COMMIT_END if i == last else 0, len(p), q)
                parts += (head, _CRC.pack(crc32(p, crc32(head))), p)
            self._pending = []
            self._write_group(b"".join(parts), self._pending_first)
        if self.unsynced:
            self._sync_per_policy()
        return self.committed_seq

    def write_frames(self, frames: Any, n_cmds: int) -> int:
        """Write records already framed (a commit group, as :meth:`commit` would write it;
        the compiled core builds them) holding ``n_cmds`` commands from ``next_seq`` on,
        with one copy into the segment's map (+ ``fsync`` per the policy). Nothing may be
        buffered. Returns the last sequence number written.

        The common case (the group fits the open segment's map before :attr:`map_end`,
        the same test the compiled core makes) is one slice assignment and the
        bookkeeping of :meth:`wrote_frames`."""
        pos = self._seg_size
        end = pos + len(frames)
        mm = self._map
        # map_end is 0 with no map, so a read-only or closed journal never passes
        if mm is None or end > self.map_end or self._pending:
            return self._write_frames(frames, n_cmds)
        mm[pos:end] = frames
        return self.wrote_frames(end - pos, n_cmds)

    @property
    def size(self) -> int:
        """Bytes in the open segment so far (where the next record goes)."""
        return self._seg_size

    def wrote_frames(self, n: int, n_cmds: int) -> int:
        """Commit ``n`` bytes of framed records holding ``n_cmds`` commands from
        ``next_seq`` on that the caller has already put at the end of the open segment's
        map (from :attr:`size`, within :attr:`map_end`; the compiled core writes them from
        :attr:`map_addr`), as :meth:`write_frames` would have: the bookkeeping, and the
        ``fsync`` per the policy. Nothing may be buffered. Returns the last sequence
        number written. O(1) (+ the sync). ``exchange.core.reader`` spells this out for
        the one-call read's common case: keep the two in step."""
        self.next_seq = nxt = self.next_seq + n_cmds
        self._seg_size += n
        self.unsynced = True
        self.committed_seq = nxt - 1
        if self._sync_mode:
            self._sync_per_policy()
        return nxt - 1

    def _write_frames(self, frames: Any, n_cmds: int) -> int:
        """:meth:`write_frames` when the group needs a segment opened, rolled or mapped
        (or is refused)."""
        if self.read_only:
            raise RuntimeError("journal opened read-only")
        if self._pending:
            raise RuntimeError("write_frames with records buffered: commit them first")
        first = self.next_seq
        self.next_seq = first + n_cmds
        self._write_group(frames, first)
        self._sync_per_policy()
        return self.committed_seq

    def _write_group(self, buf: Any, first_seq: int) -> None:
        """Append one framed commit group (commands from ``first_seq`` up to ``next_seq``)
        to the segment, opening or rolling one first: one copy into the segment's map
        (growing the file by :data:`MAP_CHUNK` when it needs room). O(bytes)."""
        n = len(buf)
        if self._fd is None or self._seg_size + n > self.segment_bytes:
            self._pending_bytes = n  # what _open_segment must find room for
            self._open_segment(first_seq)
        self._pending_bytes = 0
        pos = self._seg_size
        end = pos + n
        mm = self._map
        if mm is None or end > len(mm):
            mm = self._grow(end)
        mm[pos:end] = buf
        self._seg_size = end
        self.unsynced = True
        self.committed_seq = self.next_seq - 1

    def _grow(self, need: int) -> mmap.mmap:
        """Map the open segment with room for ``need`` bytes: the file is extended with
        zeros to the next multiple of :data:`MAP_CHUNK` (readers stop at a zero tail)."""
        assert self._fd is not None
        size = -(-need // MAP_CHUNK) * MAP_CHUNK
        if self._map is None:
            os.ftruncate(self._fd, size)
            self._map = mmap.mmap(self._fd, size)
            old = 0
        else:
            old = len(self._map)
            self._map.resize(size)  # extends the file too
        # fault the new room in now, in one call, rather than a page per commit (kernels
        # before 5.14 refuse the advice: pages then fault in as they are written)
        with contextlib.suppress(OSError, ValueError):
            self._map.madvise(MADV_POPULATE_WRITE, old, size - old)
        # the map may have moved: its address now (the ctypes object, and with it its
        # hold on the map's buffer, is gone when the expression is)
        self.map_addr = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        self.map_end = min(size, self.segment_bytes)
        return self._map

    def _close_segment(self) -> None:
        """Unmap the open segment, cut its zero tail, fsync it (unless the policy is
        ``off``) and close it."""
        if self._fd is None:
            return
        self.map_addr = self.map_end = 0
        if self._map is not None:
            self._map.close()
            self._map = None
        os.ftruncate(self._fd, self._seg_size)
        if self.policy.mode != "off":
            os.fsync(self._fd)
        self.unsynced = False
        os.close(self._fd)
        self._fd = None

    def _sync_per_policy(self) -> None:
        mode = self.policy.mode
        if mode == "batch":
            self.sync()
        elif mode == "interval":
            self.maybe_sync()

    def maybe_sync(self) -> bool:
        """fsync if the interval policy's time is up (call from a timer too). True if synced."""
        if (
            self.unsynced
            and self.policy.mode == "interval"
            and time.monotonic_ns() - self._last_sync >= self.policy.interval_ms * 1_000_000
        ):
            self.sync()
            return True
        return False

    def sync(self) -> None:
        """fsync the current segment now (whatever the policy)."""
        if self._fd is not None and self.unsynced:
            os.fsync(self._fd)
        self.unsynced = False
        self._last_sync = time.monotonic_ns()

    def _open_segment(self, first_seq: int) -> None:
        """Open the segment to append to: the newest one while it has room, else a new one."""
        segs = list_segments(self.dir)
        if self._fd is None and segs:
            path = segs[-1][1]
            size = path.stat().st_size
            if size + self._pending_bytes <= self.segment_bytes or size <= SEGMENT_HEADER.size:
                self._fd = os.open(path, os.O_RDWR)
                self._seg_size = size
                return
        self._close_segment()  # the old one ends before the new one exists
        path = self.dir / segment_name(first_seq)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(
            fd,
            SEGMENT_HEADER.pack(
                SEGMENT_MAGIC, JOURNAL_VERSION, SEG_COMMIT_GROUPS, CMD_SIZE, first_seq
            ),
        )
        if self.policy.mode != "off":
            os.fsync(fd)
            fsync_dir(self.dir)
        self._fd = fd
        self._seg_size = SEGMENT_HEADER.size

    def close(self) -> None:
        """Commit anything buffered, fsync (unless the policy is ``off``) and close."""
        if self.read_only:
            return
        self.commit()
        self._close_segment()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- trading-day notes ----------------------------------------------------------------


class DayNote(msgspec.Struct, frozen=True, tag="trading_day"):
    """NOTE written when the gateway starts a trading day with a fresh engine.

    It makes the journal self-describing: ``flopex journal verify`` and ``tradelog``
    rebuild the engine from ``engine_configs`` (``InstrumentConfig`` fields as dicts) and
    name accounts from ``accounts`` without any other file. Commands after the note, up
    to the next DayNote, belong to ``trade_date``.
    """

    trade_date: str
    engine_configs: list[dict[str, int]]
    accounts: dict[int, str] = {}
    max_orders: int = 1 << 20
    events_base: int = 0  # the sequencer's event counter when the day started


def encode_note(note: DayNote) -> bytes:
    """A note payload (msgpack, tagged)."""
    return msgspec.msgpack.encode(note)


def decode_note(payload: bytes | memoryview) -> DayNote | None:
    """The DayNote in a NOTE payload, or None for other (unknown) note kinds."""
    try:
        return msgspec.msgpack.decode(bytes(payload), type=DayNote)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


# ---- gateway integration -------------------------------------------------------------------


def last_day_note(journal: Journal) -> DayNote | None:
    """The newest trading-day note in the journal (scans the records). O(journal)."""
    last = None
    for rec in journal.records(1):
        if rec.rtype == RecordType.NOTE:
            note = decode_note(rec.payload)
            if note is not None:
                last = note
    return last


_ENCODE = msgspec.msgpack.Encoder().encode


def encode_gateway_note(note: dict[str, Any]) -> bytes:
    """A gateway batch note payload (msgpack map with the marker key ``gw``)."""
    return _ENCODE(note)


#: the first 8 bytes of a binary gateway note (written by the compiled order-entry core,
#: ``exchange.core.kernel.journal_batch``); 0xC1 is never valid msgpack
BIN_NOTE_MAGIC = b"\xc1GWNOTE1"
_BIN_NOTE_HEAD = struct.Struct("<8q")
_BIN_ORDER_ROW = 12 * 8  # int64 columns of an order row (``exchange.gateway.order_row``)


def decode_binary_note(payload: bytes | memoryview) -> dict[str, Any]:
    """A binary gateway note as the msgpack note's keys: ``gw``, ``nr``, ``ts``; ``MS``
    (int16 session rows) and ``M`` (their packets) if it has messages; ``O`` (packed order
    rows) and ``x`` (gone refs) if it touched orders; ``T`` (``[row, last token, status
    sent]`` per session that changed). Sessions are named by table row: the names are in
    the last msgpack note's ``N`` (or the snapshot's). FlopexError if malformed.

    Layout (little-endian): the 8-byte magic; eight int64 words: note number, order
    reference counter, clock, messages, message bytes, order rows, gone refs, token rows;
    the messages' session rows (int16, zero-padded to 8 bytes); the messages' framed
    packets (zero-padded to 8 bytes); order rows (12 int64 each); gone refs (int64);
    token rows (3 int64 each)."""
    mv = memoryview(payload)
    head = _BIN_NOTE_HEAD.size
    if len(mv) < 8 + head or bytes(mv[:8]) != BIN_NOTE_MAGIC:
        raise FlopexError(f"binary gateway note of {len(mv)} bytes: truncated or bad magic")
    gw, nr, ts, n_msgs, blob, n_o, n_g, n_tok = _BIN_NOTE_HEAD.unpack_from(mv, 8)
    if min(n_msgs, blob, n_o, n_g, n_tok) < 0:
        raise FlopexError(f"binary gateway note {gw}: negative count in its header")
    q = 8 + head
    rows_at, q = q, q + (2 * n_msgs + 7) // 8 * 8
    blob_at, q = q, q + (blob + 7) // 8 * 8
    orders_at, q = q, q + _BIN_ORDER_ROW * n_o
    gone_at, q = q, q + 8 * n_g
    tok_at, q = q, q + 24 * n_tok
    if q != len(mv):
        raise FlopexError(f"binary gateway note {gw}: {len(mv)} bytes, its header describes {q}")
    note: dict[str, Any] = {"gw": gw, "nr": nr, "ts": ts}
    if n_msgs:
        note["MS"] = bytes(mv[rows_at : rows_at + 2 * n_msgs])
        note["M"] = bytes(mv[blob_at : blob_at + blob])
    if n_o:
        note["O"] = bytes(mv[orders_at:gone_at])
    if n_g:
        note["x"] = np.frombuffer(mv[gone_at:tok_at], "<i8").tolist()
    if n_tok:
        note["T"] = np.frombuffer(mv[tok_at:q], "<i8").reshape(-1, 3).tolist()
    return note


def decode_gateway_note(payload: bytes | memoryview) -> dict[str, Any] | None:
    """The gateway note in a NOTE payload (msgpack or binary, see
    :func:`decode_binary_note`), or None for other note kinds."""
    if bytes(payload[:8]) == BIN_NOTE_MAGIC:
        return decode_binary_note(payload)
    try:
        doc = msgspec.msgpack.decode(payload)
    except msgspec.DecodeError:
        return None
    return doc if isinstance(doc, dict) and "gw" in doc else None


class GatewayJournal:
    """Makes a gateway durable: every batch and the gateway's decisions, committed together.

    ``GatewayJournal(gateway, datadir)`` opens (and repairs) the journal (or takes an open
    one), writes a trading-day note when the journal's last day is not
    ``gateway.trade_date``, registers :meth:`on_batch` in ``gateway.sequencer.journal``
    (it *buffers* each stamped command batch) and sets ``gateway.durable``. The gateway
    calls :meth:`commit` after the engine ran the batch and before any reply is written:
    it appends a gateway note (session messages, tokens, orders, flags — everything a
    re-login or a resent order needs, see ``Gateway.journal_delta``) and commits
    commands + note with one copy into the segment map and, under the default policy,
    one fsync. A commit is all-or-nothing on recovery (commit groups, see
    ``FLAG_COMMIT_END``).

    Every ``snapshot_every`` commands (0 = never) the gateway, between batches, calls
    :meth:`snapshot` (written by a worker thread with ``background``, so the event loop
    only pays for copying the state); :meth:`close` waits for it and writes a last one.
    A snapshot holds the engine arrays, the sequencer counters, the gateway's state
    (``Gateway.export_state``), the number of the last gateway note it includes and the
    trade log's size.
    """

    def __init__(
        self,
        gateway: Any,
        datadir: Any,
        policy: SyncPolicy | None = None,
        snapshot_every: int = 0,
        extra_meta: Any = None,
        *,
        journal: Journal | None = None,
        last_note: DayNote | bool | None = False,
        gseq: int = 0,
        background: bool = False,
    ) -> None:
        self.gateway = gateway
        self.datadir = datadir
        self.journal = journal or Journal(datadir.journal_dir, policy or SyncPolicy())
        self.snapshot_every = snapshot_every
        self.extra_meta = extra_meta  # callable -> dict merged into snapshot metadata
        self.snapshot_due = False
        self.background = background  # periodic snapshots written by a worker thread
        self._pool: Any = None
        self._writer: Any = None  # the background snapshot being written (a Future)
        self.gseq = gseq  # number of the last gateway note written
        self._since_snapshot = 0
        engine = gateway.sequencer.engine
        day = gateway.trade_date.isoformat()
        last = last_day_note(self.journal) if last_note is False else last_note
        if last is None or last.trade_date != day:  # type: ignore[union-attr]
            self.note = DayNote(
                trade_date=day,
                engine_configs=[msgspec.structs.asdict(c) for c in engine.configs],
                accounts={int(k): v for k, v in gateway.account_names.items()},
                max_orders=int(getattr(engine, "max_orders", 1 << 20)),
                events_base=int(gateway.sequencer.events),
            )
            self.journal.note(encode_note(self.note))
            self.journal.commit()
        else:
            self.note = last  # type: ignore[assignment]
        gateway.sequencer.commands = self.journal.next_seq - 1
        #: the bound method registered as the sequencer's journal listener (the core
        #: gateway checks by identity that it is the only one)
        self.listener = self.on_batch
        gateway.sequencer.journal.append(self.listener)
        gateway.durable = self
        gateway._touched = []
        for s in gateway.sessions.values():
            s.track(gateway._touched)

    def on_batch(self, cmds: np.ndarray) -> None:
        """Sequencer listener: buffer the stamped batch (committed by :meth:`commit`)."""
        self.journal.append(cmds)

    def commit(self, rows: Any, events: Any) -> None:
        """Append the gateway's note for this batch and commit everything buffered."""
        note = self.gateway.journal_delta(rows, events)
        journal = self.journal
        if note is not None:
            self.gseq += 1
            note["gw"] = self.gseq
            journal.note(encode_gateway_note(note))
        journal.commit()
        self._since_snapshot += len(rows)
        if self.snapshot_every and self._since_snapshot >= self.snapshot_every:
            self.snapshot_due = True

    def commit_frames(self, frames: Any, n_cmds: int, gseq: int | None) -> None:
        """:meth:`commit` for a batch whose records the compiled core framed (commands and
        binary note ``gseq``, or no note: None); ``on_batch`` was not called for it.
        ``frames`` is the records' bytes, or their length when the core wrote them into
        the journal's map itself (``Journal.map_addr``, then ``Journal.wrote_frames``).
        ``exchange.core.reader`` spells the latter case out: keep the two in step."""
        if gseq is not None:
            self.gseq = gseq
        if type(frames) is int:  # already in the map: the compiled core wrote them there
            self.journal.wrote_frames(frames, n_cmds)
        else:
            self.journal.write_frames(frames, n_cmds)
        self._since_snapshot += n_cmds
        if self.snapshot_every and self._since_snapshot >= self.snapshot_every:
            self.snapshot_due = True

    def tick(self) -> None:
        """Timer duty for the ``interval`` policy: fsync when the interval is up."""
        self.journal.maybe_sync()

    def snapshot(self, background: bool = False) -> Path | None:
        """Write a snapshot of the state after every command committed so far (call between
        batches: nothing pending in the gateway).

        The state is copied here, on the caller's thread (the engine arrays: one memcpy).
        With ``background`` the file is written, hashed and fsynced by a worker thread
        while the gateway goes on (returns None; a snapshot still being written makes this
        one wait for the next due point); otherwise it is written before returning."""
        from exchange.snapshot import ENGINE_PREFIX, write_snapshot

        if background and self._writer is not None and not self._writer.done():
            return None  # the previous snapshot is still being written: try again later
        self.snapshot_due = False
        self._since_snapshot = 0
        gw = self.gateway
        engine = gw.sequencer.engine
        if not hasattr(engine, "to_arrays"):
            return None  # the reference book has no array state to snapshot
        self.journal.commit()
        arrays = {ENGINE_PREFIX + k: v for k, v in engine.to_arrays().items()}
        meta: dict[str, Any] = {
            "day": msgspec.structs.asdict(self.note),
            "events": int(gw.sequencer.events),
            "sequencer": gw.sequencer.snapshot(),
            "gseq": self.gseq,
        }
        if hasattr(gw, "export_state"):
            meta["gateway"] = gw.export_state()
            if gw.tradelog is not None:
                gw.tradelog.flush()
                meta["tradelog_bytes"] = gw.tradelog.size()
        if self.extra_meta is not None:
            meta.update(self.extra_meta())
        seq = self.journal.next_seq - 1
        if not background:
            return write_snapshot(self.datadir.snapshot_dir, seq, arrays, meta)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="flopex-snapshot")
        self._writer = self._pool.submit(self._write_logged, seq, arrays, meta)
        return None

    def _write_logged(self, seq: int, arrays: dict, meta: dict) -> Path | None:
        """Worker thread: write one snapshot; a failure is logged (the journal still holds
        everything, recovery just replays more of it)."""
        from exchange.snapshot import write_snapshot

        try:
            return write_snapshot(self.datadir.snapshot_dir, seq, arrays, meta)
        except Exception:
            log.exception("snapshot at sequence %d failed; the journal has everything", seq)
            return None

    def wait_snapshot(self) -> Path | None:
        """Wait for a background snapshot being written; its path (None if none/failed)."""
        w = self._writer
        return w.result() if w is not None else None

    def close(self, snapshot: bool = True) -> None:
        """Snapshot (unless told not to) and close the journal durably."""
        self.wait_snapshot()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if snapshot:
            self.snapshot()
        self.journal.close()
        if self.gateway.durable is self:
            self.gateway.durable = None
