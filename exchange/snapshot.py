"""Atomic full-state snapshots: named numpy arrays + a metadata blob, digest-checked on load.

A snapshot holds everything needed to resume without replaying the journal from the
start: the engine's state arrays, risk state, per-session sequence numbers and the
outbound messages a re-login may ask for (as arrays or metadata), and ``seq`` — the
sequence number of the last command whose effect it contains. Recovery is the newest
snapshot plus the journal commands after ``seq`` (:func:`exchange.recovery` callers use
:func:`latest_snapshot` and :meth:`exchange.journal.Journal.batches`).

File format (``DATA_DIR/snapshots/<seq:020d>.snap``, little-endian)::

    magic b"FLXSNAP\\0" | uint16 version | uint16 reserved | uint32 meta length | uint64 seq
    meta (msgpack: {"seq", "created_ns", "meta", "arrays": [{name, descr, shape, offset, nbytes}]})
    array data, each array 64-byte aligned
    SHA-256 of every byte before it (32 bytes)

Writes are atomic: a temp file in the same directory, ``fsync``, ``rename``, directory
``fsync``. A crash mid-snapshot leaves only a temp file, which is ignored (and removed by
the next write). A completed snapshot whose digest does not match is *refused* with a
one-line FlopexError naming the file: it is never silently skipped or overwritten.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from contracts.errors import FlopexError
from exchange.datadir import fsync_dir, numbered_files

SNAPSHOT_VERSION = 1
SNAP_MAGIC = b"FLXSNAP\x00"
SNAP_HEADER = struct.Struct("<8sHHIQ")
DIGEST_BYTES = 32
_ALIGN = 64
_SNAP_RE = re.compile(r"^(\d{20})\.snap$")
#: Snapshots kept after a successful write (older ones are removed).
DEFAULT_KEEP = 3


@dataclass
class Snapshot:
    """A loaded snapshot: ``seq`` of the last command included, metadata, arrays."""

    seq: int
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    path: Path | None = None
    created_ns: int = 0
    digest: str = field(default="")


def snapshot_name(seq: int) -> str:
    return f"{seq:020d}.snap"


def list_snapshots(snap_dir: Path) -> list[tuple[int, Path]]:
    """``(seq, path)`` of every completed snapshot, oldest first (temp files excluded)."""
    return numbered_files(snap_dir, _SNAP_RE)


def _pad(n: int) -> int:
    return (-n) % _ALIGN


def write_snapshot(
    snap_dir: str | os.PathLike[str],
    seq: int,
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any] | None = None,
    *,
    keep: int = DEFAULT_KEEP,
    durable: bool = True,
) -> Path:
    """Write a snapshot atomically; returns its path.

    Guarantees: when this returns the file is complete under its final name (and, with
    ``durable``, on disk including the directory entry); at no time does a reader see a
    partial file under a final name. Old snapshots beyond ``keep`` are removed afterwards.
    O(total array bytes): one pass to write, one to hash.
    """
    d = Path(snap_dir)
    d.mkdir(parents=True, exist_ok=True)
    for stale in d.glob(".*.snap.tmp"):
        stale.unlink(missing_ok=True)
    entries = []
    offset = 0
    contiguous: list[np.ndarray] = []
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        contiguous.append(a)
        entries.append(
            {
                "name": name,
                "descr": np.lib.format.dtype_to_descr(a.dtype),
                "shape": list(a.shape),
                "offset": offset,
                "nbytes": a.nbytes,
            }
        )
        offset += a.nbytes + _pad(a.nbytes)
    created = time.time_ns()
    blob = msgspec.msgpack.encode(
        {"seq": seq, "created_ns": created, "meta": meta or {}, "arrays": entries}
    )
    head = SNAP_HEADER.pack(SNAP_MAGIC, SNAPSHOT_VERSION, 0, len(blob), seq)
    prefix = head + blob
    prefix += b"\0" * _pad(len(prefix))
    h = hashlib.sha256()
    final = d / snapshot_name(seq)
    tmp = d / f".{snapshot_name(seq)}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(prefix)
        h.update(prefix)
        for a in contiguous:
            mv = memoryview(a).cast("B") if a.nbytes else b""
            fh.write(mv)
            h.update(mv)
            pad = b"\0" * _pad(a.nbytes)
            fh.write(pad)
            h.update(pad)
        fh.write(h.digest())
        fh.flush()
        if durable:
            os.fsync(fh.fileno())
    os.replace(tmp, final)
    if durable:
        fsync_dir(d)
    if keep > 0:
        for _, old in list_snapshots(d)[:-keep]:
            old.unlink(missing_ok=True)
    return final


def load_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Read and verify a snapshot. FlopexError (one line, naming the file) if it is not a
    flopex snapshot, is from a newer format, is truncated or its digest does not match.

    The returned arrays are writable and share one buffer (no per-array copies)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        buf = bytearray(size)
        with open(p, "rb", buffering=0) as fh:
            got = fh.readinto(buf)
    except OSError as exc:
        raise FlopexError(f"{p}: cannot read snapshot: {exc.strerror}") from None
    if got != size or size < SNAP_HEADER.size + DIGEST_BYTES:
        raise FlopexError(f"{p}: snapshot truncated ({size} bytes)")
    magic, version, _res, meta_len, seq = SNAP_HEADER.unpack_from(buf, 0)
    if magic != SNAP_MAGIC:
        raise FlopexError(f"{p}: not a flopex snapshot (bad magic at byte offset 0)")
    if version > SNAPSHOT_VERSION:
        raise FlopexError(
            f"{p}: snapshot format version {version} is newer than this flopex understands"
            f" ({SNAPSHOT_VERSION})"
        )
    mv = memoryview(buf)
    want = bytes(mv[size - DIGEST_BYTES :])
    actual = hashlib.sha256(mv[: size - DIGEST_BYTES]).digest()
    if actual != want:
        raise FlopexError(
            f"{p}: snapshot digest mismatch (stored {want.hex()[:16]}..., computed "
            f"{actual.hex()[:16]}...); refusing to recover from it"
        )
    start = SNAP_HEADER.size
    try:
        doc = msgspec.msgpack.decode(mv[start : start + meta_len])
        entries = doc["arrays"]
    except (msgspec.DecodeError, KeyError, TypeError):
        raise FlopexError(f"{p}: snapshot metadata unreadable (byte offset {start})") from None
    data_start = start + meta_len + _pad(start + meta_len)
    arrays: dict[str, np.ndarray] = {}
    for e in entries:
        dtype = np.lib.format.descr_to_dtype(_tuplify(e["descr"]))
        off = data_start + e["offset"]
        count = int(np.prod(e["shape"], dtype=np.int64)) if e["shape"] else 1
        a = (
            np.frombuffer(buf, dtype=dtype, count=count, offset=off)
            if count
            else (np.zeros(0, dtype=dtype))
        )
        arrays[e["name"]] = a.reshape(e["shape"])
    return Snapshot(
        seq=seq,
        meta=doc.get("meta", {}),
        arrays=arrays,
        path=p,
        created_ns=doc.get("created_ns", 0),
        digest=want.hex(),
    )


def _tuplify(descr: Any) -> Any:
    """msgpack returns lists where numpy's descr wants tuples (fields, shapes)."""
    if isinstance(descr, list):
        if descr and all(isinstance(x, int) for x in descr):
            return tuple(descr)
        return [tuple(_tuplify(x) for x in f) for f in descr]
    return descr


def latest_snapshot(snap_dir: str | os.PathLike[str]) -> Snapshot | None:
    """The newest completed snapshot, verified; None if there is none.

    A newest snapshot that fails verification raises (it is never skipped in favour of an
    older one silently: the operator decides, see ``docs/durability.md``)."""
    snaps = list_snapshots(Path(snap_dir))
    if not snaps:
        return None
    return load_snapshot(snaps[-1][1])


# ---- recovery: newest snapshot + journal tail --------------------------------------------

#: Prefix of engine state arrays inside a snapshot (other owners use their own prefixes).
ENGINE_PREFIX = "engine/"


@dataclass
class RecoveryResult:
    """What :func:`recover` did: the snapshot used (or None), the commands replayed after
    it, and the last sequence number applied."""

    snapshot: Snapshot | None
    replayed: int
    last_seq: int
    torn_tail: tuple[Path, int, int] | None = None


def recover(
    journal: Any,
    snap_dir: str | os.PathLike[str] | None,
    *,
    on_snapshot: Any,
    on_note: Any,
    on_batch: Any,
    to_seq: int | None = None,
) -> RecoveryResult:
    """Rebuild state: the newest snapshot (if ``snap_dir`` has one), then every journal
    record after it, in order.

    Callbacks: ``on_snapshot(snapshot)`` once, ``on_note(payload)`` per NOTE record and
    ``on_batch(first_seq, commands)`` per command batch (sliced to ``seq > snapshot.seq``
    and ``seq <= to_seq``). Guarantees: commands are delivered exactly once each, in
    sequence order, with no gap (the journal checks continuity); a bad snapshot or a
    corrupt record raises FlopexError before anything after it is delivered.
    O(snapshot bytes + journal bytes after the snapshot)."""
    snap = latest_snapshot(snap_dir) if snap_dir is not None else None
    if snap is not None and to_seq is not None and snap.seq > to_seq:
        snap = None  # asked for an earlier state than the snapshot holds
    start = 1
    if snap is not None:
        on_snapshot(snap)
        start = snap.seq + 1
        if journal.next_seq < start:
            raise FlopexError(
                f"{snap.path}: snapshot is at sequence {snap.seq} but the journal ends at "
                f"{journal.next_seq - 1}; refusing to recover (journal lost?)"
            )
    replayed = 0
    last = start - 1
    from exchange.journal import RecordType, clip_batch  # local: journal imports datadir only

    for rec in journal.records(start):
        if rec.rtype == RecordType.NOTE:
            if rec.seq >= start and (to_seq is None or rec.seq <= to_seq):
                on_note(rec.payload)
            continue
        if to_seq is not None and rec.seq > to_seq:
            break
        seq, cmds = clip_batch(rec.seq, rec.commands(), start, to_seq)
        if len(cmds):
            on_batch(seq, cmds)
            replayed += len(cmds)
            last = seq + len(cmds) - 1
    return RecoveryResult(snap, replayed, last, journal.torn_tail)
