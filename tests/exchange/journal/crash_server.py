"""A journaled gateway server for the crash test (run as a subprocess, killed with SIGKILL).

``python -m tests.exchange.journal.crash_server DATA_DIR SNAPSHOT_EVERY`` recovers the
engine from DATA_DIR (newest snapshot + journal tail), serves on a free port, prints the
port on stdout and runs until killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import uvloop

from exchange.cli_journal import EngineReplay
from exchange.connection import serve_gateway
from exchange.datadir import DataDir
from exchange.journal import GatewayJournal, Journal, SyncPolicy
from exchange.snapshot import recover
from exchange.venue import build_gateway
from tests.exchange.gateway.conftest import ACCESS, TRADE_DATE


async def main(data_dir: Path, snapshot_every: int) -> None:
    dd = DataDir.open(data_dir, create=True)
    lock = dd.lock()
    j = Journal(dd.journal_dir, SyncPolicy("batch"))  # repairs a torn tail
    rep = EngineReplay()
    recover(j, dd.snapshot_dir, on_snapshot=rep.on_snapshot, on_note=rep.on_note,
            on_batch=rep.on_batch)  # fmt: skip
    j.close()
    engine = rep.engine if rep.engine is not None else "numba"
    gw = build_gateway(ACCESS, TRADE_DATE, data_dir=dd.root, engine=engine)
    if rep.engine is not None:
        gw.sequencer.events = rep.events
    GatewayJournal(gw, dd, SyncPolicy("batch"), snapshot_every=snapshot_every)
    server, _hb, _conns = await serve_gateway(gw, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        lock.close()


if __name__ == "__main__":
    uvloop.run(main(Path(sys.argv[1]), int(sys.argv[2])))
