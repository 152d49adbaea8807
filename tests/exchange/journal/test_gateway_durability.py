"""The journal hooked into the real gateway: digest and trade log rebuilt from the journal.

A live in-process gateway (numba engine) journals through :class:`GatewayJournal`; two
sessions trade over TCP; then ``flopex journal verify`` must print the live engine's
digest (with and without snapshots) and ``flopex journal tradelog`` must reproduce the
gateway's trade log byte for byte.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
import uvloop

from exchange.cli import main
from exchange.cli_journal import regenerate_tradelog, state_digest
from exchange.client import OrderClient
from exchange.connection import serve_gateway
from exchange.datadir import DataDir
from exchange.journal import GatewayJournal, SyncPolicy
from exchange.venue import build_gateway
from tests.exchange.gateway.conftest import ACCESS, H100F27, H100Z26, PASSWORDS, TRADE_DATE


def _trade_day(data_dir: Path, snapshot_every: int) -> tuple[str, bytes]:
    """Run a trading day through a journaled gateway; returns (live digest, trade log)."""
    dd = DataDir.open(data_dir, create=True)

    async def day() -> str:
        gw = build_gateway(ACCESS, TRADE_DATE, data_dir=dd.root, engine="numba")
        gj = GatewayJournal(gw, dd, SyncPolicy("off"), snapshot_every=snapshot_every)
        server, hb, conns = await serve_gateway(gw, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        rng = random.Random(5)
        users = ("alice", "bob")
        clients = [OrderClient("127.0.0.1", port, u, PASSWORDS[u]) for u in users]
        try:
            for c in clients:
                await c.connect()
            last = 0
            for i in range(300):
                c = clients[i % 2]
                side = rng.choice("BS")
                px = 3000 + rng.randint(-5, 5)
                inst = rng.choice((H100Z26, H100F27))
                last = c.enter(inst, side, rng.randint(1, 9), px, account=users[i % 2].upper())
                if i % 50 == 49:
                    await c.wait_for_token(last)
            for c in clients:
                await c.wait_for_token(c.last_token if c.last_token else last)
            gw.close_day()
            digest = gw.sequencer.engine.state_digest()
            gj.close()
            return digest
        finally:
            for c in clients:
                await c.close()
            hb.cancel()
            server.close()
            for conn in list(conns):
                if conn.transport is not None:
                    conn.transport.abort()
            await asyncio.sleep(0)

    digest = uvloop.run(day())
    tradelog = (dd.tradelog_dir / f"{TRADE_DATE.isoformat()}.csv").read_bytes()
    return digest, tradelog


@pytest.fixture(scope="module")
def traded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, bytes]:
    path = tmp_path_factory.mktemp("durable") / "data"
    digest, tradelog = _trade_day(path, snapshot_every=100)
    return path, digest, tradelog


def test_trading_day_really_traded(traded: tuple[Path, str, bytes]) -> None:
    _, _, tradelog = traded
    assert tradelog.count(b"\n") > 20


@pytest.mark.parametrize("use_snapshot", [True, False], ids=["snapshot+tail", "full-replay"])
def test_rebuilt_digest_equals_the_live_engine(
    traded: tuple[Path, str, bytes], use_snapshot: bool
) -> None:
    path, live_digest, _ = traded
    assert state_digest(path, use_snapshot=use_snapshot) == live_digest


def test_snapshots_were_taken(traded: tuple[Path, str, bytes]) -> None:
    path, _, _ = traded
    assert len(list((path / "snapshots").glob("*.snap"))) >= 2


def test_tradelog_regenerates_byte_for_byte(traded: tuple[Path, str, bytes]) -> None:
    path, _, tradelog = traded
    assert regenerate_tradelog(path, TRADE_DATE) == tradelog


def test_cli_verify_prints_the_live_digest(
    traded: tuple[Path, str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    path, live_digest, _ = traded
    code = main(["journal", "verify", "--data-dir", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"state digest: {live_digest}\n" in out
    assert "checksums ok" in out


def test_cli_tradelog_writes_the_file(traded: tuple[Path, str, bytes], tmp_path: Path) -> None:
    path, _, tradelog = traded
    out = tmp_path / "t.csv"
    assert main(["journal", "tradelog", "--data-dir", str(path), "--date", str(TRADE_DATE),
                 "--out", str(out)]) == 0  # fmt: skip
    assert out.read_bytes() == tradelog


def test_cli_inspect_filters_by_account(
    traded: tuple[Path, str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _ = traded
    assert main(["journal", "inspect", "--data-dir", str(path), "--account", "ALICE"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all("acct=ALICE" in ln for ln in lines)
    assert all(" NEW " in ln for ln in lines)
