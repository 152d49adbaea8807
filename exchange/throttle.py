"""Per-session message throttle: an integer token bucket over a monotonic nanosecond clock."""

from __future__ import annotations

import time
from collections.abc import Callable

_NS = 1_000_000_000


class Throttle:
    """Allow at most ``rate`` messages per second on average, with bursts up to ``rate``.

    Integer arithmetic only (tokens are held in units of 1/``rate`` ns): ``allow()`` is O(1)
    and exact, no float drift. ``clock`` returns monotonic nanoseconds (injectable for tests).
    """

    __slots__ = ("_capacity", "_clock", "_last", "_level", "rate")

    def __init__(self, rate: int, clock: Callable[[], int] = time.monotonic_ns) -> None:
        if rate < 1:
            raise ValueError("throttle rate must be >= 1 message per second")
        self.rate = rate
        self._clock = clock
        self._capacity = rate * _NS  # bucket size: one second's worth of messages
        self._level = self._capacity
        self._last = clock()

    def allow(self) -> bool:
        """Consume one message's worth of budget; False if the session is over its rate."""
        now = self._clock()
        level = self._level + (now - self._last) * self.rate
        self._last = now
        if level > self._capacity:
            level = self._capacity
        if level < _NS:
            self._level = level
            return False
        self._level = level - _NS
        return True
