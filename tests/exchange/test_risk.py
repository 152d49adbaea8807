"""Pre-trade risk: every limit, in the order the checks run, with reservation bookkeeping."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts.calendar import listed_contracts
from contracts.registry import load_products
from exchange.protocol.codes import RejectCode
from exchange.risk import RiskChecker

DAY = dt.date(2026, 11, 25)
CONTRACTS = listed_contracts(load_products(), DAY)
BY_SYMBOL = {c.symbol: c for c in CONTRACTS}
SPOT = BY_SYMBOL["H100X26"].instrument_id  # November 2026: the spot month on 25 Nov
NEXT = BY_SYMBOL["H100Z26"].instrument_id
B, S, L, M, STP = ord("B"), ord("S"), ord("L"), ord("M"), ord("S")
ACCT = 7


def _risk(**kw) -> RiskChecker:
    return RiskChecker(CONTRACTS, DAY, **kw)


def test_an_ordinary_order_passes() -> None:
    assert _risk().check(ACCT, NEXT, B, L, 2800, 0, 10) is None


@pytest.mark.parametrize(
    ("qty", "code"),
    [(501, RejectCode.RISK_MAX_ORDER_QTY), (0, RejectCode.RISK_MIN_ORDER_QTY)],
)
def test_order_quantity_limits_from_the_spec(qty: int, code: RejectCode) -> None:
    assert _risk().check(ACCT, NEXT, B, L, 2800, 0, qty) == code


def test_unknown_instrument() -> None:
    assert _risk().check(ACCT, 999, B, L, 2800, 0, 1) == RejectCode.UNKNOWN_INSTRUMENT


def test_blocked_account_is_rejected_first() -> None:
    risk = _risk()
    risk.blocked.add(ACCT)
    assert risk.check(ACCT, 999, B, L, 2800, 0, 10_000) == RejectCode.ACCOUNT_BLOCKED


@pytest.mark.parametrize(
    ("price", "ok"),
    [(2520, True), (2519, False), (3080, True), (3081, False)],
)
def test_daily_price_limits_around_the_reference(price: int, ok: bool) -> None:
    # Arrange: reference 2800 ticks, H100 tier-1 limit 10% -> 280 ticks each way
    risk = _risk(reference_ticks={NEXT: 2800})
    # Act
    code = risk.check(ACCT, NEXT, B, L, price, 0, 1)
    # Assert
    assert (code is None) == ok
    if not ok:
        assert code == RejectCode.RISK_PRICE_LIMIT


def test_stop_price_outside_limits_is_rejected() -> None:
    risk = _risk(reference_ticks={NEXT: 2800})
    assert risk.check(ACCT, NEXT, B, STP, 0, 3200, 1) == RejectCode.RISK_PRICE_LIMIT


def test_no_reference_price_means_no_daily_limit() -> None:
    assert _risk().check(ACCT, NEXT, B, L, 19_000, 0, 1) is None


def test_notional_limit_in_cents() -> None:
    # 1000 ticks x 100 contracts x $10/tick = $1,000,000 = 100,000,000 cents
    risk = _risk(default_max_notional_minor=100_000_000)
    assert risk.check(ACCT, NEXT, B, L, 1000, 0, 100) is None
    assert risk.check(ACCT, NEXT, B, L, 1001, 0, 100) == RejectCode.RISK_MAX_NOTIONAL


def test_account_notional_overrides_the_default() -> None:
    risk = _risk(default_max_notional_minor=100_000_000)
    risk.account_max_notional[ACCT] = 1_000
    assert risk.check(ACCT, NEXT, B, L, 1, 0, 1) is None
    assert risk.check(ACCT, NEXT, B, L, 2, 0, 1) == RejectCode.RISK_MAX_NOTIONAL


def test_market_order_notional_is_valued_at_the_limit_bound() -> None:
    risk = _risk(reference_ticks={NEXT: 2800}, default_max_notional_minor=3080 * 1000)
    assert risk.check(ACCT, NEXT, B, M, 0, 0, 1) is None  # 3080 = upper limit
    assert risk.check(ACCT, NEXT, B, M, 0, 0, 2) == RejectCode.RISK_MAX_NOTIONAL


def test_all_months_position_limit_counts_working_orders() -> None:
    # Arrange: 5000 contracts all-months limit for H100
    risk = _risk()
    for _ in range(10):
        risk.reserve(ACCT, NEXT, B, 500)
    # Act / Assert
    assert risk.check(ACCT, NEXT, B, L, 2800, 0, 1) == RejectCode.RISK_POSITION_LIMIT
    assert risk.check(ACCT, NEXT, S, L, 2800, 0, 1) is None  # selling reduces exposure


def test_fills_turn_working_into_position_and_cancels_release() -> None:
    risk = _risk()
    risk.reserve(ACCT, NEXT, B, 300)
    risk.on_fill(ACCT, NEXT, B, 200)
    risk.release(ACCT, NEXT, B, 100)
    assert risk.position(ACCT, NEXT) == 200
    assert risk.working(ACCT, NEXT) == (0, 0)


def test_spot_month_limit_applies_only_in_the_delivery_month() -> None:
    risk = _risk()
    risk.reserve(ACCT, SPOT, S, 500)
    risk.reserve(ACCT, SPOT, S, 500)  # 1000 = spot-month limit
    assert risk.check(ACCT, SPOT, S, L, 2800, 0, 1) == RejectCode.RISK_POSITION_LIMIT
    assert risk.check(ACCT, NEXT, S, L, 2800, 0, 1) is None


def test_position_limit_spans_the_products_contracts() -> None:
    risk = _risk()
    for _ in range(9):
        risk.reserve(ACCT, NEXT, B, 500)
    other = BY_SYMBOL["H100F27"].instrument_id
    assert risk.check(ACCT, other, B, L, 2800, 0, 500) is None
    assert risk.check(ACCT, other, B, L, 2800, 0, 501) == RejectCode.RISK_MAX_ORDER_QTY
    risk.reserve(ACCT, other, B, 500)
    assert risk.check(ACCT, other, B, L, 2800, 0, 1) == RejectCode.RISK_POSITION_LIMIT


def test_admit_reserves_only_what_passes() -> None:
    risk = _risk()
    assert risk.admit(ACCT, NEXT, B, L, 2800, 0, 400) is None
    assert risk.admit(ACCT, NEXT, B, L, 2800, 0, 501) == RejectCode.RISK_MAX_ORDER_QTY
    assert risk.working(ACCT, NEXT) == (400, 0)
