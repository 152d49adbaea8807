"""Throttle, pre-trade risk, kill switch, cancel-on-disconnect, slow consumers, the close."""

from __future__ import annotations

import asyncio
import csv
import socket

from exchange.protocol import messages as m
from exchange.protocol import soupbintcp as soup
from exchange.protocol.codes import RejectCode, WireCancelReason

from .conftest import H100Z26, Live


def test_throttle_rejects_messages_above_the_session_rate(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        slow = await lv.logged_in("slow")  # 5 messages per second
        toks = [slow.enter(H100Z26, "B", 1, price=2600 + i, account="SLOW") for i in range(12)]
        replies = [await slow.wait_for_token(t) for t in toks]
        got.extend(replies)
        await slow.close()

    live(scenario)
    kinds = [(type(r).__name__, getattr(r, "reason", None)) for r in got]
    assert kinds.count(("Accepted", None)) == 5
    assert kinds.count(("Rejected", RejectCode.THROTTLED)) == 7


def test_risk_rejects_an_order_above_max_order_quantity(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        got.append(
            await alice.wait_for_token(alice.enter(H100Z26, "B", 501, price=2600, account="ALICE"))
        )
        await alice.close()

    live(scenario)
    assert got[0].reason == RejectCode.RISK_MAX_ORDER_QTY


def test_risk_rejects_an_order_above_the_account_notional(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        bob = await lv.logged_in("bob")  # BOB: max order notional $1,000,000
        ok = bob.enter(H100Z26, "B", 100, price=1000, account="BOB")  # $1,000,000 exactly
        too_much = bob.enter(H100Z26, "B", 100, price=1001, account="BOB")
        got.append(await bob.wait_for_token(ok))
        got.append(await bob.wait_for_token(too_much))
        await bob.close()

    live(scenario)
    assert isinstance(got[0], m.Accepted)
    assert got[1].reason == RejectCode.RISK_MAX_NOTIONAL


def test_position_limit_counts_working_orders(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        # H100 all-months limit 5000: ten working bids of 500 use it all.
        toks = [alice.enter(H100Z26, "B", 500, price=2000 + i, account="ALICE") for i in range(10)]
        for t in toks:
            await alice.wait_for_token(t)
        got.append(
            await alice.wait_for_token(alice.enter(H100Z26, "B", 1, price=2000, account="ALICE"))
        )
        alice.cancel(toks[0])
        await alice.wait_for(lambda x: isinstance(x, m.Canceled))
        got.append(
            await alice.wait_for_token(alice.enter(H100Z26, "B", 1, price=2000, account="ALICE"))
        )
        await alice.close()

    live(scenario)
    assert got[0].reason == RejectCode.RISK_POSITION_LIMIT
    assert isinstance(got[1], m.Accepted)


def test_kill_switch_blocks_the_account_and_cancels_its_orders(live) -> None:
    got = {}

    async def scenario(lv: Live) -> None:
        alice, admin = await lv.logged_in("alice"), await lv.logged_in("admin")
        for px in (2600, 2601):
            await alice.wait_for_token(alice.enter(H100Z26, "B", 1, price=px, account="ALICE"))
        tok = admin.new_token()
        admin.send(m.KillSwitch(tok, "ALICE", ord("B")))
        got["done"] = await admin.wait_for_token(tok)
        await asyncio.sleep(0.05)
        got["canceled"] = [x for x in alice.messages if isinstance(x, m.Canceled)]
        got["blocked"] = await alice.wait_for_token(
            alice.enter(H100Z26, "B", 1, price=2600, account="ALICE")
        )
        tok = admin.new_token()
        admin.send(m.KillSwitch(tok, "ALICE", ord("U")))
        await admin.wait_for_token(tok)
        got["after"] = await alice.wait_for_token(
            alice.enter(H100Z26, "B", 1, price=2600, account="ALICE")
        )
        await alice.close()
        await admin.close()

    live(scenario)
    assert got["done"].canceled == 2
    assert [c.reason for c in got["canceled"]] == [WireCancelReason.KILL_SWITCH] * 2
    assert got["blocked"].reason == RejectCode.ACCOUNT_BLOCKED
    assert isinstance(got["after"], m.Accepted)


def test_cancel_on_disconnect_cancels_the_sessions_orders(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        carol = await lv.logged_in("carol")  # cancel_on_disconnect: true
        await carol.wait_for_token(carol.enter(H100Z26, "S", 3, price=3000, account="CAROL"))
        carol._drop()
        await asyncio.sleep(0.1)
        await carol.reconnect()
        got.append(await carol.wait_for(lambda x: isinstance(x, m.Canceled)))
        await carol.close()

    gw = live(scenario)
    assert (got[0].reason, got[0].quantity) == (WireCancelReason.DISCONNECT, 3)
    assert not gw.orders


def test_orders_survive_disconnect_without_cancel_on_disconnect(live) -> None:
    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        await alice.wait_for_token(alice.enter(H100Z26, "S", 3, price=3000, account="ALICE"))
        alice._drop()
        await asyncio.sleep(0.1)

    gw = live(scenario)
    assert len(gw.orders) == 1


def test_slow_consumer_is_disconnected_and_replayed_on_relogin(live) -> None:
    got = {}

    async def scenario(lv: Live) -> None:
        # A raw connection that logs in and then never reads, with a tiny receive buffer.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (lv.host, lv.port))
        sock.send(soup.login_request("alice", "alice-pw", "", 0))
        await asyncio.sleep(0.1)
        bob = await lv.logged_in("bob")
        sess = lv.gateway.sessions["ALICE"]
        for i in range(1000):
            try:
                sock.send(soup.unsequenced(m.encode_inbound(m.EnterOrder(
                    i + 1, H100Z26, ord("B"), ord("L"), ord("0"), 2000 + i % 50, 1,
                    account="ALICE",
                ))))  # fmt: skip
            except OSError:
                break  # the gateway hung up on us
            if i % 50 == 0:
                await asyncio.sleep(0.01)
        for _ in range(200):
            if sess.sink is None:
                break
            await asyncio.sleep(0.01)
        got["dropped"] = sess.sink is None
        got["stored"] = sess.next_seq - 1
        sock.close()
        again = lv.client("alice")
        await again.connect(sequence=1)
        for _ in range(200):
            if len(again.messages) >= got["stored"]:
                break
            await asyncio.sleep(0.01)
        got["replayed"] = len(again.messages)
        await again.close()
        await bob.close()

    live(scenario, max_outbound=8192, sndbuf=4096)
    assert got["dropped"]
    assert got["replayed"] == got["stored"]


def test_close_day_writes_the_close_record_and_ends_every_session(live) -> None:
    got = {}

    async def scenario(lv: Live) -> None:
        alice, bob, admin = [await lv.logged_in(u) for u in ("alice", "bob", "admin")]
        await alice.wait_for_token(alice.enter(H100Z26, "B", 4, price=2790, account="ALICE"))
        await alice.wait_for_token(alice.enter(H100Z26, "B", 1, price=2790, account="ALICE"))
        await bob.wait_for_token(bob.enter(H100Z26, "S", 2, price=2810, account="BOB"))
        gtc = bob.enter(H100Z26, "S", 2, price=2900, account="BOB", tif="1")
        await bob.wait_for_token(gtc)
        tok = admin.new_token()
        admin.send(m.CloseDay(tok))
        got["done"] = await admin.wait_for_token(tok)
        await asyncio.wait_for(alice.end_of_session.wait(), 5)
        await asyncio.wait_for(bob.end_of_session.wait(), 5)
        got["alice"] = [x for x in alice.messages if isinstance(x, m.Canceled)]
        got["status"] = [x for x in alice.messages if isinstance(x, m.TradingStatus)][-1]
        late = lv.client("alice")
        try:
            await late.connect()
        except Exception as exc:  # LoginRejected
            got["late"] = getattr(exc, "reason", None)

    gw = live(scenario)
    rows = {r["symbol"]: r for r in csv.DictReader(gw.close_path.open())}
    z = rows["H100Z26"]
    assert (z["best_bid_ticks"], z["best_bid_qty"], z["best_ask_ticks"], z["best_ask_qty"]) == (
        "2790", "5", "2810", "2",
    )  # fmt: skip
    assert rows["H100F27"]["best_bid_ticks"] == ""
    assert len(rows) == len(gw.contracts)
    assert got["done"].canceled == 3  # day orders; the GTC order stays
    assert {c.reason for c in got["alice"]} == {WireCancelReason.SESSION_END}
    assert chr(got["status"].state) == "C"
    assert got["late"] == "S"
