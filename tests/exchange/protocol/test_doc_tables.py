"""docs/protocol.md is the spec: its byte tables must match the codec layouts exactly."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from exchange.protocol import messages, soupbintcp
from exchange.protocol.codes import RejectCode, WireCancelReason
from exchange.protocol.layout import TYPE_CODES, Layout

DOC = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"
LAYOUTS: tuple[Layout, ...] = (
    soupbintcp.SESSION_LAYOUTS + messages.INBOUND_LAYOUTS + messages.OUTBOUND_LAYOUTS
)


def _doc_sections() -> dict[str, list[str]]:
    """Heading title -> the lines under it, up to the next heading."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        m = re.match(r"^#{2,3} (.+)$", line)
        if m:
            current = m.group(1).strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def _table_rows(lines: list[str]) -> list[list[str]]:
    rows = [ln for ln in lines if ln.startswith("|")]
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    return [c for c in cells[2:]]  # skip header and rule


SECTIONS = _doc_sections()


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: lay.title)
def test_doc_table_matches_codec_layout(layout: Layout) -> None:
    # Arrange
    rows = _table_rows(SECTIONS[layout.title])
    doc_fields = [(r[2].strip("`"), int(r[0]), int(r[1]), r[3]) for r in rows]
    # Act
    doc_fmt = ">" + "".join(
        f"{length}s" if t == "alpha" else TYPE_CODES[t] for _, _, length, t in doc_fields
    )
    # Assert
    assert doc_fields == layout.offsets()
    assert doc_fmt == layout.struct.format
    assert struct.calcsize(doc_fmt) == layout.size


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: lay.title)
def test_doc_states_type_byte_and_size(layout: Layout) -> None:
    text = "\n".join(SECTIONS[layout.title])
    assert f"Type `{layout.type_byte.decode()}`, {layout.size} bytes." in text


def test_doc_reject_code_table_matches_enum() -> None:
    rows = _table_rows(SECTIONS["Reject codes"])
    assert [(int(r[0]), r[1].strip("`")) for r in rows] == [(c.value, c.name) for c in RejectCode]


def test_doc_cancel_reason_table_matches_enum() -> None:
    rows = _table_rows(SECTIONS["Cancel reasons"])
    assert [(r[0].strip("`"), r[1].strip("`")) for r in rows] == [
        (chr(c.value), c.name) for c in WireCancelReason
    ]


def test_engine_reject_reasons_keep_their_number_and_name_on_the_wire() -> None:
    from exchange.engine.abi import RejectReason

    engine = {(r.value, r.name) for r in RejectReason if r is not RejectReason.NONE}
    wire = {(c.value, c.name) for c in RejectCode if c.value < 100}
    assert engine <= wire
