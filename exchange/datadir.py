"""A flopex data directory: the one place a running venue keeps what must survive a crash.

Layout (``docs/durability.md``)::

    DATA_DIR/
      FLOPEX            marker: JSON {"format": "flopex-data-dir", "version": N}
      LOCK              advisory lock held by the one server using the directory
      journal/          sequenced command journal segments (exchange.journal)
      snapshots/        full-state snapshots (exchange.snapshot)
      tradelog/         trade log for clearing, one CSV per trade date (exchange.tradelog)
      close/            close records for clearing

Rules: a missing or empty directory becomes a flopex one (when asked to create it); a
directory that holds anything but has no marker is *not* a flopex one and is refused; a
marker from a newer format version is refused. Refusals are one-line
:class:`~contracts.errors.FlopexError` messages, and nothing is written before the checks
pass, so a wrong ``--data-dir`` never damages anything.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from contracts.errors import FlopexError

#: Name of the marker file that makes a directory a flopex data directory.
MARKER = "FLOPEX"
#: Value of the marker's ``format`` key.
FORMAT_NAME = "flopex-data-dir"
#: Data-directory format version this code writes and understands (and all older ones).
FORMAT_VERSION = 1
#: Sub-directories created with the data directory.
SUBDIRS: tuple[str, ...] = ("journal", "snapshots", "tradelog", "close")
#: What an operator may put in a data directory before the server first creates its
#: marker: clearing's inputs (index quotes, settlement prices) and the access file.
#: A directory holding anything else is refused (it is not a flopex one).
PREPARED_DIRS: frozenset[str] = frozenset({"index", "settlement", *SUBDIRS})
PREPARED_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")


def _prepared_entry(p: Path) -> bool:
    """True for an entry an operator may prepare before the server's first start."""
    if p.name.startswith("."):
        return True
    if p.is_dir():
        return p.name in PREPARED_DIRS
    return p.suffix in PREPARED_SUFFIXES


def fsync_dir(path: Path) -> None:
    """fsync a directory so that a rename or create inside it is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_marker(path: Path) -> int:
    """The format version in ``path/FLOPEX``; FlopexError if it is absent or not ours."""
    marker = path / MARKER
    try:
        raw = marker.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlopexError(f"{path}: not a flopex data directory (no {MARKER} marker)") from None
    except OSError as exc:
        raise FlopexError(f"{marker}: cannot read: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
        fmt = doc["format"]
        version = doc["version"]
    except (ValueError, KeyError, TypeError):
        raise FlopexError(f"{marker}: not a flopex data-directory marker") from None
    if fmt != FORMAT_NAME or not isinstance(version, int) or isinstance(version, bool):
        raise FlopexError(f"{marker}: not a flopex data-directory marker")
    if version > FORMAT_VERSION:
        raise FlopexError(
            f"{path}: data directory format version {version} is newer than this flopex "
            f"understands ({FORMAT_VERSION}); upgrade flopex"
        )
    if version < 1:
        raise FlopexError(f"{marker}: invalid format version {version}")
    return version


@dataclass(frozen=True)
class DataDir:
    """An opened, validated flopex data directory. Paths only; no open files."""

    root: Path
    version: int

    @property
    def journal_dir(self) -> Path:
        return self.root / "journal"

    @property
    def snapshot_dir(self) -> Path:
        return self.root / "snapshots"

    @property
    def tradelog_dir(self) -> Path:
        return self.root / "tradelog"

    @property
    def close_dir(self) -> Path:
        return self.root / "close"

    @classmethod
    def open(cls, path: str | os.PathLike[str], create: bool = False) -> DataDir:
        """Validate ``path`` as a flopex data directory, creating it if ``create`` and absent.

        Guarantees: returns only for a directory with a valid marker of a version we
        understand; creates one only when the directory does not exist or holds nothing
        but what an operator prepares for a first start (``index/``, ``settlement/``, an
        access ``*.yaml``, dotfiles); never modifies a directory that fails a check.
        FlopexError (one line) otherwise.
        """
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise FlopexError(f"{root}: not a directory")
        if root.is_dir() and (root / MARKER).exists():
            version = read_marker(root)
            for sub in SUBDIRS:
                (root / sub).mkdir(exist_ok=True)
            return cls(root, version)
        if root.is_dir():
            try:
                foreign = [p.name for p in root.iterdir() if not _prepared_entry(p)]
            except OSError as exc:
                raise FlopexError(f"{root}: cannot read: {exc.strerror}") from None
            if foreign:
                raise FlopexError(
                    f"{root}: not a flopex data directory (no {MARKER} marker and not empty);"
                    " refusing to use it"
                )
        if not create:
            raise FlopexError(f"{root}: not a flopex data directory (no {MARKER} marker)")
        return cls._create(root)

    @classmethod
    def _create(cls, root: Path) -> DataDir:
        try:
            root.mkdir(parents=True, exist_ok=True)
            for sub in SUBDIRS:
                (root / sub).mkdir(exist_ok=True)
            tmp = root / (MARKER + ".tmp")
            body = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION}) + "\n"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, root / MARKER)
            fsync_dir(root)
        except OSError as exc:
            raise FlopexError(f"{root}: cannot create data directory: {exc.strerror}") from None
        return cls(root, FORMAT_VERSION)

    def lock(self) -> DirLock:
        """Take the directory's exclusive lock (one server per data directory).

        FlopexError if another process holds it. The lock is released when the returned
        object is closed or the process dies (kill -9 included: it is an flock).
        """
        return DirLock(self.root / "LOCK")


class DirLock:
    """An exclusive, non-blocking ``flock`` on a file; released by :meth:`close` or exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise FlopexError(
                f"{path.parent}: data directory is in use by another flopex process"
            ) from None

    def close(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def numbered_files(directory: Path, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
    """``(number, path)`` of the files in ``directory`` whose name matches ``pattern``
    (group 1 = the decimal number: a journal segment's first sequence, a snapshot's
    sequence), ascending. A missing directory has none. O(files)."""
    if not directory.is_dir():
        return []
    out = []
    for p in directory.iterdir():
        m = pattern.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    out.sort()
    return out
