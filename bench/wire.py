"""Wire benchmark: order-to-ack round trip and pipelined throughput through ``flopex serve``.

``python -m bench.wire [--quick] [--json]``

Round trips are measured twice with the same histogram: ``ack_rtt_*``/``echo_rtt_*`` with
an asyncio client that sleeps in the event loop between replies (like the client library),
``*_busypoll_*`` with a client that spins on a non-blocking socket (the usual way to drive
latency benchmarks; on a shared 2-core box the spinning client's tail shows scheduler
preemption, ~3 ms time slices, rather than the server).

``ack_rtt_closed_same_cpu_*`` / ``ack_rtt_closed_cross_cpu_*`` (and their
``echo_rtt_*``) run the asyncio loop strictly closed (the client awaits each cancel's
reply too, so one message is in flight at a time and every timed order meets an idle
server) with the echo and the gateway placed alike (:func:`placed`): both on the client's
CPU, then both on the other one. The targets are judged on the worse of the two
(``judged_ack_vs_echo_*``). ``ack_rtt_same_cpu_*`` / ``ack_rtt_cross_cpu_*`` are the same
placements with each cancel sent right after the ack and left in flight (how the loop
was judged until 2026-12-03's eighth session): reported, not judged, since on one CPU
the echo mostly answers that cancel before the next order's clock starts and the
gateway mostly after (docs/gateway.md, "The judged loop made strictly closed"). The
unplaced run keeps the plain keys and is reported, not judged: on this VM the scheduler
usually put the echo on the client's CPU and the gateway often not, ~25-30 µs of wake-up
each way that the ratio then charged to the gateway.

``ack_rtt_no_md_*`` repeats the asyncio closed loop against ``flopex serve
--no-market-data``: what the market data feed (published after each batch's replies)
costs the order-entry round trip.

Journal: ``flopex serve`` journals every batch before replying. The primary figures run
it with ``--journal-sync off`` (the journal is written — it survives kill -9 — but not
fsynced, so the figures show the gateway rather than this VM's disk);
``ack_rtt_fsync_*`` and ``orders_per_s_fsync`` repeat the closed loop and the pipelined
run with the default ``--journal-sync batch`` (one fsync per batch: group commit).
Every ``flopex serve`` start gets a fresh data directory.

1. Starts ``flopex serve`` (``python -m exchange.cli serve``, numba engine) as a separate
   process on 127.0.0.1, with generated bench logins.
2. Closed loop, one session: send Enter Order, wait for Accepted, record the round trip in
   a log-linear histogram (1% resolution); cancel it (not timed) so the book stays small.
3. Pipelined, several sessions in parallel: each keeps a window of orders in flight;
   resting limit orders that never cross, spread over accounts and products so pre-trade
   position limits are not hit. ``orders_per_s`` = Accepted received per second, from the
   first send to the last ack.
4. The floor, interleaved with step 2: a bare uvloop echo server (separate process)
   speaking the same SoupBinTCP framing answers each Unsequenced Data packet with a
   Sequenced Data packet carrying the same bytes. Both servers are up at once and the same
   client code alternates between them in blocks of 250 round trips (A B B A A B ...), so
   ``echo_rtt_*`` and ``ack_rtt_*`` see the same load on the box: the ratios compare the
   gateway with the floor under the same conditions, not with a run a minute earlier.

The client runs in this process (the other core of a 2-core box), the server in its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import uvloop

from exchange.protocol import messages as m
from exchange.protocol import soupbintcp as soup
from exchange.protocol.codes import RejectCode

TRADE_DATE = dt.date(2026, 11, 25)
CANCEL = True


# --------------------------------------------------------------------- histogram
class LogLinearHistogram:
    """Counts of positive integers (ns) in log-linear buckets: each power of two split
    into ``sub`` linear buckets, so any value is known within 1/``sub`` of itself."""

    def __init__(self, sub: int = 128) -> None:
        self.sub = sub
        self.counts: dict[int, int] = {}
        self.n = 0
        self.max = 0

    def _bucket(self, v: int) -> int:
        if v < self.sub:
            return v
        shift = v.bit_length() - self.sub.bit_length()
        return (shift + 1) * self.sub + ((v >> shift) - self.sub)

    def _upper(self, b: int) -> int:
        if b < self.sub:
            return b
        shift = b // self.sub - 1
        return ((b % self.sub + self.sub + 1) << shift) - 1

    def record(self, v: int) -> None:
        b = self._bucket(max(v, 0))
        self.counts[b] = self.counts.get(b, 0) + 1
        self.n += 1
        self.max = max(self.max, v)

    def percentile(self, q: float) -> int:
        """Smallest bucket upper bound covering ``q`` percent of the samples."""
        if not self.n:
            return 0
        rank = max(1, -(-self.n * q // 100))
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return min(self._upper(b), self.max)
        return self.max


# --------------------------------------------------------------------- echo server
class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.dec = soup.FrameDecoder()

    def data_received(self, data: bytes) -> None:
        out = []
        for ptype, payload in self.dec.feed(data):
            if ptype == 0x4C:  # L
                out.append(soup.login_accepted("ECHO", 1))
            elif ptype == 0x55:  # U
                out.append(soup.sequenced(payload))
        if out:
            self.t.write(b"".join(out))


async def _echo_main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Echo, "127.0.0.1", port)
    print(f"echo: listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


# --------------------------------------------------------------------- clients
class _Conn(asyncio.Protocol):
    """Lean bench client: counts Accepted, wakes a waiter per read.

    Frames are walked by offset in the received bytes (no per-packet copies), so the
    client spends little of the box's second core that the server could use."""

    def __init__(self) -> None:
        self.rest = b""
        self.acks = 0
        self.other = 0
        #: the first Rejected's reason code (``RejectCode``), for the bench's error line
        self.first_reject: int | None = None
        self.seqd = 0  # Sequenced Data packets of any kind
        self.waiter: asyncio.Future | None = None
        self.logged_in = asyncio.get_event_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        if self.rest:
            data = self.rest + data
        pos, n = 0, len(data)
        acks = other = seqd = 0
        while n - pos >= 3:
            end = pos + 2 + ((data[pos] << 8) | data[pos + 1])
            if end > n:
                break
            ptype = data[pos + 2]
            if ptype == 0x53:  # S
                seqd += 1
                kind = data[pos + 3] if end > pos + 3 else 0
                if kind == 0x41 or kind == 0x4F:  # Accepted (or an echoed Enter Order)
                    acks += 1
                elif kind == 0x4A:  # Rejected: type, timestamp, token, request, reason
                    other += 1
                    if self.first_reject is None and end >= pos + 19:
                        self.first_reject = (data[pos + 17] << 8) | data[pos + 18]
            elif ptype == 0x41 and not self.logged_in.done():
                self.logged_in.set_result(True)
            elif ptype == 0x4A and not self.logged_in.done():
                self.logged_in.set_exception(RuntimeError("bench login rejected"))
            pos = end
        self.rest = data[pos:] if pos < n else b""
        self.acks += acks
        self.seqd += seqd
        self.other += other
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)


def _reject_name(code: int) -> str:
    """``RejectCode`` name of a wire reason code (the number itself if unknown)."""
    try:
        return f"{RejectCode(code).name} ({code})"
    except ValueError:
        return str(code)


async def _connect(port: int, user: str, password: str) -> _Conn:
    loop = asyncio.get_running_loop()
    _, c = await loop.create_connection(_Conn, "127.0.0.1", port)
    c.t.write(soup.login_request(user, password, "", 0))
    await asyncio.wait_for(c.logged_in, 10)
    return c


def _enter(token: int, iid: int, price: int, account: str, side: int = 0x42) -> bytes:
    return soup.unsequenced(
        m.encode_inbound(m.EnterOrder(token, iid, side, 0x4C, 0x30, price, 1, account=account))
    )


def _cancel(token: int) -> bytes:
    return soup.unsequenced(m.encode_inbound(m.CancelOrder(token)))


class _Target:
    """One closed-loop target (a server port and a login) with its pre-encoded orders."""

    def __init__(self, port: int, user: str, total: int, iid: int, account: str) -> None:
        self.port, self.user = port, user
        self.orders = [_enter(i + 1, iid, 1000 + i % 500, account) for i in range(total)]
        self.cancels = [_cancel(i + 1) for i in range(total)]
        self.hist = LogLinearHistogram()


def pair(echo_port: int, port: int, user: str, total: int, iid: int, account: str) -> list[_Target]:
    """The echo floor and the server under test as two closed-loop targets with the same
    login, account and orders (in that order: the floor first)."""
    return [_Target(p, user, total, iid, account) for p in (echo_port, port)]


def placements() -> list[tuple[str, int]]:
    """Where :func:`placed` puts the servers for the placed loops, as (key tag, CPU): the
    client's CPU (``_same_cpu``; the client runs on the first CPU), then, with a second
    CPU, the other one (``_cross_cpu``)."""
    cpus = sorted(os.sched_getaffinity(0))
    out = [("_same_cpu", cpus[0])]
    if len(cpus) > 1:
        out.append(("_cross_cpu", cpus[-1]))
    return out


def _blocks(total: int, warm: int, block: int) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges: the warm-up first, then blocks of ``block``."""
    out = [(0, warm)] if warm else []
    out += [(a, min(total, a + block)) for a in range(warm, total, block)]
    return out


async def closed_loop(
    targets: list[_Target], n: int, block: int = 250, settle: bool = False
) -> list[LogLinearHistogram]:
    """n order -> ack round trips per target, all connections open at once, the targets
    taking turns in blocks of ``block`` round trips (A B B A A B ...: neither always goes
    first), so every target sees the same machine conditions. Each order is canceled
    afterwards (not timed): sent right after the ack, so it usually reaches the server just
    before the next order (the server is still awake, the order may wait behind it); with
    ``settle`` the client waits for the cancel's reply before the next order, so every
    order meets an idle server. The first 10% warm up (not recorded)."""
    conns = [await _connect(t.port, t.user, "bench") for t in targets]
    loop = asyncio.get_running_loop()
    total, warm = n + n // 10, n // 10
    for b, (a, z) in enumerate(_blocks(total, warm, block)):
        order = range(len(targets)) if b % 2 == 0 else range(len(targets) - 1, -1, -1)
        for j in order:
            c, t = conns[j], targets[j]
            orders, cancels, record = t.orders, t.cancels, t.hist.record
            for i in range(a, z):
                pkt = orders[i]
                want = c.acks + 1
                c.waiter = loop.create_future()
                t0 = time.perf_counter_ns()
                c.t.write(pkt)
                while c.acks < want:
                    await asyncio.wait_for(c.waiter, 120 if i == 0 else 10)  # first: JIT
                    c.waiter = loop.create_future()
                t1 = time.perf_counter_ns()
                if i >= warm:
                    record(t1 - t0)
                if CANCEL and settle:  # untimed; wait for its reply
                    want = c.seqd + 1
                    c.waiter = loop.create_future()
                    c.t.write(cancels[i])
                    while c.seqd < want:
                        await asyncio.wait_for(c.waiter, 10)
                        c.waiter = loop.create_future()
                elif CANCEL:
                    c.t.write(cancels[i])
    for c in conns:
        c.t.close()
    return [t.hist for t in targets]


def _spin_connect(port: int, user: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    dec = soup.FrameDecoder()
    sock.sendall(soup.login_request(user, "bench", "", 0))
    while not any(p == 0x41 for p, _ in dec.feed(sock.recv(65536))):
        pass
    sock.setblocking(False)
    return sock


def closed_loop_spin(targets: list[_Target], n: int, block: int = 250) -> list[LogLinearHistogram]:
    """Like :func:`closed_loop` but the client busy-polls non-blocking sockets instead of
    sleeping in the event loop (how latency benchmarks are usually driven: it keeps the
    client core awake, so the server's reply does not pay for waking an idle core)."""
    socks = [_spin_connect(t.port, t.user) for t in targets]
    decs = [soup.FrameDecoder() for _ in targets]
    total, warm = n + n // 10, n // 10
    for b, (a, z) in enumerate(_blocks(total, warm, block)):
        order = range(len(targets)) if b % 2 == 0 else range(len(targets) - 1, -1, -1)
        for j in order:
            sock, dec, t = socks[j], decs[j], targets[j]
            recv, send, record = sock.recv, sock.send, t.hist.record
            for i in range(a, z):
                pkt = t.orders[i]
                t0 = time.perf_counter_ns()
                send(pkt)
                done = False
                # the first order may wait for the engine's JIT compile (cold numba cache)
                deadline = t0 + (120 if i == 0 else 10) * 1_000_000_000
                while not done:
                    if time.perf_counter_ns() > deadline:
                        raise RuntimeError(f"wire bench: no acknowledgement within 10 s ({i})")
                    try:
                        data = recv(65536)
                    except BlockingIOError:
                        continue
                    for ptype, payload in dec.feed(data):
                        if ptype == 0x53 and payload[0] in (0x41, 0x4F, 0x4A):
                            done = True
                t1 = time.perf_counter_ns()
                if i >= warm:
                    record(t1 - t0)
                if CANCEL:
                    send(t.cancels[i])
    for sock in socks:
        sock.close()
    return [t.hist for t in targets]


async def pipelined(
    port: int, users: list[str], per_conn: int, iids: list[int], accounts: int, window: int
) -> tuple[float, int]:
    """(orders acknowledged per second, orders rejected) with every connection keeping
    ``window`` orders in flight."""
    conns = [await _connect(port, u, "bench") for u in users]
    loop = asyncio.get_running_loop()
    chunk = 200

    def batches(k: int, user: str) -> list[bytes]:
        out = []
        for start in range(0, per_conn, chunk):
            pkts = []
            for i in range(start, min(per_conn, start + chunk)):
                acct = f"{user.upper()}A{i % accounts}"
                iid = iids[(i // accounts) % len(iids)]
                pkts.append(_enter(i + 1, iid, 100 + (i * 7 + k) % 900, acct))
            out.append(b"".join(pkts))
        return out

    prepared = [batches(k, u) for k, u in enumerate(users)]

    async def run(c: _Conn, blobs: list[bytes]) -> None:
        sent = 0
        for blob in blobs:
            while sent - c.acks - c.other >= window:
                c.waiter = loop.create_future()
                await c.waiter
            c.t.write(blob)
            sent += chunk
        while c.acks + c.other < per_conn:
            c.waiter = loop.create_future()
            await c.waiter

    t0 = time.perf_counter()
    await asyncio.gather(*(run(c, b) for c, b in zip(conns, prepared, strict=True)))
    elapsed = time.perf_counter() - t0
    acks = sum(c.acks for c in conns)
    rejects = sum(c.other for c in conns)
    for c in conns:
        c.t.close()
    if rejects:
        code = next((c.first_reject for c in conns if c.first_reject is not None), None)
        why = _reject_name(code) if code is not None else "?"
        print(f"wire bench: {rejects} orders were rejected (first: {why})", file=sys.stderr)
    return acks / elapsed, rejects


# --------------------------------------------------------------------- processes
def _start(cmd: list[str], marker: str, timeout: float = 180.0) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=os.getcwd()
    )
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if marker in line:
            port = int(line.split(marker, 1)[1].split()[0].rsplit(":", 1)[1])
            return proc, port
    proc.kill()
    raise RuntimeError(f"{cmd[2:5]} did not start")


def _cpu_seconds(pid: int) -> float | None:
    """User+system CPU seconds of a process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _pin(pid: int, cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of process ``pid`` (Linux ``/proc``)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            os.sched_setaffinity(int(tid), cpus)


@contextlib.contextmanager
def placed(servers: list[int], server_cpu: int, client_cpu: int) -> Iterator[None]:
    """Run the block with every thread of the ``servers`` processes on ``server_cpu`` and
    this (client) process on ``client_cpu``; every affinity is restored afterwards.

    Where the kernel puts each process decides much of a loopback round trip on this
    VM: waking a process on the other, idle vCPU costs ~25-30 µs each way, on the
    client's own CPU nothing. Left to the scheduler, the echo (which does almost nothing)
    was usually woken on the client's CPU and the gateway often on the other, so their
    ratio measured the placement as much as the gateway (docs/gateway.md,
    "Placement")."""
    every = set(os.sched_getaffinity(0))
    try:
        for pid in servers:
            _pin(pid, {server_cpu})
        _pin(os.getpid(), {client_cpu})
        yield
    finally:
        for pid in servers:
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                _pin(pid, every)
        _pin(os.getpid(), every)


def _access_file(path: Path, users: list[str], accounts: int) -> None:
    from exchange.auth import hash_password

    lines = ["accounts:"]
    for u in users:
        for a in range(accounts):
            lines.append(f"  - name: {u.upper()}A{a}")
    lines.append("logins:")
    for u in users:
        accts = ", ".join(f"{u.upper()}A{a}" for a in range(accounts))
        lines += [
            f"  - username: {u}",
            f'    password_hash: "{hash_password("bench", n=16)}"',
            f"    accounts: [{accts}]",
            "    throttle_per_second: 100000000",
        ]
    path.write_text("\n".join(lines) + "\n")


def _percentiles(prefix: str, h: LogLinearHistogram) -> dict[str, float]:
    return {
        f"{prefix}_p50_us": h.percentile(50) / 1000,
        f"{prefix}_p99_us": h.percentile(99) / 1000,
        f"{prefix}_p999_us": h.percentile(99.9) / 1000,
    }


def bench_instruments() -> list[int]:
    """The instrument ids the wire benchmarks trade: the second listed month of each product
    on :data:`TRADE_DATE` (the front month is the spot month late in the month, where the
    tighter spot-month position limit would reject the bench's orders)."""
    from contracts.calendar import listed_contracts
    from contracts.registry import load_products

    months: dict[str, list[int]] = {}
    for c in listed_contracts(load_products(), TRADE_DATE):
        months.setdefault(c.product.code, []).append(c.instrument_id)
    return [ids[1] for ids in months.values()]


def run(quick: bool) -> dict:
    iids = bench_instruments()
    n_rtt = 3000 if quick else 20000
    block = 250  # round trips per turn when the echo floor and the gateway alternate
    conns = 4
    per_conn = 25_000 if quick else 100_000
    accounts = 16
    pipe_users = [f"p{k}" for k in range(conns)]
    users = ["rtt", "rtta", "rtts", "rttx", "rttsc", "rttxc", *pipe_users]
    with tempfile.TemporaryDirectory(prefix="flopex-wire-") as tmp:
        access = Path(tmp) / "access.yaml"
        _access_file(access, users, accounts)
        runs = iter(range(100))

        def serve_cmd(*extra: str, sync: str = "off") -> list[str]:
            data = Path(tmp) / f"data{next(runs)}"  # a fresh data directory per start
            return [
                sys.executable, "-m", "exchange.cli", "serve", "--host", "127.0.0.1",
                "--port", "0", "--data-dir", str(data), "--trade-date", TRADE_DATE.isoformat(),
                "--access", str(access), "--max-outbound", str(256 << 20),
                "--journal-sync", sync, "--snapshot-every", "0", *extra,
            ]  # fmt: skip

        echo_cmd = [sys.executable, "-m", "bench.wire", "--echo-server"]
        result: dict = {"quick": quick, "rtt_samples": n_rtt, "connections": conns}
        result["rtt_interleave_block"] = block
        total = n_rtt + n_rtt // 10
        # the floor and the gateway up at once; the closed loops alternate between them in
        # blocks, so both see the same load on the box (not two runs a minute apart)
        echo, echo_port = _start(echo_cmd, "listening on ")
        proc = None
        try:
            proc, port = _start(serve_cmd(), "listening on ")
            spin = pair(echo_port, port, "rtt", total, iids[0], "RTTA0")
            he, h = closed_loop_spin(spin, n_rtt, block)
            aio = pair(echo_port, port, "rtta", total, iids[0], "RTTAA0")
            hae, ha = uvloop.run(closed_loop(aio, n_rtt, block))
            # the asyncio closed loop again with both servers placed alike: on the
            # client's CPU, then (with a second CPU) both on the other one
            # each placement runs the loop twice: with the cancel left in flight, as
            # before, and strictly closed, the cancel's reply awaited: the judged one
            layouts = placements()
            client = layouts[0][1]
            for tag, server_cpu in layouts:
                u = "rtts" if tag == "_same_cpu" else "rttx"
                with placed([echo.pid, proc.pid], server_cpu, client):
                    loop = pair(echo_port, port, u, total, iids[0], f"{u.upper()}A0")
                    hpe, hp = uvloop.run(closed_loop(loop, n_rtt, block))
                    u += "c"
                    loop = pair(echo_port, port, u, total, iids[0], f"{u.upper()}A0")
                    hce, hc = uvloop.run(closed_loop(loop, n_rtt, block, settle=True))
                result.update(_percentiles(f"echo_rtt{tag}", hpe))
                result.update(_percentiles(f"ack_rtt{tag}", hp))
                result.update(_percentiles(f"echo_rtt_closed{tag}", hce))
                result.update(_percentiles(f"ack_rtt_closed{tag}", hc))
            _stop(echo)
            result.update(_percentiles("echo_rtt", hae))
            result.update(_percentiles("echo_rtt_busypoll", he))
            result.update(_percentiles("ack_rtt", ha))
            result.update(_percentiles("ack_rtt_busypoll", h))
            cpu0 = _cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            rate, rejected = uvloop.run(
                pipelined(port, pipe_users, per_conn, iids, accounts, window=4000)
            )
            wall = time.perf_counter() - t0
            cpu1 = _cpu_seconds(proc.pid)
            result["orders_per_s"] = round(rate)
            result["orders_rejected"] = rejected
            if cpu0 is not None and cpu1 is not None:
                # share of one core the gateway used during the pipelined run, and its
                # CPU cost per order (what the throughput would be with a core to itself)
                result["gateway_cpu_share"] = round((cpu1 - cpu0) / wall, 2)
                us = (cpu1 - cpu0) / (per_conn * conns) * 1e6
                result["gateway_cpu_us_per_order"] = round(us, 1)
            result["orders_total"] = per_conn * conns
        finally:
            _stop(echo)
            if proc is not None:
                _stop(proc)
        # attribution: the same closed loop with the market data feed switched off
        proc, port = _start(serve_cmd("--no-market-data"), "listening on ")
        try:
            t = _Target(port, "rtta", total, iids[0], "RTTAA0")
            (ha,) = uvloop.run(closed_loop([t], n_rtt, block))
            result.update(_percentiles("ack_rtt_no_md", ha))
        finally:
            _stop(proc)
        # durable default: one fsync per batch (group commit)
        proc, port = _start(serve_cmd(sync="batch"), "listening on ")
        try:
            t = _Target(port, "rtta", total, iids[0], "RTTAA0")
            (ha,) = uvloop.run(closed_loop([t], n_rtt // 3, block))
            result.update(_percentiles("ack_rtt_fsync", ha))
            rate, _ = uvloop.run(
                pipelined(port, pipe_users, per_conn // 2, iids, accounts, window=4000)
            )
            result["orders_per_s_fsync"] = round(rate)
        finally:
            _stop(proc)
    for tag in ("", "_busypoll", *OVERLAP_PLACED, *PLACED):
        if f"ack_rtt{tag}_p50_us" not in result:
            continue
        for q in ("p50", "p99"):
            ack, echo = result[f"ack_rtt{tag}_{q}_us"], result[f"echo_rtt{tag}_{q}_us"]
            result[f"ack_vs_echo{tag}_{q}"] = round(ack / echo, 2)
    result["targets"] = judge_targets(result)
    return result


#: The runs the latency targets are judged on: the strictly closed loop (every cancel's
#: reply awaited, so each timed order meets an idle server and carries only its own work)
#: with both servers placed alike, on the client's CPU and on the other one
PLACED = ("_closed_same_cpu", "_closed_cross_cpu")
#: The same placements with each cancel left in flight (sent right after the ack, not
#: awaited): reported, and judged only in results from before the closed runs existed.
#: On one CPU the scheduler lets the echo, which has used little CPU, preempt the client
#: and answer that cancel before the next order's clock starts (~1.9 blocking reads per
#: round), while the gateway mostly reads the cancel together with the timed order
#: (~0.8): the ratio then charges the gateway for two messages against the echo's one
#: (docs/gateway.md, "The judged loop made strictly closed").
OVERLAP_PLACED = ("_same_cpu", "_cross_cpu")
#: The floor is trusted when the echo's p50 with everything on one CPU is at most this
#: many times the busy-polling client's echo p50 (1.2-1.4x on this box when it is quiet;
#: the unplaced asyncio echo read 1.2-1.8x) ...
FLOOR_SANITY = 2.0
#: ... and, for the p99 ratio, its p99 at most this many times the busy-polling echo's
#: p99 (0.96-2.11x in the runs of 2026-12-03 whose tails were not host spikes; 6.6-10.3x
#: in those where the echo's own p99 read 758-893 µs).
FLOOR_P99_SANITY = 3.0


def judge_targets(result: dict) -> dict[str, bool | None]:
    """The issue's targets for one run.

    The latency ratios are judged on the strictly closed loops where both servers were
    placed alike (:data:`PLACED`, :func:`placed`): the worse of the two placements'
    ratios (``judged_*``). The run left to the scheduler is reported
    (``ack_vs_echo_p50``) but not judged: there the placement, not the gateway, decided
    much of the ratio; so are the placed runs with the cancel in flight
    (:data:`OVERLAP_PLACED`), which older results are judged on.

    They are judged only when the floor itself is sane: with the host loaded the echo's
    own round trip balloons (274 µs against its usual ~35 seen on this VM) and a ratio to
    it would flatter the gateway, so they are ``None`` (not judged) and ``floor_ok`` says
    why. The p99 ratio also needs the echo's own tail sane (``floor_p99_ok``): a run
    whose echo p99 is a host spike (860 µs against 83 busy-polling) would flatter it the
    same way. A result without placed runs (older runs) is judged on the asyncio run."""
    tags = [t for t in PLACED if f"ack_vs_echo{t}_p50" in result]
    tags = tags or [t for t in OVERLAP_PLACED if f"ack_vs_echo{t}_p50" in result] or [""]
    floor = tags[0]  # the lowest floor: everything on the client's CPU
    spin, spin99 = result["echo_rtt_busypoll_p50_us"], result.get("echo_rtt_busypoll_p99_us", 0.0)
    floor_ok = result[f"echo_rtt{floor}_p50_us"] <= FLOOR_SANITY * spin
    result["floor_ok"] = floor_ok
    floor_p99_ok = (
        floor_ok and result.get(f"echo_rtt{floor}_p99_us", 0.0) <= FLOOR_P99_SANITY * spin99
    )
    result["floor_p99_ok"] = floor_p99_ok
    p50 = max(result[f"ack_vs_echo{t}_p50"] for t in tags)
    p99 = max(result[f"ack_vs_echo{t}_p99"] for t in tags)
    result["judged_ack_vs_echo_p50"], result["judged_ack_vs_echo_p99"] = p50, p99
    return {
        "ack_p50_le_1.5x_echo": p50 <= 1.5 if floor_ok else None,
        "ack_p99_le_2x_echo": p99 <= 2.0 if floor_p99_ok else None,
        "orders_per_s_ge_100k": result["orders_per_s"] >= 100_000,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.wire", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run, under a minute")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.echo_server:
        uvloop.run(_echo_main(0))
        return 0
    res = run(args.quick)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>20}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
