"""Trading sessions: the per-instrument state machine driven by the contract calendar.

For every contract and every business day on which it trades (listed, not past its last
trading day, not a holiday) and every trading session of that day, the schedule produces,
in the product's time zone:

* ``PRE_OPEN`` at ``open - pre_open_minutes`` (orders accepted and cancellable, no matching;
  the engine publishes the indicative opening price),
* ``OPEN`` at ``open`` (the engine uncrosses the book with the opening call auction),
* ``CLOSED`` at ``close``,
* after the last session of the day, ``SESSION_CLOSE`` (DAY orders expire),
* after the last session of the last trading day, ``MASS_CANCEL`` of the instrument
  (every remaining order is cancelled at expiry); the instrument then stays ``CLOSED``
  and the engine rejects new orders with ``MARKET_CLOSED``.

Halts are not scheduled: :func:`halt_command` makes the operator's command.

Each transition is a ``COMMAND_DTYPE`` record (``SET_STATUS`` / ``SESSION_CLOSE`` /
``MASS_CANCEL``) stamped with its scheduled time, so it goes through the sequencer and the
journal like an order, and replay reproduces it. :class:`SessionClock` is what the
sequencer polls: ``due(now_ns)`` returns the transitions that became due since the last
call, in time order, exactly once.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from contracts.calendar import BusinessCalendar, Contract, contracts_listed
from contracts.spec import ProductSpec
from exchange.engine.abi import COMMAND_DTYPE, CmdType, InstrumentStatus

_NS = 1_000_000_000

#: Order of transitions that share a timestamp and an instrument.
_KIND_ORDER = {"PRE_OPEN": 0, "OPEN": 1, "CLOSED": 2, "SESSION_CLOSE": 3, "EXPIRE": 4}


def to_ns(t: dt.datetime) -> int:
    """Aware datetime -> int nanoseconds since the Unix epoch (exact, no float)."""
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000


def from_ns(ns: int) -> dt.datetime:
    """Int nanoseconds since the epoch -> aware UTC datetime (microsecond precision)."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)


@dataclass(frozen=True, order=True)
class Transition:
    """One scheduled state change of one instrument."""

    ts_ns: int
    instrument_id: int
    order: int  # tie-break: _KIND_ORDER
    kind: str  # PRE_OPEN | OPEN | CLOSED | SESSION_CLOSE | EXPIRE
    symbol: str = ""

    @property
    def status(self) -> InstrumentStatus | None:
        """The status this transition sets (None for SESSION_CLOSE / EXPIRE)."""
        return InstrumentStatus[self.kind] if self.kind in InstrumentStatus.__members__ else None

    def command(self) -> np.ndarray:
        """This transition as a one-element ``COMMAND_DTYPE`` array."""
        return transitions_to_commands([self])


def _contract_transitions(c: Contract, day: dt.date) -> list[Transition]:
    hours = c.product.trading_hours
    spans = hours.sessions_on(day)
    out: list[Transition] = []
    pre = dt.timedelta(minutes=hours.pre_open_minutes)
    iid = c.instrument_id
    sym = c.symbol

    def add(t: dt.datetime, kind: str) -> None:
        out.append(Transition(to_ns(t), iid, _KIND_ORDER[kind], kind, sym))

    for opening, closing in spans:
        if pre:
            add(opening - pre, "PRE_OPEN")
        add(opening, "OPEN")
        add(closing, "CLOSED")
    if spans:
        add(spans[-1][1], "SESSION_CLOSE")
        if day == c.last_trading_day:
            add(spans[-1][1], "EXPIRE")
    return out


def contracts_trading(
    products: Iterable[ProductSpec], day: dt.date, calendar: BusinessCalendar
) -> list[Contract]:
    """The contracts of ``products`` that trade on ``day`` (empty on a holiday)."""
    out = []
    for spec in sorted(products, key=lambda s: s.product_id):
        out.extend(c for c in contracts_listed(spec, day, calendar) if c.is_trading_day(day))
    return out


def session_transitions(
    products: Iterable[ProductSpec],
    start_ns: int,
    end_ns: int,
    calendar: BusinessCalendar | None = None,
) -> list[Transition]:
    """Every transition with ``start_ns <= ts < end_ns``, sorted by (time, instrument, kind).

    O(days in the window x listed contracts)."""
    cal = calendar or BusinessCalendar.default()
    specs = list(products)
    if end_ns <= start_ns or not specs:
        return []
    first = from_ns(start_ns).date() - dt.timedelta(days=2)
    last = from_ns(end_ns).date() + dt.timedelta(days=2)
    out: list[Transition] = []
    day = first
    while day <= last:
        if cal.is_business_day(day):
            for c in contracts_trading(specs, day, cal):
                out.extend(t for t in _contract_transitions(c, day) if start_ns <= t.ts_ns < end_ns)
        day += dt.timedelta(days=1)
    out.sort()
    return out


def transitions_to_commands(transitions: Iterable[Transition]) -> np.ndarray:
    """Transitions -> ``COMMAND_DTYPE`` records stamped with their scheduled times."""
    ts = list(transitions)
    cmds = np.zeros(len(ts), dtype=COMMAND_DTYPE)
    for i, t in enumerate(ts):
        cmds[i]["timestamp"] = t.ts_ns
        cmds[i]["instrument_id"] = t.instrument_id
        if t.kind == "SESSION_CLOSE":
            cmds[i]["cmd_type"] = CmdType.SESSION_CLOSE
        elif t.kind == "EXPIRE":
            cmds[i]["cmd_type"] = CmdType.MASS_CANCEL
        else:
            cmds[i]["cmd_type"] = CmdType.SET_STATUS
            cmds[i]["status"] = InstrumentStatus[t.kind]
    return cmds


def halt_command(instrument_id: int, ts_ns: int, resume: bool = False) -> np.ndarray:
    """An operator's halt (or, with ``resume``, re-open) of one instrument as a command."""
    cmds = np.zeros(1, dtype=COMMAND_DTYPE)
    cmds[0]["timestamp"] = ts_ns
    cmds[0]["instrument_id"] = instrument_id
    cmds[0]["cmd_type"] = CmdType.SET_STATUS
    cmds[0]["status"] = InstrumentStatus.OPEN if resume else InstrumentStatus.HALTED
    return cmds


def status_at(
    contract: Contract, ts_ns: int, calendar: BusinessCalendar | None = None
) -> InstrumentStatus:
    """The scheduled status of ``contract`` at ``ts_ns`` (halts are not scheduled)."""
    day = from_ns(ts_ns).astimezone(contract.product.trading_hours.tz).date()
    if not contract.is_trading_day(day):
        return InstrumentStatus.CLOSED
    status = InstrumentStatus.CLOSED
    for t in _contract_transitions(contract, day):
        if t.ts_ns <= ts_ns and t.status is not None:
            status = t.status
    return status


class SessionClock:
    """The sequencer's view of the schedule: hands out each transition exactly once.

    ``SessionClock(products, after_ns=last_journaled_ts)`` after a recovery resumes where
    the journal stopped: transitions at or before ``after_ns`` are considered done.
    ``due(now_ns)`` is O(transitions returned) amortised; it computes the schedule a day
    ahead at a time.
    """

    HORIZON_NS = 86_400 * _NS

    def __init__(
        self,
        products: Iterable[ProductSpec],
        after_ns: int,
        calendar: BusinessCalendar | None = None,
    ) -> None:
        self.products = list(products)
        self.calendar = calendar or BusinessCalendar.default()
        self.done_ns = after_ns  # everything <= done_ns has been handed out
        self._planned: list[Transition] = []
        self._planned_to = after_ns + 1  # schedule computed for [after_ns+1, _planned_to)

    def _plan(self, until_ns: int) -> None:
        while self._planned_to <= until_ns:
            end = max(self._planned_to + self.HORIZON_NS, until_ns + 1)
            self._planned.extend(
                session_transitions(self.products, self._planned_to, end, self.calendar)
            )
            self._planned_to = end

    def next_ns(self) -> int | None:
        """Time of the next transition within a week, or None (for the caller's timer)."""
        self._plan(self.done_ns + 7 * self.HORIZON_NS)
        return self._planned[0].ts_ns if self._planned else None

    def due(self, now_ns: int) -> np.ndarray:
        """Commands for transitions with ``done < ts <= now_ns``, in order; each once."""
        if now_ns <= self.done_ns:
            return np.zeros(0, dtype=COMMAND_DTYPE)
        self._plan(now_ns)
        k = bisect.bisect_right([t.ts_ns for t in self._planned], now_ns)
        ready, self._planned = self._planned[:k], self._planned[k:]
        self.done_ns = now_ns
        return transitions_to_commands(ready)
