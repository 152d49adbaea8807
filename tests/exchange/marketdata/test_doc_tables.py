"""docs/marketdata.md is the spec of the feed: its byte tables must match the codec."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from exchange.marketdata import FEED_LAYOUTS, SNAPSHOT_LAYOUTS
from exchange.protocol.layout import TYPE_CODES, Layout

DOC = Path(__file__).resolve().parents[3] / "docs" / "marketdata.md"


def _sections() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        m = re.match(r"^#{2,3} (.+)$", line)
        if m:
            current = m.group(1).strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


SECTIONS = _sections()


def _rows(lines: list[str]) -> list[list[str]]:
    rows = [ln for ln in lines if ln.startswith("|")]
    return [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows][2:]


@pytest.mark.parametrize("layout", FEED_LAYOUTS, ids=lambda lay: lay.title)
def test_doc_table_matches_codec(layout: Layout) -> None:
    # Arrange
    rows = _rows(SECTIONS[layout.title])
    doc = [(r[2].strip("`"), int(r[0]), int(r[1]), r[3]) for r in rows]
    # Act
    fmt = ">" + "".join(f"{n}s" if t == "alpha" else TYPE_CODES[t] for _, _, n, t in doc)
    # Assert
    assert doc == layout.offsets()
    assert fmt == layout.struct.format
    assert struct.calcsize(fmt) == layout.size


@pytest.mark.parametrize("layout", FEED_LAYOUTS, ids=lambda lay: lay.title)
def test_doc_states_type_byte_and_size(layout: Layout) -> None:
    assert f"Type `{layout.type_byte.decode()}`, {layout.size} bytes." in "\n".join(
        SECTIONS[layout.title]
    )


def test_type_bytes_are_unique() -> None:
    assert len({lay.type_byte for lay in FEED_LAYOUTS}) == len(FEED_LAYOUTS)


@pytest.mark.parametrize("layout", SNAPSHOT_LAYOUTS, ids=lambda lay: lay.title)
def test_snapshot_messages_carry_no_feed_sequence(layout: Layout) -> None:
    assert "seq" not in [f.name for f in layout.fields]
