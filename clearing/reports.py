"""Settlement reports: the settlement-price report, per-account statements (CSV and JSON),
the batch summary table, and the settlement-price file published back to the exchange.

Money is printed from int minor units with :func:`contracts.units.minor_to_money`
semantics (vectorised here for a million lines); prices from ticks with the tick size.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from clearing.index import Fixing
from clearing.settlement_prices import SettlementPrice
from clearing.variation import DayPositions
from contracts.calendar import Contract
from contracts.units import format_thousands, minor_to_money, scaled_to_index, ticks_to_price

SETTLEMENT_FILE_HEADER = (
    "trade_date",
    "symbol",
    "instrument_id",
    "settlement_ticks",
    "settlement_price",
    "tier",
)
STATEMENT_HEADER = (
    "business_date",
    "account",
    "symbol",
    "prior_qty",
    "bought",
    "sold",
    "closed_at_final",
    "qty",
    "prev_settlement",
    "settlement",
    "variation_margin",
    "clearing_fee",
    "currency",
)


def money_strings(minor: np.ndarray, digits: int = 2) -> list[str]:
    """Int minor units -> decimal strings, vectorised (``-1234 -> "-12.34"``). O(n)."""
    minor = np.asarray(minor, np.int64)
    if digits == 0:
        return [str(int(x)) for x in minor.tolist()]
    scale = 10**digits
    mag = np.abs(minor)
    whole = (mag // scale).tolist()
    frac = (mag % scale).tolist()
    neg = (minor < 0).tolist()
    return [
        f"{'-' if n else ''}{w}.{f:0{digits}d}" for n, w, f in zip(neg, whole, frac, strict=True)
    ]


@dataclass
class DayResult:
    """Everything computed for one business date, for reports and the summary."""

    day: dt.date
    contracts: Sequence[Contract]
    prices: Mapping[int, SettlementPrice]
    prev: Mapping[int, int]
    positions: DayPositions
    closed_qty: np.ndarray
    iids: np.ndarray
    account_names: Mapping[int, str]
    fixings: Sequence[Fixing] = field(default_factory=list)
    fixing_values: Mapping[str, int | None] = field(default_factory=dict)

    def per_contract(self) -> list[dict[str, object]]:
        """One dict per contract: price, tier, volume, open interest, VM moved."""
        p = self.positions
        n = self.iids.shape[0]
        volume = np.zeros(n, np.int64)
        oi = np.zeros(n, np.int64)
        vm_paid = np.zeros(n, np.int64)
        np.add.at(volume, p.cidx, p.bought)
        qty_after = p.qty - self.closed_qty
        np.add.at(oi, p.cidx, np.where(qty_after > 0, qty_after, 0))
        np.add.at(vm_paid, p.cidx, np.where(p.vm > 0, p.vm, 0))
        rows = []
        for j, c in enumerate(self.contracts):
            sp = self.prices[c.instrument_id]
            prev = self.prev.get(c.instrument_id)
            rows.append(
                {
                    "symbol": c.symbol,
                    "instrument_id": c.instrument_id,
                    "settlement_ticks": sp.ticks,
                    "settlement_price": ticks_to_price(sp.ticks, c.product.tick_size),
                    "prev_settlement_price": None
                    if prev is None
                    else ticks_to_price(prev, c.product.tick_size),
                    "change_ticks": None if prev is None else sp.ticks - prev,
                    "tier": sp.tier,
                    "basis": sp.basis,
                    "clamped": sp.clamped,
                    "volume": int(volume[j]),
                    "open_interest": int(oi[j]),
                    "variation_margin_paid_minor": int(vm_paid[j]),
                    "variation_margin_paid": minor_to_money(
                        int(vm_paid[j]), c.product.currency_minor_digits
                    ),
                }
            )
        return rows

    def summary(self) -> dict[str, object]:
        """JSON-friendly totals (stored with the batch in the ledger)."""
        p = self.positions
        return {
            "business_date": self.day.isoformat(),
            "contracts": len(self.contracts),
            "accounts": int(np.unique(p.account).shape[0]) if len(p) else 0,
            "positions": int(np.count_nonzero(p.qty - self.closed_qty)),
            "fills": int(p.bought.sum()),
            "variation_margin_paid_minor": int(p.vm[p.vm > 0].sum()),
            "fees_minor": int(p.fee.sum()),
            "expired": [
                self.prices[int(i)].symbol
                for i in self.iids.tolist()
                if self.prices[int(i)].tier == "final"
            ],
            "fixings": {k: (None if v is None else scaled_to_index(v)) for k, v in
                        self.fixing_values.items()},
        }  # fmt: skip


def format_summary_table(result: DayResult) -> str:
    """The human summary printed by ``flopex settle``: one line per contract, then totals."""
    lines = [f"settlement {result.day}"]
    for index_id, v in result.fixing_values.items():
        f = next((x for x in result.fixings if x.index_id == index_id), None)
        flag = " (carried forward)" if f is not None and f.status == "carried_forward" else ""
        lines.append(
            f"  fixing {index_id:<10} {scaled_to_index(v) if v is not None else '-'}{flag}"
        )
    lines.append(
        f"  {'symbol':<9} {'tier':<5} {'settle':>9} {'prev':>9} {'chg':>6} {'volume':>8} "
        f"{'OI':>8} {'VM paid':>16}  basis"
    )
    for r in result.per_contract():
        prev = r["prev_settlement_price"] or "-"
        chg = "-" if r["change_ticks"] is None else f"{r['change_ticks']:+d}"
        vm = format_thousands(int(r["variation_margin_paid_minor"]))  # type: ignore[arg-type]
        clamp = " [limit]" if r["clamped"] else ""
        lines.append(
            f"  {r['symbol']:<9} {r['tier']:<5} {r['settlement_price']:>9} {prev:>9} {chg:>6} "
            f"{r['volume']:>8} {r['open_interest']:>8} {vm:>16}  {r['basis']}{clamp}"
        )
    s = result.summary()
    lines.append(
        f"  accounts {s['accounts']}, open positions {s['positions']}, lots bought {s['fills']}, "
        f"VM paid {format_thousands(int(s['variation_margin_paid_minor']))}, "
        f"fees {format_thousands(int(s['fees_minor']))}"
    )
    if s["expired"]:
        lines.append(f"  final settlement: {', '.join(s['expired'])} expired")
    return "\n".join(lines)


def publish_settlement_file(path: Path, result: DayResult) -> None:
    """Write the settlement prices the exchange reads as the next day's reference prices."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(SETTLEMENT_FILE_HEADER)
        for c in result.contracts:
            sp = result.prices[c.instrument_id]
            w.writerow(
                (
                    result.day.isoformat(),
                    c.symbol,
                    c.instrument_id,
                    sp.ticks,
                    ticks_to_price(sp.ticks, c.product.tick_size),
                    sp.tier,
                )
            )


def write_reports(directory: Path, result: DayResult) -> None:
    """Write ``settlement-prices.{csv,json}``, ``statements.{csv,json}``, ``summary.json``
    and ``fixings.json`` into ``directory`` (created fresh). O(positions)."""
    if directory.exists():
        for p in directory.iterdir():
            p.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    enc = msgspec.json.Encoder()
    rows = result.per_contract()
    (directory / "settlement-prices.json").write_bytes(enc.encode(rows))
    with (directory / "settlement-prices.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    (directory / "summary.json").write_bytes(enc.encode(result.summary()))
    (directory / "fixings.json").write_bytes(enc.encode([f.to_dict() for f in result.fixings]))
    _write_statements(directory, result)


def _write_statements(directory: Path, result: DayResult) -> None:
    p = result.positions
    n = len(p)
    day = result.day.isoformat()
    sym = [c.symbol for c in result.contracts]
    price = [
        {
            "settle": ticks_to_price(result.prices[c.instrument_id].ticks, c.product.tick_size),
            "prev": "" if c.instrument_id not in result.prev
            else ticks_to_price(result.prev[c.instrument_id], c.product.tick_size),
            "ccy": c.product.currency,
        }
        for c in result.contracts
    ]  # fmt: skip
    names_by_id = result.account_names
    acct = p.account.tolist()
    cidx = p.cidx.tolist()
    vm = money_strings(p.vm)
    fee = money_strings(p.fee)
    cols = [p.prior.tolist(), p.bought.tolist(), p.sold.tolist(), result.closed_qty.tolist()]
    after = (p.qty - result.closed_qty).tolist()
    with (directory / "statements.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(STATEMENT_HEADER)
        w.writerows(
            (
                day,
                names_by_id[acct[k]],
                sym[cidx[k]],
                cols[0][k],
                cols[1][k],
                cols[2][k],
                cols[3][k],
                after[k],
                price[cidx[k]]["prev"],
                price[cidx[k]]["settle"],
                vm[k],
                fee[k],
                price[cidx[k]]["ccy"],
            )
            for k in range(n)
        )
    # JSON: one statement per account, lines in contract order, with totals.
    statements = []
    if n:
        bounds = np.flatnonzero(np.diff(p.account)) + 1
        starts = np.concatenate([[0], bounds]).tolist()
        ends = [*starts[1:], n]
        totals_vm = np.add.reduceat(p.vm, starts)
        totals_fee = np.add.reduceat(p.fee, starts)
        tvm = money_strings(totals_vm)
        tfee = money_strings(totals_fee)
        for s, e, a, tv, tf in zip(starts, ends, acct[::1], tvm, tfee, strict=False):
            del a
            statements.append(
                {
                    "business_date": day,
                    "account": names_by_id[acct[s]],
                    "variation_margin": tv,
                    "clearing_fees": tf,
                    "lines": [
                        {
                            "symbol": sym[cidx[k]],
                            "prior_qty": cols[0][k],
                            "bought": cols[1][k],
                            "sold": cols[2][k],
                            "closed_at_final": cols[3][k],
                            "qty": after[k],
                            "prev_settlement": price[cidx[k]]["prev"] or None,
                            "settlement": price[cidx[k]]["settle"],
                            "variation_margin": vm[k],
                            "clearing_fee": fee[k],
                        }
                        for k in range(s, e)
                    ],
                }
            )
    (directory / "statements.json").write_bytes(msgspec.json.encode(statements))
