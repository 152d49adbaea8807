"""The data directory: created when absent/empty, refused when foreign or newer, locked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.errors import FlopexError
from exchange.datadir import FORMAT_VERSION, MARKER, DataDir


def test_absent_directory_is_created_with_marker_and_subdirs(tmp_path: Path) -> None:
    d = DataDir.open(tmp_path / "data", create=True)
    assert json.loads((d.root / MARKER).read_text())["version"] == FORMAT_VERSION
    assert d.journal_dir.is_dir() and d.snapshot_dir.is_dir() and d.tradelog_dir.is_dir()


def test_existing_flopex_directory_reopens(tmp_path: Path) -> None:
    DataDir.open(tmp_path / "d", create=True)
    assert DataDir.open(tmp_path / "d").version == FORMAT_VERSION


def test_non_empty_foreign_directory_is_refused_and_untouched(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(FlopexError, match="not a flopex data directory"):
        DataDir.open(tmp_path, create=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_directory_prepared_with_inputs_becomes_a_data_directory(tmp_path: Path) -> None:
    # Arrange: what an operator (or the demo) prepares before the first start
    (tmp_path / "access.yaml").write_text("accounts: []\n")
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "2026-11-02.csv").write_text("quotes\n")
    # Act
    d = DataDir.open(tmp_path, create=True)
    # Assert: marked, inputs untouched
    assert (d.root / MARKER).exists() and d.journal_dir.is_dir()
    assert (tmp_path / "index" / "2026-11-02.csv").read_text() == "quotes\n"


def test_missing_directory_without_create_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FlopexError, match="not a flopex data directory"):
        DataDir.open(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_a_file_is_not_a_data_directory(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(FlopexError, match="not a directory"):
        DataDir.open(f, create=True)


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    d = DataDir.open(tmp_path / "d", create=True)
    (d.root / MARKER).write_text(json.dumps({"format": "flopex-data-dir", "version": 99}))
    with pytest.raises(FlopexError, match="format version 99 is newer"):
        DataDir.open(d.root)


@pytest.mark.parametrize("body", ["", "{}", "[1]", '{"format": "other", "version": 1}'])
def test_garbled_marker_is_refused(tmp_path: Path, body: str) -> None:
    (tmp_path / MARKER).write_text(body)
    with pytest.raises(FlopexError, match="not a flopex data-directory marker"):
        DataDir.open(tmp_path)


def test_second_lock_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    d = DataDir.open(tmp_path / "d", create=True)
    with d.lock(), pytest.raises(FlopexError, match="in use by another flopex process"):
        d.lock()
    d.lock().close()  # released: lockable again
