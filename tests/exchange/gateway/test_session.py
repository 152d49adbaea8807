"""SoupBinTCP session behaviour of the live gateway: login, replay, one connection, heartbeats."""

from __future__ import annotations

import asyncio

import pytest

from contracts.errors import FlopexError
from exchange.client import LoginRejected
from exchange.protocol import messages as m
from exchange.protocol import soupbintcp as soup

from .conftest import H100Z26, Live


async def _raw_exchange(lv: Live, data: bytes, read_s: float = 0.3) -> bytes:
    """Send raw bytes, return everything the server sent until it closed or went quiet."""
    reader, writer = await asyncio.open_connection(lv.host, lv.port)
    writer.write(data)
    await writer.drain()
    out = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), read_s)
            if not chunk:
                break
            out += chunk
    except TimeoutError:
        pass
    writer.close()
    return out


@pytest.mark.parametrize(
    ("user", "password"), [("alice", "wrong"), ("nobody", "alice-pw"), ("", "")]
)
def test_wrong_credentials_get_login_rejected_and_nothing_else(live, user, password) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        got.append(await _raw_exchange(lv, soup.login_request(user, password)))

    live(scenario)
    assert got[0] == soup.login_rejected(soup.REJECT_NOT_AUTHORIZED)


def test_second_live_connection_for_a_session_is_refused(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        first = await lv.logged_in("alice")
        with pytest.raises(LoginRejected) as info:
            await lv.logged_in("alice")
        got.append(info.value.reason)
        got.append(first.connected)
        await first.close()

    live(scenario)
    assert got == ["S", True]


def test_login_to_another_session_name_is_refused(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        c = lv.client("alice")
        c.session = "BOB"
        with pytest.raises(LoginRejected) as info:
            await c.connect()
        got.append(info.value.reason)

    live(scenario)
    assert got == ["S"]


def test_relogin_with_lower_sequence_replays_missed_messages_in_order(live) -> None:
    got = {}

    async def scenario(lv: Live) -> None:
        # Arrange: alice has orders acknowledged, then disconnects
        alice = await lv.logged_in("alice")
        for px in (2600, 2601):
            await alice.wait_for_token(alice.enter(H100Z26, "B", 1, price=px, account="ALICE"))
        seen = list(alice.messages)
        await alice.close()
        # while away, bob trades against her bid
        bob = await lv.logged_in("bob")
        await bob.wait_for_token(bob.enter(H100Z26, "S", 1, price=2601, account="BOB"))
        await bob.close()
        # Act: a fresh client (a new process) logs in from sequence 1
        again = lv.client("alice")
        start = await again.connect(sequence=1)
        await again.wait_for(lambda x: isinstance(x, m.Executed))
        got.update(seen=seen, replay=list(again.messages), start=start, token=again.last_token)
        await again.close()

    live(scenario)
    assert got["start"] == 1
    assert got["replay"][: len(got["seen"])] == got["seen"]
    assert isinstance(got["replay"][len(got["seen"])], m.Executed)
    assert got["token"] == 2  # learned from the replay: the next order uses token 3


def test_relogin_asking_for_zero_gets_only_new_messages(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        await alice.wait_for_token(alice.enter(H100Z26, "B", 1, price=2600, account="ALICE"))
        n = alice.next_seq
        await alice.close()
        again = lv.client("alice")
        got.append((await again.connect(sequence=0), n, len(again.messages)))
        await again.close()

    live(scenario)
    start, n, count = got[0]
    assert (start, count) == (n, 0)


def test_reconnect_replays_what_was_missed(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        tok = alice.enter(H100Z26, "B", 2, price=2600, account="ALICE")
        await alice.wait_for_token(tok)
        alice._drop()  # connection lost without logout
        await asyncio.sleep(0.05)
        bob = await lv.logged_in("bob")
        await bob.wait_for_token(bob.enter(H100Z26, "S", 2, price=2600, account="BOB"))
        await alice.reconnect()
        got.append(await alice.wait_for(lambda x: isinstance(x, m.Executed)))
        seqs = alice.next_seq - 1
        got.append((seqs, len(alice.messages)))
        await alice.close()
        await bob.close()

    live(scenario)
    fill, (seqs, count) = got
    assert fill.quantity == 2
    assert seqs == count  # every sequenced message arrived exactly once


def test_trading_status_is_sent_on_first_login(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        await alice.wait_for(lambda x: isinstance(x, m.TradingStatus))
        await asyncio.sleep(0.05)
        got.extend(x for x in alice.messages if isinstance(x, m.TradingStatus))
        await alice.close()

    gw = live(scenario)
    assert {x.instrument_id for x in got} == set(gw.contracts)
    assert {chr(x.state) for x in got} == {"T"}


def test_server_heartbeat_after_one_idle_second(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        reader, writer = await asyncio.open_connection(lv.host, lv.port)
        writer.write(soup.login_request("alice", "alice-pw", "", 0))
        dec = soup.FrameDecoder()
        seen: list[int] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 2.5
        while ord("H") not in seen and loop.time() < end:
            chunk = await asyncio.wait_for(reader.read(65536), 3)
            seen += [p for p, _ in dec.feed(chunk)]
        got.extend(seen)
        writer.close()

    live(scenario)
    assert chr(got[0]) == "A"
    assert ord("H") in got


def test_logout_closes_the_connection(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        login = soup.login_request("alice", "alice-pw", "", 0)
        out = await _raw_exchange(lv, login + soup.LOGOUT_REQUEST_PACKET, read_s=2)
        got.append(out)

    live(scenario)
    packets = soup.FrameDecoder().feed(got[0])
    assert chr(packets[0][0]) == "A"


def test_client_connect_to_a_closed_port_is_a_flopex_error() -> None:
    async def main() -> None:
        from exchange.client import OrderClient

        c = OrderClient("127.0.0.1", 1, "alice", "pw")
        with pytest.raises(FlopexError, match="cannot connect"):
            await c.connect(timeout=2)

    asyncio.run(main())


def test_silent_client_is_disconnected_after_the_idle_timeout(live) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        reader, writer = await asyncio.open_connection(lv.host, lv.port)
        writer.write(soup.login_request("alice", "alice-pw", "", 0))
        data = b""
        while True:  # server heartbeats keep coming until it gives up on us
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            data += chunk
        got.append(data)
        writer.close()

    live(scenario, idle_timeout=1.5)
    kinds = [chr(p) for p, _ in soup.FrameDecoder().feed(got[0])]
    assert kinds[0] == "A" and "H" in kinds
