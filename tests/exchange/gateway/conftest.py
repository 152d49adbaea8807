"""A live in-process gateway on 127.0.0.1 (ephemeral port) over the real engine semantics."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvloop

from exchange.auth import AccessConfig, hash_password, parse_access
from exchange.client import OrderClient
from exchange.connection import serve_gateway
from exchange.gateway import Gateway
from exchange.venue import build_gateway

TRADE_DATE = dt.date(2026, 11, 25)
H100Z26 = 12612  # H100 December 2026, tick $0.001, no reference price -> no daily limits
H100F27 = 12701


def make_access(**overrides: Any) -> AccessConfig:
    cheap = {"n": 2**4}
    logins = [
        {"username": "alice", "password_hash": hash_password("alice-pw", **cheap),
         "accounts": ["ALICE"]},
        {"username": "bob", "password_hash": hash_password("bob-pw", **cheap),
         "accounts": ["BOB"]},
        {"username": "carol", "password_hash": hash_password("carol-pw", **cheap),
         "accounts": ["CAROL"], "cancel_on_disconnect": True},
        {"username": "slow", "password_hash": hash_password("slow-pw", **cheap),
         "accounts": ["SLOW"], "throttle_per_second": 5},
        {"username": "admin", "password_hash": hash_password("admin-pw", **cheap),
         "admin": True},
    ]  # fmt: skip
    doc = {
        "accounts": [
            {"name": "ALICE"},
            {"name": "BOB", "max_order_notional": "1000000.00"},
            {"name": "CAROL"},
            {"name": "SLOW"},
        ],
        "logins": logins,
    }
    doc.update(overrides)
    return parse_access(doc)


ACCESS = make_access()
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "slow": "slow-pw",
             "admin": "admin-pw"}  # fmt: skip


@dataclass
class Live:
    gateway: Gateway
    host: str
    port: int
    conns: set
    data_dir: Path

    def client(self, user: str, password: str | None = None) -> OrderClient:
        return OrderClient(self.host, self.port, user, password or PASSWORDS[user])

    async def logged_in(self, user: str) -> OrderClient:
        c = self.client(user)
        await c.connect()
        return c


Scenario = Callable[[Live], Awaitable[None]]


def run_live(
    tmp_path: Path,
    scenario: Scenario,
    max_outbound: int = 8 << 20,
    sndbuf: int | None = None,
    idle_timeout: float = 15.0,
    **kw: Any,
) -> Gateway:
    """Start a gateway, run ``scenario(live)``, stop; returns the gateway for inspection."""

    errors: list[dict] = []

    async def main() -> Gateway:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        kw.setdefault("engine", "reference")
        gw = build_gateway(ACCESS, TRADE_DATE, data_dir=tmp_path, **kw)
        server, hb, conns = await serve_gateway(
            gw, "127.0.0.1", 0, max_outbound=max_outbound, sndbuf=sndbuf, idle_timeout=idle_timeout
        )
        port = server.sockets[0].getsockname()[1]
        try:
            await asyncio.wait_for(scenario(Live(gw, "127.0.0.1", port, conns, tmp_path)), 30)
        finally:
            hb.cancel()
            server.close()
            for c in list(conns):
                if c.transport is not None:
                    c.transport.abort()
            await asyncio.sleep(0)
        return gw

    gw = uvloop.run(main())
    assert not errors, f"the gateway raised inside the event loop: {errors[0]}"
    return gw


@pytest.fixture
def live(tmp_path: Path) -> Callable[..., Gateway]:
    def _run(scenario: Scenario, **kw: Any) -> Gateway:
        return run_live(tmp_path, scenario, **kw)

    return _run
