"""The settlement-price waterfall: one hand-computed example per tier and rule.

H100 spec: tick $0.001, closing window 120 s, min volume 5, max spread 20 ticks,
price limits 10 % of the previous settlement rounded down to a tick.
"""

from __future__ import annotations

import datetime as dt

import pytest

from clearing.settlement_prices import settle_contracts
from contracts.errors import FlopexError
from tests.clearing.helpers import close_book, contract, trade_log

MAY14 = dt.date(2026, 5, 14)
M26 = "H100M26"
IID = contract(M26).instrument_id
FIX = {"FLX-H100": {MAY14: 2_812_345}}  # 2.812345 -> 2812 ticks


def settle(fills, book=None, prev=2790, fixings=FIX, day=MAY14, symbols=(M26,)):
    contracts = [contract(s) for s in symbols]
    book = close_book(day, book or {})
    prev_map = {} if prev is None else {IID: prev}
    return settle_contracts(contracts, day, trade_log(day, fills), book, fixings, prev_map)


def test_tier1_closing_window_vwap() -> None:
    # 3 @ 2800 + 2 @ 2810 in the window: 14020 / 5 = 2804
    got = settle([(M26, "A", "B", 2800, 3, 60), (M26, "C", "B", 2810, 2, 10)])[IID]
    assert (got.ticks, got.tier, got.clamped) == (2804, "vwap", False)


def test_vwap_rounds_to_a_tick_half_even() -> None:
    # 2 @ 2800 + 3 @ 2801 = 14003 / 5 = 2800.6 -> 2801
    got = settle([(M26, "A", "B", 2800, 2, 60), (M26, "A", "B", 2801, 3, 60)])[IID]
    assert got.ticks == 2801


def test_trades_before_the_window_do_not_count() -> None:
    # 4 lots in the window + 3 lots 10 minutes before the close: volume 4 < 5 -> tier 2
    fills = [(M26, "A", "B", 2800, 4, 60), (M26, "A", "B", 2900, 3, 600)]
    got = settle(fills, {M26: (2795, 2805)})[IID]
    assert (got.ticks, got.tier) == (2800, "mid")


@pytest.mark.parametrize(
    ("bid", "ask", "ticks", "tier"),
    [
        (2795, 2805, 2800, "mid"),  # spread 10 <= 20
        (2795, 2806, 2800, "mid"),  # 2800.5 rounds half-even to 2800
        (2797, 2806, 2802, "mid"),  # 2801.5 rounds half-even to 2802
        (2790, 2810, 2800, "mid"),  # spread exactly 20
        (2790, 2811, 2812, "theo"),  # spread 21 > 20 -> latest fixing
        (2795, None, 2812, "theo"),  # one-sided book
    ],
)
def test_tier2_midpoint_needs_a_tight_two_sided_book(bid, ask, ticks, tier) -> None:
    got = settle([], {M26: (bid, ask)})[IID]
    assert (got.ticks, got.tier) == (ticks, tier)


def test_tier3_before_delivery_month_is_the_latest_fixing() -> None:
    got = settle([])[IID]
    assert (got.ticks, got.tier, got.basis) == (2812, "theo", "latest fixing")


def test_tier3_in_delivery_month_blends_fixings_so_far_with_the_latest() -> None:
    # June 2026 has 21 fixing days; on June 10 (the 8th) seven fixings of 2.000 and
    # today's 2.100: (7 x 2.0 + 2.1 + 13 x 2.1) / 21 = 2.0666.. -> 2067 ticks
    c = contract(M26)
    day = dt.date(2026, 6, 10)
    days = [d for d in c.fixing_days if d <= day]
    assert len(c.fixing_days) == 21 and len(days) == 8
    fixings = {"FLX-H100": {d: 2_000_000 for d in days[:-1]} | {day: 2_100_000}}
    got = settle([], prev=2050, fixings=fixings, day=day)[IID]
    assert (got.ticks, got.tier) == (2067, "theo")


def test_tier3_uses_neighbour_month_plus_yesterdays_spread() -> None:
    # M26 settles on VWAP 2804; N26 has no market: 2804 + (2850 - 2790) = 2864
    n26 = contract("H100N26").instrument_id
    contracts = [contract(M26), contract("H100N26")]
    log = trade_log(MAY14, [(M26, "A", "B", 2800, 3, 60), (M26, "C", "B", 2810, 2, 10)])
    got = settle_contracts(
        contracts, MAY14, log, close_book(MAY14, {}), FIX, {IID: 2790, n26: 2850}
    )
    assert (got[n26].ticks, got[n26].tier) == (2864, "theo")
    assert got[n26].basis == "H100M26 settlement + spread 60 ticks"


def test_price_is_clamped_to_the_daily_limit() -> None:
    # limit = floor(10 % x 2790) = 279 ticks -> band [2511, 3069]; VWAP 3200 -> 3069
    got = settle([(M26, "A", "B", 3200, 5, 30)])[IID]
    assert (got.ticks, got.unclamped_ticks, got.clamped, got.tier) == (3069, 3200, True, "vwap")


def test_first_settlement_is_limited_around_the_theoretical_value() -> None:
    # no previous settlement: reference = theo 2812, limit floor(281.2) = 281 -> max 3093
    got = settle([(M26, "A", "B", 3500, 5, 30)], prev=None)[IID]
    assert (got.ticks, got.clamped, got.prev_ticks) == (3093, True, None)


def test_final_settlement_is_the_average_of_all_fixings_unclamped() -> None:
    # 10 fixings of 2.000 and 11 of 2.100: 43.1 / 21 = 2.05238.. -> 2052 ticks
    c = contract(M26)
    day = c.final_settlement_date
    fixings = {
        "FLX-H100": {d: 2_000_000 if i < 10 else 2_100_000 for i, d in enumerate(c.fixing_days)}
    }
    got = settle([(M26, "A", "B", 2999, 9, 30)], prev=1000, fixings=fixings, day=day)[IID]
    assert (got.ticks, got.tier, got.clamped) == (2052, "final", False)


def test_missing_fixing_is_an_error_naming_contract_and_day() -> None:
    with pytest.raises(FlopexError, match=r"H100M26: no FLX-H100 fixing for 2026-05-14"):
        settle([], fixings={"FLX-H100": {}})
