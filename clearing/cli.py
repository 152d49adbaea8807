"""``flopex index`` and ``flopex settle``: the clearing house's subcommands.

Registered through the ``flopex.commands`` entry point (``clearing.cli:register``), so the
exchange package never imports clearing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from clearing.index import Fixing, fix_series
from clearing.methodology import default_methods
from clearing.quotegen import generate_quotes
from clearing.quotes import load_quote_files, write_quotes_csv, write_quotes_jsonl
from contracts.calendar import BusinessCalendar, parse_date
from contracts.errors import FlopexError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``index`` and ``settle`` subcommands."""
    p = subparsers.add_parser(
        "index",
        help="spot index fixings from provider quote files",
        description=(
            "Compute the daily index fixings (FLX-H100, FLX-H200, FLX-TOKEN) from provider "
            "quote files (CSV or JSON lines) and print the fixing of --date with its inputs. "
            "Days from the first quote's date up to --date are fixed in order so a thin day "
            "can carry the previous fixing forward (flagged)."
        ),
    )
    p.add_argument("--quotes", action="append", metavar="FILE", help="quote file (repeatable)")
    p.add_argument("--date", required=True, help="fixing date YYYY-MM-DD")
    p.add_argument("--index", action="append", metavar="ID", help="index id (default: all)")
    p.add_argument(
        "--weighting", choices=("equal", "volume"), default="equal", help="GPU index weights"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--synthetic-out",
        metavar="FILE",
        help="instead: write SYNTHETIC quotes from --from to --date into FILE (.csv/.jsonl)",
    )
    p.add_argument("--from", dest="start", help="first day of --synthetic-out quotes")
    p.add_argument("--seed", type=int, default=7, help="seed of --synthetic-out")
    p.set_defaults(func=run_index)

    s = subparsers.add_parser(
        "settle",
        help="daily settlement batch: fixings, settlement prices, variation margin, expiry",
        description=(
            "Run the clearing batch for a business date (--date) or every business date "
            "after the last settled one through --through (--from starts an empty ledger). "
            "Reads DATA_DIR/tradelog, DATA_DIR/close and DATA_DIR/index; books into "
            "DATA_DIR/clearing/ledger.sqlite; writes DATA_DIR/clearing/reports/DATE/ and "
            "DATA_DIR/settlement/DATE.csv. Re-running a settled date changes nothing."
        ),
    )
    s.add_argument("--data-dir", default="data", help="exchange data directory (default: data)")
    when = s.add_mutually_exclusive_group(required=True)
    when.add_argument("--date", help="settle this business date YYYY-MM-DD")
    when.add_argument("--through", help="settle every pending business date through this one")
    s.add_argument("--from", dest="start", help="with --through on an empty ledger: first date")
    s.add_argument("--no-reports", action="store_true", help="skip the per-account reports")
    s.add_argument("--json", action="store_true", help="print JSON summaries")
    s.set_defaults(func=run_settle)


def _fmt_ts(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_fixing(fixing: Fixing) -> str:
    """A human-readable block: headline, status, and the table of inputs."""
    lines = [
        f"{fixing.index_id} fixing {fixing.day}: {fixing.value_str} "
        f"({fixing.status}, methodology {fixing.version})"
    ]
    if fixing.status == "carried_forward":
        lines.append(f"  carried forward from {fixing.carried_from}: {fixing.reason}")
    if fixing.inputs:
        lines.append(
            f"  {'provider':<28} {'item':<26} {'timestamp':<20} {'price':>11} "
            f"{'volume':>8} {'status':<13} {'weight%':>8}"
        )
        for i in fixing.inputs:
            d = i.to_dict()
            vol = "" if i.volume is None else str(i.volume)
            lines.append(
                f"  {i.provider:<28} {i.item:<26} {d['timestamp']:<20} {d['price']:>11} "
                f"{vol:>8} {i.status:<13} {d['weight_pct']:>8}"
            )
    else:
        lines.append("  no quotes in the freshness window")
    return "\n".join(lines)


def run_index(args: argparse.Namespace) -> int:
    """Handler of ``flopex index``."""
    day = parse_date(args.date, "--date")
    if args.synthetic_out:
        if not args.start:
            raise FlopexError("--synthetic-out needs --from YYYY-MM-DD")
        start = parse_date(args.start, "--from")
        if start > day:
            raise FlopexError("--from must not be after --date")
        quotes = generate_quotes(start, day, seed=args.seed)
        out = Path(args.synthetic_out)
        if out.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            write_quotes_jsonl(out, quotes)
        else:
            write_quotes_csv(out, quotes)
        print(f"wrote {len(quotes)} SYNTHETIC quotes ({start} .. {day}) to {out}")
        return 0
    if not args.quotes:
        raise FlopexError("--quotes FILE is required")
    quotes = load_quote_files(args.quotes)
    if not quotes:
        raise FlopexError(f"{args.quotes[0]}: no quotes")
    methods = default_methods(args.weighting)
    wanted = args.index or list(methods)
    unknown = [w for w in wanted if w not in methods]
    if unknown:
        raise FlopexError(f"--index: unknown index {unknown[0]!r} (known: {', '.join(methods)})")
    first_day = min(q.when.date() for q in quotes)
    if day < first_day:
        raise FlopexError(f"--date {day} is before the first quote ({first_day})")
    days = BusinessCalendar.default().business_days(first_day, day)
    if day not in days:
        days.append(day)  # an explicit non-business date is still fixed if asked for
    fixings = [fix_series(methods[w], quotes, days)[-1] for w in wanted]
    if args.json:
        json.dump([f.to_dict() for f in fixings], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n\n".join(format_fixing(f) for f in fixings))
    return 0


def run_settle(args: argparse.Namespace) -> int:
    """Handler of ``flopex settle``."""
    from clearing.batch import ClearingConfig, settle_day, settle_through
    from clearing.reports import format_summary_table

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise FlopexError(f"--data-dir: {data_dir} is not a directory")
    cfg = ClearingConfig(data_dir, write_reports=not args.no_reports)
    if args.date:
        if args.start:
            raise FlopexError("--from goes with --through, not --date")
        outcomes = [settle_day(cfg, parse_date(args.date, "--date"))]
    else:
        start = parse_date(args.start, "--from") if args.start else None
        outcomes = settle_through(cfg, parse_date(args.through, "--through"), start)
    summaries = []
    for o in outcomes:
        if o.status == "already":
            msg = f"{o.day}: already settled; nothing changed"
            summaries.append({"business_date": o.day.isoformat(), "status": "already settled"})
        else:
            assert o.result is not None
            msg = format_summary_table(o.result)
            summaries.append({"status": "settled", **o.result.summary()})
        if not args.json:
            print(msg)
    if args.json:
        json.dump(summaries, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not outcomes:
        print("nothing to settle")
    return 0
