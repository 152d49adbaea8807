"""Two sessions trade through a live gateway: acks, fills, replace, cancel, trade log."""

from __future__ import annotations

import csv

from exchange.protocol import messages as m
from exchange.protocol.codes import RejectCode, WireCancelReason

from .conftest import H100Z26, Live


def _is(kind: type, token: int):
    return lambda x: isinstance(x, kind) and getattr(x, "token", None) == token


def test_a_buy_and_a_sell_from_two_sessions_trade(live) -> None:
    fills: dict[str, m.Executed] = {}

    async def scenario(lv: Live) -> None:
        # Arrange
        alice, bob = await lv.logged_in("alice"), await lv.logged_in("bob")
        t_sell = bob.enter(H100Z26, "S", 5, price=2800, account="BOB")
        assert isinstance(await bob.wait_for_token(t_sell), m.Accepted)
        # Act
        t_buy = alice.enter(H100Z26, "B", 3, price=2810, account="ALICE")
        # Assert
        fills["alice"] = await alice.wait_for(_is(m.Executed, t_buy))
        fills["bob"] = await bob.wait_for(_is(m.Executed, t_sell))
        await alice.close()
        await bob.close()

    gw = live(scenario)
    a, b = fills["alice"], fills["bob"]
    assert (a.price, a.quantity, a.leaves, chr(a.liquidity)) == (2800, 3, 0, "R")
    assert (b.price, b.quantity, b.leaves, chr(b.liquidity)) == (2800, 3, 2, "A")
    assert a.match_id == b.match_id
    rows = list(csv.DictReader(gw.tradelog.path.open()))
    assert sorted(
        (r["account"], r["side"], r["price"], r["quantity"], r["aggressor"]) for r in rows
    ) == [("ALICE", "B", "2.800", "3", "Y"), ("BOB", "S", "2.800", "3", "N")]
    assert {r["symbol"] for r in rows} == {"H100Z26"}
    assert len({r["seq"] for r in rows}) == 2


def test_replace_then_cancel_an_order(live) -> None:
    got: list[m.OutboundMessage] = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        tok = alice.enter(H100Z26, "B", 5, price=2700, account="ALICE")
        await alice.wait_for_token(tok)
        new = alice.replace(tok, price=2710, quantity=7)
        got.append(await alice.wait_for_token(new))
        alice.cancel(new)
        got.append(await alice.wait_for(lambda x: isinstance(x, m.Canceled)))
        await alice.close()

    live(scenario)
    replaced, canceled = got
    assert isinstance(replaced, m.Replaced)
    assert (replaced.price, replaced.quantity, replaced.orig_token) == (2710, 7, 1)
    assert (canceled.token, canceled.quantity, canceled.reason) == (
        replaced.token,
        7,
        WireCancelReason.USER,
    )


def test_cancel_of_unknown_token_is_rejected(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        alice.cancel(999)
        got.append(await alice.wait_for(lambda x: isinstance(x, m.Rejected)))
        await alice.close()

    live(scenario)
    assert (got[0].token, got[0].reason, chr(got[0].request_type)) == (
        999,
        RejectCode.UNKNOWN_TOKEN,
        "X",
    )


def test_a_resent_order_is_never_entered_twice(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        order = m.EnterOrder(5, H100Z26, ord("B"), ord("L"), ord("0"), 2700, 1, account="ALICE")
        alice.send(order)
        alice.send(order)  # resent, same token
        got.append(await alice.wait_for(lambda x: isinstance(x, m.Rejected)))
        got.append([x for x in alice.messages if isinstance(x, m.Accepted)])
        await alice.close()

    gw = live(scenario)
    rejected, accepted = got
    assert rejected.reason == RejectCode.TOKEN_NOT_INCREASING
    assert len(accepted) == 1
    assert len(gw.orders) == 1


def test_mass_cancel_cancels_only_this_sessions_orders(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice, bob = await lv.logged_in("alice"), await lv.logged_in("bob")
        for px in (2600, 2610, 2620):
            alice.enter(H100Z26, "B", 1, price=px, account="ALICE")
        tb = bob.enter(H100Z26, "B", 1, price=2600, account="BOB")
        await bob.wait_for_token(tb)
        done = await alice.wait_for_token(alice.mass_cancel())
        got.append(done)
        got.append([x for x in alice.messages if isinstance(x, m.Canceled)])
        await alice.close()
        await bob.close()

    gw = live(scenario)
    done, canceled = got
    assert isinstance(done, m.MassCancelDone) and done.canceled == 3
    assert {c.reason for c in canceled} == {WireCancelReason.MASS_CANCEL}
    assert [r.session.name for r in gw.orders.values()] == ["BOB"]


def test_enter_for_an_account_the_login_may_not_trade_is_rejected(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        tok = alice.enter(H100Z26, "B", 1, price=2700, account="BOB")
        got.append(await alice.wait_for_token(tok))
        await alice.close()

    live(scenario)
    assert got[0].reason == RejectCode.ACCOUNT_NOT_PERMITTED


def test_engine_reject_reason_reaches_the_wire(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        tok = alice.enter(H100Z26, "B", 1, price=999_999, account="ALICE")  # above the band
        got.append(await alice.wait_for_token(tok))
        await alice.close()

    live(scenario)
    assert got[0].reason == RejectCode.PRICE_OUT_OF_BAND


def test_stop_order_triggers_when_the_market_trades_through(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice, bob = await lv.logged_in("alice"), await lv.logged_in("bob")
        # establish a last price, then a buy stop at 2810 and liquidity above it
        await bob.wait_for_token(bob.enter(H100Z26, "S", 1, price=2800, account="BOB"))
        t = alice.enter(H100Z26, "B", 1, price=2800, account="ALICE")
        await alice.wait_for(lambda x: isinstance(x, m.Executed) and x.token == t)
        stop = alice.enter(H100Z26, "B", 2, account="ALICE", order_type="S", stop_price=2810)
        assert isinstance(await alice.wait_for_token(stop), m.Accepted)
        await bob.wait_for_token(bob.enter(H100Z26, "S", 5, price=2815, account="BOB"))
        await bob.wait_for_token(bob.enter(H100Z26, "S", 1, price=2810, account="BOB"))
        alice.enter(H100Z26, "B", 1, price=2810, account="ALICE")  # trades at 2810
        got.append(await alice.wait_for(_is(m.StopTriggered, stop)))
        got.append(await alice.wait_for(_is(m.Executed, stop)))
        await alice.close()
        await bob.close()

    live(scenario)
    trig, fill = got
    assert trig.stop_price == 2810
    assert (fill.price, fill.quantity) == (2815, 2)
