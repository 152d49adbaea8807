"""``flopex demo``: the most complete end-to-end path that exists, on localhost.

Today: the listing calendar for the demo date and the spec table of each product. Later
steps (a trading month over the wire protocol, clearing and settlement) are appended as
the venue grows.
"""

from __future__ import annotations

import argparse
import datetime as dt

from contracts.calendar import BusinessCalendar, listed_contracts, parse_date
from contracts.cli import spec_table
from contracts.registry import load_products

DEMO_DATE = "2026-11-02"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``flopex demo``."""
    p = subparsers.add_parser("demo", help="a simulated trading month end to end on localhost")
    p.add_argument("--date", default=DEMO_DATE, help=f"first trading day (default {DEMO_DATE})")
    p.add_argument("--data-dir", default="demo-data", help="where the demo writes its files")
    p.set_defaults(func=run_demo)


def _banner(title: str) -> None:
    print()
    print("=" * 78)
    print(f"  {title}")
    print("=" * 78)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 when every step checked out."""
    start: dt.date = parse_date(args.date, "--date")
    products = load_products()
    cal = BusinessCalendar.default()

    _banner(f"1. Contracts listed on {start.isoformat()}")
    listed = listed_contracts(products, start, cal)
    for c in listed:
        if c.month in (start.month, start.month % 12 + 1):
            print(
                f"  {c.symbol:<8} id {c.instrument_id:>6}  trades {c.first_trading_day} .. "
                f"{c.last_trading_day}  final settlement {c.final_settlement_date}"
            )
    print(f"  ... {len(listed)} contracts in all ({len(products)} products x 12 months)")

    _banner("2. Contract specifications")
    for spec in products.values():
        print(spec_table(spec, start, cal))
    return 0
