"""Bad input never crashes the gateway and never disturbs other sessions."""

from __future__ import annotations

import asyncio
import random

import pytest

from exchange.protocol import messages as m
from exchange.protocol import soupbintcp as soup
from exchange.protocol.codes import RejectCode

from .conftest import H100Z26, Live


def _order(token: int, **kw) -> m.EnterOrder:
    base = dict(
        token=token, instrument_id=H100Z26, side=ord("B"), order_type=ord("L"),
        time_in_force=ord("0"), price=2700, quantity=1, account="ALICE",
    )  # fmt: skip
    base.update(kw)
    return m.EnterOrder(**base)


async def _trade_once(lv: Live) -> tuple[m.Executed, m.Executed]:
    alice, bob = await lv.logged_in("alice"), await lv.logged_in("bob")
    ta = alice.enter(H100Z26, "B", 1, price=2900, account="ALICE")
    await alice.wait_for_token(ta)
    tb = bob.enter(H100Z26, "S", 1, price=2900, account="BOB")
    fa = await alice.wait_for(lambda x: isinstance(x, m.Executed) and x.token == ta)
    fb = await bob.wait_for(lambda x: isinstance(x, m.Executed) and x.token == tb)
    await alice.close()
    await bob.close()
    return fa, fb


def _poke(raw: bytes, offset: int, value: int) -> bytes:
    out = bytearray(raw)
    out[offset] = value
    return bytes(out)


BAD_MESSAGES = [
    (b"Q\x00\x00\x00\x07", RejectCode.UNKNOWN_MESSAGE_TYPE, 0),
    (m.encode_inbound(_order(7))[:-3], RejectCode.BAD_LENGTH, 67),
    (m.encode_inbound(_order(7)) + b"x", RejectCode.BAD_LENGTH, 70),
    (_poke(m.encode_inbound(_order(7)), 9, ord("?")), RejectCode.BAD_SIDE, 9),
    (m.encode_inbound(_order(7, quantity=0)), RejectCode.BAD_QUANTITY, 20),
    (m.encode_inbound(_order(7, display_quantity=5)), RejectCode.BAD_DISPLAY_QUANTITY, 24),
    (m.encode_inbound(_order(7, order_type=ord("S"))), RejectCode.BAD_STOP_PRICE, 28),
    (m.encode_inbound(_order(7, price=0)), RejectCode.BAD_PRICE, 12),
    (m.encode_inbound(_order(7, instrument_id=42)), RejectCode.UNKNOWN_INSTRUMENT, 5),
    (_poke(m.encode_inbound(_order(7)), 69, ord("?")), RejectCode.BAD_POST_ONLY, 69),
    (m.encode_inbound(_order(7, time_in_force=ord("6"))), RejectCode.BAD_EXPIRE_TIME, 61),
    (m.encode_inbound(_order(7, expire_time=10**18)), RejectCode.BAD_EXPIRE_TIME, 61),
    (m.encode_inbound(m.CloseDay(7)), RejectCode.NOT_ADMIN, 0),
    (m.encode_inbound(m.KillSwitch(7, "BOB")), RejectCode.NOT_ADMIN, 0),
]


@pytest.mark.parametrize(("raw", "code", "offset"), BAD_MESSAGES, ids=lambda x: str(x)[:20])
def test_bad_message_gets_rejected_with_reason_and_offset(live, raw, code, offset) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        alice = await lv.logged_in("alice")
        alice.send_raw(soup.unsequenced(raw))
        got.append(await alice.wait_for(lambda x: isinstance(x, m.Rejected)))
        got.append(alice.connected)
        await alice.close()

    live(scenario)
    rej, still_connected = got
    assert (rej.reason, rej.offset) == (code, offset)
    assert still_connected


BROKEN_STREAMS = [
    pytest.param(b"\x00\x00", id="zero-length"),
    pytest.param(b"\x7f\xff" + b"U" * 40, id="oversize"),
    pytest.param(soup.packet(b"Q"), id="unknown-packet-type"),
    pytest.param(soup.packet(b"S", b"A"), id="server-packet-from-client"),
    pytest.param(soup.login_request("alice", "alice-pw"), id="second-login"),
]


@pytest.mark.parametrize("junk", BROKEN_STREAMS)
def test_broken_frame_disconnects_only_that_session(live, junk: bytes) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        bob = await lv.logged_in("bob")
        alice = await lv.logged_in("alice")
        alice.send_raw(junk)
        for _ in range(100):
            if not alice.connected:
                break
            await asyncio.sleep(0.01)
        got.append(alice.connected)
        got.append(bob.connected)
        await bob.close()
        await alice.close()
        got.append(await _trade_once(lv))

    live(scenario)
    alice_connected, bob_connected, (fa, fb) = got
    assert not alice_connected
    assert bob_connected
    assert fa.match_id == fb.match_id


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param(b"\x00\x05Lxx", id="short-login"),
        pytest.param(soup.unsequenced(b"O"), id="data-before-login"),
        pytest.param(soup.login_request("a", "b")[:-5], id="truncated-login-then-eof"),
    ],
)
def test_garbage_before_login_is_dropped_quietly(live, junk: bytes) -> None:
    got = []

    async def scenario(lv: Live) -> None:
        reader, writer = await asyncio.open_connection(lv.host, lv.port)
        writer.write(junk)
        writer.write_eof()
        got.append(await asyncio.wait_for(reader.read(), 3))
        writer.close()
        got.append(await _trade_once(lv))

    live(scenario)
    assert got[0] == b""
    assert got[1][0].quantity == 1


def test_random_bytes_and_truncated_frames_never_stop_the_server(live) -> None:
    """Throw random bytes, random valid-looking frames and truncated frames from many
    connections at a live server; then a normal pair of sessions still trades."""
    rng = random.Random(20261125)
    login = soup.login_request("alice", "alice-pw")
    order = soup.unsequenced(m.encode_inbound(_order(1)))

    def junk() -> bytes:
        kind = rng.randrange(5)
        if kind == 0:
            return rng.randbytes(rng.randrange(1, 300))
        if kind == 1:
            body = rng.randbytes(rng.randrange(0, 80))
            return soup.packet(bytes([rng.choice(b"+LURO?S")]), body)
        if kind == 2:
            return login[: rng.randrange(1, len(login))]
        if kind == 3:  # logged in, then mangled application messages
            raw = bytearray(order)
            for _ in range(rng.randrange(1, 6)):
                raw[rng.randrange(3, len(raw))] = rng.randrange(256)
            cut = rng.randrange(3, len(raw) + 1)
            return login + bytes(raw[:cut]) + soup.unsequenced(rng.randbytes(rng.randrange(70)))
        return rng.randbytes(2) + rng.randbytes(rng.randrange(0, 50))

    async def one(lv: Live) -> None:
        try:
            reader, writer = await asyncio.open_connection(lv.host, lv.port)
            for _ in range(rng.randrange(1, 4)):
                writer.write(junk())
            if rng.random() < 0.5:
                writer.write_eof()
            await asyncio.wait_for(reader.read(65536), 0.5)
            writer.close()
        except (ConnectionError, TimeoutError):
            pass

    got = []

    async def scenario(lv: Live) -> None:
        for _ in range(6):
            await asyncio.gather(*(one(lv) for _ in range(20)))
        got.append(await _trade_once(lv))

    gw = live(scenario)
    fa, fb = got[0]
    assert (fa.quantity, fb.quantity) == (1, 1)
    assert not gw.closed


def test_an_internal_error_costs_one_connection_not_the_server(live, monkeypatch) -> None:
    from exchange.core.gateway import CoreGateway

    # a bug where Python decides a message (here: Replace Order) of one session
    real = CoreGateway._replace

    def flaky(self, s, r):
        if s.name == "CAROL":
            raise RuntimeError("simulated bug")
        return real(self, s, r)

    monkeypatch.setattr(CoreGateway, "_replace", flaky)
    got = []

    async def scenario(lv: Live) -> None:
        carol = await lv.logged_in("carol")
        tok = carol.enter(H100Z26, "B", 1, price=2700, account="CAROL")
        carol.replace(tok, price=2701, quantity=1)
        for _ in range(100):
            if not carol.connected:
                break
            await asyncio.sleep(0.01)
        got.append(carol.connected)
        got.append(await _trade_once(lv))

    live(scenario)
    assert got[0] is False
    assert got[1][0].quantity == 1
