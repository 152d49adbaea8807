"""The journal's mapped writer: a segment being written ends in zero bytes (the room the
writer mapped ahead); readers stop there, a crash leaves it, a clean close cuts it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from exchange.journal import (
    MAP_CHUNK,
    RECORD_HEADER,
    SEGMENT_HEADER,
    Journal,
    SyncPolicy,
    list_segments,
)
from tests.exchange.journal.conftest import make_batch

ROOT = Path(__file__).resolve().parents[3]


def _tokens(path: Path) -> list[int]:
    j = Journal(path, read_only=True)
    return [int(t) for _, c in j.batches() for t in c["client_token"]]


def _last_segment(path: Path) -> Path:
    return list_segments(path)[-1][1]


def test_a_live_segment_is_mapped_ahead_and_read_to_its_last_commit(tmp_path: Path) -> None:
    # Arrange: a writer with two commits, still open
    j = Journal(tmp_path, SyncPolicy("off"))
    j.append(make_batch(3, 0))
    j.commit()
    j.append(make_batch(2, 3))
    j.commit()
    seg = _last_segment(tmp_path)
    # Act
    reader = Journal(tmp_path, read_only=True)
    # Assert: the file is the mapped room, zeros after the records, and that is no torn tail
    assert seg.stat().st_size == MAP_CHUNK
    assert reader.torn_tail is None
    assert reader.next_seq == 6
    assert _tokens(tmp_path) == [0, 1, 2, 3, 4]
    j.close()


def test_a_clean_close_cuts_the_mapped_room(tmp_path: Path) -> None:
    j = Journal(tmp_path, SyncPolicy("off"))
    j.append(make_batch(4, 0))
    j.commit()
    j.close()
    seg = _last_segment(tmp_path)
    want = SEGMENT_HEADER.size + RECORD_HEADER.size + 4 * make_batch(1).itemsize
    assert seg.stat().st_size == want


def test_a_commit_bigger_than_the_map_grows_it(tmp_path: Path) -> None:
    # Arrange: commits that together pass one MAP_CHUNK (2 * 30,000 100-byte commands)
    j = Journal(tmp_path, SyncPolicy("off"))
    n = MAP_CHUNK // make_batch(1).itemsize // 2 + 100
    j.append(make_batch(n, 0))
    j.commit()
    j.append(make_batch(n, n))
    j.commit()
    # Assert: grown by whole chunks while open, everything readable
    assert _last_segment(tmp_path).stat().st_size == 2 * MAP_CHUNK
    assert _tokens(tmp_path) == list(range(2 * n))
    j.close()
    assert _tokens(tmp_path) == list(range(2 * n))


def test_rolled_segments_keep_no_zero_tail(tmp_path: Path) -> None:
    # Arrange: small segments, so commits roll over several files
    j = Journal(tmp_path, SyncPolicy("off"), segment_bytes=5000)
    for k in range(10):
        j.append(make_batch(20, 20 * k))
        j.commit()
    # Act / Assert: every closed segment ends at its last record; all read back in order
    segs = [p for _, p in list_segments(tmp_path)]
    assert len(segs) > 2
    assert all(p.stat().st_size <= 5000 for p in segs[:-1])
    # (a zero tail in an older segment would be refused as corruption)
    assert Journal(tmp_path, read_only=True).verify_all() == 200
    j.close()
    assert all(p.stat().st_size <= 5000 for p in segs)


def _crash_writer(path: Path, batches: int, torn_note: bool = False) -> None:
    """A child process that commits ``batches`` batches (and, with ``torn_note``, copies
    a COMMANDS record without its commit end into the map), then dies without closing."""
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from exchange.journal import Journal, SyncPolicy, RecordType, encode_record
        from tests.exchange.journal.conftest import make_batch
        j = Journal({str(path)!r}, SyncPolicy("off"))
        for k in range({batches}):
            j.append(make_batch(2, 2 * k))
            j.commit()
        if {torn_note!r}:
            rec = encode_record(RecordType.COMMANDS, j.next_seq, make_batch(1, 99).tobytes())
            pos = j._seg_size
            j._map[pos : pos + len(rec)] = rec  # a commit group cut before its note
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_after_a_crash_the_zero_tail_is_cut_quietly_and_writing_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange: a writer killed with its map open
    _crash_writer(tmp_path, 3)
    seg = _last_segment(tmp_path)
    assert seg.stat().st_size == MAP_CHUNK
    # Act
    with caplog.at_level(logging.WARNING, logger="flopex.journal"):
        j = Journal(tmp_path, SyncPolicy("off"))
    # Assert: every commit kept, no torn-tail warning, the room cut, appends continue
    assert j.next_seq == 7
    assert j.torn_tail is None
    assert "torn tail" not in caplog.text
    assert seg.stat().st_size < MAP_CHUNK
    j.append(make_batch(1, 6))
    j.commit()
    j.close()
    assert _tokens(tmp_path) == list(range(7))


def test_a_commit_cut_short_before_the_zero_tail_is_a_torn_tail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange: the crash hit between a commit's COMMANDS record and its end
    _crash_writer(tmp_path, 2, torn_note=True)
    # Act
    with caplog.at_level(logging.WARNING, logger="flopex.journal"):
        j = Journal(tmp_path, SyncPolicy("off"))
    # Assert: the incomplete commit is cut (and said so), the complete ones stay
    assert j.next_seq == 5
    assert j.torn_tail is not None
    assert "torn tail" in caplog.text
    j.close()
    assert _tokens(tmp_path) == [0, 1, 2, 3]


def test_the_batch_policy_fsyncs_each_commit_of_the_map(tmp_path: Path) -> None:
    # The batch policy fsyncs the file after each commit: the mapped pages are the
    # file's page cache, so what another process reads is what was committed.
    j = Journal(tmp_path, SyncPolicy("batch"))
    j.append(make_batch(2, 0))
    j.commit()
    assert not j.unsynced
    data = _last_segment(tmp_path).read_bytes()
    assert np.frombuffer(data, np.uint8)[SEGMENT_HEADER.size :].any()
    assert _tokens(tmp_path) == [0, 1]
    j.close()
    assert os.path.getsize(_last_segment(tmp_path)) < MAP_CHUNK
