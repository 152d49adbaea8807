"""``flopex demo``: a simulated trading month, end to end, on localhost.

What it runs, every step through the real interfaces:

1. the listing calendar and a contract spec table;
2. SYNTHETIC index quotes from 28 providers for the month, and each day's index fixings;
3. for each business day: ``flopex serve`` as a separate process (journaled), five firms
   trading over the SoupBinTCP order-entry protocol, the day closed by an admin message
   (trade log + close record written), then the clearing batch: settlement prices by the
   waterfall, variation margin booked in the SQLite ledger, settlement prices published
   back to the exchange as the next day's reference prices;
4. once in the month the gateway is killed with SIGKILL mid-session and restarted on the
   same data directory: the sessions log in again and get their missed messages replayed,
   and ``flopex journal verify`` rebuilds the state digest the live server reported;
5. on the last trading day the front month expires: final settlement at the average of the
   month's fixings, positions closed;
6. account statements, and the ledger's proof that all entries sum to zero.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from contracts.calendar import BusinessCalendar, listed_contracts
from contracts.cli import spec_table
from contracts.errors import FlopexError
from contracts.registry import load_products
from contracts.units import (
    INDEX_SCALE,
    div_round,
    format_thousands,
    scaled_to_index,
    scaled_to_ticks,
)

DEMO_MONTH = "2026-11"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``flopex demo``."""
    p = subparsers.add_parser("demo", help="a simulated trading month end to end on localhost")
    p.add_argument(
        "--month", default=DEMO_MONTH, help=f"YYYY-MM to simulate (default {DEMO_MONTH})"
    )
    p.add_argument("--days", type=int, default=0, help="stop after N business days (0 = month)")
    p.add_argument("--data-dir", default="demo-data", help="where the demo writes (replaced)")
    p.add_argument("--seed", type=int, default=2026, help="seed of the synthetic order flow")
    p.set_defaults(func=run_demo)


def _banner(title: str) -> None:
    print()
    print("=" * 78)
    print(f"  {title}")
    print("=" * 78, flush=True)


# ----------------------------------------------------------------------------- server
class ServerProcess:
    """``flopex serve`` in its own process; reads its start-up and shutdown lines."""

    def __init__(self, data_dir: Path, access: Path, day: dt.date) -> None:
        self.data_dir, self.access, self.day = data_dir, access, day
        self.proc: subprocess.Popen[str] | None = None
        self.port = _free_port()
        self.lines: list[str] = []

    def start(self, timeout: float = 300.0) -> str:
        """Start serve; returns its start-up output (including the recovery line)."""
        self.lines = []
        cmd = [
            sys.executable, "-m", "exchange.cli", "serve", "--port", str(self.port),
            "--md-port", str(self.port + 1),
            "--data-dir", str(self.data_dir), "--trade-date", self.day.isoformat(),
            "--access", str(self.access), "--exit-after-close",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise FlopexError(f"flopex serve exited during start-up: {''.join(self.lines)}")
            self.lines.append(line)
            if "listening on" in line:
                return "".join(self.lines)
        raise FlopexError(f"flopex serve did not start within {timeout:g} s")

    def wait(self, timeout: float = 30.0) -> str:
        """Wait for the process to exit; returns the rest of its output."""
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait(timeout)
        self.lines.append(out)
        return out

    def terminate(self) -> None:
        """Stop the process if it still runs (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _free_port() -> int:
    """A port ``p`` on 127.0.0.1 with ``p`` and ``p + 1`` (the feed) free now, chosen below
    the kernel's ephemeral range so no outgoing connection of the demo's own clients can
    take either while the server restarts (kept across restarts)."""
    import socket

    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        low = int(text.split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, max(20002, low - 2))
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise FlopexError("demo: no free pair of TCP ports on 127.0.0.1 below the ephemeral range")


def _digest(text: str) -> str | None:
    m = re.findall(r"digest:? ([0-9a-f]{16,})", text)
    return m[-1] if m else None


# ----------------------------------------------------------------------------- setup
def _write_access(path: Path) -> None:
    """An access file for the simulated firms (scrypt hashes only, never passwords)."""
    from clearing.demo_traders import ADMIN, PARTICIPANTS, password_for
    from exchange.auth import hash_password

    lines = ["accounts:"]
    for account, _ in PARTICIPANTS.values():
        lines.append(f"  - {{name: {account}}}")
    lines.append("logins:")
    for user, (account, _) in PARTICIPANTS.items():
        h = hash_password(password_for(user), n=2**12)
        lines.append(f"  - {{username: {user}, password_hash: '{h}', accounts: [{account}]}}")
    h = hash_password(password_for(ADMIN), n=2**12)
    lines.append(f"  - {{username: {ADMIN}, password_hash: '{h}', accounts: [], admin: true}}")
    path.write_text("\n".join(lines) + "\n")


def _fixings(data_dir: Path, days: list[dt.date], products) -> dict[str, dict[dt.date, int]]:
    """Index fixings (INDEX_SCALE ints) per index id per day, computed from the quote files."""
    from clearing.batch import load_quotes_for
    from clearing.index import fix_index
    from clearing.methodology import default_methods, method_for

    methods = default_methods()
    out: dict[str, dict[dt.date, int]] = {}
    prev: dict[str, object] = {}
    for day in days:
        quotes = load_quotes_for(data_dir, day)
        for spec in products.values():
            method = method_for(spec.underlying_index, methods)
            fx = fix_index(method, quotes, day, prev.get(spec.underlying_index))  # type: ignore[arg-type]
            prev[spec.underlying_index] = fx
            out.setdefault(spec.underlying_index, {})[day] = fx.value
    return out


# ----------------------------------------------------------------------------- trading
async def _show_feed_book(md_port: int, what: tuple[int, str, object]) -> None:
    """Subscribe to the market data feed and print one instrument's book from its snapshot."""
    from exchange.bookbuilder import FeedClient
    from exchange.engine.abi import Side

    iid, symbol, spec = what
    feed = FeedClient("127.0.0.1", md_port)
    # Generous: on a fresh clone the gateway compiles the engine's snapshot path first.
    await feed.sync(1, timeout=240)
    book = feed.builder.book(iid)
    bids, asks = book.levels(Side.BUY)[:4], book.levels(Side.SELL)[:4]
    print(f"    market data feed (port {md_port}), {symbol} aggregated book:")
    print(
        f"      {'orders':>6} {'bid qty':>8} {'bid':>8} | {'ask':<8} {'ask qty':<8} {'orders':<6}"
    )
    for k in range(max(len(bids), len(asks))):
        b = bids[k] if k < len(bids) else None
        a = asks[k] if k < len(asks) else None
        left = f"{b[2]:>6} {b[1]:>8} {spec.format_price(b[0]):>8}" if b else " " * 24
        right = f"{spec.format_price(a[0]):<8} {a[1]:<8} {a[2]:<6}" if a else ""
        print(f"      {left} | {right}")
    await feed.close()


async def _trade_day(
    server: ServerProcess,
    fair: dict[int, int],
    by_product: dict[str, list[int]],
    rng: random.Random,
    crash: bool,
    show_book: tuple[int, str, object] | None = None,
) -> tuple[object, str | None, bool]:
    """One day's order flow; with ``crash`` the gateway is SIGKILLed and restarted midway."""
    from clearing.demo_traders import (
        Participants,
        closing_trades,
        hedge_and_speculate,
        quote_book,
    )
    from exchange.protocol import messages as m

    p = Participants("127.0.0.1", server.port)
    await p.connect()
    marks = p.marks()
    quote_book(p, fair, rng)
    await p.settle_down()
    hedge_and_speculate(p, fair, rng, by_product)
    await p.settle_down()
    if show_book:
        await _show_feed_book(server.port + 1, show_book)
    live_digest = None
    replay_ok = True
    if crash:
        before = {u: list(c.messages) for u, c in p.clients.items()}
        print(f"    ! SIGKILL to flopex serve (pid {server.proc.pid}) mid-session", flush=True)
        server.kill9()
        await asyncio.sleep(0.2)
        out = await asyncio.to_thread(server.start)
        line = next((s.strip() for s in out.splitlines() if "recover" in s), "restarted")
        print(f"    ! restarted on the same data directory: {line}", flush=True)
        # Every session logs in again asking for its whole history (sequence 1): the
        # gateway must replay exactly what it had acknowledged before the kill.
        for c in p.clients.values():
            c.messages, c.next_seq = [], 1
        await p.reconnect()
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline and any(
            len(c.messages) < len(before[u]) for u, c in p.clients.items()
        ):
            await asyncio.sleep(0.05)
        held = sum(len(v) for v in before.values())
        same = all(p.clients[u].messages[: len(v)] == v for u, v in before.items())
        replay_ok = same
        print(
            f"    ! {len(p.clients)} sessions logged in again from sequence 1: {held} messages "
            f"acknowledged before the kill replayed {'identically' if same else 'DIFFERENTLY'}",
            flush=True,
        )
    closing_trades(p, fair, rng)
    await p.settle_down()
    admin = p.clients["admin"]
    admin.send(m.CloseDay(admin.new_token()))
    flow = p.flow(marks)
    await asyncio.sleep(0.1)
    await p.close()
    out = await asyncio.to_thread(server.wait)
    live_digest = _digest(out)
    return flow, live_digest, replay_ok


# ----------------------------------------------------------------------------- main
def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 when every step checked out."""
    from clearing.batch import ClearingConfig, settle_day
    from clearing.ledger import Ledger
    from clearing.synthetic import write_quote_files

    try:
        year, month = (int(x) for x in args.month.split("-"))
        first = dt.date(year, month, 1)
    except ValueError:
        raise FlopexError(f"--month: {args.month!r} is not YYYY-MM") from None
    products = load_products()
    cal = BusinessCalendar.default()
    days = cal.business_days(first, (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
                             - dt.timedelta(days=1))  # fmt: skip
    if args.days:
        days = days[: args.days]
    data_dir = Path(args.data_dir).resolve()
    if data_dir.exists():
        if not (data_dir / ".flopex-demo").exists():
            raise FlopexError(f"--data-dir {data_dir} exists and is not a demo directory")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / ".flopex-demo").write_text("created by flopex demo; safe to delete\n")
    rng = random.Random(args.seed)

    _banner(f"1. Contracts listed on {days[0]}")
    listed = listed_contracts(products, days[0], cal)
    for c in listed:
        if (c.year, c.month) in ((year, month), (year + month // 12, month % 12 + 1)):
            print(
                f"  {c.symbol:<8} id {c.instrument_id:>6}  trades {c.first_trading_day} .. "
                f"{c.last_trading_day}  final settlement {c.final_settlement_date}"
            )
    print(f"  ... {len(listed)} contracts in all ({len(products)} products x 12 months)")
    print()
    print(spec_table(products["H100"], days[0], cal))

    _banner("2. Spot index: SYNTHETIC quotes from 28 GPU providers and 5 model APIs")
    write_quote_files(data_dir, first, days[-1])
    fixings = _fixings(data_dir, days, products)
    for index_id, series in fixings.items():
        vals = list(series.values())
        print(
            f"  {index_id:<10} {days[0]}: {vals[0] / 10**INDEX_SCALE:.4f}   "
            f"{days[-1]}: {vals[-1] / 10**INDEX_SCALE:.4f}   "
            f"month low/high {min(vals) / 10**INDEX_SCALE:.4f} / {max(vals) / 10**INDEX_SCALE:.4f}"
        )

    access = data_dir / "access.yaml"
    _write_access(access)
    cfg = ClearingConfig(data_dir)
    crash_day = days[min(2, len(days) - 1)]

    _banner(f"3. Trading {len(days)} business days over the wire, settling each evening")
    print("  (flopex serve starts each morning; its first start compiles the numba engine once)")
    print(f"  {'date':<10} {'orders':>6} {'fills':>6} {'rej':>4}  "
          f"{'front-month settlements (tier)':<52} {'VM moved':>12}")  # fmt: skip
    digests_ok = True
    for day in days:
        live = [c for c in listed_contracts(products, day, cal)]
        by_product: dict[str, list[int]] = {}
        fair: dict[int, int] = {}
        for c in live:
            k = len(by_product.setdefault(c.product.code, []))
            if k >= 2:
                continue
            by_product[c.product.code].append(c.instrument_id)
            prev_day = cal.previous_business_day(day)
            series = fixings[c.product.underlying_index]
            value = series.get(prev_day, series[day])
            value = value * (1000 + 4 * k) // 1000  # a gentle contango per month out
            fair[c.instrument_id] = scaled_to_ticks(value, INDEX_SCALE, c.product.tick_size)
        server = ServerProcess(data_dir, access, day)
        server.start()
        show = None
        if day == days[0]:
            front = next(c for c in live if c.product.code == "H100")
            show = (front.instrument_id, front.symbol, front.product)
        try:
            flow, live_digest, replay_ok = asyncio.run(
                _trade_day(server, fair, by_product, rng, crash=day == crash_day, show_book=show)
            )
        finally:
            server.terminate()  # never leave a gateway behind, whatever happened
        if day == crash_day:
            verify = subprocess.run(
                [sys.executable, "-m", "exchange.cli", "journal", "verify", "--data-dir",
                 str(data_dir)], capture_output=True, text=True, check=False,
            )  # fmt: skip
            rebuilt = _digest(verify.stdout)
            same = rebuilt is not None and rebuilt == live_digest
            digests_ok &= same and replay_ok
            print(
                f"    ! digest at shutdown {live_digest}; rebuilt from snapshot + journal "
                f"{rebuilt}: {'MATCH' if same else 'MISMATCH'}",
                flush=True,
            )
        outcome = settle_day(cfg, day)
        result = outcome.result
        rows = {r["symbol"]: r for r in result.per_contract()} if result else {}
        fronts = []
        for iids in by_product.values():
            sym = next(c.symbol for c in live if c.instrument_id == iids[0])
            r = rows.get(sym)
            if r:
                fronts.append(f"{sym} {r['settlement_price']} ({r['tier']})")
        vm = result.summary().get("variation_margin_paid_minor", 0) if result else 0
        print(
            f"  {day.isoformat():<10} {flow.orders:>6} {flow.fills:>6} {flow.rejects:>4}  "
            f"{'; '.join(fronts):<52} {format_thousands(int(vm)):>12}",
            flush=True,
        )

    _banner("4. Final settlement and account statements")
    ok = digests_ok
    with Ledger(cfg.ledger_path) as ledger:
        expired = [
            (iid, sym, final)
            for iid, (sym, status, final) in sorted(ledger.contract_states().items())
            if status == "expired"
        ]
        for iid, sym, final in expired:
            c = next(c for c in listed if c.instrument_id == iid)
            booked = ledger.fixings(c.product.underlying_index)
            fix = [booked[d] for d in c.fixing_days if d in booked]
            # The average at index scale, then to the tick grid, both half-even, exactly.
            avg = div_round(sum(fix), len(fix), "half_even")
            expect = scaled_to_ticks(avg, INDEX_SCALE, c.product.tick_size, "half_even")
            ok = ok and final == expect and len(fix) == len(c.fixing_days)
            print(
                f"  {sym}: final settlement {c.product.format_price(final)} = average of "
                f"{len(fix)} daily {c.product.underlying_index} fixings "
                f"({scaled_to_index(avg)}) rounded half-even to a tick "
                f"[{'checked' if final == expect else 'MISMATCH ' + str(expect)}]"
            )
        if not expired:
            print("  (no contract reached its final settlement date in the simulated days)")
        names = {
            int(a): (n if k == "cash" else f"{n} ({k})")
            for a, n, k in ledger.db.execute("SELECT account_id, name, kind FROM ledger_accounts")
        }
        rows = ledger.db.execute(
            "SELECT account_id, kind, SUM(amount_minor) FROM entries GROUP BY account_id, kind"
        ).fetchall()
        per: dict[int, dict[str, int]] = {}
        for acct, kind, amount in rows:
            per.setdefault(int(acct), {})[kind] = int(amount)
        acct_ids, _, qty = ledger.positions()
        open_lots: dict[int, int] = {}
        for a, q in zip(acct_ids.tolist(), qty.tolist(), strict=True):
            open_lots[a] = open_lots.get(a, 0) + abs(q)
        print()
        print(f"  {'account':<16} {'variation margin':>18} {'fees':>12} {'net cash':>14} "
              f"{'open lots':>10}")  # fmt: skip
        for acct in sorted(per):
            kinds = per[acct]
            name = names.get(acct, f"house #{acct}")
            vm = sum(v for k, v in kinds.items() if k.startswith("v") or k.startswith("final"))
            fee = kinds.get("clearing_fee", 0)
            print(
                f"  {name:<16} {format_thousands(vm):>18} {format_thousands(fee):>12} "
                f"{format_thousands(sum(kinds.values())):>14} {open_lots.get(acct, 0):>10}"
            )
        total = ledger.entries_total()
    print()
    print(f"  sum of all ledger entries: {total} (double entry: must be 0)")
    print(f"  reports: {cfg.clearing_dir / 'reports'}")
    ok = ok and total == 0
    print()
    print("  demo " + ("OK: every step checked out" if ok else "FAILED"))
    return 0 if ok else 1
