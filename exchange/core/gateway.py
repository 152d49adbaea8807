"""The order-entry gateway over the compiled core: what ``flopex serve`` runs.

:class:`CoreGateway` is :class:`exchange.gateway.Gateway` with its order state — tokens,
throttle buckets, orders, risk exposures — in the arrays of :mod:`exchange.core.tables`,
and its per-message and per-event work in numba kernels
(:mod:`exchange.core.kernel`). Inbound messages queue up (``on_message``) and are decoded
in arrival order at the batch's flush: Enter Order and Cancel Order entirely in compiled
code; Replace, Mass Cancel, the kill switch, Close Day and every malformed message in
Python over the same arrays, in their place. The events of a batch are applied in compiled
code too (accepts, fills, cancels, rejects, stop triggers, every reply framed), handing
back to Python only for the rare ones (a replace's outcome, a status change, the done of
a sweep). The batch's journal records (its commands and a binary gateway note) are framed
by a third kernel and written with one ``write`` (``_commit_binary``); batches with
replies Python built keep the msgpack note (``journal_delta``). Everything else — logins,
sessions and their replay stores, snapshots and recovery, the close, the trade log,
market data — is the Python gateway's own code, inherited.

``exchange.gateway.Gateway`` stays as the readable reference: ``tests/exchange/core``
drives both with the same random message streams and requires the same bytes on every
session, and the gateway's whole test suite runs against this class (``build_gateway``).
"""

from __future__ import annotations

import heapq
import logging
import struct
import time
from array import array
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numba import typeof

from exchange import feed_kernel
from exchange.auth import AccessConfig, Login
from exchange.core import fused as F
from exchange.core import kernel as K
from exchange.core.reader import make_reader
from exchange.core.tables import CoreTables, command_buffer
from exchange.engine.abi import EVENT_DTYPE, CmdType, EventType
from exchange.gateway import (
    _K_LOCAL,
    _K_STATUS,
    _K_SWEEP,
    Gateway,
    GatewayImage,
    _row,
)
from exchange.protocol import messages as m
from exchange.protocol.codes import RejectCode, WireCancelReason
from exchange.protocol.engine_map import STATUS_TO_WIRE, reject_to_wire
from exchange.protocol.soupbintcp import sequenced
from exchange.risk import RiskChecker
from exchange.sequencer import Sequencer
from exchange.session import Session

#: the one-call path's result codes and the constants it tests per read, as module
#: globals (one dictionary lookup each instead of two)
_R_DECODED, _R_APPLIED = F.R_DECODED, F.R_APPLIED
_AP_DONE, _G_GTD_NEW = K.AP_DONE, K.G_GTD_NEW

log = logging.getLogger("flopex.gateway")

_MAX_REPLY = K.LEN_ACCEPTED  # the longest packet apply_events writes
_NO_EVENTS = np.zeros(0, dtype=EVENT_DTYPE)
_NO_EVENTS.setflags(write=False)
#: the log entry of replies still in the core's OUT buffer (see ``CoreGateway._jlog``)
_OUT_PENDING = (b"", b"")
#: ``apply_journal``'s journal arguments when it must not frame the journal
_NO_JOURNAL = (0, 0, 0, 0, 0)
_E_REPLACED = int(EventType.REPLACED)
_E_STATUS = int(EventType.STATUS)
_E_DONE = int(EventType.MASS_CANCEL_DONE)
_E_REJECTED = int(EventType.REJECTED)
_E_ACCEPTED = int(EventType.ACCEPTED)
_MASK = K.REF_ROW_MASK


class CoreSession(Session):
    """A session of :class:`CoreGateway`: every packet appended to its store is also
    logged, in order, in the gateway's journal log (``jlog``: ``(row as int16 bytes,
    framed packet)``) instead of the per-session "unjournaled" mark of ``Session``; the
    compiled core's replies are logged in bulk, one chunk per batch."""

    def __init__(self, login: Login, replay_limit: int = 1_000_000) -> None:
        super().__init__(login, replay_limit)
        self.jlog: list[tuple[bytes, bytes]] | None = None
        self.jrow = b""
        self.row = -1  # the session's row in the core's tables

    def track(self, touched: list[Session]) -> None:
        """Journaling goes through the gateway's log (see the class docstring)."""

    def take_unjournaled(self) -> bytes:
        return b""

    def append(self, framed: bytes) -> None:
        Session.append(self, framed)
        if self.jlog is not None:
            self.jlog.append((self.jrow, framed))


class OrderView:
    """A read-only look at one working order's row (what ``Gateway.orders`` held as
    ``OrderRec``), for tests, admin and snapshots. Reads the row when accessed."""

    __slots__ = ("_g", "_row")

    def __init__(self, g: CoreGateway, row: int) -> None:
        self._g, self._row = g, row

    def _f(self, field: int) -> int:
        return int(self._g.tables.ORD[self._row, field])

    ref = property(lambda self: self._f(K.O_REF))
    token = property(lambda self: self._f(K.O_TOKEN))
    side = property(lambda self: self._f(K.O_SIDE))
    price = property(lambda self: self._f(K.O_PRICE))
    quantity = property(lambda self: self._f(K.O_QTY))
    order_id = property(lambda self: self._f(K.O_ORDER_ID))
    stop_price = property(lambda self: self._f(K.O_STOP))
    working = property(lambda self: bool(self._f(K.O_WORKING)))
    expire = property(lambda self: self._f(K.O_EXPIRE))
    account_id = property(lambda self: int(self._g.tables.ACCT[self._f(K.O_ACCT), K.A_ID]))
    instrument_id = property(lambda self: int(self._g.tables.INST[self._f(K.O_INST), K.I_ID]))

    @property
    def session(self) -> Session:
        return self._g.session_at(self._f(K.O_SESS))


class _Orders:
    """``ref -> OrderView`` over the live rows (optionally one session's, by token): what
    ``Gateway.orders`` / ``Session.orders`` were, for tests and admin. ``get`` is O(1);
    ``len``, iteration and ``values`` scan the order table (numpy, O(rows)): not for the
    hot path, which never uses them."""

    def __init__(self, g: CoreGateway, sess: int | None = None) -> None:
        self._g, self._sess = g, sess

    def _rows(self) -> np.ndarray:
        ORD = self._g.tables.ORD
        live = ORD[:, K.O_REF] != 0
        if self._sess is not None:
            live &= ORD[:, K.O_SESS] == self._sess
        rows = np.flatnonzero(live)
        return rows[np.argsort(ORD[rows, K.O_SEQ], kind="stable")]

    def _key(self, row: int) -> int:
        f = K.O_REF if self._sess is None else K.O_TOKEN
        return int(self._g.tables.ORD[row, f])

    def __len__(self) -> int:
        return len(self._rows())

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[int]:
        return iter([self._key(r) for r in self._rows()])

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def get(self, key: int, default: Any = None) -> Any:
        g = self._g
        if self._sess is None:
            row = g.row_of_ref(key)
        else:
            row = g.token_row(self._sess, key)
        return OrderView(g, int(row)) if row >= 0 else default

    def __getitem__(self, key: int) -> OrderView:
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def values(self) -> list[OrderView]:
        return [OrderView(self._g, int(r)) for r in self._rows()]

    def keys(self) -> list[int]:
        return list(self)


class CoreRisk:
    """The gateway's risk state seen through the core's arrays: the configuration
    (``instruments``, notional limits) from the ``RiskChecker`` it was built from, the
    kill-switch set, and positions and working quantity read from the exposure table."""

    def __init__(self, checker: RiskChecker, tables: CoreTables) -> None:
        self.checker = checker
        self.tables = tables
        self.instruments = checker.instruments
        self.account_max_notional = checker.account_max_notional
        self.default_max_notional_minor = checker.default_max_notional_minor
        self.blocked: set[int] = set(checker.blocked)

    def _exp(self, account: int, inst: int) -> np.ndarray | None:
        t = self.tables
        a, i = t.accounts.get(account), t.instruments.get(inst)
        return None if a is None or i is None else t.EXP[a, i]

    def position(self, account: int, inst: int) -> int:
        e = self._exp(account, inst)
        return 0 if e is None else int(e[K.X_POSITION])

    def working(self, account: int, inst: int) -> tuple[int, int]:
        e = self._exp(account, inst)
        return (0, 0) if e is None else (int(e[K.X_BUY]), int(e[K.X_SELL]))

    def positions(self) -> list[list[int]]:
        """``[account, instrument, net position]`` for every non-zero position."""
        t = self.tables
        out = []
        for aid, a in t.accounts.items():
            for iid, i in t.instruments.items():
                p = int(t.EXP[a, i, K.X_POSITION])
                if p:
                    out.append([aid, iid, p])
        return out

    def set_blocked(self, account: int, blocked: bool) -> None:
        """The kill switch: block (or unblock) ``account`` for new orders and replaces."""
        (self.blocked.add if blocked else self.blocked.discard)(account)
        a = self.tables.accounts.get(account)
        if a is not None:
            self.tables.ACCT[a, K.A_BLOCKED] = int(blocked)


class CoreGateway(Gateway):
    """``Gateway`` with its order state and hot paths in the compiled core (module doc)."""

    session_class = CoreSession

    def __init__(
        self,
        access: AccessConfig,
        contracts: list,
        trade_date: Any,
        sequencer: Sequencer,
        risk: RiskChecker,
        data_dir: Any = None,
        replay_limit: int = 1_000_000,
        schedule: Callable[[Callable[[], None]], Any] | None = None,
        mono_clock: Callable[[], int] = time.monotonic_ns,
        batch: int = 4096,
    ) -> None:
        super().__init__(
            access, contracts, trade_date, sequencer, risk, data_dir, replay_limit, schedule
        )
        self.mono_clock = mono_clock
        self.tables = CoreTables.build(access, risk, mono_clock())
        #: the globals row read and written from Python as ints (a memoryview index is a
        #: C path; a numpy scalar read is the batch's first numpy call, ~1 us live)
        self._Gv = memoryview(self.tables.G)
        self.risk = CoreRisk(risk, self.tables)  # type: ignore[assignment]
        self.orders = _Orders(self)  # type: ignore[assignment]
        n_sess = self.tables.SESS.shape[0]
        self._by_row: list[Session | None] = [None] * n_sess
        self._payloads: list[bytes] = []
        self._rows = array("q")  # per queued message: session row, offset, length, ns
        self._pos = 0
        self.BE = np.zeros((batch, K.BF), np.int64)
        self.CMDS = command_buffer(batch)
        self.GTDB = np.zeros((batch, 2), np.int64)
        self.CNT = np.zeros(batch, np.int64)
        self.OUT = np.empty(_MAX_REPLY * 2 * batch, np.uint8)
        self.OUTIDX = np.empty((2 * batch, 3), np.int64)
        self.TR = np.empty((2 * batch, K.TF), np.int64)
        self._out_views()
        self._n_be = 0
        self._n_cmd = 0
        self._n_cnt = 0
        self._ctx: dict[int, Any] = {}  # entry -> what Python needs for it
        self._buf = b""  # the bytes the pending entries point into
        self._decoding = False
        self._decode_ep: Any = None
        self._apply_ep: Any = None
        self._note_ep: Any = None
        self._stamp_ep: Any = None
        #: the one-call path (:meth:`on_read`): its entry point, once warmed up, the rows
        #: its reads' messages get, and the handle of the tables it takes (rebuilt when
        #: any of them is reallocated: ``_tabs`` is None) with the arrays it points into
        self._read_ep: Any = None
        #: on_read's function per (session row, max_packet): (session, reader)
        self._readers: dict[tuple[int, int], tuple[Session, Callable[[bytes], Any]]] = {}
        self._msgf = array("q", bytes(8 * 4 * batch))
        self._tabs: np.ndarray | None = None
        self._tabs_arrays: tuple = ()
        #: the market data feed the one-call path encodes itself (:meth:`attach_feed`):
        #: its publisher, the listener it is registered as, its buffers (placeholders
        #: until one is attached)
        self._kpub: Any = None
        self._kfeed: Any = None
        self._kfeed_bufs = feed_kernel.buffers(1)
        #: every packet appended to a session store since the last journal note, in order
        #: (``(session row as int16 bytes, packets)``): what the next note records. The
        #: last ``_deliver``'s chunk is logged as ``_OUT_PENDING`` while ``OUT`` and
        #: ``OUTIDX`` still hold it (``_out_raw``, ``_out_end`` bytes, ``_out_n``
        #: packets): a binary note reads it from there, :meth:`_log_out` makes it a chunk
        self._jlog: list[tuple[bytes, bytes]] = []
        self._out_raw = b""
        self._out_end = self._out_n = 0
        #: per session row: whether its initial Trading Status went out, and the last
        #: token and that flag as the journal last recorded them (a note lists the rows
        #: that differ)
        self.SSENT = np.zeros(n_sess, np.int64)
        self.JTOK = np.zeros(n_sess, np.int64)
        self.JSS = np.zeros(n_sess, np.int64)
        #: journal notes name sessions by row; the first note this process writes (a
        #: msgpack one) carries the names, and binary notes may follow it
        self._names_journaled = False
        self.NOTE = np.empty((2 * batch, K.NF), np.int64)
        self.GONE = np.empty(2 * batch, np.int64)
        self.CMD8 = self.CMDS.view(np.uint8)
        self.JB = np.empty(K.journal_room(batch, 4 * batch, 0, 2 * batch, n_sess), np.uint8)
        self._jb_mv = memoryview(self.JB)  # sliced per batch without a numpy call
        self._journal_ep: Any = None
        #: session names by table row (journal notes name order sessions by row)
        self._session_names = [
            name for name, _ in sorted(self.tables.sessions.items(), key=lambda kv: kv[1])
        ]

    # --- sessions ----------------------------------------------------------------------
    def session_for(self, login: Login) -> Session:
        s = self.sessions.get(login.session)
        if s is None:
            s = super().session_for(login)
            self._attach(s)
        return s

    def _attach(self, s: Session) -> None:
        row = self.tables.sessions[s.name]
        self._by_row[row] = s
        assert isinstance(s, CoreSession)
        s.jlog, s.jrow, s.row = self._jlog, struct.pack("<h", row), row
        s.orders = _Orders(self, row)  # type: ignore[assignment]
        s.last_token = int(self.tables.SESS[row, K.S_LAST_TOKEN])

    def send_initial_status(self, s: Session) -> None:
        super().send_initial_status(s)
        self.SSENT[self.tables.sessions[s.name]] = 1

    def session_at(self, row: int) -> Session:
        """The session of table row ``row`` (created on first use, as a login would)."""
        s = self._by_row[row]
        if s is None:
            name = self._session_names[row]
            login = next(lg for lg in self.access.logins.values() if lg.session == name)
            s = self.session_for(login)
        return s

    def attach_feed(self, pub: Any) -> None:
        """:meth:`Gateway.attach_feed`; while ``pub`` is the only event listener, the
        one-call path encodes its reads' market data in the same compiled call (into
        ``pub``'s buffers: :meth:`~exchange.marketdata.FeedPublisher.kernel_buffers`),
        with nothing for Python to do per read unless ``pub`` has subscribers."""
        listener = pub.publish_events
        self.sequencer.event_listeners.append(listener)
        self._kpub, self._kfeed = pub, listener
        self._kfeed_bufs = pub.kernel_buffers()
        self._tabs = None

    def _take_token(self, s: Session, token: int) -> bool:
        """``Session.take_token`` on the core's token state. O(1)."""
        SESS = self.tables.SESS
        row = self.tables.sessions[s.name]
        if token <= SESS[row, K.S_LAST_TOKEN]:
            return False
        SESS[row, K.S_LAST_TOKEN] = token
        s.last_token = token
        return True

    def row_of_ref(self, ref: int) -> int:
        """The order row of order reference ``ref``, or -1 if it is not working."""
        row = ref & _MASK
        ORD = self.tables.ORD
        return row if ref > 0 and row < len(ORD) and ORD[row, K.O_REF] == ref else -1

    # --- inbound -----------------------------------------------------------------------
    def on_message(self, s: Session, data: bytes) -> None:
        """Queue one inbound application message of ``s`` for the batch (never raises).
        O(1); decoded at the flush, in arrival order with everything else queued."""
        self._rows.extend((s.row, self._pos, len(data), self.mono_clock()))  # type: ignore[attr-defined]
        self._payloads.append(data)
        self._pos += len(data)
        self._schedule_flush()

    def flush(self) -> None:
        """Decode every queued message, run the batch through the engine and deliver every
        reply (journaled first when durable). O(messages + events) compiled, plus Python
        for rare messages and events and one store append per reply."""
        self._scheduled = False
        self._decode_pending()
        self._run()

    def _decode_pending(self) -> None:
        """Turn the queued messages into batch entries (engine commands or rejects), in
        arrival order; a Cancel of an order of the pending batch runs the batch first."""
        if not self._payloads or self._decoding:
            return
        self._decoding = True
        try:
            self._decode_queue()
        finally:
            self._decoding = False

    def _decode_queue(self) -> None:
        # the kernel takes the bytes and the rows as they are: no numpy call here (the
        # first numpy call of a batch costs ~2.7 us live, docs/gateway.md)
        start = len(self._buf) if self._n_be else 0
        buf = b"".join(self._payloads)
        MSG = self._rows
        if start:  # pending entries point into the current buffer: append after it
            buf = self._buf + buf
            for r in range(1, len(MSG), 4):
                MSG[r] += start
        self._payloads, self._rows, self._pos = [], array("q"), 0
        self._buf = buf
        self._decode_loop(buf, MSG, len(MSG) // 4, 0, -1)

    def _decode_loop(self, buf: bytes, MSG: array, n_msg: int, j: int, st: int) -> None:
        """Decode messages ``j:n_msg`` of ``MSG`` into batch entries; ``st`` >= 0: a decode
        call already ran and stopped at ``j`` with that status (:meth:`on_read`)."""
        resumed = False
        while j < n_msg:
            if st < 0:
                args = self._decode_args(buf, MSG, j, n_msg, resumed)
                dec = self._decode_ep or self._entry("_decode_ep", K.decode_batch, args)
                nxt, self._n_be, self._n_cmd, st = dec(*args)
                if self._Gv[K.G_GTD_NEW]:
                    self._gtd_new()
                resumed = resumed and nxt == j
                j = nxt
            st, now = -1, st
            if now == K.ST_DONE:
                continue
            if now == K.ST_GROW:
                self.tables.grow()
                self._tabs = None
                continue
            if now == K.ST_OTHER and self._n_be < len(self.BE) - 1:
                # message j passed the throttle; Python decides it, in its place
                s, p, ln = MSG[4 * j], MSG[4 * j + 1], MSG[4 * j + 2]
                sess = self.session_at(s)
                try:
                    self._other(sess, buf[p : p + ln])
                except Exception:  # a bug must cost one connection, never the server
                    log.exception("internal error on session %s; disconnecting it", sess.name)
                    if sess.sink is not None and hasattr(sess.sink, "disconnect"):
                        sess.sink.disconnect("internal error")
                j += 1
                resumed = False
                continue
            # ST_FLUSH_FIRST (a Cancel of an order of this batch), ST_FULL, or no room:
            # run what is decoded, then go on
            self._run()
            resumed = now == K.ST_FLUSH_FIRST

    def _gtd_new(self) -> None:
        """Queue the expiries of the GTD orders the last decode entered."""
        Gv = self._Gv
        for expire, ref in self.GTDB[: Gv[K.G_GTD_NEW]].tolist():
            heapq.heappush(self._gtd, (expire, ref))
        Gv[K.G_GTD_NEW] = 0

    # --- one compiled call per read ------------------------------------------------------
    #: whether the readers spell out the common case of a read (set False, before the
    #: first read, for the methods they spell out: the tests' reference)
    read_spelled_out = True

    def on_read(self, s: Session, data: bytes, max_packet: int) -> bool:
        """Run one read of session ``s`` — ``data``, the bytes as received — as its own
        batch through the one-call path (:func:`exchange.core.fused.read_batch`): frames,
        decode, engine, replies and journal group in one compiled call, then the journal
        copy and the replies as :meth:`flush` ends. Returns False, having done nothing,
        when the read is not that case (a packet other than Unsequenced Data, a partial
        frame, a batch pending, a journal note only Python writes): the caller then takes
        the ordinary path. Same replies, journal and state as that path
        (``tests/exchange/core/test_one_call.py``). Runs :func:`~exchange.core.reader.
        make_reader`'s function for ``s`` (made once). O(bytes + messages + events)."""
        ent = self._readers.get((s.row, max_packet))
        if ent is None or ent[0] is not s:
            fn = make_reader(self, s, max_packet, spelled_out=self.read_spelled_out)
            ent = self._readers[(s.row, max_packet)] = (s, fn)
        return ent[1](data)

    def reader(self, s: Session, max_packet: int, conn: Any) -> Callable[[bytes], Any]:
        """The ``data_received`` of ``conn``, session ``s``'s live connection: its reads
        through the one-call path (:func:`~exchange.core.reader.make_reader`), the
        others through ``conn.ordinary_read``."""
        return make_reader(self, s, max_packet, conn, self.read_spelled_out)

    def _read_rest(
        self, s: Session, data: bytes, r: tuple, d: Any, gw: int, eng: Any, e0: int, ls: list
    ) -> None:
        """Finish a read whose kernel call (:func:`~exchange.core.fused.read_batch`,
        result ``r``) ran but which is not the reader's common case: decode the rest,
        finish the engine's batch, or apply what Python must decide; then the journal,
        the replies, the fills, the market data and a due snapshot, as :meth:`flush`
        ends. ``d`` is the durable journal (or None), ``gw`` the note number the kernel
        was given, ``eng`` the engine and ``e0`` where its events start, ``ls`` the
        sequencer's event listeners."""
        seq = self.sequencer
        res = r[0]
        if self._Gv[_G_GTD_NEW]:
            self._gtd_new()
        self._buf = data
        n_be, n_cmd = r[3], r[4]
        if res == _R_DECODED:
            self._n_be, self._n_cmd = n_be, n_cmd
            self._decoding = True
            try:
                self._decode_loop(data, self._msgf, r[2], r[1], r[5])
            finally:
                self._decoding = False
            self._run()
        elif res == _R_APPLIED and r[15] == _AP_DONE and (d is None or r[16] >= 0):
            # everything applied: nothing Python must decide (nothing is pending: _n_be
            # and _n_cmd stay 0), but the replies, fills or feed need the general steps
            self._n_cnt = 0
            seq.last_ts = r[6] + n_be - 1  # Sequencer.reserve(n_be), done in the kernel
            seq.commands += n_cmd
            seq.events += r[8]
            if d is not None:  # journaled (and fsynced) before any reply is written
                frames = r[16] if r[21] else self._jb_mv[: r[16]]  # r[21]: in the map
                d.commit_frames(frames, n_cmd, gw if r[17] else None)
            n_out = r[13]
            if n_out:
                raw = self._out_mv[: r[12]].tobytes()
                sink = s.sink
                if r[18] and sink is not None and sink.write_now(raw):
                    # every reply is this session's: written first, then stored (nothing
                    # reads the store in between; Sequenced Data carries no number)
                    s.keep_blob(raw, n_out)
                else:
                    self._replies(r[12], n_out, raw)
            if r[14]:
                self._fills(r[14])
            if self._dirty:
                dirty, self._dirty = self._dirty, set()
                for conn in dirty:
                    conn.drain_out()
            if r[14] and self.tradelog is not None:
                self.tradelog.flush()
            # the engine's events, after the replies; nothing has used the engine since
            # the kernel call, which ran the whole batch (R_APPLIED)
            if r[19] >= 0:  # the kernel published them to the feed, the only listener
                eng.kernel_skip(e0, r[8])
                if r[19] and self._kpub.sinks:
                    self._kpub.deliver_pending(r[20])
            elif ls:
                seq.publish_one(eng.kernel_events(e0, r[8]))
            else:
                eng.kernel_skip(e0, r[8])
        else:
            base = r[6]
            self._n_be = self._n_cmd = self._n_cnt = 0
            seq.last_ts = base + n_be - 1  # Sequencer.reserve(n_be), done in the kernel
            seq.commands += n_cmd
            ev = eng.kernel_done(self.CMDS[:n_cmd], e0, r[7], r[8], r[9])
            seq.events += len(ev)
            if seq.event_listeners:
                seq._unpublished.append(ev)
            first = r[10:] if res == _R_APPLIED else None
            self._finish(ev, base, n_be, n_cmd, {}, d is not None, first)
        if d is not None and d.snapshot_due:
            d.snapshot(background=d.background)

    def _warm_read(self) -> bool:
        """Compile (or load) the one-call path's kernel; False if this gateway cannot take
        it (an engine other than the numba one)."""
        eng = self.sequencer.engine
        if not hasattr(eng, "kernel_window"):
            self._read_ep = False
            return False
        words, arena, e0, e1, handle = eng.kernel_window()
        args = (
            b"\0", 0, 0, 0, self._fused_tables(), 0, 0, words, arena, e0, e1, handle, 0, 0, 0,
            0, 0, False,
        )  # fmt: skip
        self._entry("_read_ep", F.read_batch, args)
        return True

    def _fused_tables(self) -> np.ndarray:
        """The handle of the tables and buffers :func:`~exchange.core.fused.read_batch`
        takes (:func:`~exchange.core.fused.table_handle`; kept, with the arrays it
        points into, until one of them is reallocated)."""
        t = self.tables
        arrays = (
            t.SESS, t.ACCT, t.PERM, t.INST, t.EXP, t.ORD, t.TOKH, t.G, t.MAPS, self.BE,
            self.GTDB, self.CNT, self.OUT, self.OUTIDX, self.TR, self.CMD8, self.NOTE,
            self.GONE, self.SSENT, self.JTOK, self.JSS, self.JB, *self._kfeed_bufs,
            np.frombuffer(self._msgf, np.int64), self.CMDS,
        )  # fmt: skip
        self._tabs = F.table_handle(arrays)
        self._tabs_arrays = arrays  # the handle's memory stays alive with them
        return self._tabs

    def _binary(self) -> bool:
        """Whether the core frames this batch's journal records itself: the journal is the
        only listener and this process's session names are journaled (see
        :meth:`_commit_binary`). ``exchange.core.reader`` spells this and
        :meth:`_flags_changed` out: keep the three in step."""
        d = self.durable
        seq = self.sequencer
        return (
            d is not None
            and self._names_journaled
            and len(seq.journal) == 1
            and seq.journal[0] is d.listener
            and not d.journal._pending
        )

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) every kernel this gateway calls, without
        running any: call before serving, so no order waits for a compile (tens of seconds
        on a cold cache, which would stall every session's heartbeats)."""
        t = self.tables
        buf = b"\0"
        MSG = array("q", [0, 0, 0, 0])
        self._entry("_decode_ep", K.decode_batch, self._decode_args(buf, MSG, 0, 0, False))
        self._entry("_stamp_ep", K.stamp, (self.CMDS, 0, 0))
        self._warm_read()
        args = self._apply_args(_NO_EVENTS, buf, 0, 0, 0, 0, *_NO_JOURNAL)
        self._entry("_apply_ep", K.apply_journal, args)
        self._entry("_note_ep", K.note_orders, self._note_args(self.CMDS[:0], _NO_EVENTS))
        self._entry("_journal_ep", K.journal_batch, self._journal_args(_NO_EVENTS, 0, 0, 0, 0))
        i64, tables = typeof(0), (typeof(t.INST), typeof(t.ACCT), typeof(t.EXP), typeof(t.G))
        K.risk_check.compile((*tables, *[i64] * 8, typeof(True)))
        K._working.compile((typeof(t.EXP), typeof(t.G), typeof(t.INST), typeof(t.ORD), i64, i64))
        for fn in (K._tok_put, K._tok_del):
            fn.compile((typeof(t.TOKH), typeof(t.G), i64, i64, i64))
        K.tok_find.compile((typeof(t.TOKH), i64, i64))
        K.rehash_tokens.compile((typeof(t.TOKH), typeof(t.TOKH)))

    # the kernels' arguments, built in one place for the calls and for warm_up (which
    # must compile exactly the argument types the calls pass)
    def _decode_args(self, buf: bytes, MSG: array, j: int, n_msg: int, resumed: bool) -> tuple:
        t = self.tables
        return (
            buf, MSG, j, n_msg, resumed, t.SESS, t.ACCT, t.PERM, t.INST, t.EXP, t.ORD, t.TOKH,
            t.G, t.MAPS, self.BE, self._n_be, self.CMDS, self._n_cmd, self.GTDB,
        )  # fmt: skip

    def _apply_args(
        self, ev: np.ndarray, buf: bytes, e: int, li: int, base: int, n_be: int,
        journal: int, n_cmd: int, seq: int, gw: int, ts: int,
    ) -> tuple:  # fmt: skip
        t = self.tables
        return (
            ev, e, len(ev), li, base, buf, self.BE, n_be, t.SESS, t.ACCT, t.INST, t.EXP,
            t.ORD, t.TOKH, t.G, t.MAPS, self.CNT, self.OUT, self.OUTIDX, self.TR, journal,
            self.CMD8, self.CMDS, n_cmd, seq, self.NOTE, self.GONE, self.SSENT, self.JTOK,
            self.JSS, gw, ts, self.JB,
        )  # fmt: skip

    def _note_args(self, rows: np.ndarray, events: np.ndarray) -> tuple:
        t = self.tables
        return (
            rows, len(rows), events, len(events), t.ORD, t.ACCT, t.INST, t.G, self.NOTE,
            self.GONE,
        )  # fmt: skip

    def _journal_args(self, ev: np.ndarray, n_cmd: int, seq: int, gw: int, ts: int) -> tuple:
        t = self.tables
        return (
            self.CMD8, self.CMDS, n_cmd, seq, ev, len(ev), t.ORD, t.ACCT, t.INST, t.G,
            self.NOTE, self.GONE, self.OUT, self._out_end, self.OUTIDX, self._out_n, t.SESS,
            self.SSENT, self.JTOK, self.JSS, gw, ts, self.JB,
        )  # fmt: skip

    def _entry(self, attr: str, fn: Any, args: tuple) -> Any:
        """The compiled entry point of ``fn`` for these argument types (compiled, or loaded
        from the cache, on first use): later calls skip the dispatcher's argument typing,
        several microseconds for ~20 arguments."""
        sig = tuple(typeof(a) for a in args)
        fn.compile(sig)
        ep = fn.overloads[sig].entry_point
        setattr(self, attr, ep)
        return ep

    # --- entries pushed by Python --------------------------------------------------------
    def _room(self, entries: int = 1) -> None:
        """Make room for ``entries`` more entries (and commands) in the pending batch."""
        if self._n_be + entries > len(self.BE) or self._n_cmd + entries > len(self.CMDS):
            self._run()

    def _entry_row(
        self,
        kind: int,
        sess: int = -1,
        row: int = -1,
        token: int = 0,
        request: int = 0,
        code: int = 0,
        offset: int = 0,
        ref: int = 0,
        reason: int = 0,
        counter: int = -1,
        cmd: tuple | None = None,
        ctx: Any = None,
    ) -> int:
        self._room()
        n = self._n_be
        self.BE[n] = (kind, sess, row, token, request, code, offset, 0, ref, reason, counter)
        if cmd is not None:
            self.CMDS[self._n_cmd] = (n, *cmd[1:])
            self._n_cmd += 1
        if ctx is not None:
            self._ctx[n] = ctx
        self._n_be = n + 1
        self._schedule_flush()
        return n

    def _push(self, kind: int, row: tuple | None, *ctx: Any) -> None:
        """The Python gateway's entry point for sweeps, status changes and local replies
        (the close, scheduled transitions, GTD expiry, the kill switch)."""
        self._decode_pending()  # what arrived before goes first
        if kind == _K_LOCAL:
            s, build = ctx
            self._entry_row(K.K_PY, ctx=(s, build))
        elif kind == _K_SWEEP:
            reason, admin, token = ctx
            self._entry_row(K.K_SWEEP, reason=reason, cmd=row, ctx=(admin, token))
        elif kind == _K_STATUS:
            self._entry_row(K.K_STATUS, cmd=row)
        else:  # pragma: no cover - the other kinds have compiled or overridden paths
            raise AssertionError(f"unexpected batch entry kind {kind}")

    def _reject(self, s: Session, token: int, request: int, code: int, offset: int = 0) -> None:
        self._entry_row(
            K.K_REJECT, sess=self.tables.sessions[s.name], token=token & 0xFFFFFFFF,
            request=request & 0xFF, code=int(code), offset=offset,
        )  # fmt: skip

    # --- messages Python decides ---------------------------------------------------------
    def _other(self, s: Session, data: bytes) -> None:
        """A message the kernel handed back (it passed the throttle): an Enter Order for an
        instrument not listed today (its token taken), or anything but Enter / Cancel."""
        if len(data) == m.ENTER_ORDER_SIZE and data[0] == K.MSG_ENTER:
            iid = int.from_bytes(data[K.EO_INST : K.EO_INST + 4], "big")
            code = (
                RejectCode.CONTRACT_EXPIRED
                if self.expired_contract(iid)
                else RejectCode.UNKNOWN_INSTRUMENT
            )
            self._reject(s, int.from_bytes(data[1:5], "big"), K.MSG_ENTER, code, K.EO_INST)
            return
        try:
            msg = m.decode_inbound(data)
        except m.MessageError as exc:
            self._reject(s, exc.token, exc.request, exc.code, exc.offset)
            return
        if type(msg) in (m.EnterOrder, m.CancelOrder):  # pragma: no cover
            raise AssertionError(f"the kernel handed back a {type(msg).__name__}")
        self._control(s, msg)

    def _run_pending(self) -> None:
        self._run()

    def token_row(self, sess_row: int, token: int) -> int:
        """The order row of session row ``sess_row``'s order ``token``, or -1. O(1)."""
        return int(K.tok_find(self.tables.TOKH, sess_row, token)) if 0 <= token < 1 << 32 else -1

    def _order_row_of(self, s: Session, token: int) -> int:
        return self.token_row(self.tables.sessions[s.name], token)

    def _replace(self, s: Session, r: m.ReplaceOrder) -> None:  # type: ignore[override]
        t = self.tables
        ORD = t.ORD
        row = self._order_row_of(s, r.orig_token)
        if row >= 0 and (ORD[row, K.O_ORDER_ID] == 0 or row in self._replacing):
            # before the token is taken: the order's engine id, or the outcome of a replace
            # of it already in this batch, is needed (see Gateway._replace)
            self._run()
            row = self._order_row_of(s, r.orig_token) if row >= 0 else -1
            found_before = True
        else:
            found_before = row >= 0
        if not self._take_token(s, r.token):
            self._reject(s, r.token, 0x55, RejectCode.TOKEN_NOT_INCREASING, 5)
            return
        if not found_before:
            self._reject(s, r.token, 0x55, RejectCode.UNKNOWN_TOKEN, 1)
            return
        if r.quantity == 0:
            self._reject(s, r.token, 0x55, RejectCode.BAD_QUANTITY, 25)
            return
        if row < 0:
            self._reject(s, r.token, 0x55, RejectCode.ORDER_NOT_WORKING, 1)
            return
        o = ORD[row].tolist()
        stop = r.stop_price or o[K.O_STOP]
        otype = ord("T") if o[K.O_STOP] and o[K.O_PRICE] else ord("S") if o[K.O_STOP] else 0
        otype = otype or ord("L")
        increase = r.quantity - o[K.O_QTY]
        code = K.risk_check(
            t.INST, t.ACCT, t.EXP, t.G, o[K.O_ACCT], o[K.O_INST], o[K.O_SIDE], otype, r.price,
            stop, r.quantity, max(increase, 0), False,
        )  # fmt: skip
        if code:
            self._reject(s, r.token, 0x55, code)
            return
        if increase > 0:
            self._working(row, increase)
        cmd = _row(
            CmdType.REPLACE, o[K.O_REF], r.token, o[K.O_ORDER_ID], r.price, stop, r.quantity,
            account=int(t.ACCT[o[K.O_ACCT], K.A_ID]),
        )  # fmt: skip
        self._replacing.add(row)
        self._entry_row(
            K.K_REPLACE, sess=t.sessions[s.name], row=row, token=r.token, ref=o[K.O_REF],
            cmd=cmd, ctx=(r, max(increase, 0), stop),
        )  # fmt: skip

    def _working(self, row: int, qty: int) -> None:
        """Add ``qty`` to the working quantity of the order's account, side, instrument and
        product (a replace up or down): the kernel's own ``_working``. O(1)."""
        t = self.tables
        K._working(t.EXP, t.G, t.INST, t.ORD, row, qty)

    def _session_rows(self, s: Session, inst: int = 0, side: int = 32) -> list[int]:
        """The session's working orders (rows) in its order, optionally one instrument's
        and one side's (32 = both)."""
        t = self.tables
        ORD = t.ORD
        live = (ORD[:, K.O_REF] != 0) & (ORD[:, K.O_SESS] == t.sessions[s.name])
        if inst:
            i = t.instruments.get(inst, -1)
            live &= ORD[:, K.O_INST] == i
        if side != 32:
            live &= ORD[:, K.O_SIDE] == side
        rows = np.flatnonzero(live)
        return rows[np.argsort(ORD[rows, K.O_SEQ], kind="stable")].tolist()

    def _cancels_for(self, s: Session, rows: list[int], reason: int, counter: int) -> None:
        ORD = self.tables.ORD
        if any(ORD[r, K.O_ORDER_ID] == 0 for r in rows):
            self._run()  # orders still waiting in the pending batch need their engine ids
        sess = self.tables.sessions[s.name]
        for r in rows:
            ref = int(ORD[r, K.O_REF])
            if ref == 0 or ORD[r, K.O_SESS] != sess:
                continue  # done while flushing
            cmd = _row(
                CmdType.CANCEL, ref, 0, int(ORD[r, K.O_ORDER_ID]),
                account=int(self.tables.ACCT[ORD[r, K.O_ACCT], K.A_ID]),
            )  # fmt: skip
            self._entry_row(
                K.K_CANCEL_FOR, sess=sess, row=r, ref=ref, reason=reason, counter=counter,
                cmd=cmd,
            )  # fmt: skip

    def _mass_cancel(self, s: Session, mc: m.MassCancel) -> None:  # type: ignore[override]
        rows = self._session_rows(s, mc.instrument_id, mc.side)
        if any(self.tables.ORD[r, K.O_ORDER_ID] == 0 for r in rows):
            self._run()  # before the token is taken (see _replace); _cancels_for skips
            # the orders that batch finished
        if not self._take_token(s, mc.token):
            self._reject(s, mc.token, 0x43, RejectCode.TOKEN_NOT_INCREASING, 1)
            return
        self._room(len(rows) + 2)
        counter = self._n_cnt
        self._n_cnt += 1
        self.CNT[counter] = 0
        self._cancels_for(s, rows, WireCancelReason.MASS_CANCEL.value, counter)
        tok, cnt = mc.token, self.CNT
        self._entry_row(
            K.K_PY, ctx=(s, lambda ts: sequenced(m.encode_mass_cancel_done(ts, tok, cnt[counter])))
        )

    def cancel_all(self, s: Session, reason: int) -> None:
        """Cancel every working order of ``s`` (cancel-on-disconnect), reason ``reason``."""
        self._decode_pending()
        rows = self._session_rows(s)
        if rows:
            self._cancels_for(s, rows, reason, -1)

    def _unblock(self, account_id: int) -> None:
        self.risk.set_blocked(account_id, False)  # type: ignore[attr-defined]

    def _block(self, account_id: int) -> None:
        self.risk.set_blocked(account_id, True)  # type: ignore[attr-defined]

    # --- running a batch -----------------------------------------------------------------
    def _run(self) -> None:
        """Run the pending entries through the sequencer and the engine, deliver every reply
        (journaled first when durable), then the trade log and market data."""
        n_be, n_cmd = self._n_be, self._n_cmd
        if not n_be:
            return
        self._n_be = self._n_cmd = self._n_cnt = 0
        ctx, self._ctx = self._ctx, {}
        self._replacing.clear()
        seq = self.sequencer
        base = seq.reserve(n_be)
        cmds = self.CMDS[:n_cmd]
        ev = _NO_EVENTS
        # the core frames the journal records itself when the journal is the only listener
        # (and this process's session names are journaled): see _commit_binary
        binary = self._binary()
        if n_cmd:
            args = (self.CMDS, n_cmd, base)
            (self._stamp_ep or self._entry("_stamp_ep", K.stamp, args))(*args)
            seq.commands += n_cmd
            if not binary:
                for listener in seq.journal:
                    listener(cmds)
            ev = seq.engine.process(cmds)
            seq.events += len(ev)
            if seq.event_listeners:
                seq._unpublished.append(ev)
            # one compiled specialization: read-only events (the numba engine's are)
            if not getattr(seq.engine, "results_read_only", False) and ev.flags.writeable:
                ev = ev.view()
                ev.setflags(write=False)
        self._finish(ev, base, n_be, n_cmd, ctx, binary)

    def _finish(
        self, ev: np.ndarray, base: int, n_be: int, n_cmd: int, ctx: dict[int, Any],
        binary: bool, first: tuple | None = None,
    ) -> None:  # fmt: skip
        """The batch after the engine: apply its events (``first``: the first apply pass's
        results, if the one-call path made it), journal it (and fsync per the policy)
        before any reply is written, write the replies, then the trade log and market
        data."""
        seq = self.sequencer
        d = self.durable
        self._out_end = self._out_n = 0
        jn, noted = self._apply(ev, base, n_be, ctx, binary, n_cmd, first)
        if d is not None:  # journaled (and fsynced) before any reply
            jlog = self._jlog
            if jn >= 0:  # the core framed the records in the apply call (_commit_binary)
                jlog.clear()
                d.commit_frames(self._jb_mv[:jn], n_cmd, d.gseq + 1 if noted else None)
            elif jn < -1:  # it could: only the journal buffer was too small
                self._commit_binary(d, self.CMDS[:n_cmd], ev)
            else:
                if binary and n_cmd:
                    d.on_batch(self.CMDS[:n_cmd])
                d.commit(self.CMDS[:n_cmd], ev)
        else:
            self._jlog.clear()
        if self._dirty:
            dirty, self._dirty = self._dirty, set()
            for conn in dirty:
                conn.drain_out()
        if self.tradelog is not None:
            self.tradelog.flush()
        seq.publish()

    def _apply(
        self, ev: np.ndarray, base: int, n_be: int, ctx: dict[int, Any], binary: bool,
        n_cmd: int, first: tuple | None = None,
    ) -> tuple[int, bool]:  # fmt: skip
        """Apply the batch's events in compiled code, stopping for the rare ones. With
        ``binary``, the last pass also frames the batch's journal records when every reply
        is its own (see :meth:`_commit_binary`): returns their bytes in ``JB`` (-1: not
        framed, below: no room) and whether they hold a note."""
        need = n_be + len(ev)
        if len(self.OUTIDX) < need:
            self.OUT = np.empty(_MAX_REPLY * 2 * need, np.uint8)
            self.OUTIDX = np.empty((2 * need, 3), np.int64)
            self.TR = np.empty((2 * need, K.TF), np.int64)
            self._out_views()
            self._tabs = None
        e, li = 0, 0
        d = self.durable
        while True:
            if first is not None:  # made by the one-call path (on_read)
                (e, li, end, n_out, n_tr, st, jn, noted), first = first, None
            else:
                if binary and not self._jlog and not self._flags_changed():
                    j = (1, n_cmd, d.journal.next_seq, d.gseq + 1, self.sequencer.last_ts)
                else:
                    j = _NO_JOURNAL
                args = self._apply_args(ev, self._buf, e, li, base, n_be, *j)
                apply = self._apply_ep or self._entry("_apply_ep", K.apply_journal, args)
                e, li, end, n_out, n_tr, st, jn, noted = apply(*args)
            self._deliver(end, n_out, n_tr)
            if st == K.AP_DONE:
                return jn, noted
            self._log_out()  # the next pass writes OUT again
            if st == K.AP_ENTRY:  # a reply only Python builds
                s, build = ctx[li]
                s.append(build(base + li))
                li += 1
            else:
                self._on_py_event(ev[e], int(ev[e]["timestamp"]) - base, ctx)
                e += 1

    def _out_views(self) -> None:
        """Memoryviews of the reply buffers, read per batch without a numpy call (a
        memoryview slice is a C path; the batch's numpy calls cost ~1-3 us each live).
        Called whenever ``OUT`` / ``OUTIDX`` are (re)allocated."""
        self._out_mv = memoryview(self.OUT)
        self._outidx_mv = memoryview(self.OUTIDX)

    def _deliver(self, end: int, n_out: int, n_tr: int) -> None:
        if n_out:
            raw = self._replies(end, n_out)
            self._jlog.append(_OUT_PENDING)  # rows read from OUTIDX when needed
            self._out_raw, self._out_end, self._out_n = raw, end, n_out
        if n_tr:
            self._fills(n_tr)

    def _replies(self, end: int, n_out: int, raw: bytes | None = None) -> bytes:
        """Append the ``n_out`` replies in ``OUT[:end]`` (``raw``, if the caller has
        them as bytes already) to their sessions' stores (and connections' output);
        returns ``OUT[:end]`` as bytes. They are not logged packet by packet: the caller
        journals them as one chunk."""
        if raw is None:
            raw = self._out_mv[:end].tobytes()
        by_row = self._by_row
        rows = self._outidx_mv[:n_out].tolist()
        first = rows[0][0]
        if rows[-1][0] == first and all(r[0] == first for r in rows):
            # the common batch: every reply is one session's (one store extend, one send)
            sess = by_row[first]
            if sess is None:
                sess = self.session_at(first)
            Session.extend(sess, raw, n_out)
            return raw
        append = Session.append
        for s, o, ln in rows:
            sess = by_row[s]
            if sess is None:
                sess = self.session_at(s)
            append(sess, raw[o : o + ln])
        return raw

    def _fills(self, n_tr: int) -> None:
        """Write the batch's ``n_tr`` fills in ``TR`` to the trade log (if any)."""
        if self.tradelog is not None:
            names = self.account_names
            fill = self.tradelog.fill
            for ts, match, iid, aid, side, px, qty, aggr in self.TR[:n_tr].tolist():
                fill(ts, match, iid, names[aid], side == K.W_BUY, px, qty, bool(aggr))

    def _log_out(self) -> None:
        """Make the last ``_deliver``'s pending log entry a chunk (OUTIDX still holds its
        session rows)."""
        jlog = self._jlog
        if jlog and jlog[-1] is _OUT_PENDING:
            rows = self.OUTIDX[: self._out_n, 0].astype("<i2").tobytes()
            jlog[-1] = (rows, self._out_raw)

    def _on_py_event(self, ev: np.void, k: int, ctx: dict[int, Any]) -> None:
        """The rare events: a replace's outcome (or its reject), a status change, the done
        of a sweep, the reject of an engine sweep. Same as the Python gateway's."""
        et = int(ev["event_type"])
        kind = int(self.BE[k, K.B_KIND])
        ts = int(ev["timestamp"])
        t = self.tables
        if et == _E_REPLACED:
            row = self.row_of_ref(int(ev["user_ref"]))
            if row < 0:
                return
            r, reserved, stop = ctx[k]
            o = t.ORD[row]
            leaves = int(ev["leaves"])
            adjust = (leaves - int(o[K.O_QTY])) - reserved
            if adjust:
                self._working(row, adjust)
            sess = int(o[K.O_SESS])
            K._tok_del(t.TOKH, t.G, sess, int(o[K.O_TOKEN]), row)
            K._tok_put(t.TOKH, t.G, sess, r.token, row)
            serial = int(t.G[K.G_NEXT_SERIAL])
            t.G[K.G_NEXT_SERIAL] = serial + 1
            o[K.O_SEQ] = serial
            o[K.O_TOKEN] = r.token
            o[K.O_PRICE] = r.price
            o[K.O_QTY] = leaves
            o[K.O_STOP] = stop
            self.session_at(sess).append(
                sequenced(
                    m.encode_replaced(
                        ts, r.token, r.orig_token, int(t.INST[o[K.O_INST], K.I_ID]),
                        int(o[K.O_SIDE]), int(ev["price"]), stop, leaves, int(ev["order_id"]),
                    )
                )
            )  # fmt: skip
        elif et == _E_REJECTED and kind == K.K_REPLACE:
            r, increase, _ = ctx[k]
            row = int(self.BE[k, K.B_ROW])
            if increase:  # the row keeps its account, side, instrument until reused
                self._working(row, -increase)
            code = reject_to_wire(int(ev["reason"]))
            self.session_at(int(self.BE[k, K.B_SESS])).append(
                m.seq_rejected(ts, r.token, 0x55, code)
            )
        elif et == _E_REJECTED:
            log.error("engine rejected an admin command: reason %s", int(ev["reason"]))
        elif et == _E_STATUS:
            iid, state = int(ev["instrument_id"]), int(ev["qty"])
            self.status[iid] = state
            self._status_changed = True
            wire = STATUS_TO_WIRE[state]
            for s in self.sessions.values():
                if s.status_sent:
                    s.append(sequenced(m.encode_trading_status(ts, iid, wire)))
        elif et == _E_DONE and kind == K.K_SWEEP:
            admin, tok = ctx[k]
            if admin is not None:
                admin.append(sequenced(m.encode_mass_cancel_done(ts, tok, int(ev["qty"]))))
        elif et == _E_ACCEPTED:  # pragma: no cover - the engine accepts only NEW commands
            log.error("engine accepted a non-NEW command (entry kind %s)", kind)

    # --- expiry --------------------------------------------------------------------------
    def next_gtd_expiry(self) -> int | None:
        """Earliest GTD expiry among working orders (ns), or None. O(1) amortised."""
        gtd = self._gtd
        while gtd and self.row_of_ref(gtd[0][1]) < 0:
            heapq.heappop(gtd)
        return gtd[0][0] if gtd else None

    def expire_due(self, now_ns: int) -> bool:
        self._decode_pending()
        return super().expire_due(now_ns)

    # --- durability ------------------------------------------------------------------
    def _flags_changed(self) -> bool:
        """Whether the next note must carry a rare flag (``Gateway._note_flags``)."""
        blocked = self.risk.blocked
        return bool(
            self._status_changed
            or self._Gv[K.G_CLOSED] != self._j_closed  # self.closed, without the property
            or ((blocked or self._j_blocked) and blocked != self._j_blocked)
        )

    def _note_room(self, need: int) -> None:
        if len(self.NOTE) < need:
            self.NOTE = np.empty((2 * need, K.NF), np.int64)
            self.GONE = np.empty(2 * need, np.int64)
            self._tabs = None

    def _commit_binary(self, d: Any, cmds: np.ndarray, ev: np.ndarray) -> None:
        """Journal the batch as records the core frames (``K.journal_batch``): its commands
        and a binary note with the replies (still in ``OUT``), the orders it touched and
        the sessions whose token changed; one ``write`` (+ ``fsync``). For a batch whose
        replies all came from one ``apply_events`` pass and that changed no rare flag; the
        others take :meth:`journal_delta`'s msgpack note. O(batch bytes + sessions)."""
        n_cmd = len(cmds)
        if not len(ev):
            ev = _NO_EVENTS
        gw = d.gseq + 1
        while True:
            args = self._journal_args(ev, n_cmd, d.journal.next_seq, gw, self.sequencer.last_ts)
            ep = self._journal_ep or self._entry("_journal_ep", K.journal_batch, args)
            n, noted = ep(*args)
            if n >= 0:
                break
            self.JB = np.empty(-2 * n, np.uint8)  # no room: nothing was written
            self._jb_mv = memoryview(self.JB)
            self._tabs = None
            self._note_room(n_cmd + len(ev))
        self._jlog.clear()
        d.commit_frames(self._jb_mv[:n], n_cmd, gw if noted else None)

    def journal_delta(self, rows: Any, events: Any) -> dict | None:
        """What this batch changed in the gateway's own state, for the journal note (the
        Python gateway's format: see ``Gateway.journal_delta``). ``rows`` is the batch's
        command array. O(batch)."""
        note: dict[str, Any] = {}
        t = self.tables
        self._log_out()
        jlog = self._jlog
        if jlog:  # every packet stored since the last note, in order, one blob
            if len(jlog) == 1:
                note["MS"], note["M"] = jlog[0]
            else:
                note["MS"] = b"".join([r for r, _ in jlog])
                note["M"] = b"".join([d for _, d in jlog])
            jlog.clear()
        SESS, SSENT = t.SESS, self.SSENT
        changed = np.flatnonzero((SESS[:, K.S_LAST_TOKEN] != self.JTOK) | (SSENT != self.JSS))
        if len(changed):  # sessions whose token or status flag moved since the last note
            names = self._session_names
            note["t"] = {
                names[r]: [int(SESS[r, K.S_LAST_TOKEN]), bool(SSENT[r])] for r in changed.tolist()
            }
            self.JTOK[changed] = SESS[changed, K.S_LAST_TOKEN]
            self.JSS[changed] = SSENT[changed]
        need = len(rows) + len(events)
        if need:
            self._note_room(need)
            if not len(events):
                events = _NO_EVENTS
            args = self._note_args(rows, events)
            n, g = (self._note_ep or self._entry("_note_ep", K.note_orders, args))(*args)
            if n:  # order rows as packed int64 (GatewayImage.apply reads them)
                note["O"] = self.NOTE[:n].tobytes()
            if g:
                note["x"] = self.GONE[:g].tolist()
        if not self._names_journaled:  # notes name sessions by row: the first one says how
            note["N"] = self._session_names
            self._names_journaled = True
        return self._note_flags(note, int(t.G[K.G_NEXT_SERIAL]))

    def export_state(self) -> dict[str, Any]:
        """The gateway's full state as plain data (snapshot metadata; between batches)."""
        SESS, names = self.tables.SESS, self.tables.sessions
        for s in self.sessions.values():
            s.last_token = int(SESS[names[s.name], K.S_LAST_TOKEN])
        state = super().export_state()
        state["nr"] = int(self.tables.G[K.G_NEXT_SERIAL])
        state["N"] = self._session_names  # the rows the journal notes after it name
        return state

    def _export_orders(self) -> list[tuple]:
        """Every working order as journal data, in entry order. O(order table)."""
        t = self.tables
        ORD = t.ORD
        rows = np.flatnonzero(ORD[:, K.O_REF] != 0)
        rows = rows[np.argsort(ORD[rows, K.O_SEQ], kind="stable")]
        o = ORD[rows]
        acct = t.ACCT[o[:, K.O_ACCT], K.A_ID]
        inst = t.INST[o[:, K.O_INST], K.I_ID]
        names = self._session_names
        cols = zip(
            o[:, K.O_REF].tolist(), o[:, K.O_TOKEN].tolist(), acct.tolist(), inst.tolist(),
            o[:, K.O_SIDE].tolist(), o[:, K.O_PRICE].tolist(), o[:, K.O_QTY].tolist(),
            o[:, K.O_ORDER_ID].tolist(), o[:, K.O_STOP].tolist(),
            (o[:, K.O_WORKING] != 0).tolist(), o[:, K.O_SESS].tolist(),
            o[:, K.O_EXPIRE].tolist(), strict=True,
        )  # fmt: skip
        return [(*r[:10], names[r[10]], r[11]) for r in cols]

    def restore_state(self, image: GatewayImage) -> None:
        """Rebuild sessions, orders, exposures and flags from a recovered image (on a fresh
        gateway whose engine holds the recovered state)."""
        from contracts.errors import FlopexError

        by_session = {lg.session: lg for lg in self.access.logins.values()}
        self.sessions.clear()
        self._by_row = [None] * len(self._by_row)
        t = self.tables
        for name, (next_seq, frames, tok, ss) in image.sessions.items():
            login = by_session.get(name)
            if login is None or name not in t.sessions:
                raise FlopexError(
                    f"data directory has session {name!r} that the access file no longer defines"
                )
            s = self.session_for(login)
            s.restore(next_seq, frames, tok, ss)
            t.SESS[t.sessions[name], K.S_LAST_TOKEN] = tok
            self.SSENT[t.sessions[name]] = int(ss)
        self._gtd = []
        rows = sorted(image.orders.values(), key=lambda row: row[0])
        need = max([row[0] & _MASK for row in rows], default=0) + 1
        while len(t.ORD) < need:
            t.G[K.G_FREE] = -1
            t.grow()
        self._tabs = None
        ORD = t.ORD
        serial = int(t.G[K.G_NEXT_SERIAL])
        for seq_no, (
            ref,
            tok,
            acct,
            inst,
            side,
            px,
            qty,
            oid,
            stop,
            working,
            sname,
            expire,
        ) in enumerate(rows):
            row = ref & _MASK
            if ORD[row, K.O_REF] != 0 or acct not in t.accounts or inst not in t.instruments:
                raise FlopexError(f"recovered order {ref} does not fit today's tables")
            s_row = t.sessions[sname]
            ORD[row] = 0
            ORD[row, [K.O_REF, K.O_TOKEN, K.O_SESS, K.O_ACCT, K.O_INST, K.O_SIDE]] = (
                ref, tok, s_row, t.accounts[acct], t.instruments[inst], side,
            )  # fmt: skip
            ORD[row, [K.O_PRICE, K.O_QTY, K.O_ORDER_ID, K.O_STOP, K.O_WORKING]] = (
                px, qty, oid, stop, int(working),
            )  # fmt: skip
            ORD[row, K.O_EXPIRE] = expire
            ORD[row, K.O_SEQ] = seq_no
            K._tok_put(t.TOKH, t.G, s_row, tok, row)
            if expire:
                self._gtd.append((expire, ref))
            serial = max(serial, (ref >> K.REF_SHIFT) + 1)
        heapq.heapify(self._gtd)
        t.G[K.G_ORDERS] = len(rows)
        t.G[K.G_NEXT_SERIAL] = max(serial, image.nr, len(rows) + 1)
        free = [r for r in range(len(ORD)) if ORD[r, K.O_REF] == 0]
        for a, b in zip(free, [*free[1:], -1], strict=True):
            ORD[a, K.O_NEXT] = b
        t.G[K.G_FREE] = free[0] if free else -1
        # exposures: positions, then the working quantity of the recovered orders
        t.EXP[:] = 0
        for (account, inst), pos in image.positions.items():
            if account in t.accounts and inst in t.instruments:
                a, i = t.accounts[account], t.instruments[inst]
                pi = int(t.G[K.G_N_INST] + t.INST[i, K.I_PRODUCT])
                t.EXP[a, i, K.X_POSITION] += pos
                t.EXP[a, pi, K.X_POSITION] += pos
        for row in np.flatnonzero(ORD[:, K.O_REF] != 0).tolist():
            self._working(row, int(ORD[row, K.O_QTY]))
        for aid in list(self.risk.blocked):
            self.risk.set_blocked(aid, False)  # type: ignore[attr-defined]
        for aid in image.blocked:
            self.risk.set_blocked(aid, True)  # type: ignore[attr-defined]
        self._restore_flags(image)
        self.JTOK[:] = t.SESS[:, K.S_LAST_TOKEN]  # as the recovered journal has them
        self.JSS[:] = self.SSENT

    @property  # type: ignore[override]
    def closed(self) -> bool:
        return bool(self._Gv[K.G_CLOSED]) if hasattr(self, "_Gv") else self._closed0

    @closed.setter
    def closed(self, value: bool) -> None:
        if hasattr(self, "tables"):
            self.tables.G[K.G_CLOSED] = int(value)
        else:
            self._closed0 = value
