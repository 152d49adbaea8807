"""``flopex serve`` refuses a data directory it must not use: one line, exit 2, untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from exchange.cli import main
from exchange.datadir import MARKER
from exchange.snapshot import write_snapshot
from tests.exchange.journal.test_cli_journal import _data_dir


def _serve(root: Path, day: str = "2026-11-25") -> int:
    return main(["serve", "--data-dir", str(root), "--trade-date", day, "--port", "0",
                 "--no-market-data", "--journal-sync", "off"])  # fmt: skip


def _errors(err: str) -> list[str]:
    """The error lines (the demo-logins notice also goes to stderr); never a traceback."""
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.startswith("flopex: error:")]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_trade_date_before_the_journals_last_day_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: the journal has traded 2026-11-25
    root = _data_dir(tmp_path)
    before = _tree(root)
    # Act
    code = _serve(root, "2026-11-24")
    # Assert
    errors = _errors(capsys.readouterr().err)
    assert code == 2 and len(errors) == 1
    assert "already traded 2026-11-25; refusing to go back in time" in errors[0]
    assert {k: v for k, v in _tree(root).items() if k != "LOCK"} == before


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ("foreign", "not a flopex data directory"),
        ("newer", "format version 9 is newer"),
        ("snapshot", "snapshot digest mismatch"),
        ("journal", "corrupt journal record at byte offset 24"),
    ],
)
def test_a_bad_data_directory_is_a_one_line_error_and_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spoil: str, message: str
) -> None:
    # Arrange
    if spoil == "foreign":
        root = tmp_path / "mine"
        root.mkdir()
        (root / "thesis.tex").write_text("precious")
    else:
        root = _data_dir(tmp_path)
        if spoil == "newer":
            (root / MARKER).write_text(json.dumps({"format": "flopex-data-dir", "version": 9}))
        elif spoil == "snapshot":
            snap = write_snapshot(root / "snapshots", 5, {"engine/S": np.arange(3)}, {})
            data = bytearray(snap.read_bytes())
            data[40] ^= 1
            snap.write_bytes(bytes(data))
        else:
            seg = next((root / "journal").glob("*.jnl"))
            data = bytearray(seg.read_bytes())
            data[30] ^= 0xFF
            seg.write_bytes(bytes(data))
    before = _tree(root)
    # Act
    code = _serve(root)
    # Assert
    errors = _errors(capsys.readouterr().err)
    assert code == 2 and len(errors) == 1 and message in errors[0]
    assert {k: v for k, v in _tree(root).items() if k != "LOCK"} == before
