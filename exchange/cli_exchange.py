"""``flopex serve`` (the order-entry gateway) and ``flopex order`` (a human's order ticket).

::

    flopex serve --port 7001 --data-dir ./data --trade-date 2026-11-25   # feed on 7002
    flopex order --user alice buy H100Z26 5 2.800
    flopex order --user bob sell H100Z26 5 2.800          # trades with alice
    flopex order --user alice status                     # working orders and fills
    flopex order --user alice replace 3 --price 2.790 --qty 4
    flopex order --user alice cancel 4
    flopex order --user admin close-day                  # close record + End of Session

Without ``--access FILE`` the gateway runs with demo logins (alice/alice-pw,
bob/bob-pw, admin/admin-pw). ``SIGUSR1`` to the serve process closes the trading day
(same as ``flopex order --user admin close-day``); ``SIGINT``/``SIGTERM`` stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import getpass
import logging
import os
import signal
import sys
from pathlib import Path

from contracts.calendar import BusinessCalendar, contract_for_symbol
from contracts.errors import FlopexError
from contracts.units import money_to_minor

DEFAULT_PORT = 7001


# --------------------------------------------------------------------------- serve
def _serve(args: argparse.Namespace) -> int:
    from exchange.auth import demo_access, hash_password, load_access

    if args.hash_password:
        pw = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()
        if not pw:
            raise FlopexError("--hash-password: empty password")
        print(hash_password(pw))
        return 0
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.access:
        access = load_access(args.access)
    else:
        access, passwords = demo_access()
        creds = ", ".join(f"{u}/{p}" for u, p in passwords.items())
        print(f"flopex serve: no --access file, demo logins: {creds}", file=sys.stderr)
    trade_date = _trade_date(args.trade_date)
    from exchange.datadir import DataDir
    from exchange.journal import GatewayJournal, Journal, SyncPolicy
    from exchange.venue import build_gateway, recover_venue

    policy = SyncPolicy.parse(args.journal_sync)
    if args.snapshot_every < 0:
        raise FlopexError(f"--snapshot-every: must be 0 or more, got {args.snapshot_every}")
    dd = DataDir.open(Path(args.data_dir), create=True)
    lock = dd.lock()
    journal = Journal(dd.journal_dir, policy)  # cuts a torn tail (logged)
    day = trade_date.isoformat()
    rec = recover_venue(dd, journal, day)
    same_day = rec.day is not None and rec.day.trade_date == day
    gw = build_gateway(
        access,
        trade_date,
        data_dir=dd.root,
        reference_file=Path(args.reference_prices) if args.reference_prices else None,
        default_max_notional_minor=money_to_minor(args.max_order_notional),
        replay_limit=args.replay_limit,
        engine=rec.engine if same_day else args.engine,
    )
    gw.sequencer.events = rec.events
    gj = GatewayJournal(
        gw, dd, policy, snapshot_every=args.snapshot_every, journal=journal,
        last_note=rec.day, gseq=rec.gseq, background=True,
    )  # fmt: skip
    if same_day:
        assert rec.image is not None
        gw.restore_state(rec.image)
    args.recovered = same_day
    digest = _digest(gw)
    if rec.day is None:
        print(f"flopex serve: fresh data directory, digest {digest}", flush=True)
    else:
        extra = "" if same_day else f"; trading day {rec.day.trade_date} done, new day {day}"
        print(
            f"flopex serve: recovered {rec.last_seq} commands (snapshot seq "
            f"{rec.snapshot_seq} + {rec.tail_records} journal records){extra}, digest {digest}",
            flush=True,
        )
    _warm_up(gw)
    import uvloop

    try:
        return uvloop.run(_serve_async(gw, args, gj))
    finally:
        lock.close()


def _warm_up(gw) -> None:
    """Compile the matching kernel (and the order-entry core's kernels) before listening;
    the matching kernel on a scratch engine.

    numba compiles at the first call; on a cold cache that takes tens of seconds, which
    must not happen inside the event loop on the first order (every session's heartbeats
    would stall past the 15 s timeout). With a warm cache this costs milliseconds. The
    real engine's state is not touched, so the digest and the journal are unchanged."""
    from exchange.engine.abi import CmdType, OrderType, Side, TimeInForce, make_commands
    from exchange.engine.book import MatchingEngine
    from exchange.engine.config import InstrumentConfig

    if hasattr(gw, "warm_up"):  # the compiled order-entry core's kernels
        gw.warm_up()
    if not isinstance(gw.sequencer.engine, MatchingEngine):
        return
    scratch = MatchingEngine(
        [InstrumentConfig(instrument_id=1, min_price_ticks=1, max_price_ticks=100)], max_orders=16
    )
    cmds = make_commands(2)
    cmds["cmd_type"] = CmdType.NEW
    cmds["instrument_id"] = 1
    cmds["account"] = (1, 2)
    cmds["side"] = (Side.BUY, Side.SELL)
    cmds["order_type"] = OrderType.LIMIT
    cmds["tif"] = TimeInForce.GTC
    cmds["price"] = 50
    cmds["qty"] = 1
    scratch.process(cmds)
    scratch.snapshot()


def _digest(gw) -> str:
    """The engine's state digest (what ``flopex journal verify`` prints)."""
    fn = getattr(gw.sequencer.engine, "state_digest", None)
    return str(fn()) if fn is not None else "n/a (reference engine)"


def _trade_date(text: str | None) -> dt.date:
    from contracts.calendar import parse_date

    if text:
        day = parse_date(text, "--trade-date")
    else:
        day = dt.datetime.now(dt.UTC).date()
        cal = BusinessCalendar.default()
        if not cal.is_business_day(day):
            day = cal.next_business_day(day)
    return day


async def _serve_async(gw, args: argparse.Namespace, gj=None) -> int:
    from exchange.connection import serve_gateway

    try:
        server, hb, conns = await serve_gateway(
            gw, args.host, args.port, max_outbound=args.max_outbound
        )
    except OSError as exc:
        raise FlopexError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    port = server.sockets[0].getsockname()[1]
    feed, md_where = None, "off"
    if not args.no_market_data:
        md_port = args.md_port
        if md_port is None:
            md_port = port + 1 if args.port else 0
        feed = await _start_feed(gw, args.host, md_port)
        md_where = f"{args.host}:{feed[1]}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, gw.close_day)
    if args.exit_after_close:
        gw.on_close.append(lambda: loop.call_later(0.2, stop.set))
    n = len(gw.contracts)
    # Start-up objects (numba, specs, calendars) never die: keep the cyclic GC from
    # rescanning them in every full collection (multi-millisecond pauses otherwise).
    gc.collect()
    gc.freeze()
    # Resting orders are long-lived container objects: with the default young-generation
    # threshold (700) a pipelined burst triggers a young collection every few dozen
    # orders and the older generations soon after. The hot path frees its objects by
    # reference counting (finished orders are unlinked), so collect young objects 70x
    # less often: ~5% less CPU per order under load, no effect on a quiet round trip.
    gc.set_threshold(50_000, 20, 100)
    print(
        f"flopex serve: listening on {args.host}:{port} trade date {gw.trade_date} "
        f"({n} instruments, market data {md_where}, data {gw.data_dir}, pid {os.getpid()})",
        flush=True,
    )
    sync_task = None
    if gj is not None and gj.journal.policy.mode == "interval":
        sync_task = asyncio.create_task(_sync_timer(gj))
    gtd_task = asyncio.create_task(_gtd_timer(gw))
    clock_task = None
    if args.schedule == "clock":
        clock_task = asyncio.create_task(_session_clock(gw, args.recovered))
    await stop.wait()
    gtd_task.cancel()
    if clock_task is not None:
        clock_task.cancel()
    hb.cancel()
    server.close()
    if feed is not None:
        await feed[0].close()
    for c in list(conns):
        c.disconnect("gateway stopping", level=logging.INFO)
    await asyncio.sleep(0.05)  # connection_lost callbacks (cancel-on-disconnect) run
    gw.flush()
    if sync_task is not None:
        sync_task.cancel()
    if gw.tradelog is not None:
        gw.tradelog.flush()
    if gj is not None:
        gj.close()  # final snapshot, fsync
        print(
            f"flopex serve: stopped at sequence {gj.journal.next_seq - 1}, digest {_digest(gw)}",
            flush=True,
        )
    else:
        print("flopex serve: stopped", flush=True)
    return 0


async def _session_clock(gw, recovered: bool) -> None:
    """``--schedule clock``: the contracts' trading hours by the wall clock.

    A fresh day first sets every instrument to its scheduled status now; a recovered day
    catches up on the transitions due since the last journaled command. Then each
    transition is applied when it comes due (a sequenced, journaled command)."""
    import time

    from exchange.engine.abi import CmdType
    from exchange.schedule import SessionClock, status_at

    now = time.time_ns()
    if recovered:
        after = gw.sequencer.last_ts
    else:
        import numpy as np

        from exchange.engine.abi import COMMAND_DTYPE

        rows = []
        for iid, c in gw.contracts.items():
            want = int(status_at(c, now))
            if gw.status[iid] != want:
                rows.append((now, iid, int(CmdType.SET_STATUS), want))
        cmds = np.zeros(len(rows), dtype=COMMAND_DTYPE)
        for i, (ts, iid, ct, st) in enumerate(rows):
            cmds[i]["timestamp"], cmds[i]["instrument_id"] = ts, iid
            cmds[i]["cmd_type"], cmds[i]["status"] = ct, st
        gw.apply_transitions(cmds)
        after = now
    specs = {c.product.product_id: c.product for c in gw.contracts.values()}
    clock = SessionClock(specs.values(), after_ns=after)
    while True:
        due = clock.due(time.time_ns())
        if len(due):
            gw.apply_transitions(due)
        nxt = clock.next_ns()
        wait = 1.0 if nxt is None else (nxt - time.time_ns()) / 1e9
        await asyncio.sleep(min(max(wait, 0.01), 1.0))


async def _gtd_timer(gw, period: float = 0.05) -> None:
    """Expire GTD orders when their time comes (the engine's EXPIRE_GTD, journaled)."""
    import time

    while True:
        await asyncio.sleep(period)
        gw.expire_due(time.time_ns())


async def _sync_timer(gj) -> None:
    """fsync on the ``interval:N`` policy's schedule even when no batch comes."""
    period = gj.journal.policy.interval_ms / 1000
    while True:
        await asyncio.sleep(period)
        gj.tick()


async def _start_feed(gw, host: str, port: int):
    """The market data feed on its own port, fed by the sequencer's event listener."""
    from exchange.marketdata import FeedPublisher, FeedServer

    pub = FeedPublisher()
    for iid in gw.contracts:
        ref = gw.risk.instruments[iid].reference_ticks or 0
        pub.add_instrument(iid, gw.status[iid], ref)
    snap = getattr(gw.sequencer.engine, "snapshot", None)
    if snap is not None:  # a recovered engine may hold resting orders already
        books = snap()["instruments"]
        pub.seed_from_engine({iid: books[iid] for iid in gw.contracts if iid in books})
    pub.warm_up()  # its compiled batch, before the first order
    gw.attach_feed(pub)  # the core gateway's one-call path then encodes it in the kernel
    feed = FeedServer(pub)
    try:
        bound = await feed.start(host, port)
    except OSError as exc:
        raise FlopexError(f"cannot listen on {host}:{port} (market data): {exc.strerror}") from None
    return feed, bound


# --------------------------------------------------------------------------- order
_SIDES = {"buy": "B", "sell": "S"}
_TYPES = {"limit": "L", "market": "M", "stop": "S", "stop-limit": "T"}
_TIFS = {"day": "0", "gtc": "1", "ioc": "3", "fok": "4", "gtd": "6"}


def _expire_ns(text: str | None, tif: str) -> int:
    """``--expire`` (ISO 8601 date-time; no zone = UTC) -> ns since the epoch; 0 if absent.

    FlopexError when GTD lacks it, another TIF has it, or it does not parse."""
    if tif != "gtd":
        if text is not None:
            raise FlopexError("--expire: only a GTD order (--tif gtd) has an expire time")
        return 0
    if text is None:
        raise FlopexError("--tif gtd: needs --expire DATETIME (e.g. 2026-11-25T21:00:00Z)")
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise FlopexError(
            f"--expire {text!r}: not an ISO 8601 date-time (e.g. 2026-11-25T21:00:00Z)"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    from exchange.schedule import to_ns

    return to_ns(t)


def _order(args: argparse.Namespace) -> int:
    password = args.password or os.environ.get("FLOPEX_PASSWORD") or f"{args.user}-pw"
    return asyncio.run(_order_async(args, password))


async def _order_async(args: argparse.Namespace, password: str) -> int:
    from contracts.registry import load_products
    from exchange.client import LoginRejected, OrderClient
    from exchange.protocol import messages as m

    products = load_products()
    client = OrderClient(args.host, args.port, args.user, password)
    start = await _sync(client)
    fmt = _Formatter(products)
    action = args.action
    try:
        if action == "status":
            _print_status(client, fmt)
            return 0
        if action in ("buy", "sell"):
            c = contract_for_symbol(args.symbol, products)
            spec = c.product
            otype = _TYPES[args.type]
            price = spec.to_ticks(args.price) if args.price is not None else 0
            if otype in "LT" and args.price is None:
                raise FlopexError(f"{action}: a {args.type} order needs a PRICE")
            stop = spec.to_ticks(args.stop) if args.stop is not None else 0
            if otype in "ST" and args.stop is None:
                raise FlopexError(f"{action}: a {args.type} order needs --stop PRICE")
            if args.qty < 1:
                raise FlopexError(f"{action}: QTY must be at least 1, got {args.qty}")
            account = args.account or args.user.upper()
            expire = _expire_ns(args.expire, args.tif)
            token = client.enter(
                c.instrument_id, _SIDES[action], args.qty, price=price, account=account,
                order_type=otype, tif=_TIFS[args.tif], display_quantity=args.display,
                stop_price=stop, min_quantity=args.min_qty, expire_time=expire,
                post_only=args.post_only,
            )  # fmt: skip
        elif action == "replace":
            order = _find_order(client, args.token)
            spec = fmt.spec(order[0])
            price = spec.to_ticks(args.price) if args.price is not None else order[2]
            stop = spec.to_ticks(args.stop) if args.stop is not None else 0
            qty = args.qty if args.qty is not None else order[3]
            token = client.replace(args.token, price, qty, stop)
        elif action == "cancel":
            client.cancel(args.token)
            token = args.token
        elif action == "mass-cancel":
            iid = contract_for_symbol(args.symbol, products).instrument_id if args.symbol else 0
            token = client.mass_cancel(iid)
        elif action == "kill":
            token = client.new_token()
            client.send(m.KillSwitch(token, args.account_name, ord("U" if args.unblock else "B")))
        elif action == "close-day":
            token = client.new_token()
            client.send(m.CloseDay(token))
        else:  # pragma: no cover - argparse restricts actions
            raise FlopexError(f"unknown action {action}")
        await client.wait_for(
            lambda x: (
                getattr(x, "token", None) == token
                and isinstance(
                    x, (m.Accepted, m.Rejected, m.Replaced, m.MassCancelDone, m.Canceled)
                )
            ),
            timeout=args.timeout,
            start=start,
        )
        await asyncio.sleep(args.wait)
        rejected = False
        for msg in client.messages[start:]:
            if isinstance(msg, m.TradingStatus):
                continue
            print(fmt.line(msg))
            rejected |= isinstance(msg, m.Rejected) and msg.token == token
        return 1 if rejected else 0
    except LoginRejected:
        raise
    finally:
        await client.close()


async def _sync(client) -> int:
    """Log in, learn the session's history (tokens, orders) by replay; returns the index of
    the first message that is new in this run."""
    from exchange.client import LoginRejected

    newest = await client.connect(sequence=0)
    await client.close()
    for attempt in range(20):
        try:
            await client.connect(sequence=1)
            break
        except LoginRejected as exc:  # the previous connection is still closing
            if exc.reason != "S" or attempt == 19:
                raise
            await asyncio.sleep(0.05)
    await client.wait_for(lambda _x: client.next_seq >= newest, timeout=10)
    return newest - 1


def _find_order(client, token: int) -> tuple[int, int, int, int]:
    working = _working_orders(client)
    if token not in working:
        raise FlopexError(f"token {token}: no working order with that token in this session")
    return working[token]


def _working_orders(client) -> dict[int, tuple[int, int, int, int]]:
    """token -> (instrument_id, side, price ticks, open qty), rebuilt from the session."""
    from exchange.protocol import messages as m

    working: dict[int, tuple[int, int, int, int]] = {}
    for msg in client.messages:
        if isinstance(msg, m.Accepted):
            working[msg.token] = (msg.instrument_id, msg.side, msg.price, msg.quantity)
        elif isinstance(msg, m.Executed) and msg.token in working:
            iid, side, px, _ = working[msg.token]
            if msg.leaves:
                working[msg.token] = (iid, side, px, msg.leaves)
            else:
                del working[msg.token]
        elif isinstance(msg, m.Canceled):
            working.pop(msg.token, None)
        elif isinstance(msg, m.Replaced):
            old = working.pop(msg.orig_token, None)
            if old is not None:
                working[msg.token] = (old[0], old[1], msg.price, msg.quantity)
    return working


def _print_status(client, fmt: _Formatter) -> None:
    from exchange.protocol import messages as m

    working = _working_orders(client)
    fills = [x for x in client.messages if isinstance(x, m.Executed)]
    print(f"session {client.session}: {len(working)} working orders, {len(fills)} fills")
    for tok, (iid, side, px, qty) in sorted(working.items()):
        side_s = "BUY " if side == ord("B") else "SELL"
        print(f"  working token {tok:>6}  {side_s} {qty:>5} {fmt.symbol(iid)} @ {fmt.px(iid, px)}")
    for f in fills:
        print("  " + fmt.line(f))


class _Formatter:
    """One readable line per outbound message (prices as decimals, via contracts.units)."""

    def __init__(self, products: dict) -> None:
        from contracts.calendar import contract_for_instrument_id

        self._products = products
        self._lookup = contract_for_instrument_id
        self._cache: dict[int, object] = {}

    def _contract(self, iid: int):
        c = self._cache.get(iid)
        if c is None:
            c = self._cache[iid] = self._lookup(iid, self._products)
        return c

    def spec(self, iid: int):
        return self._contract(iid).product

    def symbol(self, iid: int) -> str:
        return self._contract(iid).symbol

    def px(self, iid: int, ticks: int) -> str:
        return self.spec(iid).format_price(ticks)

    def line(self, msg) -> str:
        from exchange.protocol import messages as m
        from exchange.protocol.codes import RejectCode, WireCancelReason

        side = {ord("B"): "BUY", ord("S"): "SELL"}
        if isinstance(msg, m.Accepted):
            iid = msg.instrument_id
            kind = chr(msg.order_type)
            at = "MKT" if kind in "MS" else self.px(iid, msg.price)
            if kind in "ST":
                at += f" stop {self.px(iid, msg.stop_price)}"
            if msg.expire_time:
                from exchange.schedule import from_ns

                at += f" GTD until {from_ns(msg.expire_time).strftime('%Y-%m-%dT%H:%M:%SZ')}"
            if msg.post_only == m.POST_ONLY_YES:
                at += " post-only"
            return (
                f"ACCEPTED  token {msg.token}  {side.get(msg.side, '?')} {msg.quantity} "
                f"{self.symbol(iid)} @ {at} account {msg.account}  order id {msg.order_id}"
            )
        if isinstance(msg, m.Executed):
            liq = "taker" if msg.liquidity == ord("R") else "maker"
            return (
                f"FILLED    token {msg.token}  {side.get(msg.side, '?')} {msg.quantity} "
                f"{self.symbol(msg.instrument_id)} @ {self.px(msg.instrument_id, msg.price)} "
                f"match {msg.match_id} ({liq}), {msg.leaves} left"
            )
        if isinstance(msg, m.Rejected):
            try:
                reason = RejectCode(msg.reason).name
            except ValueError:
                reason = str(msg.reason)
            where = f" at byte {msg.offset}" if msg.offset else ""
            return f"REJECTED  token {msg.token}  {reason} ({msg.reason}){where}"
        if isinstance(msg, m.Canceled):
            try:
                why = WireCancelReason(msg.reason).name
            except ValueError:
                why = chr(msg.reason)
            return (
                f"CANCELED  token {msg.token}  {msg.quantity} "
                f"{self.symbol(msg.instrument_id)} ({why})"
            )
        if isinstance(msg, m.Replaced):
            return (
                f"REPLACED  token {msg.orig_token} -> {msg.token}  {msg.quantity} "
                f"{self.symbol(msg.instrument_id)} @ {self.px(msg.instrument_id, msg.price)}"
            )
        if isinstance(msg, m.StopTriggered):
            return f"TRIGGERED token {msg.token}  stop {self.px(msg.instrument_id, msg.stop_price)}"
        if isinstance(msg, m.MassCancelDone):
            return f"DONE      token {msg.token}  {msg.canceled} orders canceled"
        return repr(msg)


# --------------------------------------------------------------------------- wiring
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``order`` to the ``flopex`` command line."""
    sp = subparsers.add_parser(
        "serve",
        help="run the order-entry gateway (SoupBinTCP on uvloop)",
        description="Run the order-entry gateway. See docs/gateway.md.",
    )
    sp.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (0 = any free)")
    sp.add_argument("--data-dir", default="flopex-data", help="exchange data directory")
    sp.add_argument(
        "--md-port", type=int, help="market data feed port (default: --port + 1; 0 = any free)"
    )
    sp.add_argument("--no-market-data", action="store_true", help="do not serve market data")
    sp.add_argument("--trade-date", help="YYYY-MM-DD (default: today, or next business day)")
    sp.add_argument("--access", help="accounts and logins YAML (default: demo logins)")
    sp.add_argument("--reference-prices", help="CSV symbol,price: reference for daily limits")
    sp.add_argument("--engine", choices=("numba", "reference"), default="numba")
    sp.add_argument(
        "--max-order-notional",
        default="0",
        help="default max order notional in USD for accounts without their own (0 = none)",
    )
    sp.add_argument("--replay-limit", type=int, default=1_000_000, help="messages kept/session")
    sp.add_argument("--max-outbound", type=int, default=8 << 20, help="slow-consumer bytes")
    sp.add_argument("--exit-after-close", action="store_true", help="stop once the day closes")
    sp.add_argument(
        "--journal-sync",
        default="batch",
        help="fsync policy of the journal: batch (default: one fsync per batch), "
        "interval:N (at most every N ms), off (no fsync; still survives kill -9)",
    )
    sp.add_argument(
        "--schedule",
        choices=("manual", "clock"),
        default="manual",
        help="manual (default): every instrument open from the start, the day closed by "
        "an admin Close Trading Day or SIGUSR1; clock: pre-open / open / close at the "
        "contracts' trading hours by the wall clock, DAY orders expire at the close",
    )
    sp.add_argument(
        "--snapshot-every",
        type=int,
        default=1_000_000,
        metavar="N",
        help="write a snapshot every N commands (0 = only at shutdown; default 1000000)",
    )
    sp.add_argument("--log-level", default="warning", choices=("debug", "info", "warning"))
    sp.add_argument(
        "--hash-password",
        action="store_true",
        help="read a password on stdin, print its scrypt hash for the access file, exit",
    )
    sp.set_defaults(func=_serve)

    op = subparsers.add_parser(
        "order",
        help="enter, replace or cancel orders on a running gateway",
        description="A human order ticket over the binary protocol. Prices are decimals.",
    )
    op.add_argument("--host", default="127.0.0.1")
    op.add_argument("--port", type=int, default=DEFAULT_PORT)
    op.add_argument("--user", required=True, help="login name")
    op.add_argument("--password", help="password (default: $FLOPEX_PASSWORD or USER-pw)")
    op.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")
    op.add_argument("--wait", type=float, default=0.3, help="seconds to linger for fills")
    acts = op.add_subparsers(dest="action", metavar="ACTION", parser_class=type(op))
    acts.required = True
    for side in ("buy", "sell"):
        p = acts.add_parser(side, help=f"enter a {side} order")
        p.add_argument("symbol", help="contract symbol, e.g. H100Z26")
        p.add_argument("qty", type=int, help="contracts")
        p.add_argument("price", nargs="?", help="limit price (decimal, on the tick grid)")
        p.add_argument("--type", choices=tuple(_TYPES), default="limit")
        p.add_argument("--tif", choices=tuple(_TIFS), default="day")
        p.add_argument("--stop", help="stop price for stop / stop-limit orders")
        p.add_argument("--display", type=int, default=0, help="iceberg display quantity")
        p.add_argument("--min-qty", type=int, default=0, help="minimum fill quantity")
        p.add_argument("--account", help="account (default: the user name in capitals)")
        p.add_argument(
            "--expire", help="GTD expire time, ISO 8601 (e.g. 2026-11-25T21:00:00Z; no zone = UTC)"
        )
        p.add_argument(
            "--post-only", action="store_true", help="reject instead of trading on entry"
        )
    p = acts.add_parser("replace", help="change price/quantity of a working order")
    p.add_argument("token", type=int)
    p.add_argument("--price")
    p.add_argument("--qty", type=int)
    p.add_argument("--stop")
    p = acts.add_parser("cancel", help="cancel a working order")
    p.add_argument("token", type=int)
    p = acts.add_parser("mass-cancel", help="cancel this session's working orders")
    p.add_argument("symbol", nargs="?")
    acts.add_parser("status", help="working orders and fills of this session")
    p = acts.add_parser("kill", help="admin: block an account and cancel its orders")
    p.add_argument("account_name", metavar="ACCOUNT")
    p.add_argument("--unblock", action="store_true")
    acts.add_parser("close-day", help="admin: close the trading day")
    op.set_defaults(func=_order)
