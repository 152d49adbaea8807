"""Pre-open and the opening call auction, on BOTH books (kernel facade and reference).

Every auction below is computed by hand in its comment: D(p) = bids priced >= p,
S(p) = asks priced <= p, volume = min(D, S), imbalance = D - S.
"""

from __future__ import annotations

import pytest

from exchange.engine.abi import (
    FLAG_POST_ONLY,
    CancelReason,
    CmdType,
    EventType,
    InstrumentStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)

from .helpers import IID, IID2, buy, cmd, kinds, order_id, rows, sell, trades

PRE_OPEN, OPEN = InstrumentStatus.PRE_OPEN, InstrumentStatus.OPEN


def status(book, st: int, iid: int = IID):  # type: ignore[no-untyped-def]
    return book.process(cmd(CmdType.SET_STATUS, instrument_id=iid, status=st))


def inst(book, iid: int = IID) -> dict:  # type: ignore[no-untyped-def]
    return book.snapshot()["instruments"][iid]


def iops(events) -> list[tuple[int, int, int, int]]:  # type: ignore[no-untyped-def]
    """(price, volume, imbalance side, imbalance qty) of each INDICATIVE_PRICE event."""
    return [
        (r["price"], r["qty"], r["side"], r["leaves"])
        for r in rows(events, EventType.INDICATIVE_PRICE)
    ]


def prices_and_qtys(events) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    return [(p, q) for _o, p, q in trades(events)]


# ------------------------------------------------------------------------ pre-open
def test_pre_open_limit_orders_rest_crossed_without_trading(book) -> None:
    status(book, PRE_OPEN)
    book.process(buy(5, 105, account=1))
    ev = book.process(sell(5, 95, account=2))
    assert kinds(ev) == ["ACCEPTED", "LEVEL", "INDICATIVE_PRICE"]
    assert inst(book)["bids"] == [(105, 5, 1)]
    assert inst(book)["asks"] == [(95, 5, 1)]
    assert inst(book)["last"] is None


@pytest.mark.parametrize(
    "fields",
    [
        {"order_type": OrderType.MARKET},
        {"tif": TimeInForce.IOC},
        {"tif": TimeInForce.FOK},
        {"flags": FLAG_POST_ONLY},
        {"min_qty": 2},
    ],
    ids=["market", "ioc", "fok", "post_only", "limit_min_qty"],
)
def test_pre_open_rejects_orders_that_need_immediate_matching(book, fields) -> None:
    book.process(sell(5, 100, account=2))
    status(book, PRE_OPEN)
    ev = book.process(buy(5, 100, **fields))
    assert [r["reason"] for r in rows(ev, EventType.REJECTED)] == [RejectReason.MARKET_PRE_OPEN]


def test_pre_open_accepts_stop_orders_and_holds_them(book) -> None:
    status(book, PRE_OPEN)
    ev = book.process(buy(2, 110, order_type=OrderType.STOP_LIMIT, stop_price=105))
    assert kinds(ev) == ["ACCEPTED"]
    assert len(inst(book)["buy_stops"]) == 1


def test_pre_open_cancel_works_and_withdraws_the_indicative_price(book) -> None:
    status(book, PRE_OPEN)
    oid = order_id(book.process(buy(5, 101, account=1)))
    crossed = book.process(sell(3, 100, account=2))
    ev = book.process(cmd(CmdType.CANCEL, order_id=oid, account=1))
    # crossed: D(100)=5,S=3 -> 3; D(101)=5,S=3 -> 3; equal: closest to reference 100
    assert iops(crossed) == [(100, 3, Side.BUY, 2)]
    assert [r["reason"] for r in rows(ev, EventType.CANCELLED)] == [CancelReason.USER]
    assert iops(ev) == [(0, 0, 0, 0)]


def test_pre_open_replace_to_a_crossing_price_moves_the_order_without_trading(book) -> None:
    status(book, PRE_OPEN)
    book.process(sell(3, 100, account=2))
    oid = order_id(book.process(buy(3, 98, account=1)))
    ev = book.process(cmd(CmdType.REPLACE, order_id=oid, account=1, qty=3, price=102))
    assert kinds(ev) == ["REPLACED", "LEVEL", "LEVEL", "INDICATIVE_PRICE"]
    assert inst(book)["bids"] == [(102, 3, 1)]


def test_indicative_price_is_published_only_when_it_changes(book) -> None:
    status(book, PRE_OPEN)
    first = book.process(buy(5, 101, account=1))  # one side only: no price
    crossed = book.process(sell(5, 99, account=2))
    below = book.process(buy(1, 90, account=3))  # does not reach the crossed range
    assert iops(first) == []
    assert iops(crossed) == [(100, 5, 0, 0)]  # 99..101 all 5 lots, balanced; reference 100
    assert iops(below) == []


def test_indicative_price_follows_the_reference_price_in_pre_open(book) -> None:
    status(book, PRE_OPEN)
    book.process(buy(5, 102, account=1))
    book.process(sell(5, 100, account=2))
    ev = book.process(cmd(CmdType.SET_REFERENCE, instrument_id=IID, price=140))
    assert iops(ev) == [(102, 5, 0, 0)]


def test_session_close_in_pre_open_expires_day_orders_and_updates_the_indicative_price(
    book,
) -> None:
    status(book, PRE_OPEN)
    book.process(buy(5, 101, account=1, tif=TimeInForce.DAY))
    book.process(sell(5, 100, account=2))
    ev = book.process(cmd(CmdType.SESSION_CLOSE, instrument_id=IID))
    assert [r["reason"] for r in rows(ev, EventType.CANCELLED)] == [CancelReason.SESSION_END]
    assert iops(ev) == [(0, 0, 0, 0)]


# ------------------------------------------------------------- equilibrium price
def test_auction_price_maximises_volume_and_fills_in_price_time_priority(book) -> None:
    # bids 5@101, 5@100; asks 3@99, 3@100, 6@101
    # p=99: D=10 S=3 -> 3; p=100: D=10 S=6 -> 6; p=101: D=5 S=12 -> 5  => 100, vol 6, buy +4
    status(book, PRE_OPEN)
    b101 = order_id(book.process(buy(5, 101, account=1)))
    b100 = order_id(book.process(buy(5, 100, account=2)))
    a99 = order_id(book.process(sell(3, 99, account=3)))
    pre = book.process(sell(3, 100, account=4))
    a100 = order_id(pre)
    unchanged = book.process(sell(6, 101, account=5))  # p=100 still wins: no new IOP
    ev = status(book, OPEN)
    assert iops(pre) == [(100, 6, Side.BUY, 4)]
    assert iops(unchanged) == []
    assert trades(ev) == [
        (b101, 100, 3),
        (a99, 100, 3),
        (b101, 100, 2),
        (a100, 100, 2),
        (b100, 100, 1),
        (a100, 100, 1),
    ]
    assert inst(book)["bids"] == [(100, 4, 1)]
    assert inst(book)["asks"] == [(101, 6, 1)]


def test_auction_prefers_the_smaller_imbalance_over_the_reference_price(book) -> None:
    # bids 5@101, 3@100; asks 5@100. p=100: vol 5, imb +3; p=101: vol 5, imb 0 => 101
    status(book, PRE_OPEN)
    book.process(buy(5, 101, account=1))
    book.process(buy(3, 100, account=2))
    pre = book.process(sell(5, 100, account=3))
    ev = status(book, OPEN)
    assert iops(pre)[-1] == (101, 5, 0, 0)
    assert prices_and_qtys(ev) == [(101, 5), (101, 5)]


@pytest.mark.parametrize(("reference", "price"), [(90, 100), (101, 101), (140, 102)])
def test_auction_price_is_closest_to_the_reference_among_equal_volume_and_imbalance(
    book, reference, price
) -> None:
    # bids 5@102, asks 5@100: every price 100..102 matches 5 with no imbalance
    book.process(cmd(CmdType.SET_REFERENCE, instrument_id=IID, price=reference))
    status(book, PRE_OPEN)
    book.process(buy(5, 102, account=1))
    book.process(sell(5, 100, account=2))
    ev = status(book, OPEN)
    assert prices_and_qtys(ev) == [(price, 5), (price, 5)]
    assert inst(book)["last"] == price


@pytest.mark.parametrize("side", ["bids_only", "asks_only"])
def test_auction_with_an_empty_side_trades_nothing_and_opens(book, side) -> None:
    status(book, PRE_OPEN)
    book.process(buy(5, 101) if side == "bids_only" else sell(5, 99))
    ev = status(book, OPEN)
    assert kinds(ev) == ["STATUS"]
    assert inst(book)["status"] == OPEN


def test_auction_without_a_cross_trades_nothing(book) -> None:
    status(book, PRE_OPEN)
    book.process(buy(5, 99, account=1))
    pre = book.process(sell(5, 101, account=2))
    ev = status(book, OPEN)
    assert iops(pre) == []
    assert kinds(ev) == ["STATUS"]
    assert inst(book)["bids"] == [(99, 5, 1)]


# -------------------------------------------------------------------- allocation
def test_auction_fills_equal_priced_orders_in_time_order(book) -> None:
    status(book, PRE_OPEN)
    first = order_id(book.process(buy(2, 100, account=1)))
    second = order_id(book.process(buy(2, 100, account=2)))
    book.process(sell(3, 100, account=3))
    ev = status(book, OPEN)
    bought = [(o, q) for o, _p, q in trades(ev) if o in (first, second)]
    assert bought == [(first, 2), (second, 1)]


def test_auction_trades_have_no_aggressor_buy_side_first_and_one_match_id(book) -> None:
    status(book, PRE_OPEN)
    book.process(buy(2, 101, account=1))
    book.process(sell(2, 100, account=2))
    ev = status(book, OPEN)
    b, s = rows(ev, EventType.TRADE)
    assert (b["side"], s["side"]) == (Side.BUY, Side.SELL)
    assert b["aggressor_side"] == s["aggressor_side"] == 0
    assert b["match_id"] == s["match_id"] > 0
    assert kinds(ev) == ["STATUS", "TRADE", "TRADE", "LEVEL", "LEVEL"]


def test_auction_counts_iceberg_hidden_quantity_and_refreshes_it_to_the_back(book) -> None:
    # iceberg buy 6 showing 2 @100, then plain buy 2 @100; sell 5 @100 -> volume 5
    status(book, PRE_OPEN)
    ice = order_id(book.process(buy(6, 100, display_qty=2, account=1)))
    plain = order_id(book.process(buy(2, 100, account=2)))
    pre = book.process(sell(5, 100, account=3))
    ev = status(book, OPEN)
    bought = [(o, q) for o, _p, q in trades(ev) if o in (ice, plain)]
    assert iops(pre) == [(100, 5, Side.BUY, 3)]
    assert bought == [(ice, 2), (plain, 2), (ice, 1)]


def test_pro_rata_instrument_opens_in_time_priority(book) -> None:
    status(book, PRE_OPEN, IID2)
    first = order_id(book.process(buy(10, 100, instrument_id=IID2, account=1)))
    second = order_id(book.process(buy(10, 100, instrument_id=IID2, account=2)))
    book.process(sell(10, 100, instrument_id=IID2, account=3))
    ev = status(book, OPEN, IID2)
    bought = [(o, q) for o, _p, q in trades(ev) if o in (first, second)]
    assert bought == [(first, 10)]


def test_auction_ignores_self_match_prevention(book) -> None:
    status(book, PRE_OPEN)
    book.process(buy(2, 100, account=1))
    book.process(sell(2, 100, account=1))
    ev = status(book, OPEN)
    assert prices_and_qtys(ev) == [(100, 2), (100, 2)]


def test_large_auction_completes_across_many_event_buffer_refills(book) -> None:
    status(book, PRE_OPEN)
    for k in range(30):
        book.process(buy(1, 100 + k % 3, account=1 + k % 2))
        book.process(sell(1, 99 + k % 3, account=3))
    ev = status(book, OPEN)
    # bids 10 each @100,101,102; asks 10 each @99,100,101: p=100 D=30 S=20; p=101 D=20 S=30
    assert len(trades(ev)) == 40
    assert {p for p, _q in prices_and_qtys(ev)} == {100}
    assert inst(book)["bids"] == [(100, 10, 10)]


# ----------------------------------------------------------- after the auction
def test_stops_triggered_by_the_opening_price_fire_after_the_auction(book) -> None:
    book.process(sell(1, 90, account=1))
    book.process(buy(1, 90, account=2))  # last = 90
    status(book, PRE_OPEN)
    stop = order_id(
        book.process(
            buy(
                1,
                0,
                order_type=OrderType.STOP_MARKET,
                stop_price=95,
                account=4,
                tif=TimeInForce.DAY,
            )
        )
    )
    book.process(buy(2, 100, account=1))
    book.process(sell(3, 100, account=2))
    ev = status(book, OPEN)
    assert kinds(ev)[:3] == ["STATUS", "TRADE", "TRADE"]
    assert [r["order_id"] for r in rows(ev, EventType.STOP_TRIGGERED)] == [stop]
    assert (stop, 100, 1) in trades(ev)


def test_open_book_trades_continuously_after_the_auction(book) -> None:
    status(book, PRE_OPEN)
    book.process(buy(3, 100, account=1))
    book.process(sell(2, 100, account=2))
    status(book, OPEN)
    ev = book.process(sell(1, 100, account=3))
    assert prices_and_qtys(ev) == [(100, 1), (100, 1)]
    assert rows(ev, EventType.TRADE)[0]["aggressor_side"] == Side.SELL


def test_halt_in_pre_open_keeps_the_cross_until_the_instrument_opens(book) -> None:
    status(book, PRE_OPEN)
    book.process(buy(2, 101, account=1))
    book.process(sell(2, 99, account=2))
    halted = status(book, InstrumentStatus.HALTED)
    ev = status(book, OPEN)
    assert kinds(halted) == ["STATUS"]
    assert prices_and_qtys(ev) == [(100, 2), (100, 2)]
