"""Durability benchmark: journal append, replay, snapshots, and the ack round trip.

One run measures, on this machine:

* ``append_cmds_per_s`` — journal append + commit in batches of 256 commands, sync policy
  ``off`` (write only); ``append_cmds_per_s_fsync`` — the same with one fsync per batch;
  baseline ``raw_write_cmds_per_s`` — plain ``os.write`` of the same bytes (no framing,
  no CRC).
* ``replay_cmds_per_s`` — reading the journal back (CRC check, decode to command arrays)
  and feeding the numba engine, i.e. recovery speed; ``read_cmds_per_s`` — reading and
  checking alone.
* ``snapshot_1m_s`` / ``snapshot_1m_bytes`` / ``snapshot_load_1m_s`` — write (fsync'd,
  atomic) and load+verify a snapshot of an engine holding 1,000,000 resting orders.
* ``ack_rtt_p50_us_fsync`` / ``ack_rtt_p50_us_nojournal`` — an order's round trip over
  TCP through an in-process gateway (numba engine) journaling with fsync per batch,
  versus the same gateway without a journal (the baseline), one order in flight;
  ``ack_rtt_p50_us_journal_nosync`` — journaling (commands + gateway note, one write per
  batch) with the ``off`` policy: the cost of the journal without the disk's fsync.

SYNTHETIC data: limit orders that rest without crossing (for the snapshot) and a random
mix that trades (for the journal). ``--quick`` uses 500,000 journal commands and 300
round trips (under a minute); the full run 5,000,000 and 2,000.

Usage: ``python -m bench.journal [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from exchange.engine.abi import COMMAND_DTYPE, CmdType, OrderType, Side, TimeInForce
from exchange.engine.config import InstrumentConfig
from exchange.journal import Journal, SyncPolicy
from exchange.snapshot import ENGINE_PREFIX, load_snapshot, write_snapshot

BATCH = 256
INST = 12612
H100Z26 = 12612  # listed on TRADE_DATE
TRADE_DATE = dt.date(2026, 11, 25)


def _commands(n: int, seed: int = 1) -> np.ndarray:
    """A trading mix: limit orders around 10,000 ticks on one instrument (crosses often)."""
    rng = np.random.default_rng(seed)
    c = np.zeros(n, dtype=COMMAND_DTYPE)
    c["timestamp"] = np.arange(1, n + 1, dtype=np.int64)
    c["cmd_type"] = CmdType.NEW
    c["instrument_id"] = INST
    c["account"] = rng.integers(1, 50, n)
    c["side"] = rng.integers(1, 3, n)
    c["order_type"] = OrderType.LIMIT
    c["tif"] = TimeInForce.GTC
    c["price"] = 10_000 + rng.integers(-20, 21, n)
    c["qty"] = rng.integers(1, 10, n)
    c["client_token"] = np.arange(1, n + 1)
    return c


def _config() -> InstrumentConfig:
    return InstrumentConfig(
        instrument_id=INST, min_price_ticks=1, max_price_ticks=20_000, max_qty=1_000_000
    )


def bench_append(tmp: Path, cmds: np.ndarray, policy: str) -> float:
    d = tmp / f"j-{policy}"
    j = Journal(d, SyncPolicy.parse(policy))
    t0 = time.perf_counter()
    for i in range(0, len(cmds), BATCH):
        j.append(cmds[i : i + BATCH])
        j.commit()
    j.close()
    return len(cmds) / (time.perf_counter() - t0)


def bench_raw_write(tmp: Path, cmds: np.ndarray) -> float:
    fd = os.open(tmp / "raw.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    t0 = time.perf_counter()
    for i in range(0, len(cmds), BATCH):
        os.write(fd, cmds[i : i + BATCH].tobytes())
    os.close(fd)
    return len(cmds) / (time.perf_counter() - t0)


def bench_read(tmp: Path, n: int) -> float:
    j = Journal(tmp / "j-off", read_only=True)
    t0 = time.perf_counter()
    total = sum(len(c) for _, c in j.batches(1))
    assert total == n
    return n / (time.perf_counter() - t0)


def bench_replay(tmp: Path, n: int) -> float:
    from exchange.engine.book import MatchingEngine

    eng = MatchingEngine([_config()], max_orders=1 << 21)
    eng.process(_commands(10, seed=9))  # compile outside the timing
    eng = MatchingEngine([_config()], max_orders=1 << 21)
    j = Journal(tmp / "j-off", read_only=True)
    t0 = time.perf_counter()
    done = 0
    for _, cmds in j.batches(1):
        eng.process(cmds)
        done += len(cmds)
    assert done == n
    return n / (time.perf_counter() - t0)


def bench_snapshot(tmp: Path, orders: int) -> dict[str, float]:
    from exchange.engine.book import MatchingEngine

    eng = MatchingEngine([_config()], max_orders=orders + 1024)
    c = np.zeros(orders, dtype=COMMAND_DTYPE)
    c["cmd_type"] = CmdType.NEW
    c["instrument_id"] = INST
    c["account"] = 1
    half = orders // 2
    c["side"][:half] = Side.BUY
    c["side"][half:] = Side.SELL
    c["price"][:half] = 1 + np.arange(half) % 9_000  # bids 1..9000
    c["price"][half:] = 11_000 + np.arange(orders - half) % 9_000  # asks 11000..19999
    c["order_type"] = OrderType.LIMIT
    c["tif"] = TimeInForce.GTC
    c["qty"] = 1
    for i in range(0, orders, 65_536):
        eng.process(c[i : i + 65_536])
    assert eng.live_orders() == orders
    arrays = {ENGINE_PREFIX + k: v for k, v in eng.to_arrays().items()}
    t0 = time.perf_counter()
    path = write_snapshot(tmp / "snaps", orders, arrays, {"orders": orders})
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    snap = load_snapshot(path)
    t_load = time.perf_counter() - t0
    restored = MatchingEngine.from_arrays(
        [_config()],
        {k.removeprefix(ENGINE_PREFIX): v for k, v in snap.arrays.items()},
    )
    assert restored.state_digest() == eng.state_digest()
    return {
        "snapshot_1m_s": round(t_write, 4),
        "snapshot_1m_bytes": path.stat().st_size,
        "snapshot_load_1m_s": round(t_load, 4),
    }


def bench_ack_rtt(tmp: Path, n: int, journaled: bool, sync: str = "batch") -> float:
    """p50 microseconds of enter -> Accepted, one order in flight, over loopback TCP.

    ``journaled``: the gateway commits each batch (commands + its gateway note) with the
    ``sync`` policy before replying, exactly as ``flopex serve`` does."""
    import uvloop

    from exchange.auth import hash_password, parse_access
    from exchange.client import OrderClient
    from exchange.connection import serve_gateway
    from exchange.datadir import DataDir
    from exchange.journal import GatewayJournal
    from exchange.venue import build_gateway

    access = parse_access(
        {
            "accounts": [{"name": "BENCH"}],
            "logins": [
                {
                    "username": "bench",
                    "password_hash": hash_password("pw", n=16),
                    "accounts": ["BENCH"],
                }
            ],
        }
    )
    dd = DataDir.open(tmp / (f"rtt-j-{sync}" if journaled else "rtt-n"), create=True)

    async def main() -> list[float]:
        gw = build_gateway(access, TRADE_DATE, data_dir=dd.root, engine="numba")
        gj = GatewayJournal(gw, dd, SyncPolicy.parse(sync)) if journaled else None
        server, hb, conns = await serve_gateway(gw, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        c = OrderClient("127.0.0.1", port, "bench", "pw")
        await c.connect()
        out = []
        try:
            for i in range(n + 20):
                t0 = time.perf_counter()
                tok = c.enter(H100Z26, "B" if i % 2 else "S", 1, 2000 + (i % 2) * 2000,
                              account="BENCH")  # fmt: skip
                await c.wait_for_token(tok)
                if i >= 20:
                    out.append((time.perf_counter() - t0) * 1e6)
        finally:
            await c.close()
            hb.cancel()
            server.close()
            for conn in list(conns):
                if conn.transport is not None:
                    conn.transport.abort()
            if gj is not None:
                gj.close(snapshot=False)
        return out

    return statistics.median(uvloop.run(main()))


def run(quick: bool) -> dict[str, object]:
    n = 500_000 if quick else 5_000_000
    rtts = 300 if quick else 2_000
    cmds = _commands(n)
    out: dict[str, object] = {"commands": n, "batch": BATCH, "quick": quick}
    with tempfile.TemporaryDirectory(dir=os.environ.get("FLOPEX_BENCH_DIR")) as t:
        tmp = Path(t)
        out["raw_write_cmds_per_s"] = round(bench_raw_write(tmp, cmds))
        out["append_cmds_per_s"] = round(bench_append(tmp, cmds, "off"))
        n_fsync = min(n, 100_000 if quick else 500_000)
        out["append_cmds_per_s_fsync"] = round(bench_append(tmp, cmds[:n_fsync], "batch"))
        out["read_cmds_per_s"] = round(bench_read(tmp, n))
        out["replay_cmds_per_s"] = round(bench_replay(tmp, n))
        out.update(bench_snapshot(tmp, 1_000_000))
        out["ack_rtt_p50_us_nojournal"] = round(bench_ack_rtt(tmp, rtts, False), 1)
        out["ack_rtt_p50_us_journal_nosync"] = round(bench_ack_rtt(tmp, rtts, True, "off"), 1)
        out["ack_rtt_p50_us_fsync"] = round(bench_ack_rtt(tmp, rtts, True), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.journal", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    res = run(args.quick)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>28}: {v:,}" if isinstance(v, int | float) else f"{k:>28}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
