"""Crash test: sessions pipeline orders, the server is SIGKILLed, restarted on the same data.

The server (``crash_server.py``: a gateway journaling through :class:`GatewayJournal`,
fsync per batch, frequent snapshots) is killed with SIGKILL at several points while
clients pipeline orders — mid-batch, and with snapshots being written all the time. After
each kill the journal is checked (torn tail repaired) and the engine rebuilt from
snapshot + journal must contain every order the gateway acknowledged before the kill
(resting or filled), every trade a client was told about exactly once, and the sequence
continues on restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import uvloop

from exchange.cli_journal import EngineReplay, regenerate_tradelog, state_digest
from exchange.client import OrderClient
from exchange.datadir import DataDir
from exchange.engine.abi import EventType
from exchange.journal import Journal
from exchange.protocol import messages as m
from exchange.protocol.codes import RejectCode
from exchange.snapshot import recover
from tests.exchange.gateway.conftest import H100F27, H100Z26, PASSWORDS

ROOT = Path(__file__).resolve().parents[3]
USERS = ("alice", "bob", "carol")


def _start(data_dir: Path, snapshot_every: int) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.exchange.journal.crash_server", str(data_dir),
         str(snapshot_every)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError("crash server did not start")
    return proc, int(line)


async def _pipeline(port: int, proc: subprocess.Popen, n: int, kill_after: int) -> dict:
    """Pipeline orders from three sessions; SIGKILL the server after ``kill_after``
    acknowledgements; returns what the clients were told."""
    clients = [OrderClient("127.0.0.1", port, u, PASSWORDS[u]) for u in USERS]
    for c in clients:
        await c.connect()
    for i in range(n):
        c = clients[i % 3]
        side = "B" if (i // 3) % 2 == 0 else "S"
        c.enter(H100Z26 if i % 5 else H100F27, side, 1 + i % 4, 2995 + i % 11,
                account=USERS[i % 3].upper())  # fmt: skip
        if i % 16 == 15:
            await asyncio.sleep(0)
        acked = sum(isinstance(x, m.Accepted) for cl in clients for x in cl.messages)
        if acked >= kill_after:
            break
    while sum(isinstance(x, m.Accepted) for cl in clients for x in cl.messages) < kill_after:
        await asyncio.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream: more orders are in flight
    await asyncio.sleep(0.05)
    msgs = [x for cl in clients for x in cl.messages]
    told = {
        "accepted": [x.order_id for x in msgs if isinstance(x, m.Accepted)],
        "executed": [(x.match_id, x.token) for cl in clients for x in cl.messages
                     if isinstance(x, m.Executed)],
    }  # fmt: skip
    for c in clients:
        c._drop()
    return told


def _rebuild(data_dir: Path) -> tuple[set[int], dict[int, int], EngineReplay, int]:
    """From the full journal: accepted order ids, trade-side counts per match, replay."""
    dd = DataDir.open(data_dir)
    j = Journal(dd.journal_dir, read_only=True)
    accepted: set[int] = set()
    sides: dict[int, int] = {}

    def on_events(_rep: EngineReplay, _seq: int, _cmds: np.ndarray, ev: np.ndarray) -> None:
        accepted.update(ev["order_id"][ev["event_type"] == EventType.ACCEPTED].tolist())
        for mid in ev["match_id"][ev["event_type"] == EventType.TRADE].tolist():
            sides[mid] = sides.get(mid, 0) + 1

    rep = EngineReplay(on_events)
    recover(j, None, on_snapshot=rep.on_snapshot, on_note=rep.on_note, on_batch=rep.on_batch)
    return accepted, sides, rep, j.next_seq


def test_nothing_acknowledged_is_lost_across_sigkills(tmp_path: Path) -> None:
    data = tmp_path / "data"
    all_told: list[dict] = []
    seqs = []
    for round_, kill_after in enumerate((150, 400, 250)):
        # Arrange: (re)start on the same data directory
        proc, port = _start(data, snapshot_every=64)
        try:
            # Act: pipeline, kill -9 mid-stream
            told = uvloop.run(_pipeline(port, proc, 3000, kill_after))
        finally:
            proc.kill()
            proc.wait()
        all_told.append(told)
        # Assert: the journal (after torn-tail repair) holds everything acknowledged
        accepted, sides, rep, next_seq = _rebuild(data)
        seqs.append(next_seq)
        for t in all_told:
            missing = set(t["accepted"]) - accepted
            assert not missing, f"round {round_}: acknowledged orders lost: {sorted(missing)[:5]}"
            for match_id, _tok in t["executed"]:
                assert sides.get(match_id) == 2, f"trade {match_id} lost or duplicated"
        assert all(v == 2 for v in sides.values())  # every match has exactly two sides
        # a recovered engine from snapshot + tail equals the full replay
        dd = DataDir.open(data)
        snap_rep = EngineReplay()
        recover(Journal(dd.journal_dir, read_only=True), dd.snapshot_dir,
                on_snapshot=snap_rep.on_snapshot, on_note=snap_rep.on_note,
                on_batch=snap_rep.on_batch)  # fmt: skip
        assert snap_rep.engine.state_digest() == rep.engine.state_digest()
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # the sequence continues


# ---- flopex serve itself: kill -9 at several points, re-login with replay ------------------

SERVE_DATE = "2026-11-25"


class Serve:
    """``flopex serve`` in its own process on a data directory (demo logins)."""

    def __init__(self, data: Path, snapshot_every: int) -> None:
        self.data = data
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exchange.cli", "serve", "--port", "0", "--data-dir",
             str(data), "--trade-date", SERVE_DATE, "--snapshot-every", str(snapshot_every),
             "--no-market-data"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.startup: list[str] = []
        for line in self.proc.stdout:
            self.startup.append(line)
            if "listening on" in line:
                self.port = int(line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])
                return
        raise AssertionError(f"flopex serve did not start: {self.startup}")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait(30)
        return out


async def _relogin(port: int, users: tuple[str, ...]) -> dict[str, OrderClient]:
    """Fresh clients logging in from sequence 1: the whole session is replayed."""
    out = {}
    for u in users:
        c = OrderClient("127.0.0.1", port, u, f"{u}-pw")
        await c.connect(sequence=1)
        out[u] = c
    return out


async def _until_replayed(clients: dict[str, OrderClient], counts: dict[str, int]) -> None:
    for u, c in clients.items():
        await c.wait_for(lambda _x: len(c.messages) >= counts[u], timeout=10)  # noqa: B023


async def _trade_and_kill(serve: Serve, seen: dict[str, list], when: str) -> dict[str, list]:
    """Re-login (replay), check the replay, pipeline crossing orders from alice and bob,
    then SIGKILL the server ``when`` = "mid-batch" (orders in flight) or "mid-snapshot"
    (a snapshot temp file exists)."""
    clients = await _relogin(serve.port, ("alice", "bob"))
    await _until_replayed(clients, {u: len(v) for u, v in seen.items()})
    for u, c in clients.items():
        # everything acknowledged before the kill is replayed, identical and in order
        assert c.messages[: len(seen[u])] == seen[u], f"{u}: replay differs after restart"
    # a resent order (the last token the server acknowledged) is recognised
    a = clients["alice"]
    if a.last_token:
        before = len(a.messages)
        a.enter(H100Z26, "B", 1, 2990, account="ALICE", token=a.last_token)
        reply = await a.wait_for(lambda x: isinstance(x, m.Rejected), start=before)
        assert reply.reason == RejectCode.TOKEN_NOT_INCREASING
    snaps = serve.data / "snapshots"

    def acked() -> int:
        return sum(isinstance(x, m.Accepted) for c in clients.values() for x in c.messages)

    def send(i: int) -> None:
        clients["alice"].enter(H100Z26, "B", 1 + i % 3, 2990 + i % 7, account="ALICE")
        clients["bob"].enter(H100Z26, "S", 1 + i % 2, 2990 + i % 5, account="BOB")

    start = acked()
    if when == "mid-batch":  # 600 orders in flight; kill once the first 100 are acked
        for i in range(300):
            send(i)
        while acked() < start + 100:
            await asyncio.sleep(0.0005)
    else:  # keep trading until a snapshot is being written, kill then
        for i in range(100_000):
            send(i)
            await asyncio.sleep(0.0005)
            if acked() > start + 100 and any(snaps.glob(".*.tmp")):
                break
        else:
            raise AssertionError("no snapshot was ever seen being written")
    serve.kill9()
    await asyncio.sleep(0.05)
    out = {u: list(c.messages) for u, c in clients.items()}
    for c in clients.values():
        c._drop()
    return out


def test_flopex_serve_relogin_replays_acknowledged_messages_after_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seen: dict[str, list] = {"alice": [], "bob": []}
    # Arrange / Act: three runs of flopex serve on one data directory, each SIGKILLed
    for when in ("mid-batch", "mid-snapshot", "mid-batch"):
        serve = Serve(data, snapshot_every=150)
        try:
            seen = uvloop.run(_trade_and_kill(serve, seen, when))
        finally:
            serve.proc.kill()
            serve.proc.wait()
    serve = Serve(data, snapshot_every=150)
    try:
        clients = uvloop.run(_relogin_and_close(serve, seen))
    finally:
        out = serve.stop()
    # Assert: every acknowledged order is in the journal, every trade once per side
    accepted, sides, rep, _ = _rebuild(data)
    told = [x for msgs in clients.values() for x in msgs]
    assert {x.order_id for x in told if isinstance(x, m.Accepted)} <= accepted
    executed = [x.match_id for x in told if isinstance(x, m.Executed)]
    assert executed and all(sides.get(mid) == 2 for mid in executed)
    assert sorted(executed) == sorted(mid for mid, k in sides.items() for _ in range(k))
    # the trade log has each fill side once, and is what the journal regenerates
    tl = (data / "tradelog" / f"{SERVE_DATE}.csv").read_bytes()
    assert len(tl.splitlines()) - 1 == len(executed)
    assert tl == regenerate_tradelog(data, dt.date.fromisoformat(SERVE_DATE))
    # the shutdown digest is the one flopex journal verify computes
    assert f"digest {state_digest(data)}" in out
    assert f"digest {rep.engine.state_digest()}" in out


async def _relogin_and_close(serve: Serve, seen: dict[str, list]) -> dict[str, list]:
    clients = await _relogin(serve.port, ("alice", "bob"))
    await _until_replayed(clients, {u: len(v) for u, v in seen.items()})
    out = {}
    for u, c in clients.items():
        assert c.messages[: len(seen[u])] == seen[u]
        # sequence numbers continue: a new order gets the next session sequence number
        tok = c.enter(H100Z26, "B" if u == "alice" else "S", 1, 2991, account=u.upper())
        await c.wait_for_token(tok)
    await asyncio.sleep(0.2)
    for u, c in clients.items():
        out[u] = list(c.messages)
        await c.close()
    return out
