"""Snapshots: round trip, atomicity, digest checks, newest-first, retention."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from contracts.errors import FlopexError
from exchange.engine.abi import COMMAND_DTYPE, EVENT_DTYPE
from exchange.snapshot import (
    latest_snapshot,
    list_snapshots,
    load_snapshot,
    write_snapshot,
)


def _arrays() -> dict[str, np.ndarray]:
    cmds = np.zeros(7, dtype=COMMAND_DTYPE)
    cmds["qty"] = np.arange(7)
    return {
        "cmds": cmds,
        "events": np.ones(3, dtype=EVENT_DTYPE),
        "matrix": np.arange(12, dtype=np.int64).reshape(3, 4),
        "bits": np.array([2**64 - 1, 5], dtype=np.uint64),
        "empty": np.zeros(0, dtype=np.int32),
    }


def test_round_trip_keeps_every_array_meta_and_seq(tmp_path: Path) -> None:
    # Arrange
    arrays = _arrays()
    meta = {"sessions": {"ALICE": 12}, "outbound": [b"\x00\x01", b"x"], "risk": {"1": -5}}
    # Act
    snap = load_snapshot(write_snapshot(tmp_path, 42, arrays, meta))
    # Assert
    assert snap.seq == 42
    assert snap.meta == meta
    assert set(snap.arrays) == set(arrays)
    for name, a in arrays.items():
        assert snap.arrays[name].dtype == a.dtype
        assert snap.arrays[name].shape == a.shape
        assert np.array_equal(snap.arrays[name], a)


def test_loaded_arrays_are_writable(tmp_path: Path) -> None:
    snap = load_snapshot(write_snapshot(tmp_path, 1, {"a": np.arange(4)}))
    snap.arrays["a"][0] = 9
    assert snap.arrays["a"][0] == 9


def test_latest_snapshot_is_the_highest_sequence(tmp_path: Path) -> None:
    for seq in (5, 100, 20):
        write_snapshot(tmp_path, seq, {"a": np.array([seq])}, keep=0)
    snap = latest_snapshot(tmp_path)
    assert snap is not None and snap.seq == 100 and snap.arrays["a"][0] == 100


def test_no_snapshot_means_none(tmp_path: Path) -> None:
    assert latest_snapshot(tmp_path) is None


def test_old_snapshots_beyond_keep_are_removed(tmp_path: Path) -> None:
    for seq in range(1, 6):
        write_snapshot(tmp_path, seq, {"a": np.array([seq])}, keep=2)
    assert [s for s, _ in list_snapshots(tmp_path)] == [4, 5]


def test_crash_mid_snapshot_leaves_only_an_ignored_temp_file(tmp_path: Path) -> None:
    # Arrange: a finished snapshot and a half-written temp file from a killed process
    write_snapshot(tmp_path, 10, {"a": np.array([10])})
    (tmp_path / f".{20:020d}.snap.tmp").write_bytes(b"FLXSNAP\0 half")
    # Act
    snap = latest_snapshot(tmp_path)
    # Assert
    assert snap is not None and snap.seq == 10
    write_snapshot(tmp_path, 30, {"a": np.array([30])})
    assert not list(tmp_path.glob("*.tmp"))


def test_flipped_byte_is_a_digest_mismatch_naming_the_file(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 7, _arrays())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(FlopexError, match=rf"{path}: snapshot digest mismatch"):
        latest_snapshot(tmp_path)
    assert path.read_bytes() == bytes(data)  # not overwritten


def test_truncated_snapshot_is_refused(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 7, _arrays())
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(FlopexError, match="digest mismatch"):
        load_snapshot(path)


def test_newer_snapshot_format_is_refused(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 7, {"a": np.arange(3)})
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, 8, 9)
    path.write_bytes(bytes(data))
    with pytest.raises(FlopexError, match="snapshot format version 9 is newer"):
        load_snapshot(path)


def test_non_snapshot_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / f"{1:020d}.snap"
    path.write_bytes(b"x" * 100)
    with pytest.raises(FlopexError, match="not a flopex snapshot"):
        load_snapshot(path)
