"""The reference book: the engine's semantics in plain Python, written to be read.

This is the executable specification of the matching engine. The numba kernel
(:mod:`exchange.engine.kernel`) must produce exactly the same event stream and the same
book snapshot for any command stream; ``tests/exchange/engine`` drives both with random
streams (hypothesis) and compares them. Where this file and ``docs/engine.md`` disagree,
this file is the specification and the doc is the bug.

Data structures (per instrument): bids and asks are ``SortedDict`` price -> :class:`Level`;
a level keeps its orders in a ``dict`` (insertion-ordered, so time priority = dict order;
re-inserting an order moves it to the back). Untriggered stops live in two more sorted
books keyed by stop price. Order ids are ``generation << 32 | slot`` allocated from a LIFO
free list exactly as the kernel does, so both books hand out identical ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sortedcontainers import SortedDict

from exchange.engine.abi import (
    EVENT_DTYPE,
    EVENT_FIELDS,
    FLAG_POST_ONLY,
    CancelReason,
    CmdType,
    EventType,
    InstrumentStatus,
    MatchingAlgorithm,
    OrderType,
    RejectReason,
    Side,
    SmpInstruction,
    TimeInForce,
)
from exchange.engine.config import InstrumentConfig

BUY, SELL = int(Side.BUY), int(Side.SELL)
STOP_TYPES = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
_STATUS_REJECT = {
    InstrumentStatus.CLOSED: RejectReason.MARKET_CLOSED,
    InstrumentStatus.HALTED: RejectReason.INSTRUMENT_HALTED,
}
#: Statuses in which NEW and REPLACE are accepted (pre-open: rest without matching).
_ORDER_ENTRY = (InstrumentStatus.PRE_OPEN, InstrumentStatus.OPEN)
#: The indicative opening price when the book is not crossed: (price, volume, side, imbalance).
NO_IOP = (0, 0, 0, 0)
#: CME pro-rata: an allocation smaller than this many lots is rounded to zero.
PRO_RATA_MIN_ALLOCATION = 2


@dataclass(eq=False)
class Order:
    """One live order. ``shown + hidden`` is its open (leaves) quantity."""

    slot: int
    gen: int
    inst: int  # dense instrument slot
    side: int
    otype: int
    tif: int
    smp: int  # resolved SmpInstruction (never DEFAULT)
    post_only: bool
    account: int
    smp_group: int
    user_ref: int
    price: int  # limit price (for MARKET: the protection price)
    stop_price: int
    shown: int
    hidden: int
    display: int  # 0 = not an iceberg
    min_qty: int
    expire: int

    @property
    def order_id(self) -> int:
        return (self.gen << 32) | self.slot

    @property
    def leaves(self) -> int:
        return self.shown + self.hidden

    @property
    def event_price(self) -> int:
        """Price reported in events: the stop price while the order is an untriggered stop."""
        return self.stop_price if self.otype in STOP_TYPES else self.price


@dataclass(eq=False)
class Level:
    """Orders at one price in time priority, with the visible total."""

    orders: dict[int, Order] = field(default_factory=dict)
    total: int = 0


@dataclass(eq=False)
class Instrument:
    cfg: InstrumentConfig
    status: int
    reference: int
    last: int | None = None
    iop: tuple[int, int, int, int] = NO_IOP  # last published indicative opening price
    bids: SortedDict = field(default_factory=SortedDict)
    asks: SortedDict = field(default_factory=SortedDict)
    buy_stops: SortedDict = field(default_factory=SortedDict)
    sell_stops: SortedDict = field(default_factory=SortedDict)

    def limits(self) -> tuple[int, int]:
        """(lowest, highest) price accepted today: the band narrowed by the daily limit."""
        lo, hi = self.cfg.min_price_ticks, self.cfg.max_price_ticks
        lim = self.cfg.price_limit_ticks
        if lim > 0:
            lo, hi = max(lo, self.reference - lim), min(hi, self.reference + lim)
        return lo, hi

    def book(self, side: int) -> SortedDict:
        return self.bids if side == BUY else self.asks

    def best(self, side: int) -> int | None:
        """Best price on ``side`` (highest bid / lowest ask), or None if empty."""
        book = self.book(side)
        if not book:
            return None
        return book.keys()[-1] if side == BUY else book.keys()[0]


def crosses(side: int, limit: int, opposite_price: int) -> bool:
    """Can an order on ``side`` with ``limit`` trade at ``opposite_price``?"""
    return opposite_price <= limit if side == BUY else opposite_price >= limit


def is_self_match(a: Order, b: Order) -> bool:
    """Same account, or both carry the same non-zero self-match group."""
    return a.account == b.account or (a.smp_group != 0 and a.smp_group == b.smp_group)


class ReferenceBook:
    """All instruments of one engine shard, with the semantics in ``docs/engine.md``.

    ``process(cmds)`` returns the events as an ``EVENT_DTYPE`` array; costs are whatever
    Python costs (this book is for reading and for checking the kernel, not for speed).
    """

    def __init__(self, configs: Iterable[InstrumentConfig], max_orders: int = 1 << 16) -> None:
        self.configs = list(configs)
        self.instruments: list[Instrument] = []
        self.slot_of: dict[int, int] = {}
        for i, cfg in enumerate(self.configs):
            cfg.validate()
            self.slot_of[cfg.instrument_id] = i
            ref = cfg.reference_price_ticks or cfg.min_price_ticks
            self.instruments.append(Instrument(cfg, cfg.initial_status, ref))
        self.max_orders = max_orders
        self.free: list[int] = list(range(max_orders - 1, -1, -1))  # pop() -> slot 0 first
        self.gen: list[int] = [1] * max_orders
        self.live: dict[int, Order] = {}  # slot -> order
        self.next_match_id = 1
        self._events: list[tuple[Any, ...]] = []
        self._cmd: Any = None

    # ------------------------------------------------------------------ events
    def _emit(self, etype: int, **kw: int) -> None:
        c = self._cmd
        self._events.append(
            (
                etype,
                int(c["timestamp"]),
                kw.get("user_ref", 0),
                kw.get("client_token", 0),
                kw.get("order_id", 0),
                kw.get("instrument_id", 0),
                kw.get("account", 0),
                kw.get("side", 0),
                kw.get("aggressor_side", 0),
                kw.get("price", 0),
                kw.get("qty", 0),
                kw.get("leaves", 0),
                kw.get("match_id", 0),
                kw.get("reason", 0),
                kw.get("order_type", 0),
            )
        )

    def _emit_order(self, etype: int, o: Order, token: int = 0, **kw: int) -> None:
        kw.setdefault("price", o.event_price)
        self._emit(
            etype,
            user_ref=o.user_ref,
            client_token=token,
            order_id=o.order_id,
            instrument_id=self.instruments[o.inst].cfg.instrument_id,
            account=o.account,
            side=o.side,
            order_type=o.otype,
            **kw,
        )

    def _reject(self, reason: int) -> None:
        c = self._cmd
        self._emit(
            EventType.REJECTED,
            user_ref=int(c["user_ref"]),
            client_token=int(c["client_token"]),
            order_id=int(c["order_id"]),
            instrument_id=int(c["instrument_id"]),
            account=int(c["account"]),
            side=int(c["side"]),
            price=int(c["price"]),
            qty=int(c["qty"]),
            reason=int(reason),
            order_type=int(c["order_type"]),
        )

    def _emit_level(self, ins: Instrument, side: int, price: int) -> None:
        lvl = ins.book(side).get(price)
        total, count = (lvl.total, len(lvl.orders)) if lvl is not None else (0, 0)
        self._emit(
            EventType.LEVEL,
            instrument_id=ins.cfg.instrument_id,
            side=side,
            price=price,
            qty=total,
            leaves=count,
        )

    # ------------------------------------------------------------- order pool
    def _free_order(self, o: Order) -> None:
        del self.live[o.slot]
        self.gen[o.slot] = (self.gen[o.slot] + 1) & 0x7FFFFFFF or 1
        self.free.append(o.slot)

    def _lookup(self, order_id: int, account: int) -> Order | None:
        slot, gen = order_id & 0xFFFFFFFF, order_id >> 32
        o = self.live.get(slot)
        if o is None or o.gen != gen or o.account != account:
            return None
        return o

    # ---------------------------------------------------------- book helpers
    def _rest(self, ins: Instrument, o: Order) -> None:
        """Append ``o`` to the back of its price level and publish the level."""
        book = ins.book(o.side)
        lvl = book.get(o.price)
        if lvl is None:
            lvl = book[o.price] = Level()
        lvl.orders[o.slot] = o
        lvl.total += o.shown
        self._emit_level(ins, o.side, o.price)

    def _unlink(self, ins: Instrument, o: Order) -> None:
        """Remove ``o`` from its level (or stop book); drop the level when it empties."""
        if o.otype in STOP_TYPES:
            book = ins.buy_stops if o.side == BUY else ins.sell_stops
            key = o.stop_price
        else:
            book, key = ins.book(o.side), o.price
        lvl = book[key]
        del lvl.orders[o.slot]
        lvl.total -= o.shown
        if not lvl.orders:
            del book[key]

    def _cancel(self, ins: Instrument, o: Order, reason: int, token: int = 0) -> None:
        """Cancel a linked order: CANCELLED event, unlink, free (no LEVEL event)."""
        self._emit_order(EventType.CANCELLED, o, token, qty=o.leaves, leaves=0, reason=reason)
        self._unlink(ins, o)
        self._free_order(o)

    def _check_price(self, ins: Instrument, price: int) -> int:
        if not ins.cfg.min_price_ticks <= price <= ins.cfg.max_price_ticks:
            return RejectReason.PRICE_OUT_OF_BAND
        lo, hi = ins.limits()
        if not lo <= price <= hi:
            return RejectReason.PRICE_OUTSIDE_LIMITS
        return RejectReason.NONE

    def _check_stop(self, ins: Instrument, side: int, stop: int) -> int:
        r = self._check_price(ins, stop)
        if r:
            return r
        if ins.last is not None and (stop <= ins.last if side == BUY else stop >= ins.last):
            return RejectReason.INVALID_STOP_PRICE  # would trigger at once
        return RejectReason.NONE

    def _protection_price(self, ins: Instrument, side: int) -> int | None:
        """Market-with-protection limit: best opposite +/- protection, clamped to limits."""
        best = ins.best(SELL if side == BUY else BUY)
        if best is None:
            return None
        lo, hi = ins.limits()
        p = ins.cfg.market_protection_ticks
        return min(best + p, hi) if side == BUY else max(best - p, lo)

    # ---------------------------------------------------------------- process
    def process(self, cmds: np.ndarray) -> np.ndarray:
        """Apply every command in order; return all events they caused."""
        self._events = []
        for c in cmds:
            self._cmd = c
            self._dispatch(c)
        out = np.zeros(len(self._events), dtype=EVENT_DTYPE)
        if self._events:
            cols = list(zip(*self._events, strict=True))
            for name, col in zip(EVENT_FIELDS, cols, strict=True):
                out[name] = col
        return out

    def _dispatch(self, c: Any) -> None:
        t = int(c["cmd_type"])
        if t == CmdType.NEW:
            self._new(c)
        elif t == CmdType.CANCEL:
            self._cancel_cmd(c)
        elif t == CmdType.REPLACE:
            self._replace(c)
        elif t in (CmdType.MASS_CANCEL, CmdType.SESSION_CLOSE, CmdType.EXPIRE_GTD):
            self._sweep(c, t)
        elif t == CmdType.SET_STATUS:
            ins = self._instrument(c)
            if ins is None:
                return
            status = int(c["status"])
            if status not in tuple(InstrumentStatus):
                self._reject(RejectReason.INVALID_STATUS)
                return
            ins.status = status
            self._emit_cmd_ack(EventType.STATUS, c, qty=status)
            if status == InstrumentStatus.OPEN:
                self._open(ins)
            self._publish_iop(ins)
        elif t == CmdType.SET_REFERENCE:
            ins = self._instrument(c)
            if ins is None:
                return
            price = int(c["price"])
            if not ins.cfg.min_price_ticks <= price <= ins.cfg.max_price_ticks:
                self._reject(RejectReason.PRICE_OUT_OF_BAND)
                return
            ins.reference = price
            self._emit_cmd_ack(EventType.REFERENCE, c, price=price)
            self._publish_iop(ins)
        else:
            self._reject(RejectReason.UNKNOWN_COMMAND)

    def _emit_cmd_ack(self, etype: int, c: Any, **kw: int) -> None:
        self._emit(
            etype,
            user_ref=int(c["user_ref"]),
            client_token=int(c["client_token"]),
            instrument_id=int(c["instrument_id"]),
            account=int(c["account"]),
            **kw,
        )

    def _instrument(self, c: Any) -> Instrument | None:
        slot = self.slot_of.get(int(c["instrument_id"]))
        if slot is None:
            self._reject(RejectReason.UNKNOWN_INSTRUMENT)
            return None
        return self.instruments[slot]

    # -------------------------------------------------------------------- NEW
    def _validate_new(self, ins: Instrument, c: Any) -> int:
        """The first reject reason for a NEW command, or NONE (checks in documented order)."""
        if ins.status not in _ORDER_ENTRY:
            return _STATUS_REJECT[InstrumentStatus(ins.status)]
        side, otype, tif = int(c["side"]), int(c["order_type"]), int(c["tif"])
        qty, display, min_qty = int(c["qty"]), int(c["display_qty"]), int(c["min_qty"])
        if side not in (BUY, SELL):
            return RejectReason.INVALID_SIDE
        if otype not in tuple(OrderType):
            return RejectReason.INVALID_ORDER_TYPE
        if tif not in tuple(TimeInForce):
            return RejectReason.INVALID_TIF
        if tif == TimeInForce.GTD and int(c["expire_time"]) <= int(c["timestamp"]):
            return RejectReason.INVALID_EXPIRE_TIME
        if int(c["smp"]) > SmpInstruction.CANCEL_BOTH:
            return RejectReason.INVALID_SMP
        if not ins.cfg.min_qty <= qty <= ins.cfg.max_qty:
            return RejectReason.INVALID_QUANTITY
        if display < 0 or display > qty:
            return RejectReason.INVALID_DISPLAY_QTY
        if display > 0 and (
            otype in (OrderType.MARKET, OrderType.STOP_MARKET)
            or tif in (TimeInForce.IOC, TimeInForce.FOK)
            or ins.cfg.matching_algorithm == MatchingAlgorithm.PRO_RATA
        ):
            return RejectReason.INVALID_DISPLAY_QTY
        if min_qty < 0 or min_qty > qty:
            return RejectReason.INVALID_MIN_QTY
        if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            r = self._check_price(ins, int(c["price"]))
            if r:
                return r
        if otype in STOP_TYPES:
            r = self._check_stop(ins, side, int(c["stop_price"]))
            if r:
                return r
        if ins.status == InstrumentStatus.PRE_OPEN and (
            otype == OrderType.MARKET
            or tif in (TimeInForce.IOC, TimeInForce.FOK)
            or int(c["flags"]) & FLAG_POST_ONLY
            or (otype == OrderType.LIMIT and min_qty > 0)
        ):
            return RejectReason.MARKET_PRE_OPEN
        if int(c["flags"]) & FLAG_POST_ONLY:
            if otype != OrderType.LIMIT or tif in (TimeInForce.IOC, TimeInForce.FOK) or min_qty > 0:
                return RejectReason.INVALID_POST_ONLY
            best = ins.best(SELL if side == BUY else BUY)
            if best is not None and crosses(side, int(c["price"]), best):
                return RejectReason.POST_ONLY_WOULD_TRADE
        if otype == OrderType.MARKET and ins.best(SELL if side == BUY else BUY) is None:
            return RejectReason.NO_LIQUIDITY
        if not self.free:
            return RejectReason.ORDER_CAPACITY
        return RejectReason.NONE

    def _new(self, c: Any) -> None:
        ins = self._instrument(c)
        if ins is None:
            return
        reason = self._validate_new(ins, c)
        if reason:
            self._reject(reason)
            return
        side, otype, qty = int(c["side"]), int(c["order_type"]), int(c["qty"])
        price = int(c["price"]) if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT) else 0
        if otype == OrderType.MARKET:
            price = self._protection_price(ins, side)  # type: ignore[assignment]
        smp = int(c["smp"]) or ins.cfg.default_smp
        slot = self.free.pop()
        o = Order(
            slot=slot,
            gen=self.gen[slot],
            inst=self.slot_of[int(c["instrument_id"])],
            side=side,
            otype=otype,
            tif=int(c["tif"]),
            smp=smp,
            post_only=bool(int(c["flags"]) & FLAG_POST_ONLY),
            account=int(c["account"]),
            smp_group=int(c["smp_group"]),
            user_ref=int(c["user_ref"]),
            price=price,
            stop_price=int(c["stop_price"]) if otype in STOP_TYPES else 0,
            shown=qty,
            hidden=0,
            display=int(c["display_qty"]),
            min_qty=int(c["min_qty"]),
            expire=int(c["expire_time"]) if int(c["tif"]) == TimeInForce.GTD else 0,
        )
        self.live[slot] = o
        self._emit_order(EventType.ACCEPTED, o, int(c["client_token"]), qty=qty, leaves=qty)
        if otype in STOP_TYPES:
            stops = ins.buy_stops if side == BUY else ins.sell_stops
            lvl = stops.get(o.stop_price)
            if lvl is None:
                lvl = stops[o.stop_price] = Level()
            lvl.orders[slot] = o
            lvl.total += o.shown
            return
        if ins.status == InstrumentStatus.PRE_OPEN:  # rests without matching
            self._finish(ins, o, False)
            self._publish_iop(ins)
            return
        self._execute(ins, o)
        self._run_triggers(ins)

    def _execute(self, ins: Instrument, o: Order) -> None:
        """Take liquidity with an unlinked order, then rest or cancel what is left.

        ``o.shown`` holds the whole open quantity on entry. FOK and minimum-quantity orders
        are first checked against the liquidity they could reach (:meth:`_fillable`).
        """
        needed = o.leaves if o.tif == TimeInForce.FOK else min(o.min_qty, o.leaves)
        if needed > 0 and self._fillable(ins, o, needed) < needed:
            reason = (
                CancelReason.FOK_NOT_FILLED
                if o.tif == TimeInForce.FOK
                else CancelReason.MIN_QTY_NOT_MET
            )
            self._emit_order(EventType.CANCELLED, o, qty=o.leaves, leaves=0, reason=reason)
            self._free_order(o)
            return
        stopped = self._aggress(ins, o)
        self._finish(ins, o, stopped)

    def _finish(self, ins: Instrument, o: Order, smp_stopped: bool) -> None:
        """After matching: free a filled order, cancel IOC/SMP remainders, rest the rest."""
        q = o.shown
        if q == 0:
            self._free_order(o)
        elif smp_stopped or o.tif in (TimeInForce.IOC, TimeInForce.FOK):
            reason = CancelReason.SMP_INCOMING if smp_stopped else CancelReason.IOC_REMAINDER
            self._emit_order(EventType.CANCELLED, o, qty=q, leaves=0, reason=reason)
            self._free_order(o)
        else:
            o.shown = min(o.display, q) if o.display > 0 else q
            o.hidden = q - o.shown
            self._rest(ins, o)

    # --------------------------------------------------------------- matching
    def _opposite_levels(self, ins: Instrument, o: Order) -> Iterator[tuple[int, Level]]:
        """Opposite levels that ``o`` can trade with, best price first."""
        if o.side == BUY:
            for price in ins.asks.irange(maximum=o.price):
                yield price, ins.asks[price]
        else:
            for price in ins.bids.irange(minimum=o.price, reverse=True):
                yield price, ins.bids[price]

    def _fillable(self, ins: Instrument, o: Order, needed: int) -> int:
        """Quantity ``o`` would fill on entry, counted until it reaches ``needed``.

        Mirrors matching exactly: in FIFO a self-match that cancels the incoming order ends
        the count at that order (hidden iceberg quantity refreshes behind it, so only the
        visible quantity ahead counts); self-matches that cancel only the resting order
        contribute nothing. In pro-rata, self-matches are resolved per level up front.
        """
        total = 0
        stops_incoming = o.smp in (SmpInstruction.CANCEL_INCOMING, SmpInstruction.CANCEL_BOTH)
        fifo = ins.cfg.matching_algorithm == MatchingAlgorithm.FIFO
        for _price, lvl in self._opposite_levels(ins, o):
            shown = hidden = 0
            for r in lvl.orders.values():
                if is_self_match(o, r):
                    if stops_incoming:
                        return total + shown if fifo else total
                    continue
                shown += r.shown
                hidden += r.hidden
                if fifo and total + shown >= needed:
                    return total + shown
            total += shown + hidden
            if total >= needed:
                return total
        return total

    def _aggress(self, ins: Instrument, o: Order) -> bool:
        """Match ``o`` (unlinked; quantity in ``o.shown``) against the opposite side.

        Returns True when self-match prevention cancelled the incoming remainder. A LEVEL
        event is published for each opposite level the order acted on, when it leaves it.
        """
        opp = SELL if o.side == BUY else BUY
        book = ins.book(opp)
        pro_rata = ins.cfg.matching_algorithm == MatchingAlgorithm.PRO_RATA
        cur: int | None = None
        stopped = False
        while o.shown > 0:
            best = ins.best(opp)
            if best is None or not crosses(o.side, o.price, best):
                break
            if cur != best:
                if cur is not None:
                    self._emit_level(ins, opp, cur)
                cur = best
                if pro_rata:
                    stopped = self._pro_rata_round(ins, o, book[best], best)
                    if stopped:
                        break
                    continue
            lvl = book[best]
            r = next(iter(lvl.orders.values()))
            if is_self_match(o, r):
                if o.smp == SmpInstruction.CANCEL_INCOMING:
                    stopped = True
                    break
                self._cancel(ins, r, CancelReason.SMP_RESTING)
                if o.smp == SmpInstruction.CANCEL_BOTH:
                    stopped = True
                    break
                continue
            self._fill(ins, o, r, min(o.shown, r.shown))
        if cur is not None:
            self._emit_level(ins, opp, cur)
        return stopped

    def _fill(self, ins: Instrument, o: Order, r: Order, qty: int) -> None:
        """Trade ``qty`` between aggressor ``o`` and resting ``r`` at ``r``'s price."""
        match_id = self.next_match_id
        self.next_match_id += 1
        book = ins.book(r.side)
        lvl = book[r.price]
        o.shown -= qty
        r.shown -= qty
        lvl.total -= qty
        ins.last = r.price
        for x in (o, r):
            self._emit_order(
                EventType.TRADE,
                x,
                price=r.price,
                qty=qty,
                leaves=x.leaves,
                match_id=match_id,
                aggressor_side=o.side,
            )
        if r.shown == 0:
            if r.hidden > 0:  # iceberg refresh: a new slice joins the back of the queue
                del lvl.orders[r.slot]
                r.shown = min(r.display, r.hidden)
                r.hidden -= r.shown
                lvl.orders[r.slot] = r
                lvl.total += r.shown
            else:
                del lvl.orders[r.slot]
                if not lvl.orders:
                    del book[r.price]
                self._free_order(r)

    def _pro_rata_round(self, ins: Instrument, o: Order, lvl: Level, price: int) -> bool:
        """First visit of a pro-rata level: resolve self-matches, then allocate pro rata.

        Self-matching resting orders at the level are handled before allocation (all of
        them, in time order). Then, if the incoming quantity ``q`` is smaller than the
        level total ``T``, each order in time order gets ``floor(q * shown / T)`` lots,
        set to zero when below :data:`PRO_RATA_MIN_ALLOCATION`; what is left is
        allocated FIFO by the caller's loop. Returns True if the incoming was cancelled.
        """
        stopped = False
        for r in list(lvl.orders.values()):
            if is_self_match(o, r):
                if o.smp == SmpInstruction.CANCEL_INCOMING:
                    return True
                self._cancel(ins, r, CancelReason.SMP_RESTING)
                if o.smp == SmpInstruction.CANCEL_BOTH:
                    stopped = True
        if stopped or not lvl.orders:
            return stopped
        q0, total = o.shown, lvl.total
        if q0 >= total:
            return False
        for r in list(lvl.orders.values()):
            alloc = q0 * r.shown // total
            if alloc >= PRO_RATA_MIN_ALLOCATION:
                self._fill(ins, o, r, alloc)
        return False

    # ------------------------------------------------------- opening auction
    def _level_volume(self, book: SortedDict, price: int) -> int:
        """Whole open quantity at ``price`` (visible plus hidden iceberg quantity)."""
        lvl = book.get(price)
        return 0 if lvl is None else sum(o.leaves for o in lvl.orders.values())

    def equilibrium(self, ins: Instrument) -> tuple[int, int, int, int]:
        """The call auction's price: ``(price, volume, imbalance side, imbalance qty)``.

        Over every tick ``p`` from the best ask to the best bid (the crossed range),
        demand ``D(p)`` = bids priced >= p and supply ``S(p)`` = asks priced <= p, counting
        each order's whole open quantity (icebergs: displayed plus hidden). The price
        maximises the executable volume ``min(D, S)``, then minimises ``|D - S|``, then is
        closest to the reference price, then is the lower price. :data:`NO_IOP` (volume 0)
        when the book is not crossed. Cost: O(orders in the crossed range + ticks in it).
        """
        bb, ba = ins.best(BUY), ins.best(SELL)
        if bb is None or ba is None or bb < ba:
            return NO_IOP
        demand = sum(self._level_volume(ins.bids, p) for p in range(ba, bb + 1))
        supply = 0
        best: tuple[tuple[int, int, int, int], int, int] | None = None
        for p in range(ba, bb + 1):
            supply += self._level_volume(ins.asks, p)
            vol, imb = min(demand, supply), demand - supply
            key = (-vol, abs(imb), abs(p - ins.reference), p)
            if best is None or key < best[0]:
                best = (key, vol, imb)
            demand -= self._level_volume(ins.bids, p)
        assert best is not None
        (_, _, _, price), vol, imb = best
        side = BUY if imb > 0 else SELL if imb < 0 else 0
        return price, vol, side, abs(imb)

    def _publish_iop(self, ins: Instrument) -> None:
        """In pre-open, emit INDICATIVE_PRICE when the equilibrium differs from the last one."""
        if ins.status != InstrumentStatus.PRE_OPEN:
            return
        iop = self.equilibrium(ins)
        if iop == ins.iop:
            return
        ins.iop = iop
        price, vol, side, imb = iop
        self._emit(
            EventType.INDICATIVE_PRICE,
            instrument_id=ins.cfg.instrument_id,
            side=side,
            price=price,
            qty=vol,
            leaves=imb,
        )

    def _open(self, ins: Instrument) -> None:
        """Transition to OPEN: uncross the book by a call auction, then trigger stops.

        Every bid priced at or above the equilibrium price ``P`` trades with every ask at or
        below it, all at ``P``, in price-time priority on each side: the best bid level's
        first order against the best ask level's first order, ``min`` of their visible
        quantities per fill (an iceberg's next slice joins the back of its level, as in
        continuous trading), until one side has nothing left at ``P`` or better. No
        self-match prevention; TRADE events carry ``aggressor_side`` 0, buy side first.
        LEVEL events: a level when the auction moves past it, then the last bid and ask
        levels it acted on.
        """
        price, volume = self.equilibrium(ins)[:2]
        ins.iop = NO_IOP
        if volume == 0:
            return
        cur_b: int | None = None
        cur_a: int | None = None
        while True:
            bb, ba = ins.best(BUY), ins.best(SELL)
            if bb is None or ba is None or bb < price or ba > price:
                break
            if cur_b is not None and cur_b != bb:
                self._emit_level(ins, BUY, cur_b)
            cur_b = bb
            if cur_a is not None and cur_a != ba:
                self._emit_level(ins, SELL, cur_a)
            cur_a = ba
            b = next(iter(ins.bids[bb].orders.values()))
            a = next(iter(ins.asks[ba].orders.values()))
            self._auction_fill(ins, b, a, price)
        if cur_b is not None:
            self._emit_level(ins, BUY, cur_b)
        if cur_a is not None:
            self._emit_level(ins, SELL, cur_a)
        self._run_triggers(ins)

    def _auction_fill(self, ins: Instrument, b: Order, a: Order, price: int) -> None:
        """One auction fill between the heads of the best bid and ask levels, at ``price``."""
        qty = min(b.shown, a.shown)
        match_id = self.next_match_id
        self.next_match_id += 1
        ins.last = price
        for x in (b, a):
            x.shown -= qty
            ins.book(x.side)[x.price].total -= qty
        for x in (b, a):
            self._emit_order(
                EventType.TRADE, x, price=price, qty=qty, leaves=x.leaves, match_id=match_id
            )
        for x in (b, a):
            if x.shown > 0:
                continue
            book = ins.book(x.side)
            lvl = book[x.price]
            del lvl.orders[x.slot]
            if x.hidden > 0:  # iceberg refresh: the new slice joins the back of the queue
                x.shown = min(x.display, x.hidden)
                x.hidden -= x.shown
                lvl.orders[x.slot] = x
                lvl.total += x.shown
            else:
                if not lvl.orders:
                    del book[x.price]
                self._free_order(x)

    # ---------------------------------------------------------------- stops
    def _run_triggers(self, ins: Instrument) -> None:
        """Trigger stops the last trade price has reached, one at a time, in trigger order.

        Buy stops trigger when last >= stop (lowest stop first), sell stops when
        last <= stop (highest stop first); equal stops in time order; buys before sells.
        Each triggered order is fully processed before the next check.
        """
        while ins.last is not None:
            if ins.buy_stops and ins.buy_stops.keys()[0] <= ins.last:
                lvl = ins.buy_stops.peekitem(0)[1]
            elif ins.sell_stops and ins.sell_stops.keys()[-1] >= ins.last:
                lvl = ins.sell_stops.peekitem(-1)[1]
            else:
                return
            o = next(iter(lvl.orders.values()))
            self._unlink(ins, o)
            self._emit_order(EventType.STOP_TRIGGERED, o, qty=o.leaves, leaves=o.leaves)
            if o.otype == OrderType.STOP_LIMIT:
                o.otype = OrderType.LIMIT
            else:
                o.otype = OrderType.MARKET
                p = self._protection_price(ins, o.side)
                if p is None:
                    self._emit_order(
                        EventType.CANCELLED,
                        o,
                        qty=o.leaves,
                        leaves=0,
                        reason=CancelReason.NO_LIQUIDITY,
                    )
                    self._free_order(o)
                    continue
                o.price = p
            self._execute(ins, o)

    # ---------------------------------------------------------- cancel / replace
    def _cancel_cmd(self, c: Any) -> None:
        o = self._lookup(int(c["order_id"]), int(c["account"]))
        if o is None:
            self._reject(RejectReason.UNKNOWN_ORDER)
            return
        ins = self.instruments[o.inst]
        was_stop = o.otype in STOP_TYPES
        side, price = o.side, o.price
        self._cancel(ins, o, CancelReason.USER, int(c["client_token"]))
        if not was_stop:
            self._emit_level(ins, side, price)
            self._publish_iop(ins)

    def _replace(self, c: Any) -> None:
        o = self._lookup(int(c["order_id"]), int(c["account"]))
        if o is None:
            self._reject(RejectReason.UNKNOWN_ORDER)
            return
        ins = self.instruments[o.inst]
        if ins.status not in _ORDER_ENTRY:
            self._reject(_STATUS_REJECT[InstrumentStatus(ins.status)])
            return
        qty = int(c["qty"])
        if not ins.cfg.min_qty <= qty <= ins.cfg.max_qty:
            self._reject(RejectReason.INVALID_QUANTITY)
            return
        is_stop = o.otype in STOP_TYPES
        new_price = o.price
        if o.otype != OrderType.STOP_MARKET:
            new_price = int(c["price"])
            r = self._check_price(ins, new_price)
            if r:
                self._reject(r)
                return
        new_stop = o.stop_price
        if is_stop:
            new_stop = int(c["stop_price"])
            r = self._check_stop(ins, o.side, new_stop)
            if r:
                self._reject(r)
                return
        if o.post_only:
            best = ins.best(SELL if o.side == BUY else BUY)
            if best is not None and crosses(o.side, new_price, best):
                self._reject(RejectReason.POST_ONLY_WOULD_TRADE)
                return
        token = int(c["client_token"])
        keeps_priority = new_price == o.price and new_stop == o.stop_price and qty <= o.leaves
        if is_stop:
            stops = ins.buy_stops if o.side == BUY else ins.sell_stops
            if keeps_priority:
                stops[o.stop_price].total += qty - o.shown
                o.shown = qty
            else:
                self._unlink(ins, o)
                o.price, o.stop_price, o.shown = new_price, new_stop, qty
                lvl = stops.get(new_stop)
                if lvl is None:
                    lvl = stops[new_stop] = Level()
                lvl.orders[o.slot] = o
                lvl.total += qty
            self._emit_order(EventType.REPLACED, o, token, qty=qty, leaves=qty)
            return
        if keeps_priority:  # same price, quantity not increased: stays in the queue
            lvl = ins.book(o.side)[o.price]
            new_shown = min(o.shown, qty)
            lvl.total += new_shown - o.shown
            o.shown, o.hidden = new_shown, qty - new_shown
            self._emit_order(EventType.REPLACED, o, token, qty=qty, leaves=qty)
            self._emit_level(ins, o.side, o.price)
            self._publish_iop(ins)
            return
        old_price = o.price
        self._unlink(ins, o)
        o.price, o.shown, o.hidden = new_price, qty, 0
        self._emit_order(EventType.REPLACED, o, token, qty=qty, leaves=qty)
        self._emit_level(ins, o.side, old_price)
        if ins.status == InstrumentStatus.PRE_OPEN:  # moves in the book, never matches
            self._finish(ins, o, False)
            self._publish_iop(ins)
            return
        stopped = self._aggress(ins, o)
        self._finish(ins, o, stopped)
        self._run_triggers(ins)

    # ----------------------------------------------------------------- sweeps
    def _sweep(self, c: Any, t: int) -> None:
        """MASS_CANCEL / SESSION_CLOSE / EXPIRE_GTD: cancel every matching order.

        Walk order (part of the ABI): instruments in configuration order; books bids,
        asks, buy stops, sell stops; levels by ascending price; orders in queue order.
        One LEVEL event after each bid/ask level that lost orders; then one
        MASS_CANCEL_DONE with the count.
        """
        inst_id, account, now = int(c["instrument_id"]), int(c["account"]), int(c["timestamp"])
        if inst_id != 0 and inst_id not in self.slot_of:
            self._reject(RejectReason.UNKNOWN_INSTRUMENT)
            return
        if t == CmdType.MASS_CANCEL:
            reason = CancelReason.MASS_CANCEL

            def hit(o: Order) -> bool:
                return account == 0 or o.account == account
        elif t == CmdType.SESSION_CLOSE:
            reason = CancelReason.SESSION_END

            def hit(o: Order) -> bool:
                return o.tif == TimeInForce.DAY
        else:
            reason = CancelReason.GTD_EXPIRED

            def hit(o: Order) -> bool:
                return o.tif == TimeInForce.GTD and o.expire <= now

        count = 0
        for ins in self.instruments:
            if inst_id != 0 and ins.cfg.instrument_id != inst_id:
                continue
            for book, side, is_stop in (
                (ins.bids, BUY, False),
                (ins.asks, SELL, False),
                (ins.buy_stops, BUY, True),
                (ins.sell_stops, SELL, True),
            ):
                for price in list(book.keys()):
                    n = 0
                    for o in list(book[price].orders.values()):
                        if hit(o):
                            self._cancel(ins, o, reason)
                            n += 1
                    if n and not is_stop:
                        self._emit_level(ins, side, price)
                    count += n
            self._publish_iop(ins)
        self._emit_cmd_ack(EventType.MASS_CANCEL_DONE, c, qty=count, reason=reason)

    # --------------------------------------------------------------- snapshot
    def snapshot(self) -> dict[str, Any]:
        """The whole book as plain data (identical format to the kernel facade's)."""
        out: dict[str, Any] = {"next_match_id": self.next_match_id, "instruments": {}}
        for ins in self.instruments:

            def orders(levels: Iterable[Level]) -> list[tuple[int, ...]]:
                return [order_tuple(o) for lvl in levels for o in lvl.orders.values()]

            bids = list(reversed(ins.bids.items()))
            asks = list(ins.asks.items())
            out["instruments"][ins.cfg.instrument_id] = {
                "status": int(ins.status),
                "reference": ins.reference,
                "last": ins.last,
                "iop": ins.iop,
                "bids": [(p, lvl.total, len(lvl.orders)) for p, lvl in bids],
                "asks": [(p, lvl.total, len(lvl.orders)) for p, lvl in asks],
                "bid_orders": orders(lvl for _, lvl in bids),
                "ask_orders": orders(lvl for _, lvl in asks),
                "buy_stops": orders(ins.buy_stops.values()),
                "sell_stops": orders(reversed(ins.sell_stops.values())),
            }
        return out

    def validate(self) -> None:
        """Check internal invariants; raise AssertionError naming the first broken one."""
        seen: set[int] = set()
        for ins in self.instruments:
            bb, ba = ins.best(BUY), ins.best(SELL)
            if ins.status == InstrumentStatus.OPEN:  # only pre-open (and what follows) may cross
                assert bb is None or ba is None or bb < ba, f"crossed book {bb} >= {ba}"
            for book, is_stop in (
                (ins.bids, False),
                (ins.asks, False),
                (ins.buy_stops, True),
                (ins.sell_stops, True),
            ):
                for price, lvl in book.items():
                    assert lvl.orders, f"empty level {price} kept"
                    assert lvl.total == sum(o.shown for o in lvl.orders.values()), "level total"
                    for slot, o in lvl.orders.items():
                        assert slot == o.slot and self.live.get(slot) is o, "order not live"
                        assert slot not in seen, "order linked twice"
                        seen.add(slot)
                        key = o.stop_price if is_stop else o.price
                        assert key == price, "order on the wrong level"
                        assert o.shown > 0 and o.hidden >= 0, "non-positive shown quantity"
        assert seen == set(self.live), "live orders not linked"
        assert len(set(self.free)) == len(self.free), "free list has duplicates"
        assert set(self.free).isdisjoint(self.live), "free slot is live"
        assert len(self.free) + len(self.live) == self.max_orders, "slots leaked"


def order_tuple(o: Order) -> tuple[int, ...]:
    """An order as it appears in snapshots."""
    return tuple(
        int(x)
        for x in (
            o.order_id,
            o.side,
            o.otype,
            o.tif,
            o.price,
            o.stop_price,
            o.shown,
            o.hidden,
            o.display,
            o.account,
            o.smp_group,
            o.smp,
            int(o.post_only),
            o.user_ref,
            o.expire,
        )
    )
