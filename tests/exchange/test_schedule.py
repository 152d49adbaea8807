"""Trading-session schedule: pre-open/open/close per contract, holidays, expiry, the clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from contracts.calendar import BusinessCalendar, Contract
from contracts.registry import load_products
from exchange.engine.abi import CmdType, InstrumentStatus
from exchange.schedule import (
    SessionClock,
    from_ns,
    halt_command,
    session_transitions,
    status_at,
    to_ns,
)

CHI = ZoneInfo("America/Chicago")
PRODUCTS = load_products()
H100 = PRODUCTS["H100"]
CAL = BusinessCalendar.default()


def _ns(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return to_ns(dt.datetime(y, m, d, hh, mm, tzinfo=CHI))


def _for(symbol: str, ts: list) -> list[tuple[str, str]]:
    return [
        (from_ns(t.ts_ns).astimezone(CHI).strftime("%m-%d %H:%M"), t.kind)
        for t in ts
        if t.symbol == symbol
    ]


def test_a_business_day_has_pre_open_open_close_and_session_close() -> None:
    ts = session_transitions([H100], _ns(2026, 6, 10), _ns(2026, 6, 11))
    assert _for("H100N26", ts) == [
        ("06-10 07:30", "PRE_OPEN"),
        ("06-10 08:00", "OPEN"),
        ("06-10 16:00", "CLOSED"),
        ("06-10 16:00", "SESSION_CLOSE"),
    ]


@pytest.mark.parametrize(
    "day", [dt.date(2026, 6, 13), dt.date(2026, 6, 14), dt.date(2026, 6, 19)], ids=str
)
def test_no_transitions_on_weekends_and_holidays(day: dt.date) -> None:
    start = to_ns(dt.datetime.combine(day, dt.time(0), CHI))
    assert session_transitions([H100], start, start + 86_400 * 10**9) == []


def test_last_trading_day_expires_the_contract_then_it_stops_trading() -> None:
    # H100N26: last business day of July 2026 is Friday 31st
    c = Contract(H100, 2026, 7, CAL)
    ts = session_transitions([H100], _ns(2026, 7, 31), _ns(2026, 8, 5))
    assert _for("H100N26", ts)[-3:] == [
        ("07-31 16:00", "CLOSED"),
        ("07-31 16:00", "SESSION_CLOSE"),
        ("07-31 16:00", "EXPIRE"),
    ]
    assert status_at(c, _ns(2026, 8, 3, 10)) == InstrumentStatus.CLOSED


def test_transitions_become_commands_the_engine_understands() -> None:
    ts = session_transitions([H100], _ns(2026, 7, 31), _ns(2026, 8, 1))
    clock = SessionClock([H100], _ns(2026, 7, 31), CAL)
    cmds = clock.due(_ns(2026, 7, 31, 23))
    kinds = {(int(c["cmd_type"]), int(c["status"])) for c in cmds}
    assert len(cmds) == len(ts)
    assert kinds == {
        (CmdType.SET_STATUS, InstrumentStatus.PRE_OPEN),
        (CmdType.SET_STATUS, InstrumentStatus.OPEN),
        (CmdType.SET_STATUS, InstrumentStatus.CLOSED),
        (CmdType.SESSION_CLOSE, 0),
        (CmdType.MASS_CANCEL, 0),
    }
    assert np.all(np.diff(cmds["timestamp"]) >= 0)
    assert cmds["account"].max() == 0  # mass cancel at expiry: all accounts


@pytest.mark.parametrize(
    ("hh", "mm", "want"),
    [
        (7, 0, InstrumentStatus.CLOSED),
        (7, 30, InstrumentStatus.PRE_OPEN),
        (7, 59, InstrumentStatus.PRE_OPEN),
        (8, 0, InstrumentStatus.OPEN),
        (15, 59, InstrumentStatus.OPEN),
        (16, 0, InstrumentStatus.CLOSED),
    ],
)
def test_status_at_follows_the_session(hh: int, mm: int, want: InstrumentStatus) -> None:
    c = Contract(H100, 2026, 9, CAL)
    assert status_at(c, _ns(2026, 6, 10, hh, mm)) == want


def test_clock_hands_out_each_transition_exactly_once_whatever_the_polling() -> None:
    # Arrange: two clocks over three days, one polled every minute, one once
    start, end = _ns(2026, 6, 10), _ns(2026, 6, 13)
    fine = SessionClock(PRODUCTS.values(), start, CAL)
    coarse = SessionClock(PRODUCTS.values(), start, CAL)
    # Act
    parts = [fine.due(t) for t in range(start + 60 * 10**9, end + 1, 60 * 10**9)]
    got = np.concatenate(parts)
    once = coarse.due(end)
    # Assert
    assert got.tobytes() == once.tobytes()
    assert len(once) == len(session_transitions(PRODUCTS.values(), start + 1, end + 1))
    assert fine.due(end).size == 0


def test_clock_resumed_after_recovery_skips_what_was_journaled() -> None:
    clock = SessionClock([H100], _ns(2026, 6, 10, 8, 0), CAL)
    kinds = {int(c["status"]) for c in clock.due(_ns(2026, 6, 10, 17))}
    assert InstrumentStatus.PRE_OPEN not in kinds
    assert InstrumentStatus.OPEN not in kinds
    assert clock.next_ns() == _ns(2026, 6, 11, 7, 30)


def test_halt_and_resume_commands() -> None:
    h = halt_command(12609, 5)
    r = halt_command(12609, 6, resume=True)
    assert (int(h[0]["cmd_type"]), int(h[0]["status"])) == (
        CmdType.SET_STATUS,
        InstrumentStatus.HALTED,
    )
    assert int(r[0]["status"]) == InstrumentStatus.OPEN


def test_ns_conversion_is_exact() -> None:
    t = dt.datetime(2026, 6, 10, 12, 34, 56, 789012, tzinfo=dt.UTC)
    assert to_ns(t) == 1781094896789012000
    assert from_ns(to_ns(t)) == t
