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
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uvloop

from exchange.cli_journal import EngineReplay
from exchange.client import OrderClient
from exchange.datadir import DataDir
from exchange.engine.abi import EventType
from exchange.journal import Journal
from exchange.protocol import messages as m
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


@pytest.mark.xfail(
    reason="flopex serve does not journal or recover yet: the gateway needs the hooks listed "
    "in docs/durability.md (GatewayJournal at start-up, recover() before serving, session "
    "stores rebuilt from replay)",
    strict=False,
)
def test_flopex_serve_relogin_replays_acknowledged_messages_after_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def scenario(port: int, proc: subprocess.Popen) -> list:
        c = OrderClient("127.0.0.1", port, "alice", "alice-pw")
        await c.connect()
        tok = c.enter(H100Z26, "B", 1, 2990, account="ALICE")
        await c.wait_for_token(tok)
        os.kill(proc.pid, signal.SIGKILL)
        return list(c.messages)

    proc = subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", "serve", "--port", "0", "--data-dir", str(data)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.rsplit(":", 1)[-1].split()[0])
        before = uvloop.run(scenario(port, proc))
    finally:
        proc.kill()
        proc.wait()
    assert (data / "journal").is_dir() and any((data / "journal").iterdir()), "nothing journaled"
    assert before
