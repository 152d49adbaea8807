"""The compiled order-entry core behind the Python gateway's interface (work in progress).

:class:`CoreGateway` takes inbound application messages per session (``on_message``) and
runs them, once per batch (``flush``), through two compiled calls around the engine:
:func:`exchange.core.kernel.decode_batch` (throttle, decode, checks, risk, tokens, the
order table, engine commands) and :func:`exchange.core.kernel.apply_events` (fills,
cancels, rejects and every framed reply). Python is left with one ``engine.process`` per
batch, the sequencer's bookkeeping and appending each reply to its session's store.

It makes the same decisions, byte for byte, as ``exchange.gateway.Gateway`` for Enter
Order and Cancel Order and for every malformed message (``tests/exchange/core`` drives
both with the same random message streams and compares every session's packets). It is
the first step of the plan in ``docs/gateway.md`` ("The path to the target"): Replace,
Mass Cancel, the kill switch and the close still have only the Python gateway, so this
class raises :class:`NotImplementedError` for them, and ``flopex serve`` does not use it
yet; ``bench.wire_compiled`` measures it on the wire.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from exchange.auth import AccessConfig
from exchange.core import kernel as K
from exchange.core.tables import CoreTables, command_buffer
from exchange.engine.abi import EVENT_DTYPE
from exchange.protocol import messages as m
from exchange.protocol.codes import RejectCode
from exchange.risk import RiskChecker
from exchange.sequencer import Sequencer
from exchange.session import Session

_MAX_REPLY = K.LEN_ACCEPTED  # the longest packet apply_events writes


class CoreGateway:
    """Order entry over the compiled core: sessions, risk and orders in arrays.

    ``expired_contract(instrument_id)`` decides CONTRACT_EXPIRED vs UNKNOWN_INSTRUMENT
    for an Enter Order naming an instrument that is not listed today (rare; Python).
    """

    def __init__(
        self,
        access: AccessConfig,
        risk: RiskChecker,
        sequencer: Sequencer,
        expired_contract: Callable[[int], bool] = lambda _iid: False,
        replay_limit: int = 1_000_000,
        mono_clock: Callable[[], int] = time.monotonic_ns,
        batch: int = 4096,
    ) -> None:
        self.access = access
        self.sequencer = sequencer
        self.expired_contract = expired_contract
        self.mono_clock = mono_clock
        self.tables = CoreTables.build(access, risk, mono_clock())
        by_session = {lg.session: lg for lg in access.logins.values()}
        self.sessions: list[Session] = [
            Session(by_session[name], replay_limit)
            for name, _ in sorted(self.tables.sessions.items(), key=lambda kv: kv[1])
        ]
        self._index = {s.name: i for i, s in enumerate(self.sessions)}
        self._payloads: list[bytes] = []
        self._msg_rows: list[tuple[int, int, int, int]] = []
        self._pos = 0
        self.BE = np.zeros((batch, K.BF), np.int64)
        self.CMDS = command_buffer(batch)

    def session(self, name: str) -> Session:
        """The session of login session ``name`` (every login has one from the start)."""
        return self.sessions[self._index[name]]

    @property
    def closed(self) -> bool:
        return bool(self.tables.G[K.G_CLOSED])

    @closed.setter
    def closed(self, value: bool) -> None:
        self.tables.G[K.G_CLOSED] = int(value)

    # --- inbound -----------------------------------------------------------------------
    def on_message(self, s: Session, data: bytes) -> None:
        """Queue one inbound application message of ``s`` for the next :meth:`flush`."""
        self._msg_rows.append((self._index[s.name], self._pos, len(data), self.mono_clock()))
        self._payloads.append(data)
        self._pos += len(data)

    def flush(self) -> None:
        """Run every queued message through the core and the engine, in arrival order, and
        append every reply to its session's store (and live connection). O(messages +
        events) in compiled code, plus one store append per reply."""
        if not self._msg_rows:
            return
        buf = np.frombuffer(b"".join(self._payloads), np.uint8)
        MSG = np.array(self._msg_rows, np.int64).reshape(-1, 4)
        self._payloads, self._msg_rows, self._pos = [], [], 0
        t = self.tables
        n_msg = len(MSG)
        j, resumed, n_be, n_cmd = 0, False, 0, 0
        while j < n_msg or n_be:
            if j >= n_msg:
                self._run(buf, n_be, n_cmd)
                break
            nxt, n_be, n_cmd, st = _decode(buf, MSG, j, n_msg, resumed, t, self, n_be, n_cmd)
            resumed = resumed and nxt == j
            j = nxt
            if st == K.ST_DONE:
                continue
            if st == K.ST_FLUSH_FIRST:
                self._run(buf, n_be, n_cmd)
                n_be = n_cmd = 0
                resumed = True
            elif st == K.ST_FULL:
                self._run(buf, n_be, n_cmd)
                n_be = n_cmd = 0
            elif st == K.ST_GROW:
                t.grow()
            else:  # ST_OTHER: message j passed the throttle; Python decides it
                if n_be >= len(self.BE):
                    self._run(buf, n_be, n_cmd)
                    n_be = n_cmd = 0
                n_be = self._other(buf, MSG[j], n_be)
                j += 1
                resumed = False

    def _other(self, buf: np.ndarray, row: np.ndarray, n_be: int) -> int:
        """A message the kernel hands back: an Enter Order for an unlisted instrument (its
        token already taken) or anything but Enter / Cancel Order. Writes its reject entry
        and returns the new entry count."""
        s, p, ln = int(row[0]), int(row[1]), int(row[2])
        data = buf[p : p + ln].tobytes()
        if ln == m.ENTER_ORDER_SIZE and data[0] == K.MSG_ENTER:
            iid = int.from_bytes(data[K.EO_INST : K.EO_INST + 4], "big")
            code = (
                RejectCode.CONTRACT_EXPIRED
                if self.expired_contract(iid)
                else (RejectCode.UNKNOWN_INSTRUMENT)
            )
            tok = int.from_bytes(data[1:5], "big")
            return _reject_entry(self.BE, n_be, s, tok, K.MSG_ENTER, code, K.EO_INST, p)
        try:
            msg = m.decode_inbound(data)
        except m.MessageError as exc:
            return _reject_entry(self.BE, n_be, s, exc.token, exc.request, exc.code, exc.offset, p)
        raise NotImplementedError(
            f"{type(msg).__name__} is not handled by the compiled core yet (the Python "
            "gateway handles it; see docs/gateway.md)"
        )

    def _run(self, buf: np.ndarray, n_be: int, n_cmd: int) -> None:
        """One engine batch: stamp, journal listeners, engine, replies into the stores."""
        if not n_be:
            return
        seq = self.sequencer
        base = seq.reserve(n_be)
        cmds = self.CMDS[:n_cmd]
        ev = None
        if n_cmd:
            cmds["timestamp"] += base
            seq.commands += n_cmd
            for listener in seq.journal:
                listener(cmds)
            ev = seq.engine.process(cmds)
            seq.events += len(ev)
            if seq.event_listeners:
                seq._unpublished.append(ev)
        n_ev = 0 if ev is None else len(ev)
        if ev is None:
            ev = _NO_EVENTS
        t = self.tables
        out = np.empty(_MAX_REPLY * (n_ev + n_be), np.uint8)
        idx = np.empty((n_ev + n_be, 3), np.int64)
        _, n_out = K.apply_events(
            ev, n_ev, base, buf, self.BE, n_be, t.SESS, t.ACCT, t.INST, t.EXP, t.ORD, t.TOKH,
            t.G, t.MAPS, out, idx,
        )  # fmt: skip
        raw = out.tobytes()
        sessions = self.sessions
        for s, o, ln in idx[:n_out].tolist():
            sessions[s].append(raw[o : o + ln])


_NO_EVENTS = np.zeros(0, dtype=EVENT_DTYPE)
_NO_EVENTS.setflags(write=False)


def _reject_entry(
    BE: np.ndarray, n: int, s: int, tok: int, request: int, code: int, offset: int, raw: int
) -> int:
    BE[n] = (K.K_REJECT, s, -1, tok & 0xFFFFFFFF, request & 0xFF, int(code), offset, raw)
    return n + 1


def _decode(
    buf: np.ndarray,
    MSG: np.ndarray,
    j: int,
    n_msg: int,
    resumed: bool,
    t: CoreTables,
    g: CoreGateway,
    n_be: int,
    n_cmd: int,
) -> tuple[int, int, int, int]:
    """One :func:`~exchange.core.kernel.decode_batch` call over the current tables."""
    return K.decode_batch(
        buf, MSG, j, n_msg, resumed, t.SESS, t.ACCT, t.PERM, t.INST, t.EXP, t.ORD, t.TOKH,
        t.G, t.MAPS, g.BE, n_be, g.CMDS, n_cmd,
    )  # fmt: skip
