"""The daily settlement batch: index fixings, settlement prices, variation margin, final
settlement, ledger booking, reports and the published settlement prices.

``settle_day`` is idempotent: a settled date is a no-op that says so. It reads only the
exchange's files for the date (trade log and close record), the index quote files, the
contract specs and its own ledger; any missing input stops it before anything is booked.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clearing.index import Fixing, fix_index
from clearing.ledger import DayBooking, Ledger
from clearing.methodology import IndexMethod, default_methods, method_for
from clearing.quotes import Quote, load_quotes
from clearing.reports import DayResult, publish_settlement_file, write_reports
from clearing.settlement_prices import contract_index, settle_contracts
from clearing.tradelog import (
    CloseBook,
    TradeLog,
    close_path,
    read_close,
    read_tradelog,
    tradelog_path,
)
from clearing.variation import compute_day
from contracts.calendar import (
    BusinessCalendar,
    Contract,
    contract_for_instrument_id,
    listed_contracts,
)
from contracts.errors import FlopexError
from contracts.registry import load_products
from contracts.spec import ProductSpec

#: Clearing fee per contract per side, minor units, for a product whose spec sets none.
DEFAULT_FEE_PER_LOT_MINOR = 50


@dataclass
class ClearingConfig:
    """Where the data lives and the rules to apply."""

    data_dir: Path
    products: dict[str, ProductSpec] = field(default_factory=load_products)
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar.default)
    methods: dict[str, IndexMethod] = field(default_factory=default_methods)
    fee_per_lot_minor: Mapping[str, int] = field(default_factory=dict)
    write_reports: bool = True

    @property
    def clearing_dir(self) -> Path:
        return Path(self.data_dir) / "clearing"

    @property
    def ledger_path(self) -> Path:
        return self.clearing_dir / "ledger.sqlite"

    def fee(self, code: str) -> int:
        """Fee per contract per side (minor units): an override here, else the spec's
        ``clearing_fee``."""
        if code in self.fee_per_lot_minor:
            return int(self.fee_per_lot_minor[code])
        spec = self.products.get(code)
        return spec.clearing_fee_minor if spec is not None else DEFAULT_FEE_PER_LOT_MINOR


@dataclass
class Outcome:
    """What happened to one date: ``settled`` now, or ``already`` settled before."""

    day: dt.date
    status: str
    result: DayResult | None = None
    timings: dict[str, float] = field(default_factory=dict)


def index_quote_paths(data_dir: Path, day: dt.date) -> list[Path]:
    """Quote files of ``day``: ``DATA_DIR/index/YYYY-MM-DD.csv`` or ``.jsonl`` (either)."""
    base = Path(data_dir) / "index"
    return [p for ext in (".csv", ".jsonl") if (p := base / f"{day.isoformat()}{ext}").exists()]


def load_quotes_for(data_dir: Path, day: dt.date) -> list[Quote]:
    """Quotes of ``day`` and the calendar day before (the freshness window spans midnight)."""
    paths = index_quote_paths(data_dir, day)
    if not paths:
        raise FlopexError(
            f"no index data for {day}: expected {Path(data_dir) / 'index' / day.isoformat()}"
            ".csv or .jsonl"
        )
    paths = index_quote_paths(data_dir, day - dt.timedelta(days=1)) + paths
    quotes: list[Quote] = []
    for p in paths:
        quotes.extend(load_quotes(p))
    return quotes


class _FixingBook:
    """Fixings per index: the ledger's history plus the ones computed in this run."""

    def __init__(self, cfg: ClearingConfig, ledger: Ledger) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.values: dict[str, dict[dt.date, int]] = {}
        self.records: dict[str, dict[dt.date, Fixing]] = {}
        self.new: list[Fixing] = []

    def history(self, index_id: str) -> dict[dt.date, int]:
        if index_id not in self.values:
            self.values[index_id] = self.ledger.fixings(index_id)
            self.records[index_id] = {}
        return self.values[index_id]

    def _previous(self, index_id: str, day: dt.date) -> Fixing | None:
        hist = self.history(index_id)
        earlier = [d for d in hist if d < day]
        if not earlier:
            return None
        d = max(earlier)
        rec = self.records[index_id].get(d)
        if rec is not None:
            return rec
        return Fixing(index_id, d, hist[d], "computed", "ledger")

    def ensure(self, method: IndexMethod, day: dt.date) -> None:
        """Make sure ``day``'s fixing exists (compute it from quote files if not)."""
        hist = self.history(method.index_id)
        if day in hist:
            return
        quotes = load_quotes_for(self.cfg.data_dir, day)
        fixing = fix_index(method, quotes, day, self._previous(method.index_id, day))
        hist[day] = fixing.value
        self.records[method.index_id][day] = fixing
        self.new.append(fixing)


def _contracts_for_day(
    cfg: ClearingConfig, ledger: Ledger, day: dt.date, log: TradeLog, pos_iids: np.ndarray
) -> list[Contract]:
    """Listed contracts, plus unexpired contracts with open positions; trades must be in
    contracts trading today."""
    by_iid = {c.instrument_id: c for c in listed_contracts(cfg.products, day, cfg.calendar)}
    states = ledger.contract_states()
    for iid in np.unique(pos_iids).tolist():
        if iid not in by_iid:
            if states.get(iid, ("", "active", None))[1] == "expired":
                raise FlopexError(f"ledger holds positions in expired instrument {iid}")
            by_iid[iid] = contract_for_instrument_id(iid, cfg.products, cfg.calendar)
    for iid, sym in log.symbols.items():
        c = by_iid.get(iid)
        if c is None or not c.is_trading_day(day):
            raise FlopexError(f"trade log {day}: {sym} ({iid}) does not trade on {day}")
        if c.symbol != sym:
            raise FlopexError(f"trade log {day}: instrument {iid} is {c.symbol}, not {sym}")
    return sorted(by_iid.values(), key=lambda c: c.instrument_id)


def compute_settlement(
    cfg: ClearingConfig,
    ledger: Ledger,
    day: dt.date,
    log: TradeLog,
    close: CloseBook,
    timings: dict[str, float] | None = None,
) -> tuple[DayBooking, DayResult]:
    """Everything the date books, computed in memory (nothing written). Vectorised."""
    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    pos_a, pos_i, pos_q = ledger.positions()
    contracts = _contracts_for_day(cfg, ledger, day, log, pos_i)
    fixings = _FixingBook(cfg, ledger)
    index_ids = sorted({c.product.underlying_index for c in contracts})
    for index_id in index_ids:
        method = method_for(index_id, cfg.methods)
        months = [c for c in contracts if c.product.underlying_index == index_id]
        needed = {day}
        for c in months:
            if c.is_spot_month(day) or c.final_settlement_date == day:
                needed.update(d for d in c.fixing_days if d <= day)
        for d in sorted(needed):
            fixings.ensure(method, d)
    fixing_values = {i: fixings.history(i) for i in index_ids}
    states = ledger.contract_states()
    prev = {iid: s[2] for iid, s in states.items() if s[2] is not None and s[1] == "active"}
    timings["inputs_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    iids = np.array([c.instrument_id for c in contracts], np.int64)
    trade_cidx = contract_index(iids, log.instrument_id)
    prices = settle_contracts(contracts, day, log, close, fixing_values, prev, trade_cidx)
    settle = np.array([prices[int(i)].ticks for i in iids], np.int64)
    prev_arr = np.array([prev.get(int(i), prices[int(i)].ticks) for i in iids], np.int64)
    tv = np.array([c.product.tick_value_minor for c in contracts], np.int64)
    fee = np.array([cfg.fee(c.product.code) for c in contracts], np.int64)
    # Accounts: existing ledger ids; new names get ids after the current maximum.
    known = ledger.member_accounts()
    next_id = ledger.max_account_id() + 1
    new_accounts: list[tuple[int, str]] = []
    local_to_id = np.empty(len(log.account_names), np.int64)
    for k, name in enumerate(log.account_names):
        aid = known.get(name)
        if aid is None:
            aid = known[name] = next_id
            new_accounts.append((aid, name))
            next_id += 1
        local_to_id[k] = aid
    day_pos = compute_day(
        pos_a,
        np.searchsorted(iids, pos_i),
        pos_q,
        log.account,
        trade_cidx,
        log.side,
        log.quantity,
        log.price_ticks,
        settle,
        prev_arr,
        tv,
        fee,
        next_id,
        local_to_id,
    )
    final_c = np.array([prices[int(i)].tier == "final" for i in iids], bool)
    closing = final_c[day_pos.cidx]
    new_qty = np.where(closing, 0, day_pos.qty)
    keep = new_qty != 0
    # Rows are ordered by account (cell = account x n_c + contract): per-account fee totals
    # are segment sums, O(rows) without a sort.
    if len(day_pos):
        starts = np.flatnonzero(np.diff(day_pos.account, prepend=-1))
        fee_acct = day_pos.account[starts]
        fee_sum = np.add.reduceat(day_pos.fee, starts)
    else:
        fee_acct = fee_sum = np.zeros(0, np.int64)
    timings["compute_s"] = time.perf_counter() - t1

    names = {v: k for k, v in known.items()}
    result = DayResult(
        day=day,
        contracts=contracts,
        prices=prices,
        prev=prev,
        positions=day_pos,
        closed_qty=np.where(closing, day_pos.qty, 0),
        iids=iids,
        account_names=names,
        fixings=[fixings.records[i].get(day) for i in index_ids if day in fixings.records[i]],
        fixing_values={i: fixing_values[i].get(day) for i in index_ids},
    )
    booking = DayBooking(
        day=day,
        new_accounts=new_accounts,
        fixings=fixings.new,
        prices=[prices[int(i)] for i in iids],
        vm_account=day_pos.account,
        vm_instrument=iids[day_pos.cidx],
        vm_amount=day_pos.vm,
        fee_account=fee_acct,
        fee_amount=fee_sum,
        pos_account=day_pos.account[keep],
        pos_instrument=iids[day_pos.cidx[keep]],
        pos_qty=new_qty[keep],
        expired={int(i): prices[int(i)].ticks for i in iids[final_c]},
        summary=result.summary(),
    )
    return booking, result


def _report_dir(cfg: ClearingConfig, day: dt.date) -> Path:
    return cfg.clearing_dir / "reports" / day.isoformat()


def _finish_publish(cfg: ClearingConfig, day: dt.date) -> None:
    """Move a staged report directory into place (after the ledger commit)."""
    final = _report_dir(cfg, day)
    staged = final.with_name(final.name + ".staged")
    if staged.exists():
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
    staged_file = Path(cfg.data_dir) / "settlement" / f"{day.isoformat()}.csv.staged"
    if staged_file.exists():
        staged_file.replace(staged_file.with_suffix(""))


def settle_day(cfg: ClearingConfig, day: dt.date, ledger: Ledger | None = None) -> Outcome:
    """Run the whole batch for one business date (idempotent). See module docstring."""
    own = ledger is None
    ledger = ledger or Ledger(cfg.ledger_path)
    try:
        if ledger.is_settled(day):
            _finish_publish(cfg, day)
            return Outcome(day, "already")
        if not cfg.calendar.is_business_day(day):
            raise FlopexError(f"{day} is not a business day")
        last = ledger.last_settled()
        if last is not None:
            expected = cfg.calendar.next_business_day(last)
            if day < expected:
                raise FlopexError(f"{day} is before the last settled date {last}")
            if day != expected:
                raise FlopexError(
                    f"{day}: settle {expected} first (last settled {last}); use --through"
                )
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        log = read_tradelog(tradelog_path(cfg.data_dir, day), day)
        close = read_close(close_path(cfg.data_dir, day), day)
        timings["read_s"] = time.perf_counter() - t0
        booking, result = compute_settlement(cfg, ledger, day, log, close, timings)
        t2 = time.perf_counter()
        if cfg.write_reports:
            staged = _report_dir(cfg, day).with_name(day.isoformat() + ".staged")
            write_reports(staged, result)
        publish_settlement_file(
            Path(cfg.data_dir) / "settlement" / f"{day.isoformat()}.csv.staged", result
        )
        timings["reports_s"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        ledger.book(booking)
        timings["ledger_s"] = time.perf_counter() - t3
        _finish_publish(cfg, day)
        return Outcome(day, "settled", result, timings)
    finally:
        if own:
            ledger.close()


def settle_through(
    cfg: ClearingConfig, end: dt.date, start: dt.date | None = None
) -> list[Outcome]:
    """Settle every business date from the day after the last settled one (or ``start``)
    through ``end``, in order; stops at the first error (earlier dates stay booked)."""
    with Ledger(cfg.ledger_path) as ledger:
        last = ledger.last_settled()
        if start is None:
            if last is None:
                raise FlopexError("empty ledger: give the first date with --date or --from")
            start = cfg.calendar.next_business_day(last)
        out = []
        for day in cfg.calendar.business_days(start, end):
            out.append(settle_day(cfg, day, ledger))
        return out
