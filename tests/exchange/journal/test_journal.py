"""The journal: append + commit + read back, torn tails, corruption, versions, policies."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import pytest

from contracts.errors import FlopexError
from exchange.journal import (
    CMD_SIZE,
    FLAG_COMMIT_END,
    RECORD_HEADER,
    SEGMENT_HEADER,
    Journal,
    RecordType,
    SyncPolicy,
    encode_record,
    list_segments,
    segment_name,
)
from tests.exchange.journal.conftest import make_batch


def _write(path: Path, sizes: list[int], **kw: object) -> np.ndarray:
    """Append one committed batch per size; returns all commands written, in order."""
    j = Journal(path, SyncPolicy("off"), **kw)  # type: ignore[arg-type]
    start = 0
    for n in sizes:
        j.append(make_batch(n, start))
        j.commit()
        start += n
    j.close()
    return make_batch(start, 0)


def _read_all(path: Path, from_seq: int = 1) -> tuple[list[int], np.ndarray]:
    j = Journal(path, read_only=True)
    seqs, parts = [], []
    for seq, cmds in j.batches(from_seq):
        seqs.append(seq)
        parts.append(cmds)
    return seqs, np.concatenate(parts) if parts else np.zeros(0, make_batch(0).dtype)


def test_committed_batches_read_back_identically(tmp_path: Path) -> None:
    # Arrange
    written = _write(tmp_path, [3, 1, 50])
    # Act
    seqs, cmds = _read_all(tmp_path)
    # Assert
    assert seqs == [1, 4, 5]
    assert cmds.tobytes() == written.tobytes()


def test_reopen_continues_the_sequence(tmp_path: Path) -> None:
    _write(tmp_path, [10])
    j = Journal(tmp_path, SyncPolicy("off"))
    first = j.append(make_batch(5, 10))
    j.close()
    assert first == 11
    assert Journal(tmp_path, read_only=True).next_seq == 16


@pytest.mark.parametrize(("from_seq", "to_seq", "want"), [(1, None, 30), (5, 12, 8), (20, 20, 1)])
def test_batches_are_sliced_to_the_requested_range(
    tmp_path: Path, from_seq: int, to_seq: int | None, want: int
) -> None:
    _write(tmp_path, [10, 10, 10])
    j = Journal(tmp_path, read_only=True)
    got = [(s, c) for s, c in j.batches(from_seq, to_seq)]
    assert sum(len(c) for _, c in got) == want
    assert got[0][0] == from_seq
    assert int(got[0][1]["client_token"][0]) == from_seq - 1


def test_segments_roll_over_and_replay_across_them(tmp_path: Path) -> None:
    written = _write(tmp_path, [20] * 10, segment_bytes=5000)
    _, cmds = _read_all(tmp_path)
    assert len(list_segments(tmp_path)) > 2
    assert cmds.tobytes() == written.tobytes()


def test_replay_from_the_middle_skips_earlier_segments(tmp_path: Path) -> None:
    _write(tmp_path, [20] * 10, segment_bytes=5000)
    seqs, cmds = _read_all(tmp_path, from_seq=150)
    assert seqs[0] == 150
    assert len(cmds) == 51


def test_uncommitted_commands_are_not_on_disk(tmp_path: Path) -> None:
    j = Journal(tmp_path, SyncPolicy("off"))
    j.append(make_batch(3))
    j.commit()
    j.append(make_batch(4, 3))  # buffered, never committed: "process dies" here
    assert Journal(tmp_path, read_only=True).next_seq == 4


def test_notes_are_kept_in_order_and_consume_no_sequence(tmp_path: Path) -> None:
    j = Journal(tmp_path, SyncPolicy("off"))
    j.append(make_batch(2))
    j.note(b"login ALICE")
    j.append(make_batch(2, 2))
    j.close()
    recs = list(Journal(tmp_path, read_only=True).records())
    assert [(r.rtype, r.seq, r.count) for r in recs] == [
        (RecordType.COMMANDS, 1, 2),
        (RecordType.NOTE, 3, 0),
        (RecordType.COMMANDS, 3, 2),
    ]
    assert bytes(recs[1].payload) == b"login ALICE"


def test_append_with_wrong_expected_sequence_is_refused(tmp_path: Path) -> None:
    j = Journal(tmp_path, SyncPolicy("off"))
    with pytest.raises(ValueError, match="expects sequence 1"):
        j.append(make_batch(1), first_seq=2)


# ---- torn tails and corruption -------------------------------------------------------


def _segment(tmp_path: Path) -> Path:
    return list_segments(tmp_path)[-1][1]


@pytest.mark.parametrize("cut", [1, 7, RECORD_HEADER.size, RECORD_HEADER.size + 50, 99])
def test_torn_tail_is_truncated_and_logged(
    tmp_path: Path, cut: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange: three committed batches, the last write torn after `cut` bytes
    _write(tmp_path, [4, 4])
    seg = _segment(tmp_path)
    good = seg.stat().st_size
    j = Journal(tmp_path, SyncPolicy("off"))
    j.append(make_batch(4, 8))
    j.close()
    with open(seg, "r+b") as fh:
        fh.truncate(good + cut)
    # Act
    with caplog.at_level(logging.WARNING, logger="flopex.journal"):
        j = Journal(tmp_path, SyncPolicy("off"))
    # Assert
    assert j.next_seq == 9
    assert seg.stat().st_size == good
    assert f"torn tail in {seg} at byte offset {good}" in caplog.text
    j.append(make_batch(1, 8))
    j.close()
    assert _read_all(tmp_path)[1]["client_token"].tolist() == list(range(9))


def test_torn_tail_of_zeros_is_truncated(tmp_path: Path) -> None:
    _write(tmp_path, [4])
    seg = _segment(tmp_path)
    good = seg.stat().st_size
    with open(seg, "ab") as fh:
        fh.write(b"\0" * 4096)
    assert Journal(tmp_path, SyncPolicy("off")).next_seq == 5
    assert seg.stat().st_size == good


def test_read_only_open_reports_a_torn_tail_but_leaves_the_file(tmp_path: Path) -> None:
    _write(tmp_path, [4])
    seg = _segment(tmp_path)
    with open(seg, "ab") as fh:
        fh.write(b"\x0e\xf1\x01")
    size = seg.stat().st_size
    j = Journal(tmp_path, read_only=True)
    assert j.torn_tail == (seg, size - 3, 3)
    assert seg.stat().st_size == size


def test_corruption_before_the_tail_refuses_naming_file_and_offset(tmp_path: Path) -> None:
    # Arrange: flip a byte inside the first record's payload
    _write(tmp_path, [4, 4, 4])
    seg = _segment(tmp_path)
    off = SEGMENT_HEADER.size + RECORD_HEADER.size + 10
    data = bytearray(seg.read_bytes())
    data[off] ^= 0xFF
    seg.write_bytes(bytes(data))
    size = seg.stat().st_size
    # Act / Assert
    with pytest.raises(FlopexError) as err:
        Journal(tmp_path, SyncPolicy("off"))
    assert str(err.value) == (
        f"{seg}: corrupt journal record at byte offset {SEGMENT_HEADER.size}: CRC mismatch"
    )
    assert seg.stat().st_size == size  # nothing truncated


def test_corrupted_length_field_mid_file_is_corruption_not_a_torn_tail(tmp_path: Path) -> None:
    _write(tmp_path, [4, 4, 4])
    seg = _segment(tmp_path)
    data = bytearray(seg.read_bytes())
    struct.pack_into("<I", data, SEGMENT_HEADER.size + 4, 10_000_000)
    seg.write_bytes(bytes(data))
    with pytest.raises(FlopexError, match="byte offset 24: record truncated"):
        Journal(tmp_path, SyncPolicy("off"))


def test_corruption_in_an_older_segment_is_found_on_replay(tmp_path: Path) -> None:
    _write(tmp_path, [20] * 10, segment_bytes=5000)
    first = list_segments(tmp_path)[0][1]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0x01  # last record of a non-final segment
    first.write_bytes(bytes(data))
    j = Journal(tmp_path, read_only=True)
    with pytest.raises(FlopexError, match=f"{first}: corrupt journal record at byte offset"):
        j.verify_all()


def test_missing_segment_is_a_sequence_gap(tmp_path: Path) -> None:
    _write(tmp_path, [20] * 10, segment_bytes=5000)
    list_segments(tmp_path)[1][1].unlink()
    with pytest.raises(FlopexError, match="sequence gap"):
        Journal(tmp_path, read_only=True).verify_all()


def test_newer_journal_format_version_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, [2])
    seg = _segment(tmp_path)
    data = bytearray(seg.read_bytes())
    struct.pack_into("<H", data, 8, 99)
    seg.write_bytes(bytes(data))
    with pytest.raises(FlopexError, match="journal format version 99 is newer"):
        Journal(tmp_path, SyncPolicy("off"))
    assert seg.read_bytes() == bytes(data)


def test_unknown_record_type_is_refused_as_newer_format(tmp_path: Path) -> None:
    from exchange.journal import encode_record

    _write(tmp_path, [2])
    seg = _segment(tmp_path)
    with open(seg, "ab") as fh:
        fh.write(encode_record(9, 3, b"x"))
    with pytest.raises(FlopexError, match=r"record type 9 .* newer flopex"):
        Journal(tmp_path, SyncPolicy("off"))


def test_file_that_is_not_a_segment_is_refused(tmp_path: Path) -> None:
    (tmp_path / f"{1:020d}.jnl").write_bytes(b"hello, this is not a journal segment at all")
    with pytest.raises(FlopexError, match="not a flopex journal segment"):
        Journal(tmp_path, SyncPolicy("off"))


# ---- sync policies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("batch", SyncPolicy("batch")),
        ("off", SyncPolicy("off")),
        ("interval:5", SyncPolicy("interval", 5)),
        ("20ms", SyncPolicy("interval", 20)),
    ],
)
def test_sync_policy_parses(text: str, want: SyncPolicy) -> None:
    assert SyncPolicy.parse(text) == want


@pytest.mark.parametrize("text", ["sometimes", "interval:0", "5", "-3ms"])
def test_bad_sync_policy_is_a_one_line_error(text: str) -> None:
    with pytest.raises(FlopexError, match="journal sync policy"):
        SyncPolicy.parse(text)


def test_default_policy_is_durable() -> None:
    assert SyncPolicy().mode == "batch"


@pytest.mark.parametrize("policy", [SyncPolicy("batch"), SyncPolicy("interval", 1_000_000)])
def test_every_policy_writes_at_commit(tmp_path: Path, policy: SyncPolicy) -> None:
    j = Journal(tmp_path, policy)
    j.append(make_batch(3))
    j.commit()
    # another reader (a recovering process) sees it without close()
    assert Journal(tmp_path, read_only=True).next_seq == 4
    assert j.unsynced == (policy.mode == "interval")


@pytest.mark.parametrize("torn_bytes", [1, 10, 30])
def test_a_commit_torn_after_its_commands_is_dropped_whole(tmp_path: Path, torn_bytes: int) -> None:
    # Arrange: two commits; the second (commands + a note) loses the end of its note
    _write(tmp_path, [3])
    seg = _segment(tmp_path)
    good = seg.stat().st_size
    j = Journal(tmp_path, SyncPolicy("off"))
    j.append(make_batch(2, 3))
    j.note(b"x" * 40)
    j.close()
    with open(seg, "r+b") as fh:
        fh.truncate(seg.stat().st_size - torn_bytes)
    # Act
    j = Journal(tmp_path, SyncPolicy("off"))
    # Assert: the complete command record of the torn commit is cut with it
    assert j.next_seq == 4
    assert seg.stat().st_size == good
    assert _read_all(tmp_path)[1]["client_token"].tolist() == [0, 1, 2]


def test_every_record_of_a_whole_commit_is_kept(tmp_path: Path) -> None:
    # Arrange
    j = Journal(tmp_path, SyncPolicy("off"))
    j.append(make_batch(2, 0))
    j.note(b"gateway decisions")
    j.append(make_batch(1, 2))
    j.commit()
    j.close()
    # Act
    recs = list(Journal(tmp_path, read_only=True).records(1))
    # Assert
    assert [r.rtype for r in recs] == [RecordType.COMMANDS, RecordType.NOTE, RecordType.COMMANDS]
    assert Journal(tmp_path, read_only=True).next_seq == 4


def test_segments_without_commit_marks_keep_every_valid_record(tmp_path: Path) -> None:
    # Arrange: a segment from a writer that did not mark commit ends (flags all 0)
    head = SEGMENT_HEADER.pack(b"FLXJRNL\0", 1, 0, CMD_SIZE, 1)
    recs = [encode_record(RecordType.COMMANDS, 1, make_batch(2, 0).tobytes()),
            encode_record(RecordType.COMMANDS, 3, make_batch(2, 2).tobytes())]  # fmt: skip
    (tmp_path / segment_name(1)).write_bytes(head + b"".join(recs))
    # Act
    j = Journal(tmp_path, SyncPolicy("off"))
    # Assert: no record is taken for part of an incomplete commit
    assert j.next_seq == 5


@pytest.mark.parametrize("notes", [0, 1, 2])
def test_a_commit_is_framed_exactly_like_encode_record(tmp_path: Path, notes: int) -> None:
    # Arrange: commands plus 0, 1 or 2 notes (2 records is the gateway's fast path)
    j = Journal(tmp_path, SyncPolicy("off"))
    j.append(make_batch(2, 0))
    j.close()
    seg = _segment(tmp_path)
    start = seg.stat().st_size
    j = Journal(tmp_path, SyncPolicy("off"))
    cmds = make_batch(3, 2)
    payloads = [b"note %d" % k for k in range(notes)]
    # Act
    j.append(cmds)
    for p in payloads:
        j.note(p)
    j.commit()
    j.close()
    # Assert: the bytes are the records encode_record frames, COMMIT_END on the last only
    records = [(RecordType.COMMANDS, 3, cmds.tobytes())]
    records += [(RecordType.NOTE, 6, p) for p in payloads]
    last = len(records) - 1
    want = b"".join(
        encode_record(t, q, p, FLAG_COMMIT_END if i == last else 0)
        for i, (t, q, p) in enumerate(records)
    )
    assert seg.read_bytes()[start:] == want
