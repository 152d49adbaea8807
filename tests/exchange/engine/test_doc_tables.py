"""docs/engine.md's enumeration and record-layout tables match the ABI exactly."""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

import numpy as np
import pytest

from exchange.engine import abi

DOC = Path(__file__).resolve().parents[3] / "docs" / "engine.md"
ENUMS = [
    abi.CmdType,
    abi.Side,
    abi.OrderType,
    abi.TimeInForce,
    abi.SmpInstruction,
    abi.InstrumentStatus,
    abi.MatchingAlgorithm,
    abi.EventType,
    abi.RejectReason,
    abi.CancelReason,
]


def _section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"### `{title}`")
    end = text.find("\n### ", start + 1)
    return text[start : end if end > 0 else None]


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_enum_table_lists_every_value(enum: type[IntEnum]) -> None:
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \|$", _section(enum.__name__), re.M)
    assert [(int(v), n) for v, n in rows] == [(int(m), n) for n, m in enum.__members__.items()]


@pytest.mark.parametrize("name", ["COMMAND_DTYPE", "EVENT_DTYPE"])
def test_record_layout_table_matches_the_dtype(name: str) -> None:
    dt: np.dtype = getattr(abi, name)
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", _section(name), re.M)
    assert [(int(o), f) for o, f in rows] == [(dt.fields[f][1], f) for f in dt.names]
