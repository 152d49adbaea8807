"""Pre-trade risk: checks every new order and replace before it reaches the sequencer.

Checks, in order (the first failure is the reject reason on the wire):

1. kill switch — the account is blocked by an administrator;
2. min/max order quantity from the product spec;
3. daily price limits — limit and stop prices within ``reference +/- limit_ticks``
   (no reference price = only the product's price band, which the engine enforces);
4. max order notional — ``price x quantity x tick value`` (cents) against the account's
   limit, or the gateway default; market orders are valued at the limit price bound;
5. position limits — counting working orders: the worst-case long
   (``position + working buys + this order``) and short must stay within the product's
   ``position_limits.all_months`` across the product's contracts, and within
   ``position_limits.spot_month`` in the contract's delivery month.

Quantities are reserved when an order passes (so orders in the same batch cannot jointly
breach a limit) and released on reject, cancel or fill. Every check is O(1).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from contracts.calendar import Contract
from exchange.protocol.codes import RejectCode, WireOrderType, WireSide

_BUY = WireSide.BUY.value
_LIMIT_TYPES = (WireOrderType.LIMIT.value, WireOrderType.STOP_LIMIT.value)
_STOP_TYPES = (WireOrderType.STOP.value, WireOrderType.STOP_LIMIT.value)


@dataclass
class InstrumentRisk:
    """What risk needs about one listed contract."""

    contract: Contract
    reference_ticks: int | None
    band: tuple[int, int]  # product price band, ticks
    limits: tuple[int, int] | None  # daily price limits (lo, hi), ticks
    tick_value_minor: int
    product_code: str
    spot_month: bool
    min_qty: int = 1
    max_qty: int = 0
    limit_all_months: int = 0
    limit_spot_month: int = 0


@dataclass(slots=True)
class _Exposure:
    position: int = 0  # net contracts, long positive
    working_buy: int = 0
    working_sell: int = 0


class RiskChecker:
    """Pre-trade limits for every account; state is plain dicts (easy to snapshot)."""

    def __init__(
        self,
        contracts: list[Contract],
        trade_date: dt.date,
        reference_ticks: dict[int, int] | None = None,
        default_max_notional_minor: int = 0,
    ) -> None:
        refs = reference_ticks or {}
        self.instruments: dict[int, InstrumentRisk] = {}
        for c in contracts:
            spec = c.product
            ref = refs.get(c.instrument_id)
            self.instruments[c.instrument_id] = InstrumentRisk(
                contract=c,
                reference_ticks=ref,
                band=spec.price_band_ticks,
                limits=spec.limit_band_ticks(ref) if ref is not None else None,
                tick_value_minor=spec.tick_value_minor,
                product_code=spec.code,
                spot_month=c.is_spot_month(trade_date),
                min_qty=spec.min_order_qty,
                max_qty=spec.max_order_qty,
                limit_all_months=spec.position_limits.all_months,
                limit_spot_month=spec.position_limits.spot_month,
            )
        self.default_max_notional_minor = default_max_notional_minor
        self.account_max_notional: dict[int, int] = {}
        self.blocked: set[int] = set()
        self._by_instrument: dict[tuple[int, int], _Exposure] = {}
        self._by_product: dict[tuple[int, str], _Exposure] = {}
        self._pairs: dict[tuple[int, int], tuple[_Exposure, _Exposure]] = {}

    # --- exposure bookkeeping --------------------------------------------------------
    def _exp(self, account: int, inst: int) -> tuple[_Exposure, _Exposure]:
        """(instrument exposure, product exposure) of an account; one dict hit when warm."""
        key = (account, inst)
        pair = self._pairs.get(key)
        if pair is not None:
            return pair
        e = self._by_instrument.get(key)
        if e is None:
            e = self._by_instrument[key] = _Exposure()
        pkey = (account, self.instruments[inst].product_code)
        p = self._by_product.get(pkey)
        if p is None:
            p = self._by_product[pkey] = _Exposure()
        pair = self._pairs[key] = (e, p)
        return pair

    def position(self, account: int, inst: int) -> int:
        """Net position of ``account`` in ``inst`` from fills seen today."""
        e = self._by_instrument.get((account, inst))
        return e.position if e else 0

    def working(self, account: int, inst: int) -> tuple[int, int]:
        """(working buy, working sell) quantity reserved for ``account`` in ``inst``."""
        e = self._by_instrument.get((account, inst))
        return (e.working_buy, e.working_sell) if e else (0, 0)

    def release(self, account: int, inst: int, side: int, qty: int) -> None:
        """Working quantity left the book (cancel, reject, replace down). O(1)."""
        e, p = self._exp(account, inst)
        if side == _BUY:
            e.working_buy -= qty
            p.working_buy -= qty
        else:
            e.working_sell -= qty
            p.working_sell -= qty

    def reserve(self, account: int, inst: int, side: int, qty: int) -> None:
        """Working quantity added (accepted order, replace up). O(1)."""
        self.release(account, inst, side, -qty)

    def on_fill(self, account: int, inst: int, side: int, qty: int) -> None:
        """A fill: working quantity becomes position. O(1)."""
        signed = qty if side == _BUY else -qty
        for e in self._exp(account, inst):
            e.position += signed
            if side == _BUY:
                e.working_buy -= qty
            else:
                e.working_sell -= qty

    # --- state for snapshots ---------------------------------------------------------
    def positions(self) -> list[list[int]]:
        """``[account, instrument, net position]`` for every non-zero position."""
        return [[a, i, e.position] for (a, i), e in self._by_instrument.items() if e.position]

    def restore(
        self, positions: dict[tuple[int, int], int], orders: object, blocked: object
    ) -> None:
        """Reset exposures to ``positions`` plus the working quantity of ``orders``
        (objects with account_id, instrument_id, side, quantity) and the blocked set."""
        self._by_instrument.clear()
        self._by_product.clear()
        self._pairs.clear()
        for (account, inst), pos in positions.items():
            for e in self._exp(account, inst):
                e.position += pos
        for r in orders:  # type: ignore[attr-defined]
            self.reserve(r.account_id, r.instrument_id, r.side, r.quantity)
        self.blocked = set(blocked)  # type: ignore[call-overload]

    # --- checks ----------------------------------------------------------------------
    def admit(
        self,
        account: int,
        inst: int,
        side: int,
        order_type: int,
        price: int,
        stop_price: int,
        qty: int,
    ) -> RejectCode | None:
        """:meth:`check` a new order and, if it passes, reserve its quantity (the gateway's
        hot path: one exposure lookup). O(1)."""
        return self._evaluate(account, inst, side, order_type, price, stop_price, qty, qty, True)

    def check(
        self,
        account: int,
        inst: int,
        side: int,
        order_type: int,
        price: int,
        stop_price: int,
        qty: int,
        added_qty: int | None = None,
    ) -> RejectCode | None:
        """The first failed check's reject code, or None if the order may go in.

        ``added_qty`` is the extra working quantity this order adds (defaults to ``qty``;
        a replace passes the increase). The caller reserves on success. O(1).
        """
        add = qty if added_qty is None else added_qty
        return self._evaluate(account, inst, side, order_type, price, stop_price, qty, add, False)

    def _evaluate(
        self,
        account: int,
        inst: int,
        side: int,
        order_type: int,
        price: int,
        stop_price: int,
        qty: int,
        add: int,
        reserve: bool,
    ) -> RejectCode | None:
        """The checks of :meth:`check` in order; with ``reserve``, a passing order's
        ``add`` is reserved as working quantity. O(1)."""
        if account in self.blocked:
            return RejectCode.ACCOUNT_BLOCKED
        ir = self.instruments.get(inst)
        if ir is None:
            return RejectCode.UNKNOWN_INSTRUMENT
        if qty > ir.max_qty:
            return RejectCode.RISK_MAX_ORDER_QTY
        if qty < ir.min_qty:
            return RejectCode.RISK_MIN_ORDER_QTY
        has_limit = order_type in _LIMIT_TYPES
        lim = ir.limits
        if lim is not None:
            lo, hi = lim
            if has_limit and not lo <= price <= hi:
                return RejectCode.RISK_PRICE_LIMIT
            if order_type in _STOP_TYPES and not lo <= stop_price <= hi:
                return RejectCode.RISK_PRICE_LIMIT
        max_notional = self.account_max_notional.get(account) or self.default_max_notional_minor
        if max_notional:
            if has_limit:
                value_px = price
            elif lim is not None:
                value_px = lim[1] if side == _BUY else lim[0]
            else:
                value_px = ir.band[1] if side == _BUY else (ir.reference_ticks or ir.band[1])
            if value_px * qty * ir.tick_value_minor > max_notional:
                return RejectCode.RISK_MAX_NOTIONAL
        if add <= 0:
            return None
        e, p = self._exp(account, inst)
        if side == _BUY:
            if p.position + p.working_buy + add > ir.limit_all_months or (
                ir.spot_month and e.position + e.working_buy + add > ir.limit_spot_month
            ):
                return RejectCode.RISK_POSITION_LIMIT
            if reserve:
                e.working_buy += add
                p.working_buy += add
        else:
            if -p.position + p.working_sell + add > ir.limit_all_months or (
                ir.spot_month and -e.position + e.working_sell + add > ir.limit_spot_month
            ):
                return RejectCode.RISK_POSITION_LIMIT
            if reserve:
                e.working_sell += add
                p.working_sell += add
        return None
