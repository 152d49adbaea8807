"""The order-entry gateway: sessions in, one sequencer, the engine, replies and the trade log.

Flow of one inbound message (``Gateway.on_message``): throttle -> token check -> decode and
field checks -> account permission -> pre-trade risk (reserving quantity) -> a command row
appended to the pending batch. Gateway-level rejects are queued in the same batch, in
arrival order, so a session always sees its replies in the order it sent its requests.

The pending batch is flushed once per event-loop iteration (``loop.call_soon``): every
command that arrived in that iteration goes through the engine's batch kernel together.
Each batch slot (engine command or gateway reply) gets its own sequencer timestamp, so the
events coming back are matched to their command by ``timestamp - base`` in O(1).

Outbound messages are appended to the session's store (kept for replay) and written to the
live connection, coalesced into one ``write`` per connection per batch.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from contracts.calendar import Contract
from exchange.auth import AccessConfig, Login
from exchange.engine.abi import FLAG_POST_ONLY, CmdType, EventType, InstrumentStatus
from exchange.protocol import messages as m
from exchange.protocol.codes import (
    RejectCode,
    WireCancelReason,
    WireOrderType,
    WireSide,
    WireTimeInForce,
)
from exchange.protocol.engine_map import (
    CANCEL_REASON_TO_WIRE,
    ORDER_TYPE_TO_ENGINE,
    SIDE_TO_ENGINE,
    SMP_TO_ENGINE,
    STATUS_TO_WIRE,
    TIF_TO_ENGINE,
    reject_to_wire,
)
from exchange.protocol.messages import (
    ENTER_ORDER_INTS,
    ENTER_ORDER_SIZE,
    ORDER_TYPES,
    POST_ONLY_VALUES,
    SIDES,
    SMP_INSTRUCTIONS,
    TIMES_IN_FORCE,
    seq_accepted_echo,
    seq_canceled,
    seq_executed,
    seq_rejected,
)
from exchange.protocol.soupbintcp import sequenced
from exchange.risk import RiskChecker
from exchange.sequencer import Sequencer
from exchange.session import OrderRec, Session
from exchange.tradelog import TradeLog, write_close_record

log = logging.getLogger("flopex.gateway")

_BUY = WireSide.BUY.value
_STOP_TYPES = (WireOrderType.STOP.value, WireOrderType.STOP_LIMIT.value)
_LIMIT_TYPES = (WireOrderType.LIMIT.value, WireOrderType.STOP_LIMIT.value)

# command kinds in the batch context
_K_NEW, _K_CANCEL, _K_REPLACE, _K_SWEEP, _K_STATUS, _K_LOCAL = range(6)

_NEW = int(CmdType.NEW)
_CANCEL = int(CmdType.CANCEL)
_CANCEL_SIZE = m.CANCEL_ORDER.size
_E_ACCEPTED = int(EventType.ACCEPTED)
_E_REJECTED = int(EventType.REJECTED)
_E_TRADE = int(EventType.TRADE)
_E_CANCELLED = int(EventType.CANCELLED)
_E_REPLACED = int(EventType.REPLACED)
_E_STOP = int(EventType.STOP_TRIGGERED)
_E_STATUS = int(EventType.STATUS)
_E_DONE = int(EventType.MASS_CANCEL_DONE)
_E_LEVEL = int(EventType.LEVEL)
_GTD = WireTimeInForce.GTD.value
#: where Enter Order's account field is (the per-session account cache is keyed by it)
_ACCOUNT_OFF = dict((n, o) for n, o, _, _ in m.ENTER_ORDER.offsets())["account"]
_ACCOUNT_END = _ACCOUNT_OFF + m.ACCOUNT_WIDTH
_POST_YES = m.POST_ONLY_YES
_POST_ONLY_FLAG = FLAG_POST_ONLY


def _row(
    cmd_type: int,
    user_ref: int = 0,
    token: int = 0,
    order_id: int = 0,
    price: int = 0,
    stop: int = 0,
    qty: int = 0,
    display: int = 0,
    min_qty: int = 0,
    inst: int = 0,
    account: int = 0,
    smp_group: int = 0,
    side: int = 0,
    order_type: int = 0,
    tif: int = 0,
    smp: int = 0,
    status: int = 0,
) -> tuple:
    """One command tuple in ``COMMAND_DTYPE`` field order (timestamp stamped later)."""
    return (
        0, user_ref, token, order_id, price, stop, qty, display, min_qty, 0,
        inst, account, smp_group, cmd_type, side, order_type, tif, smp, 0, status, 0,
    )  # fmt: skip


class _Counter:
    """Mutable count filled in by events, read when the reply is written."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class Gateway:
    """Sessions, risk, sequencer and engine, trade log: everything but the sockets."""

    #: the class of the per-login sessions this gateway creates
    session_class: type[Session] = Session

    def __init__(
        self,
        access: AccessConfig,
        contracts: list[Contract],
        trade_date: dt.date,
        sequencer: Sequencer,
        risk: RiskChecker,
        data_dir: Path | None = None,
        replay_limit: int = 1_000_000,
        schedule: Callable[[Callable[[], None]], Any] | None = None,
    ) -> None:
        self.access = access
        self.contracts = {c.instrument_id: c for c in contracts}
        self.trade_date = trade_date
        self.sequencer = sequencer
        self.risk = risk
        self.data_dir = data_dir
        self.tradelog = TradeLog(data_dir, trade_date, contracts) if data_dir else None
        self.replay_limit = replay_limit
        self.schedule = schedule  # loop.call_soon; None = flush synchronously
        self.sessions: dict[str, Session] = {}
        self.account_names = {a.account_id: a.name for a in access.accounts.values()}
        for a in access.accounts.values():
            if a.max_order_notional_minor:
                risk.account_max_notional[a.account_id] = a.max_order_notional_minor
        self.orders: dict[int, OrderRec] = {}  # user_ref -> order
        self._next_ref = 1
        self.status: dict[int, int] = {iid: int(InstrumentStatus.OPEN) for iid in self.contracts}
        self.closed = False
        self.close_path: Path | None = None
        self.on_close: list[Callable[[], None]] = []
        # pending batch
        self._entries: list[tuple] = []
        #: ids of the orders a REPLACE in the pending batch targets: a second replace of the
        #: same order must see the first one's quantity, so it flushes first.
        self._replacing: set[int] = set()
        self._rows: list[tuple] = []
        self._slots: list[int] = []
        self._scheduled = False
        self._dirty: set = set()
        # durability (see exchange.journal.GatewayJournal): the journal hook, the sessions
        # with messages not yet journaled, and the last journaled values of rare state
        self._products: dict | None = None  # product specs, loaded on first need
        self._gtd: list[tuple[int, int]] = []  # heap of (GTD expiry ns, order ref)
        self.durable: Any = None
        self._touched: list[Session] | None = None
        self._j_blocked: set[int] = set()
        self._j_closed = False
        self._status_changed = False  # an instrument state changed since the last note

    # --- sessions ----------------------------------------------------------------------
    def session_for(self, login: Login) -> Session:
        """The login's session for the day (created on first use)."""
        s = self.sessions.get(login.session)
        if s is None:
            s = self.sessions[login.session] = self.session_class(login, self.replay_limit)
            if self._touched is not None:
                s.track(self._touched)
        return s

    def send_initial_status(self, s: Session) -> None:
        """On a session's first login: one Trading Status per listed instrument."""
        if s.status_sent:
            return
        s.status_sent = True
        ts = self.sequencer.reserve(1)
        for iid in self.contracts:
            s.append(sequenced(m.encode_trading_status(ts, iid, STATUS_TO_WIRE[self.status[iid]])))

    def mark_dirty(self, conn: Any) -> None:
        """A connection has output buffered; it is written at the end of the batch."""
        self._dirty.add(conn)

    # --- batch plumbing ----------------------------------------------------------------
    def _push(self, kind: int, row: tuple | None, *ctx: Any) -> None:
        entries = self._entries
        if row is not None:
            self._slots.append(len(entries))
            self._rows.append(row)
        entries.append((kind, *ctx))
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Have the pending batch flushed once this loop iteration (with ``schedule``)."""
        if not self._scheduled:
            self._scheduled = True
            if self.schedule is not None:
                self.schedule(self._loop_flush)

    def _reply(self, s: Session, build: Callable[[int], bytes]) -> None:
        """Queue a gateway reply (``build(ts)`` -> message) in the batch order."""
        self._push(_K_LOCAL, None, s, lambda ts: sequenced(build(ts)))

    def _reject(self, s: Session, token: int, request: int, code: int, offset: int = 0) -> None:
        self._push(_K_LOCAL, None, s, lambda ts: seq_rejected(ts, token, request, code, offset))

    def _loop_flush(self) -> None:
        """The once-per-loop-iteration flush; then, between batches, a due snapshot."""
        self.flush()
        d = self.durable
        if d is not None and d.snapshot_due and not self._entries:
            d.snapshot(background=d.background)

    def attach_feed(self, pub: Any) -> None:
        """Publish every engine batch to the market data feed ``pub`` (an
        :class:`exchange.marketdata.FeedPublisher`), as a sequencer event listener."""
        self.sequencer.event_listeners.append(pub.publish_events)

    def commit_outputs(self) -> None:
        """Journal messages appended outside a batch (initial Trading Status at login)
        before they are written to the connection."""
        if self.durable is not None:
            self.durable.commit((), ())

    def flush(self) -> None:
        """Run the pending batch through the sequencer and deliver every reply. O(batch).

        With a journal (``durable``), the batch's commands and a note with everything the
        gateway decided (session messages, tokens, orders, flags) are committed in one
        write (+ fsync) after the engine ran and before any byte of a reply is written."""
        self._scheduled = False
        entries = self._entries
        if not entries:
            return
        rows, slots = self._rows, self._slots
        self._entries, self._rows, self._slots = [], [], []
        self._replacing.clear()
        base, events = self.sequencer.submit_records(rows, slots, len(entries))
        orders = self.orders
        li = 0
        for ev in events:  # EVENT_DTYPE record order (sequencer.RECORD_FIELDS)
            et = ev[10]
            if et == _E_LEVEL:
                continue  # book depth: the market data feed's, not the sessions'
            k = ev[0] - base
            while li < k:
                e = entries[li]
                if e[0] == _K_LOCAL:  # a gateway reply: (kind, session, build -> packet)
                    e[1].append(e[2](base + li))
                li += 1
            if et == _E_ACCEPTED:  # the common case, inline
                rec = orders.get(ev[1])
                if rec is not None:
                    rec.order_id = ev[3]
                    rec.working = True
                    rec.session.append(seq_accepted_echo(ev[0], entries[k][2], ev[3]))
            else:
                self._on_event(ev, entries[k])
        n = len(entries)
        while li < n:
            e = entries[li]
            if e[0] == _K_LOCAL:
                e[1].append(e[2](base + li))
            li += 1
        if self.durable is not None:
            self.durable.commit(rows, events)  # journaled (and fsynced) before any reply
        if self._dirty:
            dirty, self._dirty = self._dirty, set()
            for conn in dirty:
                conn.drain_out()
        # after the acknowledgements are on the wire: the trade log (the journal has the
        # fills; recovery rewrites the log from it) and the market data feed
        if self.tradelog is not None:
            self.tradelog.flush()
        self.sequencer.publish()

    # --- inbound -----------------------------------------------------------------------
    def on_message(self, s: Session, data: bytes) -> None:
        """Handle one inbound application message from session ``s`` (never raises)."""
        if not s.throttle.allow():
            tok = int.from_bytes(data[1:5], "big") if len(data) >= 5 else 0
            self._reject(s, tok, data[0] if data else 0, RejectCode.THROTTLED)
            return
        n = len(data)
        if n == _CANCEL_SIZE and data[0] == 0x58:  # Cancel Order: a token, nothing to check
            self._cancel(s, int.from_bytes(data[1:5], "big"))
            return
        if n == ENTER_ORDER_SIZE and data[0] == 0x4F:
            # Enter Order fast path: one unpack to ints, set lookups for the enums and one
            # dict hit for an account this login already traded; anything else (a bad enum,
            # an account not seen yet or not permitted) takes the general decoder below,
            # which names the bad field.
            f = ENTER_ORDER_INTS.unpack(data)
            aid = s.account_ids.get(f[12])
            if (
                aid is not None
                and f[14] in POST_ONLY_VALUES
                and f[2] in SIDES
                and f[3] in ORDER_TYPES
                and f[4] in TIMES_IN_FORCE
                and f[11] in SMP_INSTRUCTIONS
            ):
                self._enter(s, data, aid, *f)
                return
        try:
            msg = m.decode_inbound(data)
        except m.MessageError as exc:
            self._reject(s, exc.token, exc.request, exc.code, exc.offset)
            return
        if type(msg) is m.EnterOrder:
            acct = self.access.accounts.get(msg.account)
            aid = None
            if acct is not None and msg.account in s.login.accounts:
                aid = s.account_ids[data[_ACCOUNT_OFF:_ACCOUNT_END]] = acct.account_id
            self._enter(s, data, aid, *ENTER_ORDER_INTS.unpack(data))
        elif type(msg) is m.CancelOrder:
            self._cancel(s, msg.token)
        else:
            self._control(s, msg)

    def _control(self, s: Session, msg: Any) -> None:
        """Replace, Mass Cancel, Kill Switch, Close Day (a decoded message)."""
        if type(msg) is m.ReplaceOrder:
            self._replace(s, msg)
        elif type(msg) is m.MassCancel:
            self._mass_cancel(s, msg)
        elif type(msg) is m.KillSwitch:
            self._kill_switch(s, msg)
        elif type(msg) is m.CloseDay:
            if not s.login.admin:
                self._reject(s, msg.token, ord("Z"), RejectCode.NOT_ADMIN)
                return
            self._run_pending()  # journal what came before, then take the token
            if self._take_token(s, msg.token):
                self.close_day(s, msg.token)
            else:
                self._reject(s, msg.token, ord("Z"), RejectCode.TOKEN_NOT_INCREASING)

    def _run_pending(self) -> None:
        """Run (and journal) the batch so far, before a step that needs its outcome."""
        self.flush()

    def _take_token(self, s: Session, token: int) -> bool:
        """``s`` takes ``token`` if it is above its last one (see ``Session.take_token``)."""
        return s.take_token(token)

    def _enter(
        self,
        s: Session,
        raw: bytes,
        account: int | None,
        tok: int,
        inst: int,
        side: int,
        otype: int,
        tif: int,
        price: int,
        qty: int,
        display: int,
        stop: int,
        min_qty: int,
        smp_group: int,
        smp: int,
        _account_raw: bytes,
        expire: int,
        post_only: int,
    ) -> None:
        """An Enter Order whose fields decoded (``raw`` its bytes; ``account`` the account
        id, None if this login may not trade it). Token, field checks, risk, then a row in
        the pending batch. O(1)."""
        if tok <= s.last_token:  # Session.take_token, inline
            self._reject(s, tok, 0x4F, RejectCode.TOKEN_NOT_INCREASING, 1)
            return
        s.last_token = tok
        # field checks, in the order of the reject codes' precedence (byte offsets of
        # the Enter Order fields)
        if account is None:
            code, off = RejectCode.ACCOUNT_NOT_PERMITTED, 45
        elif self.closed:
            code, off = RejectCode.MARKET_CLOSED, 0
        elif qty == 0:
            code, off = RejectCode.BAD_QUANTITY, 20
        elif display > qty:
            code, off = RejectCode.BAD_DISPLAY_QUANTITY, 24
        elif min_qty > qty:
            code, off = RejectCode.BAD_MIN_QUANTITY, 36
        elif (tif == _GTD) != (expire != 0):
            code, off = RejectCode.BAD_EXPIRE_TIME, 61
        elif (otype in _STOP_TYPES) != (stop != 0):
            code, off = RejectCode.BAD_STOP_PRICE, 28
        elif otype in _LIMIT_TYPES and price <= 0:
            code, off = RejectCode.BAD_PRICE, 12
        elif inst not in self.contracts:
            if self.expired_contract(inst):
                code, off = RejectCode.CONTRACT_EXPIRED, 5
            else:
                code, off = RejectCode.UNKNOWN_INSTRUMENT, 5
        else:
            code = self.risk.admit(account, inst, side, otype, price, stop, qty)
            off = 0
        if code is not None:
            self._reject(s, tok, 0x4F, code, off)
            return
        ref = self._next_ref
        self._next_ref = ref + 1
        rec = OrderRec(ref, tok, account, inst, side, price, qty, 0, stop, False, s)  # type: ignore[arg-type]
        self.orders[ref] = rec
        s.orders[tok] = rec
        if expire:
            rec.expire = expire
            heapq.heappush(self._gtd, (expire, ref))
        row = (
            0,
            ref,
            tok,
            0,
            price,
            stop,
            qty,
            display,
            min_qty,
            expire,
            inst,
            account,
            smp_group,
            _NEW,
            SIDE_TO_ENGINE[side],
            ORDER_TYPE_TO_ENGINE[otype],
            TIF_TO_ENGINE[tif],
            SMP_TO_ENGINE[smp],
            _POST_ONLY_FLAG if post_only == _POST_YES else 0,
            0,
            0,
        )  # fmt: skip  -- COMMAND_DTYPE field order, as _row() (which has no expiry/flags)
        self._push(_K_NEW, row, rec, raw)

    def _needs_order_id(self, recs: list[OrderRec]) -> None:
        """Orders still waiting in the pending batch get their engine id by flushing now."""
        if any(r.order_id == 0 for r in recs):
            self.flush()

    def _cancel(self, s: Session, token: int) -> None:
        """A client's Cancel Order for its order ``token``. O(1)."""
        rec = s.orders.get(token)
        if rec is None:
            self._reject(s, token, 0x58, RejectCode.UNKNOWN_TOKEN, 1)
            return
        if rec.order_id == 0:  # still in the pending batch: the engine must number it
            self.flush()
            if s.orders.get(token) is not rec:  # done while flushing
                self._reject(s, token, 0x58, RejectCode.ORDER_NOT_WORKING, 1)
                return
        self._push(
            _K_CANCEL, _row(_CANCEL, rec.ref, token, rec.order_id, account=rec.account_id), rec, 0
        )

    def _replace(self, s: Session, r: m.ReplaceOrder) -> None:
        rec = s.orders.get(r.orig_token)
        if rec is not None and (rec.order_id == 0 or id(rec) in self._replacing):
            # Before the token is taken (a flush journals the token state): the order's
            # engine id, or the outcome of a replace of it already in this batch, is needed
            # so the risk check sees the quantity the engine will see.
            self.flush()
        if not s.take_token(r.token):
            self._reject(s, r.token, 0x55, RejectCode.TOKEN_NOT_INCREASING, 5)
            return
        if rec is None:
            self._reject(s, r.token, 0x55, RejectCode.UNKNOWN_TOKEN, 1)
            return
        if r.quantity == 0:
            self._reject(s, r.token, 0x55, RejectCode.BAD_QUANTITY, 25)
            return
        self._needs_order_id([rec])
        if s.orders.get(r.orig_token) is not rec:
            self._reject(s, r.token, 0x55, RejectCode.ORDER_NOT_WORKING, 1)
            return
        stop = r.stop_price or rec.stop_price
        otype = ord("T") if rec.stop_price and rec.price else ord("S") if rec.stop_price else 0
        otype = otype or ord("L")
        increase = r.quantity - rec.quantity
        code = self.risk.check(
            rec.account_id, rec.instrument_id, rec.side, otype, r.price, stop, r.quantity,
            added_qty=max(increase, 0),
        )  # fmt: skip
        if code is not None:
            self._reject(s, r.token, 0x55, code)
            return
        if increase > 0:
            self.risk.reserve(rec.account_id, rec.instrument_id, rec.side, increase)
        row = _row(
            CmdType.REPLACE, rec.ref, r.token, rec.order_id, r.price, stop, r.quantity,
            account=rec.account_id,
        )  # fmt: skip
        self._replacing.add(id(rec))
        self._push(_K_REPLACE, row, rec, (r, max(increase, 0), stop))

    def _mass_cancel(self, s: Session, mc: m.MassCancel) -> None:
        recs = [
            r
            for r in s.orders.values()
            if (mc.instrument_id in (0, r.instrument_id)) and (mc.side in (32, r.side))
        ]
        self._needs_order_id(recs)  # before the token is taken (see _replace)
        if not s.take_token(mc.token):
            self._reject(s, mc.token, 0x43, RejectCode.TOKEN_NOT_INCREASING, 1)
            return
        counter = _Counter()
        for r in recs:
            if s.orders.get(r.token) is r:
                self._push(
                    _K_CANCEL,
                    _row(CmdType.CANCEL, r.ref, 0, r.order_id, account=r.account_id),
                    r,
                    WireCancelReason.MASS_CANCEL.value,
                    counter,
                )
        tok = mc.token
        self._reply(s, lambda ts: m.encode_mass_cancel_done(ts, tok, counter.n))

    def cancel_all(self, s: Session, reason: int) -> None:
        """Cancel every working order of ``s`` (cancel-on-disconnect), reason ``reason``."""
        recs = list(s.orders.values())
        if not recs:
            return
        self._needs_order_id(recs)
        for r in recs:
            if s.orders.get(r.token) is r:
                self._push(
                    _K_CANCEL,
                    _row(CmdType.CANCEL, r.ref, 0, r.order_id, account=r.account_id),
                    r,
                    reason,
                )

    def _kill_switch(self, s: Session, k: m.KillSwitch) -> None:
        if not s.login.admin:
            self._reject(s, k.token, 0x4B, RejectCode.NOT_ADMIN)
            return
        if not self._take_token(s, k.token):
            self._reject(s, k.token, 0x4B, RejectCode.TOKEN_NOT_INCREASING, 1)
            return
        acct = self.access.accounts.get(k.account)
        if acct is None:
            self._reject(s, k.token, 0x4B, RejectCode.ACCOUNT_NOT_PERMITTED, 5)
            return
        tok = k.token
        if k.action == ord("U"):
            self._unblock(acct.account_id)
            log.warning("kill switch: account %s unblocked", acct.name)
            self._reply(s, lambda ts: m.encode_mass_cancel_done(ts, tok, 0))
            return
        self.kill_account(acct.account_id, s, tok)

    def _unblock(self, account_id: int) -> None:
        """Lift the kill switch of ``account_id``."""
        self.risk.blocked.discard(account_id)

    def _block(self, account_id: int) -> None:
        """Set the kill switch of ``account_id`` (its new orders and replaces rejected)."""
        self.risk.blocked.add(account_id)

    def _decode_pending(self) -> None:
        """Decide the messages that arrived before now (this gateway decides each on
        arrival; a gateway that queues them overrides this)."""

    def kill_account(self, account_id: int, admin: Session | None = None, token: int = 0) -> None:
        """Block ``account_id`` and cancel all its working orders (engine MASS_CANCEL)."""
        self._decode_pending()  # orders that arrived before the kill are decided first
        self._block(account_id)
        log.warning("kill switch: account %s blocked", self.account_names.get(account_id))
        self._push(
            _K_SWEEP,
            _row(CmdType.MASS_CANCEL, account=account_id),
            WireCancelReason.KILL_SWITCH.value,
            admin,
            token,
        )

    # --- trading sessions --------------------------------------------------------------
    def apply_transitions(self, cmds: Any) -> int:
        """Queue scheduled transitions (``exchange.schedule`` commands: SET_STATUS,
        SESSION_CLOSE, MASS_CANCEL at expiry) for the listed instruments, in order; each is
        a sequenced, journaled command. When a SESSION_CLOSE leaves every instrument
        CLOSED, the trading day is closed (close record, End of Session). Returns how many
        were queued. O(len(cmds))."""
        if self.closed:
            return 0  # the trading day is over: a later day's schedule is not this one's
        n = 0
        session_closed = False
        for c in cmds:
            iid = int(c["instrument_id"])
            if iid not in self.contracts:
                continue
            ct = int(c["cmd_type"])
            if ct == CmdType.SET_STATUS:
                self._push(_K_STATUS, _row(CmdType.SET_STATUS, inst=iid, status=int(c["status"])))
            elif ct in (CmdType.SESSION_CLOSE, CmdType.MASS_CANCEL):
                reason = WireCancelReason.SESSION_END.value
                self._push(_K_SWEEP, _row(ct, inst=iid), reason, None, 0)
                session_closed |= ct == CmdType.SESSION_CLOSE
            else:
                continue
            n += 1
        if n and self.schedule is None:
            self.flush()
        if session_closed and not self.closed:
            self.flush()
            if all(st == InstrumentStatus.CLOSED for st in self.status.values()):
                self.close_day()
        return n

    def next_gtd_expiry(self) -> int | None:
        """Earliest GTD expiry among working orders (ns), or None. O(1) amortised."""
        gtd, orders = self._gtd, self.orders
        while gtd and gtd[0][1] not in orders:
            heapq.heappop(gtd)
        return gtd[0][0] if gtd else None

    def expire_due(self, now_ns: int) -> bool:
        """If a working GTD order's expire time has come, queue the engine's EXPIRE_GTD
        (a sequenced, journaled command; the engine cancels every GTD order whose time is
        at or before the command's timestamp, reason ``E``). True if queued."""
        nxt = self.next_gtd_expiry()
        if nxt is None or nxt > now_ns or self.closed:
            return False
        gtd = self._gtd
        while gtd and gtd[0][0] <= now_ns:
            heapq.heappop(gtd)
        if self.sequencer.last_ts < nxt:
            self.sequencer.last_ts = nxt  # the command's timestamp reaches the expiry
        self._push(_K_SWEEP, _row(CmdType.EXPIRE_GTD), WireCancelReason.SESSION_END.value, None, 0)
        if self.schedule is None:
            self.flush()
        return True

    def expired_contract(self, instrument_id: int) -> bool:
        """True if ``instrument_id`` is a contract whose last trading day is before today."""
        from contracts.calendar import contract_for_instrument_id
        from contracts.errors import FlopexError
        from contracts.registry import load_products

        if self._products is None:
            self._products = load_products()
        try:
            c = contract_for_instrument_id(instrument_id, self._products)
        except (FlopexError, KeyError, ValueError):
            return False
        return c.last_trading_day < self.trade_date

    # --- the close -------------------------------------------------------------------
    def tops(self) -> dict[int, tuple[int | None, int, int | None, int]]:
        """(best bid, its displayed qty, best ask, its displayed qty) per instrument, read
        from the engine's book snapshot (O(book); used once, at the close)."""
        snap = self.sequencer.engine.snapshot()["instruments"]  # type: ignore[attr-defined]
        out = {}
        for iid in self.contracts:
            ins = snap.get(iid, {})
            bids, asks = ins.get("bids") or [], ins.get("asks") or []
            b = (bids[0][0], bids[0][1]) if bids else (None, 0)
            a = (asks[0][0], asks[0][1]) if asks else (None, 0)
            out[iid] = (b[0], b[1], a[0], a[1])
        return out

    def close_day(self, admin: Session | None = None, token: int = 0) -> Path | None:
        """Close the trading day: close record, expire day orders, status closed, End of Session.

        Idempotent: a second call does nothing. Returns the close record's path (None
        without a data directory).
        """
        if self.closed:
            if admin is not None:
                self._reply(admin, lambda ts: m.encode_mass_cancel_done(ts, token, 0))
                self.flush()
            return self.close_path
        self.flush()
        close_ts = self.sequencer.reserve(1)
        top = self.tops()
        tops = [(c, *top[iid]) for iid, c in self.contracts.items()]
        if self.data_dir is not None:
            self.close_path = write_close_record(self.data_dir, self.trade_date, close_ts, tops)
        self.closed = True
        self._push(
            _K_SWEEP,
            _row(CmdType.SESSION_CLOSE),
            WireCancelReason.SESSION_END.value,
            admin,
            token,
        )
        for iid in self.contracts:
            self._push(
                _K_STATUS, _row(CmdType.SET_STATUS, inst=iid, status=InstrumentStatus.CLOSED)
            )
        self.flush()
        log.warning("trading day %s closed; close record %s", self.trade_date, self.close_path)
        for cb in self.on_close:
            cb()
        return self.close_path

    # --- durability ------------------------------------------------------------------
    def journal_delta(self, rows: Any, events: Any) -> dict | None:
        """What this batch changed in the gateway's own state, for the journal note.

        Keys: ``m`` new framed messages per session, ``t`` per touched session
        ``[last token, status sent]``, ``o`` orders touched by the batch (full rows, see
        :func:`order_row`), ``x`` orders gone, ``nr`` next order reference, ``ts`` the
        sequencer clock, and ``b``/``c``/``st`` (blocked accounts, closed, instrument
        status) when they changed. None if nothing changed. O(batch)."""
        touched = self._touched
        note: dict[str, Any] = {}
        if touched:
            note["m"] = {s.name: s.take_unjournaled() for s in touched}
            note["t"] = {s.name: [s.last_token, s.status_sent] for s in touched}
            touched.clear()
        refs = {r[1] for r in rows}
        refs.update({ev[1] for ev in events})  # user_ref (LEVEL: 0)
        refs.discard(0)
        if refs:
            get = self.orders.get
            ups, gone = [], []
            for ref in refs:
                rec = get(ref)
                if rec is None:
                    gone.append(ref)
                else:
                    ups.append(order_row(rec))
            if ups:
                note["o"] = ups
            if gone:
                note["x"] = gone
        return self._note_flags(note, self._next_ref)

    def _note_flags(self, note: dict[str, Any], next_ref: int) -> dict | None:
        """Finish a journal note: the rare flags (blocked accounts, closed, instrument
        status) when they changed, then the order-reference counter and the clock; None
        if the batch changed nothing."""
        blocked = self.risk.blocked
        if (blocked or self._j_blocked) and blocked != self._j_blocked:
            self._j_blocked = set(blocked)
            note["b"] = sorted(self._j_blocked)
        if self.closed != self._j_closed:
            self._j_closed = self.closed
            note["c"] = [self.closed, str(self.close_path) if self.close_path else None]
        if self._status_changed:
            self._status_changed = False
            note["st"] = [[k, v] for k, v in self.status.items()]
        if not note:
            return None
        note["nr"] = next_ref
        note["ts"] = self.sequencer.last_ts
        return note

    def export_state(self) -> dict[str, Any]:
        """The gateway's full state as plain data (snapshot metadata; between batches)."""
        for s in self.sessions.values():
            if s.touched is not None:
                s.take_unjournaled()
        if self._touched:
            self._touched.clear()
        return {
            "day": self.trade_date.isoformat(),
            "sessions": {
                s.name: [
                    s.next_seq,
                    b"".join(s.replay_from(s.first_seq)),
                    s.last_token,
                    s.status_sent,
                ]
                for s in self.sessions.values()
            },
            "orders": self._export_orders(),
            "nr": self._next_ref,
            "ts": self.sequencer.last_ts,
            "b": sorted(self.risk.blocked),
            "c": [self.closed, str(self.close_path) if self.close_path else None],
            "st": [[k, v] for k, v in self.status.items()],
            "pos": self.risk.positions(),
        }

    def _export_orders(self) -> list[tuple]:
        """Every working order as journal data (:func:`order_row`), in session order."""
        return [order_row(r) for r in self.orders.values()]

    def restore_state(self, image: GatewayImage) -> None:
        """Rebuild sessions, orders, risk, flags from a recovered :class:`GatewayImage`.

        Call on a fresh gateway whose engine holds the recovered state. FlopexError if a
        session in the image has no login in the access file any more."""
        from contracts.errors import FlopexError

        by_session = {lg.session: lg for lg in self.access.logins.values()}
        self.sessions.clear()
        for name, (next_seq, frames, tok, ss) in image.sessions.items():
            login = by_session.get(name)
            if login is None:
                raise FlopexError(
                    f"data directory has session {name!r} that the access file no longer defines"
                )
            s = self.sessions[name] = self.session_class(login, self.replay_limit)
            if self._touched is not None:
                s.track(self._touched)
            s.restore(next_seq, frames, tok, ss)
        self.orders.clear()
        self._gtd = []
        for row in image.orders.values():
            ref, tok, acct, inst, side, px, qty, oid, stop, working, sname, expire = row
            sess = self.sessions[sname]
            rec = OrderRec(ref, tok, acct, inst, side, px, qty, oid, stop, working, sess, expire)
            self.orders[ref] = rec
            sess.orders[tok] = rec
            if expire:
                self._gtd.append((expire, ref))
        heapq.heapify(self._gtd)
        self._next_ref = max(image.nr, self._next_ref)
        self.risk.restore(image.positions, self.orders.values(), image.blocked)
        self._restore_flags(image)

    def _restore_flags(self, image: GatewayImage) -> None:
        """The recovered day's closed flag and close record, instrument status and clock
        (after the blocked accounts are restored)."""
        self.closed, cp = image.closed
        self.close_path = Path(cp) if cp else None
        self.status.update(image.status)
        self._j_blocked = set(self.risk.blocked)
        self._j_closed = self.closed
        self._status_changed = False
        self.sequencer.last_ts = max(self.sequencer.last_ts, image.ts)

    # --- events ------------------------------------------------------------------------
    def _on_event(self, ev: tuple, ctx: tuple) -> None:
        et = ev[10]
        if et == _E_TRADE:
            self._on_trade(ev)
        elif et == _E_ACCEPTED:
            rec = self.orders.get(ev[1])
            if rec is None:
                return
            rec.order_id = ev[3]
            rec.working = True
            rec.session.append(sequenced(m.encode_accepted_echo(ev[0], ctx[2], ev[3])))
        elif et == _E_CANCELLED:
            self._on_cancelled(ev, ctx)
        elif et == _E_REJECTED:
            self._on_rejected(ev, ctx)
        elif et == _E_REPLACED:
            rec = self.orders.get(ev[1])
            if rec is None:
                return
            r, reserved, stop = ctx[2]
            s = rec.session
            # The check reserved the increase over the quantity the gateway knew then; a
            # fill earlier in the same batch may have changed it since (a fill moves working
            # quantity into the position, so the checked exposure still holds). Settle the
            # working quantity to the engine's real change: new leaves - leaves just before.
            adjust = (ev[6] - rec.quantity) - reserved
            if adjust > 0:
                self.risk.reserve(rec.account_id, rec.instrument_id, rec.side, adjust)
            elif adjust < 0:
                self.risk.release(rec.account_id, rec.instrument_id, rec.side, -adjust)
            if s.orders.get(rec.token) is rec:
                del s.orders[rec.token]
            rec.token = r.token
            s.orders[r.token] = rec
            rec.price, rec.quantity, rec.stop_price = r.price, ev[6], stop
            s.append(
                sequenced(
                    m.encode_replaced(
                        ev[0], r.token, r.orig_token, rec.instrument_id, rec.side, ev[4],
                        stop if rec.stop_price else 0, ev[6], ev[3],
                    )
                )
            )  # fmt: skip
        elif et == _E_STOP:
            rec = self.orders.get(ev[1])
            if rec is not None:
                rec.session.append(
                    sequenced(
                        m.encode_stop_triggered(ev[0], rec.token, rec.instrument_id, rec.stop_price)
                    )
                )
        elif et == _E_STATUS:
            iid, state = ev[8], ev[5]
            self.status[iid] = state
            self._status_changed = True
            wire = STATUS_TO_WIRE[state]
            for s in self.sessions.values():
                if s.status_sent:
                    s.append(sequenced(m.encode_trading_status(ev[0], iid, wire)))
        elif et == _E_DONE and ctx[0] == _K_SWEEP and ctx[2] is not None:
            tok, n = ctx[3], ev[5]
            ctx[2].append(sequenced(m.encode_mass_cancel_done(ev[0], tok, n)))

    def _on_trade(self, ev: tuple) -> None:
        rec = self.orders.get(ev[1])
        if rec is None:
            return
        qty, leaves, side = ev[5], ev[6], rec.side
        aggressor = ev[12] == ev[11]
        rec.session.append(
            seq_executed(
                ev[0], rec.token, rec.instrument_id, side, ev[4], qty, ev[7],
                0x52 if aggressor else 0x41, leaves,
            )
        )  # fmt: skip
        self.risk.on_fill(rec.account_id, rec.instrument_id, side, qty)
        rec.quantity = leaves
        if self.tradelog is not None:
            self.tradelog.fill(
                ev[0], ev[7], rec.instrument_id, self.account_names[rec.account_id],
                side == _BUY, ev[4], qty, aggressor,
            )  # fmt: skip
        if leaves == 0:
            self._forget(rec)

    def _forget(self, rec: OrderRec) -> None:
        self.orders.pop(rec.ref, None)
        s = rec.session
        if s.orders.get(rec.token) is rec:
            del s.orders[rec.token]

    def _on_cancelled(self, ev: tuple, ctx: tuple) -> None:
        rec = self.orders.get(ev[1])
        if rec is None:
            return
        kind = ctx[0]
        if kind == _K_CANCEL and ctx[1] is rec and ctx[2]:
            reason = ctx[2]
            if len(ctx) > 3:
                ctx[3].n += 1
        elif kind == _K_SWEEP:
            reason = ctx[1]
        else:
            reason = CANCEL_REASON_TO_WIRE[ev[13]]
        self.risk.release(rec.account_id, rec.instrument_id, rec.side, rec.quantity)
        rec.session.append(
            seq_canceled(ev[0], rec.token, rec.instrument_id, rec.side, ev[5], reason)
        )
        self._forget(rec)

    def _on_rejected(self, ev: tuple, ctx: tuple) -> None:
        kind = ctx[0]
        code = reject_to_wire(ev[13])
        if kind == _K_NEW:
            rec = ctx[1]
            self.risk.release(rec.account_id, rec.instrument_id, rec.side, rec.quantity)
            self._forget(rec)
            rec.session.append(seq_rejected(ev[0], rec.token, 0x4F, code))
        elif kind == _K_REPLACE:
            rec, (r, increase, _) = ctx[1], ctx[2]
            if increase:
                self.risk.release(rec.account_id, rec.instrument_id, rec.side, increase)
            rec.session.append(seq_rejected(ev[0], r.token, 0x55, code))
        elif kind == _K_CANCEL:
            rec = ctx[1]
            if not ctx[2]:  # a client's Cancel Order
                rec.session.append(seq_rejected(ev[0], rec.token, 0x58, code))
        else:
            log.error("engine rejected an admin command: reason %s", ev[13])


def order_row(rec: OrderRec) -> tuple:
    """An order as journal data: ref, token, account, instrument, side, price, quantity,
    order id, stop price, working, session name, GTD expiry."""
    return (
        rec.ref, rec.token, rec.account_id, rec.instrument_id, rec.side, rec.price,
        rec.quantity, rec.order_id, rec.stop_price, rec.working, rec.session.name,  # type: ignore[union-attr]
        rec.expire,
    )  # fmt: skip


def split_frames(blob: bytes) -> list[bytes]:
    """Framed SoupBinTCP packets laid end to end -> the packets. O(len(blob))."""
    out = []
    pos, n = 0, len(blob)
    while pos < n:
        end = pos + 2 + int.from_bytes(blob[pos : pos + 2], "big")
        out.append(blob[pos:end])
        pos = end
    return out


class GatewayImage:
    """The gateway's state as plain data while recovery replays the journal.

    Loaded from a snapshot's ``gateway`` metadata (:meth:`Gateway.export_state`), advanced
    by each gateway note (:meth:`Gateway.journal_delta`) and each replayed trade, then
    applied with :meth:`Gateway.restore_state`. ``g`` is the number of the last gateway
    note applied: notes at or below it are already in the snapshot."""

    def __init__(self, day: str) -> None:
        self.day = day
        self.g = 0
        self.sessions: dict[str, list] = {}  # name -> [next_seq, frames, last token, ss]
        self.orders: dict[int, list] = {}
        self.nr = 1
        self.ts = 0
        self.blocked: list[int] = []
        self.closed: list = [False, None]
        self.status: dict[int, int] = {}
        self.positions: dict[tuple[int, int], int] = {}
        self.tradelog_bytes: int | None = None
        #: session names by table row, for the compiled core's notes (its last ``N``)
        self.names: list[str] | None = None

    @classmethod
    def from_meta(cls, meta: dict[str, Any], g: int, tradelog_bytes: int | None) -> GatewayImage:
        img = cls(meta["day"])
        img.g = g
        img.sessions = {
            name: [nxt, split_frames(blob), tok, ss]
            for name, (nxt, blob, tok, ss) in meta["sessions"].items()
        }
        img.orders = {row[0]: row for row in meta["orders"]}
        img.nr, img.ts = meta["nr"], meta["ts"]
        img.blocked, img.closed = meta["b"], meta["c"]
        img.status = {k: v for k, v in meta["st"]}
        img.positions = {(a, i): p for a, i, p in meta["pos"]}
        img.tradelog_bytes = tradelog_bytes
        img.names = meta.get("N")
        return img

    def apply(self, note: dict[str, Any]) -> None:
        """Advance by one gateway note. O(note)."""
        names = self.names = note.get("N", self.names)
        if names is None and ("M" in note or "O" in note or "T" in note):
            from contracts.errors import FlopexError

            raise FlopexError(
                f"gateway note {note.get('gw')} names sessions by table row, but no note or"
                " snapshot before it gives the session table"
            )
        for name, blob in note.get("m", {}).items():
            sess = self.sessions.setdefault(name, [1, [], 0, False])
            frames = split_frames(blob)
            sess[1].extend(frames)
            sess[0] += len(frames)
        for name, (tok, ss) in note.get("t", {}).items():
            sess = self.sessions.setdefault(name, [1, [], 0, False])
            sess[2], sess[3] = tok, ss
        for r, tok, ss in note.get("T", ()):  # the same, sessions by row (binary notes)
            sess = self.sessions.setdefault(names[r], [1, [], 0, False])  # type: ignore[index]
            sess[2], sess[3] = tok, bool(ss)
        if "M" in note:  # the compiled core's messages: frames in order, sessions by row
            rows = np.frombuffer(note["MS"], "<i2").tolist()
            for r, frame in zip(rows, split_frames(note["M"]), strict=True):
                sess = self.sessions.setdefault(names[r], [1, [], 0, False])  # type: ignore[index]
                sess[1].append(frame)
                sess[0] += 1
        for row in note.get("o", ()):
            self.orders[row[0]] = row
        if "O" in note:  # the compiled core's order rows: packed int64, session by index
            for r in np.frombuffer(note["O"], np.int64).reshape(-1, 12).tolist():
                r[9], r[10] = bool(r[9]), names[r[10]]  # type: ignore[index]
                self.orders[r[0]] = tuple(r)
        for ref in note.get("x", ()):
            self.orders.pop(ref, None)
        if "b" in note:
            self.blocked = note["b"]
        if "c" in note:
            self.closed = note["c"]
        if "st" in note:
            self.status = {k: v for k, v in note["st"]}
        self.nr = note.get("nr", self.nr)
        self.ts = max(self.ts, note.get("ts", 0))

    def on_fill(self, account: int, inst: int, buy: bool, qty: int) -> None:
        key = (account, inst)
        self.positions[key] = self.positions.get(key, 0) + (qty if buy else -qty)
