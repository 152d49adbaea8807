"""Scenario tests: one behaviour each, run against BOTH books (kernel facade, reference)."""

from __future__ import annotations

import pytest

from exchange.engine.abi import (
    CancelReason,
    CmdType,
    EventType,
    InstrumentStatus,
    OrderType,
    RejectReason,
    Side,
    SmpInstruction,
    TimeInForce,
)

from .helpers import IID, IID2, buy, cmd, kinds, order_id, rows, sell, trades


def reasons(events, etype):  # type: ignore[no-untyped-def]
    return [r["reason"] for r in rows(events, etype)]


def level(book, side: str, iid: int = IID) -> list[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    return book.snapshot()["instruments"][iid][side]


# ----------------------------------------------------------------- resting and FIFO
def test_non_crossing_orders_rest_and_publish_their_level(book) -> None:
    # Arrange / Act
    ev = book.process(buy(5, 99))
    book.process(sell(3, 101))
    # Assert
    assert kinds(ev) == ["ACCEPTED", "LEVEL"]
    assert level(book, "bids") == [(99, 5, 1)]
    assert level(book, "asks") == [(101, 3, 1)]


def test_equal_price_orders_fill_in_time_order(book) -> None:
    first = order_id(book.process(sell(2, 100, account=1)))
    second = order_id(book.process(sell(2, 100, account=2)))
    ev = book.process(buy(3, 100, account=3))
    passive = [(oid, q) for oid, _p, q in trades(ev) if oid in (first, second)]
    assert passive == [(first, 2), (second, 1)]


def test_aggressor_trades_at_resting_prices_best_first_with_one_level_event_per_level(
    book,
) -> None:
    for p in (101, 102, 103):
        book.process(sell(2, p, account=1))
    ev = book.process(buy(5, 103, account=2))
    assert [p for _o, p, _q in trades(ev)][::2] == [101, 102, 103]
    assert [(r["price"], r["qty"]) for r in rows(ev, EventType.LEVEL)] == [
        (101, 0),
        (102, 0),
        (103, 1),
    ]


def test_trade_events_carry_both_sides_match_id_aggressor_and_leaves(book) -> None:
    rest = order_id(book.process(sell(5, 100, account=1)))
    ev = book.process(buy(2, 100, account=2))
    agg, pas = rows(ev, EventType.TRADE)
    assert agg["match_id"] == pas["match_id"] > 0
    assert (agg["side"], pas["side"]) == (Side.BUY, Side.SELL)
    assert agg["aggressor_side"] == pas["aggressor_side"] == Side.BUY
    assert (agg["leaves"], pas["leaves"], pas["order_id"]) == (0, 3, rest)


# ------------------------------------------------------------------------ market
def test_market_order_sweeps_at_most_protection_ticks_then_rests_at_that_price(book) -> None:
    book.process(sell(1, 100, account=1))
    book.process(sell(1, 105, account=1))  # best + 5 = protection limit
    book.process(sell(1, 106, account=1))  # beyond protection
    ev = book.process(buy(5, 0, order_type=OrderType.MARKET, account=2))
    assert [p for _o, p, _q in trades(ev)][::2] == [100, 105]
    assert level(book, "bids") == [(105, 3, 1)]


def test_market_ioc_remainder_is_cancelled(book) -> None:
    book.process(sell(1, 100, account=1))
    ev = book.process(buy(4, 0, order_type=OrderType.MARKET, tif=TimeInForce.IOC, account=2))
    assert reasons(ev, EventType.CANCELLED) == [CancelReason.IOC_REMAINDER]
    assert level(book, "bids") == []


def test_market_order_without_opposite_side_is_rejected(book) -> None:
    ev = book.process(buy(1, 0, order_type=OrderType.MARKET))
    assert reasons(ev, EventType.REJECTED) == [RejectReason.NO_LIQUIDITY]


# ------------------------------------------------------------------------- stops
def test_buy_stop_triggers_when_last_trade_reaches_it(book) -> None:
    stop = order_id(book.process(buy(1, 0, order_type=OrderType.STOP_MARKET, stop_price=101)))
    book.process(sell(1, 101, account=2))
    book.process(sell(1, 102, account=2))
    ev = book.process(buy(1, 101, account=3))  # last trade 101 -> trigger
    trig = rows(ev, EventType.STOP_TRIGGERED)
    assert [t["order_id"] for t in trig] == [stop]
    assert (stop, 102, 1) in trades(ev)


def test_triggered_stops_enter_lowest_buy_stop_first(book) -> None:
    hi = order_id(book.process(buy(1, 0, order_type=OrderType.STOP_MARKET, stop_price=103)))
    lo = order_id(book.process(buy(1, 0, order_type=OrderType.STOP_MARKET, stop_price=102)))
    for p in (104, 104, 105):
        book.process(sell(1, p, account=2))
    book.process(sell(1, 100, account=2))
    ev = book.process(buy(1, 110, account=3))  # trades at 100: below both stops
    assert rows(ev, EventType.STOP_TRIGGERED) == []
    book.process(sell(1, 103, account=2))
    ev = book.process(buy(1, 103, account=3))  # last 103 reaches both stops
    assert [t["order_id"] for t in rows(ev, EventType.STOP_TRIGGERED)] == [lo, hi]


def test_stop_limit_becomes_a_resting_limit_order_when_triggered(book) -> None:
    book.process(sell(2, 98, order_type=OrderType.STOP_LIMIT, stop_price=99, account=1))
    book.process(buy(1, 99, account=2))
    ev = book.process(sell(1, 99, account=3))  # trades at 99 -> sell stop at 99 triggers
    assert kinds(ev).count("STOP_TRIGGERED") == 1
    assert level(book, "asks") == [(98, 2, 1)]
    assert book.snapshot()["instruments"][IID]["sell_stops"] == []


@pytest.mark.parametrize(("side", "stop"), [(Side.BUY, 100), (Side.BUY, 99), (Side.SELL, 100)])
def test_stop_that_would_trigger_immediately_is_rejected(book, side: int, stop: int) -> None:
    book.process(sell(1, 100, account=1))
    book.process(buy(1, 100, account=2))  # last = 100
    ev = book.process(
        cmd(
            CmdType.NEW,
            side=side,
            qty=1,
            order_type=OrderType.STOP_MARKET,
            stop_price=stop,
            instrument_id=IID,
            tif=TimeInForce.GTC,
            account=3,
        )
    )
    assert reasons(ev, EventType.REJECTED) == [RejectReason.INVALID_STOP_PRICE]


# ---------------------------------------------------------------------- iceberg
def test_iceberg_shows_only_its_display_quantity(book) -> None:
    book.process(sell(10, 100, display_qty=3))
    assert level(book, "asks") == [(100, 3, 1)]


def test_iceberg_refresh_joins_the_back_of_the_queue(book) -> None:
    ice = order_id(book.process(sell(6, 100, display_qty=2, account=1)))
    other = order_id(book.process(sell(2, 100, account=2)))
    ev = book.process(buy(3, 100, account=3))
    passive = [(o, q) for o, _p, q in trades(ev) if o in (ice, other)]
    assert passive == [(ice, 2), (other, 1)]


# --------------------------------------------------------------------- post-only
def test_post_only_order_that_would_take_liquidity_is_rejected(book) -> None:
    book.process(sell(1, 100, account=1))
    ev = book.process(buy(1, 100, flags=1, account=2))
    assert reasons(ev, EventType.REJECTED) == [RejectReason.POST_ONLY_WOULD_TRADE]


def test_post_only_ioc_is_invalid(book) -> None:
    ev = book.process(buy(1, 99, flags=1, tif=TimeInForce.IOC))
    assert reasons(ev, EventType.REJECTED) == [RejectReason.INVALID_POST_ONLY]


# ------------------------------------------------------------------ FOK / min qty
def test_fok_that_cannot_fill_completely_trades_nothing(book) -> None:
    book.process(sell(3, 100, account=1))
    ev = book.process(buy(4, 100, tif=TimeInForce.FOK, account=2))
    assert trades(ev) == []
    assert reasons(ev, EventType.CANCELLED) == [CancelReason.FOK_NOT_FILLED]


def test_fok_that_can_fill_fills_completely(book) -> None:
    book.process(sell(3, 100, account=1))
    book.process(sell(3, 101, account=1))
    ev = book.process(buy(5, 101, tif=TimeInForce.FOK, account=2))
    assert sum(q for _o, _p, q in trades(ev)) == 10


def test_minimum_quantity_not_available_cancels_the_order(book) -> None:
    book.process(sell(2, 100, account=1))
    ev = book.process(buy(5, 100, min_qty=3, account=2))
    assert reasons(ev, EventType.CANCELLED) == [CancelReason.MIN_QTY_NOT_MET]
    assert level(book, "asks") == [(100, 2, 1)]


def test_minimum_quantity_met_trades_and_rests_the_rest(book) -> None:
    book.process(sell(3, 100, account=1))
    book.process(buy(5, 100, min_qty=3, account=2))
    assert level(book, "bids") == [(100, 2, 1)]


def test_fok_counts_only_visible_quantity_ahead_of_a_self_match_that_cancels_it(book) -> None:
    book.process(sell(6, 100, display_qty=2, account=1))  # 2 visible, 4 hidden
    book.process(sell(1, 100, account=2))  # own order of the buyer
    ev = book.process(
        buy(3, 100, tif=TimeInForce.FOK, smp=SmpInstruction.CANCEL_INCOMING, account=2)
    )
    assert trades(ev) == []
    assert reasons(ev, EventType.CANCELLED) == [CancelReason.FOK_NOT_FILLED]


# ------------------------------------------------------------------- time in force
def test_ioc_remainder_is_cancelled_after_partial_fill(book) -> None:
    book.process(sell(2, 100, account=1))
    ev = book.process(buy(5, 100, tif=TimeInForce.IOC, account=2))
    assert [r["qty"] for r in rows(ev, EventType.CANCELLED)] == [3]


def test_session_close_expires_day_orders_and_keeps_gtc(book) -> None:
    book.process(buy(1, 90, tif=TimeInForce.DAY))
    book.process(buy(2, 91, tif=TimeInForce.GTC))
    ev = book.process(cmd(CmdType.SESSION_CLOSE))
    assert reasons(ev, EventType.CANCELLED) == [CancelReason.SESSION_END]
    assert level(book, "bids") == [(91, 2, 1)]


def test_gtd_orders_expire_at_their_time(book) -> None:
    book.process(buy(1, 90, tif=TimeInForce.GTD, expire_time=50, timestamp=1))
    book.process(buy(1, 91, tif=TimeInForce.GTD, expire_time=80, timestamp=1))
    ev = book.process(cmd(CmdType.EXPIRE_GTD, timestamp=50))
    assert [r["price"] for r in rows(ev, EventType.CANCELLED)] == [90]
    assert reasons(ev, EventType.MASS_CANCEL_DONE) == [CancelReason.GTD_EXPIRED]


def test_gtd_expiring_in_the_past_is_rejected(book) -> None:
    ev = book.process(buy(1, 90, tif=TimeInForce.GTD, expire_time=5, timestamp=5))
    assert reasons(ev, EventType.REJECTED) == [RejectReason.INVALID_EXPIRE_TIME]


# ------------------------------------------------------------------- cancel/replace
def test_cancel_removes_the_order_and_publishes_the_level(book) -> None:
    oid = order_id(book.process(buy(2, 99, client_token=77)))
    ev = book.process(cmd(CmdType.CANCEL, order_id=oid, account=1, client_token=78))
    assert kinds(ev) == ["CANCELLED", "LEVEL"]
    assert rows(ev, EventType.CANCELLED)[0]["client_token"] == 78
    assert level(book, "bids") == []


@pytest.mark.parametrize("account", [2, 0])
def test_cancel_by_another_account_is_rejected(book, account: int) -> None:
    oid = order_id(book.process(buy(2, 99, account=1)))
    ev = book.process(cmd(CmdType.CANCEL, order_id=oid, account=account))
    assert reasons(ev, EventType.REJECTED) == [RejectReason.UNKNOWN_ORDER]


def test_stale_order_id_is_unknown_after_the_slot_is_reused(book) -> None:
    oid = order_id(book.process(buy(2, 99)))
    book.process(cmd(CmdType.CANCEL, order_id=oid, account=1))
    reused = order_id(book.process(buy(2, 98)))
    ev = book.process(cmd(CmdType.CANCEL, order_id=oid, account=1))
    assert reused & 0xFFFFFFFF == oid & 0xFFFFFFFF and reused != oid
    assert reasons(ev, EventType.REJECTED) == [RejectReason.UNKNOWN_ORDER]


def _queue(book, side: str = "bid_orders") -> list[int]:  # type: ignore[no-untyped-def]
    return [o[0] for o in book.snapshot()["instruments"][IID][side]]


def test_replace_quantity_decrease_keeps_queue_priority(book) -> None:
    a = order_id(book.process(buy(5, 99, account=1)))
    b = order_id(book.process(buy(5, 99, account=2)))
    book.process(cmd(CmdType.REPLACE, order_id=a, account=1, qty=3, price=99))
    assert _queue(book) == [a, b]
    assert level(book, "bids") == [(99, 8, 2)]


@pytest.mark.parametrize(("qty", "price"), [(6, 99), (5, 98)])
def test_replace_quantity_increase_or_price_change_loses_priority(book, qty, price) -> None:
    a = order_id(book.process(buy(5, 99, account=1)))
    b = order_id(book.process(buy(5, 98, account=2)))
    c = order_id(book.process(buy(5, 99, account=3)))
    book.process(cmd(CmdType.REPLACE, order_id=a, account=1, qty=qty, price=price))
    expected = [c, a, b] if price == 99 else [c, b, a]
    assert _queue(book) == expected


def test_replace_to_a_crossing_price_trades(book) -> None:
    book.process(sell(2, 101, account=1))
    a = order_id(book.process(buy(2, 99, account=2)))
    ev = book.process(cmd(CmdType.REPLACE, order_id=a, account=2, qty=2, price=101))
    assert kinds(ev)[0] == "REPLACED"
    assert (a, 101, 2) in trades(ev)


# --------------------------------------------------------------------- mass cancel
@pytest.mark.parametrize(
    ("iid", "account", "left"),
    [(0, 1, 2), (IID, 0, 2), (IID, 1, 3), (0, 0, 0)],
)
def test_mass_cancel_by_account_instrument_or_both(book, iid, account, left) -> None:
    book.process(buy(1, 90, account=1))
    book.process(buy(1, 91, account=2))
    book.process(buy(1, 92, account=1, instrument_id=IID2))
    book.process(buy(1, 93, account=2, instrument_id=IID2))
    ev = book.process(cmd(CmdType.MASS_CANCEL, instrument_id=iid, account=account))
    done = rows(ev, EventType.MASS_CANCEL_DONE)[0]
    assert done["qty"] == 4 - left
    snap = book.snapshot()["instruments"]
    assert sum(len(s["bid_orders"]) for s in snap.values()) == left


# ------------------------------------------------------------- self-match prevention
@pytest.mark.parametrize(
    ("smp", "cancel_reasons", "rested"),
    [
        (SmpInstruction.CANCEL_RESTING, [CancelReason.SMP_RESTING], [(100, 2, 1)]),
        (SmpInstruction.CANCEL_INCOMING, [CancelReason.SMP_INCOMING], []),
        (SmpInstruction.CANCEL_BOTH, [CancelReason.SMP_RESTING, CancelReason.SMP_INCOMING], []),
    ],
)
def test_self_match_prevention_instructions(book, smp, cancel_reasons, rested) -> None:
    book.process(sell(2, 100, account=7))
    ev = book.process(buy(2, 100, account=7, smp=smp))
    assert trades(ev) == []
    assert reasons(ev, EventType.CANCELLED) == cancel_reasons
    assert level(book, "bids") == rested


def test_self_match_group_links_different_accounts(book) -> None:
    book.process(sell(2, 100, account=1, smp_group=9))
    ev = book.process(buy(2, 100, account=2, smp_group=9, smp=SmpInstruction.CANCEL_INCOMING))
    assert trades(ev) == []


def test_instrument_default_smp_applies_without_override(book) -> None:
    book.process(sell(2, 100, account=5))
    ev = book.process(buy(2, 100, account=5))  # FIFO_CFG default: cancel resting
    assert reasons(ev, EventType.CANCELLED) == [CancelReason.SMP_RESTING]


# --------------------------------------------------------------------- pro-rata
def test_pro_rata_allocates_rounded_down_drops_under_two_lots_then_fifo(book) -> None:
    # resting 30 / 60 / 10 at 100; incoming 25: 7.5 -> 7, 15, 2.5 -> 2; then 1 FIFO to the first
    a = order_id(book.process(sell(30, 100, account=1, instrument_id=IID2)))
    b = order_id(book.process(sell(60, 100, account=2, instrument_id=IID2)))
    c = order_id(book.process(sell(10, 100, account=3, instrument_id=IID2)))
    ev = book.process(buy(25, 100, account=4, instrument_id=IID2))
    fills: dict[int, int] = {}
    for oid, _p, q in trades(ev):
        if oid in (a, b, c):
            fills[oid] = fills.get(oid, 0) + q
    assert fills == {a: 8, b: 15, c: 2}


def test_pro_rata_small_allocations_become_zero_and_go_fifo(book) -> None:
    a = order_id(book.process(sell(10, 100, account=1, instrument_id=IID2)))
    b = order_id(book.process(sell(10, 100, account=2, instrument_id=IID2)))
    ev = book.process(buy(3, 100, account=4, instrument_id=IID2))
    passive = [(o, q) for o, _p, q in trades(ev) if o in (a, b)]
    assert passive == [(a, 3)]  # 1.5 -> 1 -> below 2 -> 0 each; all 3 FIFO to a


def test_iceberg_on_pro_rata_instrument_is_rejected(book) -> None:
    ev = book.process(buy(10, 100, display_qty=2, instrument_id=IID2))
    assert reasons(ev, EventType.REJECTED) == [RejectReason.INVALID_DISPLAY_QTY]


# ------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"instrument_id": 999}, RejectReason.UNKNOWN_INSTRUMENT),
        ({"side": 0}, RejectReason.INVALID_SIDE),
        ({"order_type": 9}, RejectReason.INVALID_ORDER_TYPE),
        ({"tif": 0}, RejectReason.INVALID_TIF),
        ({"qty": 0}, RejectReason.INVALID_QUANTITY),
        ({"qty": 1001}, RejectReason.INVALID_QUANTITY),
        ({"price": 0}, RejectReason.PRICE_OUT_OF_BAND),
        ({"price": 201}, RejectReason.PRICE_OUT_OF_BAND),
        ({"price": 49}, RejectReason.PRICE_OUTSIDE_LIMITS),
        ({"price": 151}, RejectReason.PRICE_OUTSIDE_LIMITS),
        ({"display_qty": 6}, RejectReason.INVALID_DISPLAY_QTY),
        ({"min_qty": 6}, RejectReason.INVALID_MIN_QTY),
        ({"smp": 4}, RejectReason.INVALID_SMP),
    ],
)
def test_invalid_new_orders_are_rejected_with_a_reason(book, fields, reason) -> None:
    base = {"side": Side.BUY, "qty": 5, "price": 100}
    base.update(fields)
    ev = book.process(cmd(CmdType.NEW, **base))
    assert kinds(ev) == ["REJECTED"]
    assert reasons(ev, EventType.REJECTED) == [reason]


@pytest.mark.parametrize(("price", "ok"), [(100, True), (150, True), (151, False), (50, True)])
def test_daily_price_limits_follow_the_reference_price(book, price, ok) -> None:
    ev = book.process(buy(1, price))
    assert (kinds(ev)[0] == "ACCEPTED") is ok


def test_new_reference_price_moves_the_limits(book) -> None:
    book.process(cmd(CmdType.SET_REFERENCE, instrument_id=IID, price=140))
    ev = book.process(buy(1, 180))
    assert kinds(ev)[0] == "ACCEPTED"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (InstrumentStatus.HALTED, RejectReason.INSTRUMENT_HALTED),
        (InstrumentStatus.CLOSED, RejectReason.MARKET_CLOSED),
    ],
)
def test_closed_or_halted_instrument_rejects_new_orders(book, status, reason) -> None:
    book.process(cmd(CmdType.SET_STATUS, instrument_id=IID, status=status))
    ev = book.process(buy(1, 100))
    assert reasons(ev, EventType.REJECTED) == [reason]


def test_halted_instrument_still_accepts_cancels(book) -> None:
    oid = order_id(book.process(buy(1, 100)))
    book.process(cmd(CmdType.SET_STATUS, instrument_id=IID, status=InstrumentStatus.HALTED))
    ev = book.process(cmd(CmdType.CANCEL, order_id=oid, account=1))
    assert reasons(ev, EventType.CANCELLED) == [CancelReason.USER]


def test_halted_instrument_rejects_replace(book) -> None:
    oid = order_id(book.process(buy(1, 100)))
    book.process(cmd(CmdType.SET_STATUS, instrument_id=IID, status=InstrumentStatus.HALTED))
    ev = book.process(cmd(CmdType.REPLACE, order_id=oid, account=1, qty=1, price=99))
    assert reasons(ev, EventType.REJECTED) == [RejectReason.INSTRUMENT_HALTED]


def test_order_capacity_rejects_cleanly_and_recovers_after_a_cancel(make_book) -> None:
    book = make_book(max_orders=2)
    a = order_id(book.process(buy(1, 90)))
    book.process(buy(1, 91))
    full = book.process(buy(1, 92))
    book.process(cmd(CmdType.CANCEL, order_id=a, account=1))
    again = book.process(buy(1, 92))
    assert reasons(full, EventType.REJECTED) == [RejectReason.ORDER_CAPACITY]
    assert kinds(again)[0] == "ACCEPTED"


def test_unknown_command_is_rejected(book) -> None:
    ev = book.process(cmd(42))
    assert reasons(ev, EventType.REJECTED) == [RejectReason.UNKNOWN_COMMAND]
