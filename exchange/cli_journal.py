"""``flopex journal inspect|verify|tradelog``: read, check and replay a data directory.

* ``inspect`` prints journal records one per line (filters: sequence range, account,
  instrument); it never modifies anything (a torn tail is reported, not truncated).
* ``verify`` checks every segment (CRC, sequence continuity), loads the newest snapshot
  (digest), rebuilds the engine from snapshot + journal tail and prints the state digest —
  identical to the digest of a run that never stopped. ``--no-snapshot`` replays the
  whole journal instead (the two digests must agree).
* ``tradelog --date D`` replays trading day ``D`` from the journal and writes its trade log
  for clearing, byte for byte what the gateway wrote (``--out FILE``, default stdout).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from contracts.errors import FlopexError
from exchange.datadir import DataDir
from exchange.engine.abi import (
    CmdType,
    EventType,
    InstrumentStatus,
    OrderType,
    Side,
    TimeInForce,
)
from exchange.journal import DayNote, Journal, RecordType, decode_note
from exchange.snapshot import ENGINE_PREFIX, Snapshot, recover


def register(subparsers: Any) -> None:
    """Add ``flopex journal`` with its three subcommands."""
    p = subparsers.add_parser(
        "journal", help="inspect, verify and replay the command journal of a data directory"
    )
    sub = p.add_subparsers(dest="journal_command", metavar="ACTION")
    sub.required = True

    ins = sub.add_parser("inspect", help="print journal records readably")
    ins.add_argument("--data-dir", required=True, type=Path)
    ins.add_argument("--from-seq", type=int, default=1, metavar="N")
    ins.add_argument("--to-seq", type=int, default=None, metavar="N")
    ins.add_argument("--account", default=None, help="account id or name")
    ins.add_argument("--instrument", default=None, help="instrument id or symbol")
    ins.add_argument("--limit", type=int, default=0, help="stop after this many lines")
    ins.set_defaults(func=cmd_inspect)

    ver = sub.add_parser("verify", help="check the journal and snapshots, print the state digest")
    ver.add_argument("--data-dir", required=True, type=Path)
    ver.add_argument(
        "--no-snapshot", action="store_true", help="replay the whole journal, ignore snapshots"
    )
    ver.add_argument("--to-seq", type=int, default=None, metavar="N", help="state after seq N")
    ver.set_defaults(func=cmd_verify)

    tl = sub.add_parser("tradelog", help="regenerate a trading day's trade log from the journal")
    tl.add_argument("--data-dir", required=True, type=Path)
    tl.add_argument("--date", required=True, help="trade date YYYY-MM-DD")
    tl.add_argument("--out", type=Path, default=None, help="output file (default: stdout)")
    tl.set_defaults(func=cmd_tradelog)


# ---- engine rebuild ------------------------------------------------------------------------


def _configs(note: DayNote) -> list[Any]:
    from exchange.engine.config import InstrumentConfig

    try:
        return [InstrumentConfig(**c) for c in note.engine_configs]
    except TypeError as exc:
        raise FlopexError(f"journal trading-day note: bad engine config ({exc})") from None


def _engine_class() -> Any:
    try:
        from exchange.engine.book import MatchingEngine
    except ModuleNotFoundError:  # pragma: no cover - the engine ships with flopex
        raise FlopexError("the numba matching engine is not available") from None
    return MatchingEngine


class EngineReplay:
    """Rebuilds the engine from recovery callbacks and counts what the gateway counts.

    ``events`` follows the gateway's trade-log sequence rule: each trade row takes
    ``events + 1`` (and bumps it), and every batch adds its event count afterwards.
    """

    def __init__(self, on_events: Any = None) -> None:
        self.engine: Any = None
        self.day: DayNote | None = None
        self.events = 0
        self.days: list[str] = []
        self.on_events = on_events

    def on_snapshot(self, snap: Snapshot) -> None:
        day = snap.meta.get("day")
        if not isinstance(day, dict):
            raise FlopexError(f"{snap.path}: snapshot has no trading-day metadata")
        self.day = DayNote(**day)
        arrays = {
            k.removeprefix(ENGINE_PREFIX): v
            for k, v in snap.arrays.items()
            if k.startswith(ENGINE_PREFIX)
        }
        self.engine = _engine_class().from_arrays(_configs(self.day), arrays)
        self.events = int(snap.meta.get("events", 0))

    def on_note(self, payload: memoryview) -> None:
        note = decode_note(payload)
        if note is None or note == self.day:
            return  # not a day note, or the day the snapshot already holds (same position)
        self.day = note
        self.days.append(note.trade_date)
        self.engine = _engine_class()(_configs(note), max_orders=note.max_orders)
        self.events = note.events_base

    def on_batch(self, seq: int, cmds: np.ndarray) -> None:
        if self.engine is None:
            raise FlopexError(
                f"journal sequence {seq}: commands before any trading-day note; cannot "
                "rebuild the engine (was this journal written by flopex serve?)"
            )
        events = self.engine.process(cmds)
        if self.on_events is not None:
            self.on_events(self, seq, cmds, events)
        self.events += len(events)


def _open(args: argparse.Namespace) -> tuple[DataDir, Journal]:
    dd = DataDir.open(args.data_dir)
    return dd, Journal(dd.journal_dir, read_only=True)


def state_digest(data_dir: Path, use_snapshot: bool = True, to_seq: int | None = None) -> str:
    """The engine state digest after replaying ``data_dir`` (snapshot + tail by default)."""
    dd = DataDir.open(data_dir)
    j = Journal(dd.journal_dir, read_only=True)
    rep = EngineReplay()
    recover(
        j,
        dd.snapshot_dir if use_snapshot else None,
        on_snapshot=rep.on_snapshot,
        on_note=rep.on_note,
        on_batch=rep.on_batch,
        to_seq=to_seq,
    )
    if rep.engine is None:
        raise FlopexError(f"{data_dir}: journal holds no trading day yet")
    return str(rep.engine.state_digest())


# ---- verify ---------------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    dd, j = _open(args)
    total = j.verify_all()
    rep = EngineReplay()
    res = recover(
        j,
        None if args.no_snapshot else dd.snapshot_dir,
        on_snapshot=rep.on_snapshot,
        on_note=rep.on_note,
        on_batch=rep.on_batch,
        to_seq=args.to_seq,
    )
    out = sys.stdout
    out.write(f"journal: {total} commands in {len(j.segments)} segment(s), checksums ok\n")
    if j.torn_tail is not None:
        path, off, n = j.torn_tail
        out.write(
            f"journal: torn tail in {path} at byte offset {off} ({n} bytes, not acknowledged)\n"
        )
    if res.snapshot is not None:
        out.write(
            f"snapshot: {res.snapshot.path.name if res.snapshot.path else '-'} "
            f"(sequence {res.snapshot.seq}), digest ok\n"
        )
    else:
        out.write("snapshot: none used\n")
    out.write(
        f"replayed: {res.replayed} commands after the snapshot; last sequence {res.last_seq}\n"
    )
    if rep.engine is None:
        raise FlopexError(f"{args.data_dir}: journal holds no trading day yet")
    if rep.day is not None:
        out.write(f"trade date: {rep.day.trade_date}\n")
    out.write(f"state digest: {rep.engine.state_digest()}\n")
    return 0


# ---- inspect --------------------------------------------------------------------------------

_CMD_NAMES = {int(c): c.name for c in CmdType}
_SIDE = {int(Side.BUY): "BUY", int(Side.SELL): "SELL"}
_OT = {int(o): o.name for o in OrderType}
_TIF = {int(t): t.name for t in TimeInForce}
_STATUS = {int(s): s.name for s in InstrumentStatus}


def _ts(ns: int) -> str:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns % 1_000_000_000:09d}Z"


def format_command(seq: int, c: Any, accounts: dict[int, str]) -> str:
    """One command as a readable line (all integers; prices in ticks)."""
    t = int(c["cmd_type"])
    acct = int(c["account"])
    parts = [
        f"{seq:>10}",
        _ts(int(c["timestamp"])),
        _CMD_NAMES.get(t, f"CMD{t}"),
        f"inst={int(c['instrument_id'])}",
    ]
    if acct:
        parts.append(f"acct={accounts.get(acct, acct)}")
    if t == CmdType.NEW:
        parts += [
            _SIDE.get(int(c["side"]), f"side{int(c['side'])}"),
            _OT.get(int(c["order_type"]), str(int(c["order_type"]))),
            _TIF.get(int(c["tif"]), str(int(c["tif"]))),
            f"qty={int(c['qty'])}",
            f"px={int(c['price'])}",
        ]
        for f in ("stop_price", "display_qty", "min_qty", "expire_time", "smp_group"):
            if int(c[f]):
                parts.append(f"{f}={int(c[f])}")
    elif t in (CmdType.CANCEL, CmdType.REPLACE):
        parts.append(f"order={int(c['order_id'])}")
        if t == CmdType.REPLACE:
            parts += [f"qty={int(c['qty'])}", f"px={int(c['price'])}"]
    elif t == CmdType.SET_STATUS:
        parts.append(_STATUS.get(int(c["status"]), str(int(c["status"]))))
    elif t == CmdType.SET_REFERENCE:
        parts.append(f"px={int(c['price'])}")
    if int(c["client_token"]):
        parts.append(f"token={int(c['client_token'])}")
    if int(c["user_ref"]):
        parts.append(f"ref={int(c['user_ref'])}")
    return " ".join(parts)


def _parse_instrument(text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    from contracts.calendar import contract_for_symbol
    from contracts.registry import load_products

    return contract_for_symbol(text.upper(), load_products()).instrument_id


def cmd_inspect(args: argparse.Namespace) -> int:
    if args.from_seq < 1:
        raise FlopexError("--from-seq: must be at least 1")
    if args.to_seq is not None and args.to_seq < args.from_seq:
        raise FlopexError("--to-seq: must not be below --from-seq")
    _, j = _open(args)
    inst = _parse_instrument(args.instrument)
    accounts: dict[int, str] = {}
    want_acct: int | None = None
    account_text = args.account
    out = sys.stdout
    lines = 0
    # account names come from the first trading-day note (scan notes cheaply first)
    for rec in j.records(1):
        if rec.rtype == RecordType.NOTE:
            note = decode_note(rec.payload)
            if note is not None:
                accounts.update({int(k): v for k, v in note.accounts.items()})
    if account_text is not None:
        if account_text.isdigit():
            want_acct = int(account_text)
        else:
            by_name = {v: k for k, v in accounts.items()}
            if account_text not in by_name:
                raise FlopexError(f"--account: no account named {account_text!r} in the journal")
            want_acct = by_name[account_text]
    if j.torn_tail is not None:
        path, off, n = j.torn_tail
        out.write(f"# torn tail in {path} at byte offset {off}: {n} bytes (not shown)\n")
    names: list = [None]  # the session names by row the last gateway note gave
    for rec in j.records(args.from_seq):
        if args.to_seq is not None and rec.seq > args.to_seq:
            break
        if rec.rtype == RecordType.NOTE:
            if rec.seq >= args.from_seq and want_acct is None and inst is None:
                note = decode_note(rec.payload)
                desc = (
                    f"trading day {note.trade_date}, {len(note.engine_configs)} instruments"
                    if note is not None
                    else _describe_gateway_note(rec.payload, names)
                )
                out.write(f"{'note':>10} at sequence {rec.seq}: {desc}\n")
            continue
        cmds = rec.commands()
        seqs = np.arange(rec.seq, rec.seq + len(cmds))
        mask = seqs >= args.from_seq
        if args.to_seq is not None:
            mask &= seqs <= args.to_seq
        if want_acct is not None:
            mask &= cmds["account"] == want_acct
        if inst is not None:
            mask &= cmds["instrument_id"] == inst
        for i in np.nonzero(mask)[0]:
            out.write(format_command(int(seqs[i]), cmds[i], accounts) + "\n")
            lines += 1
            if args.limit and lines >= args.limit:
                return 0
    return 0


def _describe_gateway_note(payload: memoryview, names: list | None = None) -> str:
    """One line for a gateway note: its number, messages per session, orders touched.
    ``names[0]``: the session names by table row from an earlier note (updated from this
    one's ``N``)."""
    from collections import Counter

    from exchange.gateway import split_frames
    from exchange.journal import BIN_NOTE_MAGIC, decode_gateway_note

    gn = decode_gateway_note(payload)
    if gn is None:
        return f"{len(payload)} bytes"
    if names is not None and "N" in gn:
        names[0] = gn["N"]
    binary = bytes(payload[:8]) == BIN_NOTE_MAGIC
    parts = [f"gateway note {gn['gw']}" + (" (binary)" if binary else "")]
    msgs = gn.get("m", {})
    if msgs:
        per = ", ".join(f"{name} {len(split_frames(blob))}" for name, blob in msgs.items())
        parts.append(f"messages: {per}")
    if "MS" in gn:  # the compiled core's: sessions by table row
        rows = Counter(np.frombuffer(gn["MS"], "<i2").tolist())
        by_row = gn.get("N") or (names[0] if names else None)
        label = (lambda r: by_row[r]) if by_row else (lambda r: f"row {r}")
        per = ", ".join(f"{label(r)} {k}" for r, k in sorted(rows.items()))
        parts.append(f"messages: {per}")
    updated = len(gn.get("o", ())) + len(gn.get("O", b"")) // 96
    if updated or gn.get("x"):
        parts.append(f"orders: {updated} updated, {len(gn.get('x', ()))} done")
    for key, what in (("b", "blocked accounts"), ("c", "closed"), ("st", "instrument states")):
        if key in gn:
            parts.append(f"{what} changed")
    return "; ".join(parts)


# ---- tradelog ---------------------------------------------------------------------------------


def regenerate_tradelog(data_dir: Path, trade_date: dt.date) -> bytes:
    """The trade log of ``trade_date`` rebuilt from the journal, as bytes.

    Replays the journal from the trading day's note (a fresh engine, exactly as the
    gateway started it) to the next note, and writes every fill with the gateway's own
    writer (:class:`exchange.tradelog.TradeLog`), so the bytes are the same."""
    from contracts.calendar import contract_for_instrument_id
    from contracts.registry import load_products
    from exchange.tradelog import TradeLog

    dd = DataDir.open(data_dir)
    j = Journal(dd.journal_dir, read_only=True)
    day = trade_date.isoformat()
    products = load_products()
    with tempfile.TemporaryDirectory() as tmp:
        state: dict[str, Any] = {"log": None, "active": False, "found": False}

        def on_events(rep: EngineReplay, seq: int, cmds: np.ndarray, events: np.ndarray) -> None:
            log = state["log"]
            if not state["active"] or log is None:
                return
            names = rep.day.accounts if rep.day is not None else {}
            trades = np.nonzero(events["event_type"] == EventType.TRADE)[0]
            for i in trades.tolist():
                e = events[i]
                acct = int(e["account"])
                log.fill(
                    int(e["timestamp"]),
                    int(e["match_id"]),
                    int(e["instrument_id"]),
                    names.get(acct, str(acct)),
                    int(e["side"]) == Side.BUY,
                    int(e["price"]),
                    int(e["qty"]),
                    int(e["aggressor_side"]) == int(e["side"]),
                )

        rep = EngineReplay(on_events)

        def on_note(payload: memoryview) -> None:
            if decode_note(payload) is None:
                return  # a gateway note: not a new trading day
            rep.on_note(payload)
            note = rep.day
            if state["log"] is not None:
                state["log"].flush()
            state["active"] = note is not None and note.trade_date == day and not state["found"]
            if state["active"]:
                assert note is not None
                state["found"] = True
                contracts = [
                    contract_for_instrument_id(int(c["instrument_id"]), products)
                    for c in note.engine_configs
                ]
                state["log"] = TradeLog(Path(tmp), trade_date, contracts)

        recover(j, None, on_snapshot=rep.on_snapshot, on_note=on_note, on_batch=rep.on_batch)
        if not state["found"]:
            raise FlopexError(f"--date {day}: no trading day {day} in the journal")
        state["log"].close()
        return (Path(tmp) / "tradelog" / f"{day}.csv").read_bytes()


def cmd_tradelog(args: argparse.Namespace) -> int:
    from contracts.calendar import parse_date

    day = parse_date(args.date, "--date")
    data = regenerate_tradelog(args.data_dir, day)
    if args.out is None:
        buf = getattr(sys.stdout, "buffer", None)
        if buf is None:
            sys.stdout.write(data.decode("ascii"))
        else:
            sys.stdout.flush()
            buf.write(data)
            buf.flush()
        return 0
    if args.out.exists():
        raise FlopexError(f"--out {args.out}: file exists; not overwriting it")
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(args.out)
    return 0


__all__ = ["EngineReplay", "regenerate_tradelog", "register", "state_digest"]
