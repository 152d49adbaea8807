"""``flopex contracts list|show|validate``: the contract specs from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import textwrap
from pathlib import Path

from contracts.calendar import BusinessCalendar, contracts_listed, listed_contracts, parse_date
from contracts.errors import FlopexError
from contracts.registry import load_products
from contracts.spec import ProductSpec
from contracts.units import format_thousands


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``contracts`` with its ``list``, ``show`` and ``validate`` subcommands."""
    p = subparsers.add_parser("contracts", help="contract specs, listed months, spec tables")
    sub = p.add_subparsers(dest="contracts_command", metavar="ACTION", parser_class=type(p))
    sub.required = True

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--specs", nargs="+", metavar="YAML", help="spec files (default: shipped)")
    common.add_argument("--holidays", metavar="YAML", help="holiday calendar file")

    ls = sub.add_parser("list", parents=[common], help="contracts listed on a date")
    ls.add_argument("--date", help="trading date YYYY-MM-DD (default: today)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)

    sh = sub.add_parser("show", parents=[common], help="CME-style spec table for a product")
    sh.add_argument("code", metavar="CODE", help="product code, e.g. H100")
    sh.add_argument("--date", help="date for the listed-months line (default: today)")
    sh.set_defaults(func=cmd_show)

    va = sub.add_parser("validate", help="validate spec files; exit 2 on the first bad one")
    va.add_argument("paths", nargs="+", metavar="PATH")
    va.set_defaults(func=cmd_validate)


def _calendar(args: argparse.Namespace) -> BusinessCalendar:
    return (
        BusinessCalendar.from_file(args.holidays) if args.holidays else BusinessCalendar.default()
    )


def _date(args: argparse.Namespace) -> dt.date:
    return parse_date(args.date, "--date") if args.date else dt.date.today()


def cmd_list(args: argparse.Namespace) -> int:
    """Print the listed contracts with first/last trading day and final settlement date."""
    products = load_products(args.specs)
    on = _date(args)
    rows = listed_contracts(products, on, _calendar(args))
    if args.json:
        print(json.dumps({"date": on.isoformat(), "contracts": [c.as_dict() for c in rows]}))
        return 0
    print(f"Listed contracts on {on.isoformat()}")
    header = f"{'symbol':<9} {'id':>6}  {'month':<7}  {'first trade':<11}  {'last trade':<11}  "
    print(header + "final settle")
    for c in rows:
        print(
            f"{c.symbol:<9} {c.instrument_id:>6}  {c.year:04d}-{c.month:02d}  "
            f"{c.first_trading_day.isoformat():<11}  {c.last_trading_day.isoformat():<11}  "
            f"{c.final_settlement_date.isoformat()}"
        )
    return 0


def _plural(unit: str) -> str:
    return unit if unit.endswith("s") else unit + "s"


def spec_table(spec: ProductSpec, on: dt.date, calendar: BusinessCalendar) -> str:
    """A CME-style contract specification table, one attribute per row."""
    cur = spec.currency
    digits = spec.currency_minor_digits
    listed = contracts_listed(spec, on, calendar)
    hours = "; ".join(
        f"{'/'.join(s.days)} {s.open:%H:%M}-{s.close:%H:%M}" for s in spec.trading_hours.sessions
    )
    lim = spec.price_limits
    limits = ", ".join(f"{t}{'%' if lim.kind == 'percent' else ' ' + cur}" for t in lim.tiers)
    m = spec.margin
    rows = [
        ("Product", f"{spec.name} ({spec.code}, product id {spec.product_id})"),
        ("Underlying", f"{spec.underlying_index} index"),
        ("Contract unit", f"{spec.contract_unit:,} {_plural(spec.unit_of_measure)}"),
        ("Price quotation", spec.price_quotation),
        (
            "Minimum price fluctuation",
            f"{spec.tick_size} {spec.price_quotation} = "
            f"{format_thousands(spec.tick_value_minor, digits)} {cur} per contract",
        ),
        ("Order quantity", f"{spec.min_order_qty} to {spec.max_order_qty} contracts"),
        ("Price band", f"{spec.price_band.min} to {spec.price_band.max}"),
        (
            "Trading hours",
            f"{hours} ({spec.trading_hours.timezone}); pre-open "
            f"{spec.trading_hours.pre_open_minutes} min",
        ),
        ("Listed contracts", f"{spec.listing.months} consecutive months"),
        ("Listed now", f"{listed[0].symbol} ... {listed[-1].symbol} (on {on.isoformat()})"),
        ("Symbol", f"code + month code + 2-digit year, e.g. {listed[0].symbol}"),
        (
            "Termination of trading",
            "last business day of the contract month"
            + (
                f" minus {spec.last_trading_day.offset_business_days} business days"
                if spec.last_trading_day.offset_business_days
                else ""
            ),
        ),
        (
            "Settlement method",
            "cash; final settlement price = arithmetic average of the daily index fixings "
            f"over the contract month, rounded to a tick ({spec.final_settlement.rounding})",
        ),
        (
            "Daily settlement",
            f"VWAP of the last {spec.daily_settlement.closing_window_seconds} s if >= "
            f"{spec.daily_settlement.min_volume} contracts; else bid/ask midpoint if spread <= "
            f"{spec.daily_settlement.max_spread_ticks} ticks; else index-based value",
        ),
        ("Daily price limits", f"{limits} of previous settlement ({lim.kind})"),
        (
            "Position limits",
            f"{spec.position_limits.spot_month:,} spot month; "
            f"{spec.position_limits.all_months:,} all months combined",
        ),
        ("Matching algorithm", spec.matching_algorithm.replace("_", "-").upper()),
        ("Self-match prevention", spec.self_match_prevention.replace("_", " ")),
        (
            "Market order protection",
            f"{spec.market_protection} ({spec.market_protection_ticks} ticks)",
        ),
        (
            "Margin",
            f"scan range {m.scan_range_pct}%; calendar spread charge "
            f"{m.calendar_spread_charge} {cur}; credit group {m.credit_group or '-'} "
            f"({m.inter_product_credit_pct}% inter-product credit)",
        ),
        ("Clearing fee", f"{spec.clearing_fee} {cur} per contract per side"),
        ("Holiday calendar", spec.holiday_calendar),
    ]
    width = max(len(k) for k, _ in rows)
    line = "+" + "-" * (width + 2) + "+" + "-" * 82 + "+"
    out = [line]
    for k, v in rows:
        for i, part in enumerate(textwrap.wrap(v, 80) or [""]):
            out.append(f"| {k if i == 0 else '':<{width}} | {part:<80} |")
    out.append(line)
    return "\n".join(out)


def cmd_show(args: argparse.Namespace) -> int:
    """Print the spec table of one product."""
    products = load_products(args.specs)
    code = args.code.upper()
    if code not in products:
        raise FlopexError(f"unknown product code {args.code!r} (known: {', '.join(products)})")
    print(spec_table(products[code], _date(args), _calendar(args)))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate spec files together (duplicate codes across files are errors too)."""
    paths = [Path(p) for p in args.paths]
    products = load_products(paths)
    for code, spec in products.items():
        print(f"ok  {code:<6} {spec.name}")
    return 0
