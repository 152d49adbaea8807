"""The sequencer: the single choke point every state-changing command passes through.

It owns the matching engine. :meth:`Sequencer.submit` stamps each command of a batch with
a strictly increasing int64 nanosecond timestamp (from the gateway's clock — the engine
never reads one), counts it in the global command sequence, hands the batch to any
journal listeners, then to the engine's batch kernel, and returns the events as plain
tuples in :data:`exchange.engine.abi.EVENT_FIELDS` order.

Its state is two integers (``last_ts``, ``commands``), trivially snapshotted; the command
stream it emits is exactly what a journal must store to rebuild the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from exchange.engine.abi import COMMAND_DTYPE, COMMAND_RECORD, EVENT_DTYPE, EVENT_RECORD, EventType

_LEVEL = int(EventType.LEVEL)
assert COMMAND_DTYPE.names[0] == "timestamp"
#: field names of the tuples :meth:`Sequencer.submit_records` returns
RECORD_FIELDS: tuple[str, ...] = EVENT_DTYPE.names[:15]
assert RECORD_FIELDS == (
    "timestamp",
    "user_ref",
    "client_token",
    "order_id",
    "price",
    "qty",
    "leaves",
    "match_id",
    "instrument_id",
    "account",
    "event_type",
    "side",
    "aggressor_side",
    "reason",
    "order_type",
)  # fmt: skip  -- the gateway and submit() index records by these positions


class BatchEngine(Protocol):
    """What the sequencer needs from the engine: one batch call, commands in, events out."""

    def process(self, cmds: np.ndarray) -> np.ndarray: ...


class Sequencer:
    """Stamps, counts, journals and executes command batches (see module docstring)."""

    def __init__(self, engine: BatchEngine, clock: Callable[[], int] = time.time_ns) -> None:
        self.engine = engine
        self.clock = clock
        self.last_ts = 0
        self.commands = 0  # global command sequence number of the last command
        self.events = 0  # engine events so far (all types): global event sequence number
        #: called with each stamped command batch before the engine sees it (journal)
        self.journal: list[Callable[[np.ndarray], None]] = []
        #: called with each batch's full event array (market data, drop copies) by
        #: :meth:`publish`, which the gateway runs after the session replies are written
        self.event_listeners: list[Callable[[np.ndarray], None]] = []
        self._unpublished: list[np.ndarray] = []

    def reserve(self, slots: int) -> int:
        """Reserve ``slots`` consecutive timestamps; returns the first. O(1)."""
        now = self.clock()
        base = now if now > self.last_ts else self.last_ts + 1
        self.last_ts = base + max(slots, 1) - 1
        return base

    def submit_records(
        self, rows: list[tuple], slots: list[int], n_slots: int
    ) -> tuple[int, list[tuple]]:
        """Run one batch; events come back as plain-int tuples in ``EVENT_DTYPE`` record
        order (:data:`RECORD_FIELDS`), LEVEL events included — the gateway's hot path.

        ``rows`` are command tuples in ``COMMAND_DTYPE`` field order (timestamp ignored);
        ``slots[i]`` is row ``i``'s position among the ``n_slots`` timestamp slots of the
        batch (the gateway interleaves replies of its own there). Row ``i`` is stamped
        ``base + slots[i]``. Returns ``(base, events)``. The commands are packed with one
        precompiled ``struct`` each (no numpy per-call costs on tiny batches) and the
        events unpacked from one copy of the engine's bytes. O(len(rows)) plus the engine.
        """
        base = self.reserve(n_slots)
        if not rows:
            return base, []
        pack = COMMAND_RECORD.pack
        cmds = np.frombuffer(
            bytearray(
                b"".join([pack(base + k, *row[1:]) for k, row in zip(slots, rows, strict=True)])
            ),
            COMMAND_DTYPE,
        )
        self.commands += len(rows)
        for listener in self.journal:
            listener(cmds)
        events = self.engine.process(cmds)
        self.events += len(events)  # every engine event, LEVEL ones included
        if self.event_listeners:
            self._unpublished.append(events)
        raw = events.tobytes()  # unpacking bytes is faster than the array's own buffer
        return base, list(EVENT_RECORD.iter_unpack(raw))

    def submit(self, rows: list[tuple], slots: list[int], n_slots: int) -> tuple[int, list[tuple]]:
        """Run one batch (see :meth:`submit_records`). Returns ``(base, events)``: every
        event but the LEVEL ones (book-depth changes go to ``event_listeners`` only, at
        :meth:`publish`; sessions do not need them), as tuples in ``EVENT_FIELDS`` order.
        O(len(rows)) plus the engine.
        """
        base, records = self.submit_records(rows, slots, n_slots)
        return base, [
            (
                r[10],
                r[0],
                r[1],
                r[2],
                r[3],
                r[8],
                r[9],
                r[11],
                r[12],
                r[4],
                r[5],
                r[6],
                r[7],
                r[13],
                r[14],
            )
            for r in records
            if r[10] != _LEVEL
        ]  # fmt: skip  -- record order -> EVENT_FIELDS order

    def publish(self) -> None:
        """Hand every event array since the last call to the event listeners, in order."""
        if not self._unpublished:
            return
        batches, self._unpublished = self._unpublished, []
        for events in batches:
            for listener in self.event_listeners:
                listener(events)

    def publish_one(self, events: np.ndarray) -> None:
        """:meth:`publish` with ``events`` (one batch's) added last: without the list when
        nothing else is waiting (the one-call path's every read)."""
        if self._unpublished:
            self._unpublished.append(events)
            self.publish()
            return
        for listener in self.event_listeners:
            listener(events)

    def snapshot(self) -> dict[str, int]:
        """The sequencer's own state (the engine snapshots itself)."""
        return {"last_ts": self.last_ts, "commands": self.commands, "events": self.events}
