"""The matching engine facade: one-call Python methods over the numba batch kernel.

>>> from exchange.engine.abi import EventType, Side
>>> eng = MatchingEngine([InstrumentConfig(12612, 1, 20000, reference_price_ticks=3000)])
>>> ev = eng.new_order(12612, Side.BUY, qty=5, price=2990, account=7)
>>> [EventType(t).name for t in ev["event_type"]]
['ACCEPTED', 'LEVEL']

Every method builds one ``COMMAND_DTYPE`` record and returns the events it caused as a
read-only ``EVENT_DTYPE`` array that no later call changes. The gateway batches commands
through :meth:`process`, which is where the speed is (see ``bench/engine.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
from numba import typeof

from contracts.errors import FlopexError
from exchange.engine import kernel as K
from exchange.engine.abi import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    EVENT_FIELDS,
    CmdType,
    OrderType,
    TimeInForce,
    event_words,
)
from exchange.engine.config import InstrumentConfig
from exchange.engine.entry import make_handle, process_handle
from exchange.engine.state import EngineState, make_state


class Event(msgspec.Struct, frozen=True):
    """One engine event as a typed Python object (see ``EVENT_DTYPE`` for field meaning)."""

    event_type: int
    timestamp: int
    user_ref: int
    client_token: int
    order_id: int
    instrument_id: int
    account: int
    side: int
    aggressor_side: int
    price: int
    qty: int
    leaves: int
    match_id: int
    reason: int
    order_type: int


def events_to_structs(events: np.ndarray) -> list[Event]:
    """Convert an ``EVENT_DTYPE`` array into :class:`Event` structs."""
    cols = [events[f].tolist() for f in EVENT_FIELDS]
    return [Event(*row) for row in zip(*cols, strict=True)]


def _kernel_entry(cmds: np.ndarray, words: np.ndarray, handle: np.ndarray) -> Any:
    """The compiled entry point of :func:`~exchange.engine.entry.process_handle` for these
    argument types, with the commands typed *writable* whatever ``cmds`` is.

    numba compiles one specialization per argument type, and a read-only array (commands
    decoded from journal bytes by ``np.frombuffer``) is another type: without this, the
    first recovery or ``journal verify`` on a cold cache compiled the whole kernel a second
    time (~27 s). The kernel never writes the commands, so one specialization serves both;
    the entry point unboxes arrays without looking at their flags. It also skips the
    dispatcher's argument typing on every later call (~0.4 us)."""
    if not cmds.flags.writeable:
        cmds = cmds.copy()
    sig = tuple(typeof(a) for a in (cmds, words, 0, 0, handle))
    process_handle.compile(sig)  # compiles, or loads from the cache; runs nothing
    return process_handle.overloads[sig].entry_point


#: Events per event arena (80 bytes each: ~5 MB); see :meth:`MatchingEngine.process`.
ARENA_EVENTS = 1 << 16


class MatchingEngine:
    """All instruments of one shard: numba state plus a thin command API.

    ``max_orders`` bounds live orders (resting + untriggered stops); reaching it rejects
    new orders with ``ORDER_CAPACITY``. ``event_capacity`` is the initial event buffer;
    it grows on demand, events are never dropped.
    """

    def __init__(
        self,
        configs: Sequence[InstrumentConfig],
        max_orders: int = 1 << 16,
        event_capacity: int = 1 << 14,
        state: EngineState | None = None,
    ) -> None:
        self.configs = list(configs)
        self.state = state if state is not None else make_state(self.configs, max_orders)
        self.max_orders = self.state.O.shape[0]
        #: events one kernel call may write (grows when a single step needs more)
        self._cap = max(event_capacity, 2 * K.MARGIN)
        self._new_arena()
        self._one = np.zeros(1, dtype=COMMAND_DTYPE)
        #: the state arrays as one handle (addresses and shapes, see ``entry.make_handle``)
        #: and the arrays themselves, held so that the addresses stay valid for as long as
        #: the handle is used, even if someone rebinds an attribute of ``self.state``
        self._handle = make_handle(self.state)
        self._handle_arrays = self.state.arrays()
        #: the kernel's compiled entry point (see :func:`_kernel_entry`), set on first use
        self._fast: Any = None

    # ------------------------------------------------------------------ batch
    def _new_arena(self) -> None:
        """Start a fresh event arena (the old one lives on while results point into it).
        Only when one is held or too small: an arena nothing holds is started over
        (:meth:`_window_start`), where fresh memory costs a page fault per 4 KiB written
        (~3-8 us each on a VM) and cache misses."""
        size = max(ARENA_EVENTS, 4 * self._cap)
        arena = np.zeros(size, dtype=EVENT_DTYPE)
        arena.view(np.uint8)[::4096] = 0  # its pages now, not one per batch later
        self._arena_words = event_words(arena)  # what the kernel writes into
        # results are slices of the arena itself: read-only from birth (and they cannot
        # be made writeable), while the kernel writes through its own view
        arena.setflags(write=False)
        self._arena = arena
        # the references when only the engine holds it (this attribute, the words view,
        # a local name and getrefcount's argument, as in _window_start's test)
        self._arena_refs = sys.getrefcount(arena)
        self._pos = 0

    #: :meth:`process` returns read-only views, always (callers may skip the check)
    results_read_only = True

    def process(self, cmds: np.ndarray) -> np.ndarray:
        """Apply a batch of ``COMMAND_DTYPE`` records; return every event they caused.

        The result is read-only and never changes: the kernel writes each call's events
        into a part of an *event arena* that no later call writes while a result points
        into the arena, and the result is a view of that part (no copy: O(1) on top of
        the kernel); once no result is held, the next call starts the arena over (its
        first lines are the ones in cache). An arena holds
        :data:`ARENA_EVENTS` events; when the next call might not fit, a fresh one is
        started and the old one is freed once no result points into it (a kept result
        keeps its whole arena alive, ~5 MB). Loops over kernel calls while the buffer
        fills, growing it when a single step needs more room than it has.
        Deterministic: same commands, same events.
        """
        if cmds.dtype is not COMMAND_DTYPE and cmds.dtype != COMMAND_DTYPE:
            raise FlopexError("engine.process: commands must be COMMAND_DTYPE records")
        if not cmds.flags.c_contiguous:  # the compiled entry point takes C-contiguous arrays
            cmds = np.ascontiguousarray(cmds)
        fast = self._fast
        if fast is None:
            fast = self._fast = _kernel_entry(cmds, self._arena_words, self._handle)
        start = self._window_start()
        used, ne, more = fast(cmds, self._arena_words, start, start + self._cap, self._handle)
        self._pos = start + ne
        out = self._arena[start : start + ne]
        if not more and used == len(cmds):  # the common case: one call did it all
            return out
        return self._process_rest(cmds, used, out)

    def kernel_window(self) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray]:
        """For a compiled caller that runs the kernel itself (``process_handle``, as
        ``exchange.core.fused.read_batch`` does): the event arena's words and records, the
        ``[start, end)`` part one call may write, and the state handle. Finish with
        :meth:`kernel_done`. O(1) (a fresh arena when the current one is full).
        ``exchange.core.reader`` spells out its common case (and :meth:`kernel_skip`)
        for the one-call read: keep them in step."""
        start = self._window_start()
        return self._arena_words, self._arena, start, start + self._cap, self._handle

    def _window_start(self) -> int:
        """Where the next kernel call writes its events: the arena's start again when
        nothing outside the engine holds a result (those lines are still in cache; the
        previous results are gone, so no one can see them overwritten), else right after
        the last result, in a fresh arena when the current one lacks room. O(1)."""
        arena = self._arena
        if sys.getrefcount(arena) == self._arena_refs and self._cap <= len(arena):
            return 0
        del arena  # _new_arena counts the references again
        start = self._pos
        if start + self._cap > len(self._arena):
            self._new_arena()
            start = 0
        return start

    def kernel_done(
        self, cmds: np.ndarray, start: int, used: int, ne: int, more: int
    ) -> np.ndarray:
        """The events of a batch whose first kernel call a compiled caller made in the
        window :meth:`kernel_window` gave (it returned ``used, ne, more``): exactly what
        :meth:`process` would have returned, finishing the batch if that call did not."""
        self._pos = start + ne
        out = self._arena[start : start + ne]
        if not more and used == len(cmds):
            return out
        if self._fast is None:
            self._fast = _kernel_entry(cmds, self._arena_words, self._handle)
        return self._process_rest(cmds, used, out)

    def kernel_events(self, start: int, ne: int) -> np.ndarray:
        """:meth:`kernel_done` for a batch that first call finished (it returned ``used``
        equal to the batch's length and ``more`` 0): its ``ne`` events. O(1)."""
        self._pos = start + ne
        return self._arena[start : start + ne]

    def kernel_skip(self, start: int, ne: int) -> None:
        """:meth:`kernel_events` for a caller that needs no result (the events were
        consumed in the compiled call itself). O(1)."""
        self._pos = start + ne

    def _process_rest(self, cmds: np.ndarray, pos: int, first: np.ndarray) -> np.ndarray:
        """The rest of :meth:`process` when its first kernel call did not finish: more
        calls while the event buffer fills or work is pending, growing the buffer when a
        single step needs more room. The first call stays inline in :meth:`process`
        because a per-command caller pays every Python operation there (a loop with a
        list of chunks around it cost ~4 % of a one-command call, docs/engine.md)."""
        chunks = [first]
        n = len(cmds)
        S = self.state.S
        while True:
            if S[K.S_NEED] > self._cap:
                self._cap = int(S[K.S_NEED]) * 2
            if pos >= n and S[K.S_PEND_KIND] == K.PEND_NONE:
                break
            start = self._pos
            if start + self._cap > len(self._arena):
                self._new_arena()
                start = 0
            used, ne, _more = self._fast(
                cmds[pos:], self._arena_words, start, start + self._cap, self._handle
            )
            self._pos = start + ne
            chunks.append(self._arena[start : start + ne])
            pos += used
        out = np.concatenate(chunks)
        out.setflags(write=False)
        return out

    def submit(self, cmd: np.void | np.ndarray) -> np.ndarray:
        """Apply one command record; return its events."""
        one = self._one
        one[0] = cmd
        return self.process(one)

    # ---------------------------------------------------------------- one-call API
    def _one_cmd(self, cmd_type: int, **fields: int) -> np.ndarray:
        one = self._one
        one[0] = 0
        rec = one[0]
        rec["cmd_type"] = cmd_type
        for k, v in fields.items():
            rec[k] = v
        return self.process(one)

    def new_order(
        self,
        instrument_id: int,
        side: int,
        qty: int,
        price: int = 0,
        *,
        order_type: int = OrderType.LIMIT,
        tif: int = TimeInForce.GTC,
        account: int = 1,
        stop_price: int = 0,
        display_qty: int = 0,
        min_qty: int = 0,
        expire_time: int = 0,
        smp: int = 0,
        smp_group: int = 0,
        post_only: bool = False,
        user_ref: int = 0,
        client_token: int = 0,
        timestamp: int = 0,
    ) -> np.ndarray:
        """Enter an order; returns ACCEPTED/REJECTED plus any trades and level changes."""
        return self._one_cmd(
            CmdType.NEW,
            instrument_id=instrument_id,
            side=side,
            qty=qty,
            price=price,
            order_type=order_type,
            tif=tif,
            account=account,
            stop_price=stop_price,
            display_qty=display_qty,
            min_qty=min_qty,
            expire_time=expire_time,
            smp=smp,
            smp_group=smp_group,
            flags=1 if post_only else 0,
            user_ref=user_ref,
            client_token=client_token,
            timestamp=timestamp,
        )

    def cancel(
        self, order_id: int, account: int = 1, *, client_token: int = 0, timestamp: int = 0
    ) -> np.ndarray:
        """Cancel one order (the account must own it)."""
        return self._one_cmd(
            CmdType.CANCEL,
            order_id=order_id,
            account=account,
            client_token=client_token,
            timestamp=timestamp,
        )

    def replace(
        self,
        order_id: int,
        qty: int,
        price: int = 0,
        account: int = 1,
        *,
        stop_price: int = 0,
        client_token: int = 0,
        timestamp: int = 0,
    ) -> np.ndarray:
        """Cancel-replace: ``qty`` is the new open quantity; see docs for priority rules."""
        return self._one_cmd(
            CmdType.REPLACE,
            order_id=order_id,
            qty=qty,
            price=price,
            account=account,
            stop_price=stop_price,
            client_token=client_token,
            timestamp=timestamp,
        )

    def mass_cancel(
        self, instrument_id: int = 0, account: int = 0, *, timestamp: int = 0
    ) -> np.ndarray:
        """Cancel every order of ``account`` (0 = all) in ``instrument_id`` (0 = all)."""
        return self._one_cmd(
            CmdType.MASS_CANCEL, instrument_id=instrument_id, account=account, timestamp=timestamp
        )

    def session_close(self, instrument_id: int = 0, *, timestamp: int = 0) -> np.ndarray:
        """Expire DAY orders."""
        return self._one_cmd(
            CmdType.SESSION_CLOSE, instrument_id=instrument_id, timestamp=timestamp
        )

    def expire_gtd(self, timestamp: int, instrument_id: int = 0) -> np.ndarray:
        """Expire GTD orders whose expiry time is at or before ``timestamp``."""
        return self._one_cmd(CmdType.EXPIRE_GTD, instrument_id=instrument_id, timestamp=timestamp)

    def set_status(self, instrument_id: int, status: int, *, timestamp: int = 0) -> np.ndarray:
        """Open / halt / pre-open / close one instrument (to OPEN: the opening auction)."""
        return self._one_cmd(
            CmdType.SET_STATUS, instrument_id=instrument_id, status=status, timestamp=timestamp
        )

    def set_reference(self, instrument_id: int, price: int, *, timestamp: int = 0) -> np.ndarray:
        """Set the reference (previous settlement) price the daily limits are centred on."""
        return self._one_cmd(
            CmdType.SET_REFERENCE, instrument_id=instrument_id, price=price, timestamp=timestamp
        )

    # ------------------------------------------------------------- inspection
    def snapshot(self) -> dict[str, Any]:
        """The book as plain data, in exactly the reference book's snapshot format."""
        from exchange.engine.inspect import snapshot

        return snapshot(self.state)

    def indicative_price(self, instrument_id: int) -> tuple[int, int, int, int]:
        """The last published indicative opening price of a pre-open instrument:
        ``(price, volume, imbalance side, imbalance qty)``, all 0 when there is none
        (e.g. for a market-data snapshot to late joiners). O(instruments)."""
        rows = np.flatnonzero(self.state.INST[:, K.I_ID] == instrument_id)
        if len(rows) == 0:
            raise FlopexError(f"instrument_id: {instrument_id} is not configured")
        return tuple(int(x) for x in self.state.INST[rows[0], K.I_IOP : K.I_IOP + 4])  # type: ignore[return-value]

    def validate(self) -> None:
        """Check every internal invariant; raises AssertionError on the first broken one."""
        from exchange.engine.inspect import validate

        validate(self.state)

    def state_digest(self) -> str:
        """SHA-256 over the full state arrays (journal recovery proofs)."""
        return self.state.digest()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Copies of the full state, restorable with :meth:`from_arrays`."""
        return self.state.to_arrays()

    @classmethod
    def from_arrays(
        cls, configs: Sequence[InstrumentConfig], arrays: dict[str, np.ndarray]
    ) -> MatchingEngine:
        """Restore an engine exactly as :meth:`to_arrays` saw it."""
        if int(arrays.get("S", np.zeros(K.N_SFIELDS))[K.S_PEND_KIND]) != K.PEND_NONE:
            raise FlopexError("engine snapshot: taken with unfinished work pending")
        return cls(configs, state=EngineState.from_arrays(arrays))

    def save(self, path: str) -> None:
        """Write the state to an ``.npz`` file."""
        np.savez(path, **self.to_arrays())

    @classmethod
    def load(cls, configs: Sequence[InstrumentConfig], path: str) -> MatchingEngine:
        """Read a state written by :meth:`save`."""
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise FlopexError(f"engine snapshot {path}: {exc}") from None
        return cls.from_arrays(configs, arrays)

    def live_orders(self) -> int:
        return int(self.max_orders - self.state.S[K.S_FREE_COUNT])


__all__ = ["EVENT_DTYPE", "Event", "MatchingEngine", "events_to_structs"]
