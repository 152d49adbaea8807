# ruff: noqa: E741  (O is the order-field array, named as in the kernel)
"""A second floor for the wire benchmark: the order-entry round compiled, beside the echo.

``python -m bench.wire_compiled [--quick] [--json]``

``bench.wire`` compares ``flopex serve`` with a bare uvloop echo server (the issue's floor)
and finds the gateway 3-4x the echo at p50. This benchmark asks what a *compiled* round
would reach on the same machine, to decide whether the gap is the interpreter or the
machine: a uvloop server whose ``data_received`` makes one numba call that parses the
SoupBinTCP frames, decodes Enter Order and Cancel Order, runs them through the real
matching kernel (``exchange.engine.kernel.process``) and encodes the framed Accepted /
Canceled replies in the wire layout; Python then appends the commands to a journal file
(one ``write``, no fsync, as ``--journal-sync off``) and writes the replies.

It is a measuring instrument, not a gateway: one account, no logins beyond accepting any,
no throttle, token check, risk, session store, replay, journal note or market data —
everything ``flopex serve`` does besides is what the comparison prices. The same asyncio
closed loop as ``bench.wire`` (order -> Accepted timed, its cancel sent right after,
untimed) alternates between the echo and this server in blocks of 250 round trips.

JSON keys: ``echo_rtt_p50_us``, ``echo_rtt_p99_us``, ``compiled_rtt_p50_us``,
``compiled_rtt_p99_us``, ``compiled_vs_echo_p50``, ``compiled_vs_echo_p99``; and the same
with ``_closed_same_cpu`` / ``_closed_cross_cpu`` after ``rtt`` or ``echo``: the loop
``bench.wire`` judges (strictly closed, each cancel's reply awaited, both servers placed
alike on the client's CPU, then on the other one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time

import numpy as np
import uvloop
from numba import njit

from bench.wire import (
    _start,
    _stop,
    _Target,
    bench_instruments,
    closed_loop,
    pair,
    placed,
    placements,
)
from exchange.core.kernel import _i64, _put, _u32
from exchange.engine import kernel as K
from exchange.engine.abi import COMMAND_DTYPE, EVENT_DTYPE, event_words
from exchange.engine.book import MatchingEngine
from exchange.engine.config import InstrumentConfig
from exchange.protocol import messages as m
from exchange.protocol import soupbintcp as soup

#: Enter Order field offsets in the message (type byte at 0), from the protocol layout
_EO = {name: off for name, off, _, _ in m.ENTER_ORDER.offsets()}
EO_TOKEN, EO_INST, EO_SIDE = _EO["token"], _EO["instrument_id"], _EO["side"]
EO_PRICE, EO_QTY = _EO["price"], _EO["quantity"]
EO_SIZE = m.ENTER_ORDER.size
ACC_LEN = m.ACCEPTED.size + 1  # framed length field: 'S' + message
CXL_LEN = m.CANCELED.size + 1


# Not cached: it calls the kernel, and numba's cache would not notice an edit of kernel.py
# (it checks only this file) and keep running the old kernel. Compiling it takes ~1 s; the
# kernel itself comes from its own cache.
@njit(cache=False)
def compiled_round(buf, cmds, E, O, LV, LVT, BM, INST, S, out, tok_oid, tok_at, ts0):
    """Parse frames in ``buf``, match them, encode replies into ``out``.

    Returns ``(commands, reply bytes)``; ``cmds[:commands]`` is what a journal appends.
    O(bytes + events)."""
    n = buf.shape[0]
    pos = 0
    nc = 0
    while pos + 2 <= n:
        ln = (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])
        if pos + 2 + ln > n:
            break
        p = pos + 3
        if buf[pos + 2] == 0x55 and nc < cmds.shape[0]:  # Unsequenced Data
            c = cmds[nc]
            mt = buf[p]
            if mt == 0x4F and ln - 1 == EO_SIZE:  # Enter Order
                tok = _u32(buf, p + EO_TOKEN)
                c.timestamp = ts0 + nc
                c.user_ref = tok
                c.client_token = tok
                c.order_id = 0
                c.price = _i64(buf, p + EO_PRICE)
                c.qty = _u32(buf, p + EO_QTY)
                c.instrument_id = _u32(buf, p + EO_INST)
                c.account = 1
                c.cmd_type = 1
                c.side = 1 if buf[p + EO_SIDE] == 0x42 else 2
                c.order_type = 1
                c.tif = 2
                tok_at[tok] = p  # where its bytes are, for the Accepted echo
                nc += 1
            elif mt == 0x58:  # Cancel Order
                tok = _u32(buf, p + 1)
                c.timestamp = ts0 + nc
                c.user_ref = tok
                c.client_token = tok
                c.order_id = tok_oid[tok]
                c.account = 1
                c.cmd_type = 2
                nc += 1
        pos += 2 + ln
    _used, ne, _more = K.process(cmds[:nc], E, O, LV, LVT, BM, INST, S)
    w = 0
    for k in range(ne):
        et = E[k, 9] & 0xFF
        tok = E[k, 2]
        if et == 1:  # ACCEPTED: len, 'S', 'A', timestamp, the order's fields, order id
            tok_oid[tok] = E[k, 3]
            w = _put(out, w, ACC_LEN, 2)
            out[w] = 0x53
            out[w + 1] = 0x41
            w = _put(out, w + 2, E[k, 0], 8)
            src = tok_at[tok] + 1
            for j in range(EO_SIZE - 1):
                out[w + j] = buf[src + j]
            w = _put(out, w + EO_SIZE - 1, E[k, 3], 8)
        elif et == 4:  # CANCELLED: len, 'S', 'C', timestamp, token, instrument, side, qty, reason
            w = _put(out, w, CXL_LEN, 2)
            out[w] = 0x53
            out[w + 1] = 0x43
            w = _put(out, w + 2, E[k, 0], 8)
            w = _put(out, w, tok, 4)
            w = _put(out, w, E[k, 8] & 0xFFFFFFFF, 4)
            out[w] = 0x42 if ((E[k, 9] >> 8) & 0xFF) == 1 else 0x53
            w = _put(out, w + 1, E[k, 5], 4)
            out[w] = 0x55  # 'U': user cancel
            w += 1
    return nc, w


class _CompiledRound(asyncio.Protocol):
    """One connection: accepts any login, then one compiled call per read."""

    def __init__(self, state: dict) -> None:
        self.s = state
        self.logged_in = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        s = self.s
        if not self.logged_in:
            self.logged_in = True
            self.t.write(soup.login_accepted("COMPILED", 1))
            return
        nc, w = compiled_round(
            np.frombuffer(data, np.uint8), s["cmds"], s["words"], *s["arrays"],
            s["out"], s["tok_oid"], s["tok_at"], time.time_ns(),
        )  # fmt: skip
        if nc:
            os.write(s["journal"], s["cmd_bytes"][: nc * COMMAND_DTYPE.itemsize])
        if w:
            self.t.write(s["out"][:w].tobytes())


async def _serve(instrument_id: int, journal_path: str) -> None:
    eng = MatchingEngine(
        [InstrumentConfig(instrument_id=instrument_id, min_price_ticks=1, max_price_ticks=100_000)],
        max_orders=1 << 20,
    )
    cmds = np.zeros(4096, COMMAND_DTYPE)
    state = {
        "cmds": cmds,
        "cmd_bytes": cmds.view(np.uint8),
        "words": event_words(np.zeros(1 << 16, EVENT_DTYPE)),
        "arrays": eng.state.arrays(),
        "out": np.zeros(1 << 22, np.uint8),
        "tok_oid": np.zeros(1 << 20, np.int64),
        "tok_at": np.zeros(1 << 20, np.int64),
        "journal": os.open(journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
    }
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _CompiledRound(state), "127.0.0.1", 0)
    print(f"compiled: listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


def run(quick: bool) -> dict:
    iid = bench_instruments()[0]  # as bench.wire's closed loop
    n = 3000 if quick else 20000
    total = n + n // 10
    hists: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="flopex-wire-compiled-") as tmp:
        echo, echo_port = _start(
            [sys.executable, "-m", "bench.wire", "--echo-server"], "listening on "
        )
        comp = None
        try:
            comp, port = _start(
                [sys.executable, "-m", "bench.wire_compiled", "--serve", str(iid), tmp],
                "listening on ",
                timeout=300,  # a cold numba cache compiles the kernel first
            )
            targets = [
                _Target(echo_port, "e", total, iid, "A"),
                _Target(port, "c", total, iid, "A"),
            ]
            he, hc = uvloop.run(closed_loop(targets, n))
            # the loop bench.wire judges: strictly closed (each cancel's reply awaited),
            # both servers on the client's CPU, then both on the other one
            layouts = placements()
            for tag, cpu in layouts:
                with placed([echo.pid, comp.pid], cpu, layouts[0][1]):
                    loop = pair(echo_port, port, "c" + tag[1], total, iid, "A")
                    hists["_closed" + tag] = uvloop.run(closed_loop(loop, n, settle=True))
        finally:
            _stop(echo)
            if comp is not None:
                _stop(comp)
    res: dict = {"quick": quick, "rtt_samples": n}
    for tag, (e, c) in {"": (he, hc), **hists}.items():
        for name, h in (("echo", e), ("compiled", c)):
            res[f"{name}_rtt{tag}_p50_us"] = h.percentile(50) / 1000
            res[f"{name}_rtt{tag}_p99_us"] = h.percentile(99) / 1000
        for q in ("p50", "p99"):
            res[f"compiled_vs_echo{tag}_{q}"] = round(
                res[f"compiled_rtt{tag}_{q}_us"] / res[f"echo_rtt{tag}_{q}_us"], 2
            )
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.wire_compiled", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--quick", action="store_true", help="small run, under a minute")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--serve", nargs=2, metavar=("IID", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        uvloop.run(_serve(int(args.serve[0]), os.path.join(args.serve[1], "journal.bin")))
        return 0
    res = run(args.quick)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>22}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
