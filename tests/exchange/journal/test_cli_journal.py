"""``flopex journal``: bad data directories exit 2 with one line; inspect prints and filters."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest

from exchange.cli import main
from exchange.datadir import MARKER, DataDir
from exchange.engine.abi import CmdType
from exchange.engine.config import InstrumentConfig
from exchange.journal import DayNote, Journal, SyncPolicy, encode_note
from exchange.snapshot import write_snapshot
from tests.exchange.journal.conftest import make_batch

INST = 12612


def _data_dir(tmp_path: Path, n: int = 20) -> Path:
    dd = DataDir.open(tmp_path / "data", create=True)
    cfg = InstrumentConfig(instrument_id=INST, min_price_ticks=1, max_price_ticks=20000)
    j = Journal(dd.journal_dir, SyncPolicy("off"))
    j.note(
        encode_note(DayNote("2026-11-25", [msgspec.structs.asdict(cfg)], {1: "ALICE", 2: "BOB"}))
    )
    cmds = make_batch(n, instrument_id=INST)
    cmds["account"] = np.where(np.arange(n) % 2 == 0, 1, 2)
    j.append(cmds)
    j.close()
    return dd.root


@pytest.mark.parametrize("action", ["inspect", "verify"])
def test_foreign_directory_is_a_one_line_error_and_untouched(
    tmp_path: Path, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    code = main(["journal", action, "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "not a flopex data directory" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_newer_data_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _data_dir(tmp_path)
    (root / MARKER).write_text(json.dumps({"format": "flopex-data-dir", "version": 7}))
    assert main(["journal", "verify", "--data-dir", str(root)]) == 2
    assert "format version 7 is newer" in capsys.readouterr().err


def test_snapshot_with_bad_digest_is_refused_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _data_dir(tmp_path)
    snap = write_snapshot(root / "snapshots", 5, {"engine/S": np.arange(3)}, {})
    data = bytearray(snap.read_bytes())
    data[40] ^= 1
    snap.write_bytes(bytes(data))
    assert main(["journal", "verify", "--data-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"{snap}: snapshot digest mismatch" in err and err.count("\n") == 1
    assert snap.read_bytes() == bytes(data)


def test_corrupt_journal_names_file_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _data_dir(tmp_path)
    seg = next((root / "journal").glob("*.jnl"))
    data = bytearray(seg.read_bytes())
    data[30] ^= 0xFF  # inside the first record (the note)
    seg.write_bytes(bytes(data))
    assert main(["journal", "inspect", "--data-dir", str(root)]) == 2
    assert f"{seg}: corrupt journal record at byte offset 24" in capsys.readouterr().err


def test_inspect_prints_every_command_with_account_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _data_dir(tmp_path, n=6)
    assert main(["journal", "inspect", "--data-dir", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["note", "at", "sequence", "1:", "trading", "day", "2026-11-25,",
                                "1", "instruments"]  # fmt: skip
    assert len(lines) == 7
    first = lines[1].split()
    assert first[0] == "1" and first[2] == "NEW" and f"inst={INST}" in first
    assert "acct=ALICE" in first and "BUY" in first and "qty=1" in first and "px=3000" in first


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["--from-seq", "5", "--to-seq", "8"], [5, 6, 7, 8]),
        (["--account", "BOB"], [2, 4, 6, 8, 10]),
        (["--account", "1", "--to-seq", "5"], [1, 3, 5]),
        (["--instrument", "H100Z26", "--limit", "2"], [1, 2]),
        (["--instrument", "99"], []),
    ],
)
def test_inspect_filters(
    tmp_path: Path, args: list[str], want: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    root = _data_dir(tmp_path, n=10)
    assert main(["journal", "inspect", "--data-dir", str(root), *args]) == 0
    lines = [
        ln for ln in capsys.readouterr().out.splitlines() if not ln.lstrip().startswith("note")
    ]
    assert [int(ln.split()[0]) for ln in lines] == want


def test_inspect_unknown_account_name_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _data_dir(tmp_path)
    assert main(["journal", "inspect", "--data-dir", str(root), "--account", "ZED"]) == 2
    assert "--account: no account named 'ZED'" in capsys.readouterr().err


def test_inspect_never_truncates_a_torn_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _data_dir(tmp_path)
    seg = next((root / "journal").glob("*.jnl"))
    with open(seg, "ab") as fh:
        fh.write(b"\x0e\xf1\x01\x00")
    size = seg.stat().st_size
    assert main(["journal", "inspect", "--data-dir", str(root)]) == 0
    assert "torn tail" in capsys.readouterr().out
    assert seg.stat().st_size == size


def test_verify_replays_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _data_dir(tmp_path, n=10)
    assert main(["journal", "verify", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "journal: 10 commands in 1 segment(s), checksums ok" in out
    assert "last sequence 10" in out
    assert "state digest: " in out


def test_tradelog_for_a_day_not_in_the_journal_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _data_dir(tmp_path)
    assert main(["journal", "tradelog", "--data-dir", str(root), "--date", "2026-11-26"]) == 2
    assert "no trading day 2026-11-26" in capsys.readouterr().err


def test_commands_before_any_day_note_cannot_be_rebuilt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dd = DataDir.open(tmp_path / "d", create=True)
    with Journal(dd.journal_dir, SyncPolicy("off")) as j:
        j.append(make_batch(2))
    assert main(["journal", "verify", "--data-dir", str(dd.root)]) == 2
    assert "before any trading-day note" in capsys.readouterr().err


def test_cmd_type_names_are_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _data_dir(tmp_path, n=0)
    j = Journal(root / "journal", SyncPolicy("off"))
    c = make_batch(1, instrument_id=INST)
    c["cmd_type"] = CmdType.CANCEL
    c["order_id"] = 42
    j.append(c)
    j.close()
    assert main(["journal", "inspect", "--data-dir", str(root)]) == 0
    assert "CANCEL inst=12612 acct=ALICE order=42" in capsys.readouterr().out


def test_inspect_describes_gateway_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: a gateway note after the commands (two messages for ALICE, one order done)
    from exchange.journal import encode_gateway_note
    from exchange.protocol.soupbintcp import sequenced

    root = _data_dir(tmp_path, n=2)
    j = Journal(DataDir.open(root).journal_dir, SyncPolicy("off"))
    msgs = sequenced(b"H" + b"\0" * 13) + sequenced(b"H" + b"\0" * 13)
    j.note(encode_gateway_note({"gw": 7, "m": {"ALICE": msgs}, "x": [3]}))
    j.close()
    # Act
    assert main(["journal", "inspect", "--data-dir", str(root)]) == 0
    # Assert
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.endswith("gateway note 7; messages: ALICE 2; orders: 0 updated, 1 done")


def test_inspect_describes_binary_gateway_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: a binary note as the compiled core writes it: three packets for session
    # rows 1, 1, 0, one order row, one gone ref, one token row
    import struct

    from exchange.journal import BIN_NOTE_MAGIC, decode_gateway_note
    from exchange.protocol.soupbintcp import sequenced

    root = _data_dir(tmp_path, n=2)
    j = Journal(DataDir.open(root).journal_dir, SyncPolicy("off"))
    pkts = sequenced(b"H" + b"\0" * 13) * 3
    pad = lambda b: b + bytes(-len(b) % 8)  # noqa: E731
    note = (
        BIN_NOTE_MAGIC + struct.pack("<8q", 9, 5, 123, 3, len(pkts), 1, 1, 1)
        + pad(struct.pack("<3h", 1, 1, 0)) + pad(pkts) + struct.pack("<12q", *range(12))
        + struct.pack("<q", 77) + struct.pack("<3q", 1, 40, 1)
    )  # fmt: skip
    j.note(note)
    j.close()
    gn = decode_gateway_note(note)
    assert gn is not None and gn["x"] == [77] and gn["T"] == [[1, 40, 1]] and gn["nr"] == 5
    # Act
    assert main(["journal", "inspect", "--data-dir", str(root)]) == 0
    # Assert
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.endswith(
        "gateway note 9 (binary); messages: row 0 1, row 1 2; orders: 1 updated, 1 done"
    )


def test_a_malformed_binary_gateway_note_is_refused_by_name() -> None:
    import struct

    from contracts.errors import FlopexError
    from exchange.journal import BIN_NOTE_MAGIC, decode_gateway_note

    note = BIN_NOTE_MAGIC + struct.pack("<8q", 4, 1, 0, 1, 0, 0, 0, 0)  # says 1 packet row
    with pytest.raises(FlopexError, match="binary gateway note 4: 72 bytes, its header"):
        decode_gateway_note(note)
