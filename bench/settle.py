"""Settlement benchmark: positions + variation margin + ledger write at exchange scale.

SYNTHETIC data: ``accounts`` accounts x 24 traded contracts (3 products x 8 months, 36
listed), about ``positions`` open positions and ``5 x positions`` trades (matches; each is
two trade-log rows). For each size it measures, in one run:

* ``compute_s`` — the vectorised settlement computation (prices, positions, VM, fees);
* ``job_s`` — the whole job from a parsed trade log: ledger reads, fixings, computation
  and the ledger transaction (``ledger_s``); reports are timed separately (``reports_s``);
* ``baseline_s`` — the plain-Python reference (a dict loop, :mod:`clearing.reference`) on
  the same positions and trades, at the sizes where it finishes in reasonable time;
* ``parse_rows_per_s`` — the CSV trade-log reader's speed on a 200,000-row file.

Usage: ``python -m bench.settle [--quick] [--json]``. ``--quick`` runs 10k and 100k
positions (under a minute); the full run adds 1M positions / 5M trades.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from clearing.batch import ClearingConfig, compute_settlement
from clearing.ledger import Ledger
from clearing.reference import reference_day
from clearing.reports import write_reports
from clearing.synthetic import account_name, synthetic_day, write_quote_files
from clearing.tradelog import TradeLog, read_tradelog, read_tradelog_csv, write_tradelog
from contracts.calendar import listed_contracts

DAY0, DAY1 = dt.date(2026, 7, 14), dt.date(2026, 7, 15)
MONTHS = 8


def _contracts(cfg: ClearingConfig):
    out = []
    for c in listed_contracts(cfg.products, DAY1, cfg.calendar):
        if (c.year - DAY1.year) * 12 + c.month - DAY1.month < MONTHS:
            out.append(c)
    return out


def _log(day, contracts, names, acct, cidx, side, qty, px, ts) -> TradeLog:
    iids = np.array([c.instrument_id for c in contracts], np.int64)
    n = acct.shape[0]
    return TradeLog(
        day=day,
        ts_ns=ts,
        match_id=np.repeat(np.arange(1, n // 2 + 1, dtype=np.int64), 2),
        instrument_id=iids[cidx],
        account=acct,
        side=side,
        price_ticks=px,
        quantity=qty,
        aggressor=side > 0,
        account_names=names,
        symbols={int(i): c.symbol for i, c in zip(iids, contracts, strict=True)},
    )


def build_size(positions: int, rng: np.random.Generator, cfg: ClearingConfig):
    """Prior-day positions (via day-0 trades pairing cells) and day-1 trades."""
    contracts = _contracts(cfg)
    n_c = len(contracts)
    n_accounts = max(2, positions * 10 // (n_c * 4))  # each account holds ~10 contracts
    names = [account_name(k) for k in range(n_accounts)]
    # Choose distinct (account, contract) cells, grouped by contract.
    cells = np.unique(rng.integers(0, n_accounts * n_c, int(positions * 1.1)))[:positions]
    cells = cells[np.argsort(cells % n_c, kind="stable")]
    c_of = cells % n_c
    a_of = cells // n_c
    starts = np.searchsorted(c_of, np.arange(n_c))
    counts = np.diff(np.append(starts, cells.shape[0]))
    ref = np.array([2800 if c.product.code != "TOKN" else 750 for c in contracts], np.int64)
    close = np.array([_close_ns(c) for c in contracts], np.int64)
    # Day 0: pair consecutive cells of each contract (even index buys from odd index).
    pair = np.arange(cells.shape[0] - 1)
    pair = pair[(pair - starts[c_of[pair]]) % 2 == 0]
    pair = pair[c_of[pair] == c_of[pair + 1]]
    q0 = rng.integers(1, 20, pair.shape[0])
    acct0 = np.stack([a_of[pair], a_of[pair + 1]], 1).ravel()
    cidx0 = np.repeat(c_of[pair], 2)
    side0 = np.tile(np.array([1, -1], np.int64), pair.shape[0])
    px0 = np.repeat(ref[c_of[pair]], 2)
    ts0 = np.repeat(close[c_of[pair]] - 3_600_000_000_000, 2)
    log0 = _log(DAY0, contracts, names, acct0, cidx0, side0, np.repeat(q0, 2), px0, ts0)
    # Day 1: 5 x positions matches between cells of the same contract.
    m = 5 * positions
    c = rng.choice(n_c, m, p=counts / counts.sum())
    b = starts[c] + (rng.random(m) * counts[c]).astype(np.int64)
    s = starts[c] + (rng.random(m) * counts[c]).astype(np.int64)
    acct1 = np.stack([a_of[b], a_of[s]], 1).ravel()
    px = ref[c] + rng.integers(-20, 21, m)
    ts = close[c] - rng.integers(0, 8 * 3_600, m) * 1_000_000_000
    log1 = _log(
        DAY1, contracts, names, acct1, np.repeat(c, 2),
        np.tile(np.array([1, -1], np.int64), m), np.repeat(rng.integers(1, 11, m), 2),
        np.repeat(px, 2), np.repeat(ts, 2),
    )  # fmt: skip
    _, book0 = synthetic_day(DAY0, contracts, ref, 2, 1, rng)
    _, book1 = synthetic_day(DAY1, contracts, ref, 2, 1, rng)
    return contracts, log0, book0, log1, book1


def _close_ns(c) -> int:
    end = c.product.trading_hours.close_on(DAY1)
    return int(end.timestamp()) * 1_000_000_000


def run_baseline(ledger: Ledger, log1: TradeLog, booking, contracts) -> float:
    """The plain-Python reference on the same inputs (dict loop per position and fill)."""
    pos_a, pos_i, pos_q = ledger.positions()
    settle = {p.instrument_id: p.ticks for p in booking.prices}
    prev = {iid: s[2] for iid, s in ledger.contract_states().items() if s[2] is not None}
    prev = {iid: prev.get(iid, settle[iid]) for iid in settle}
    tv = {c.instrument_id: c.product.tick_value_minor for c in contracts}
    tv.update({iid: 1000 for iid in settle if iid not in tv})
    t = time.perf_counter()
    prior = dict(zip(zip(pos_a.tolist(), pos_i.tolist(), strict=True), pos_q.tolist(),
                     strict=True))  # fmt: skip
    fills = zip(
        log1.account.tolist(), log1.instrument_id.tolist(), log1.side.tolist(),
        log1.quantity.tolist(), log1.price_ticks.tolist(), strict=True,
    )  # fmt: skip
    reference_day(prior, fills, settle, prev, tv)
    return time.perf_counter() - t


def measure(positions: int, baseline: bool, seed: int = 1) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="flopex-bench-") as tmp:
        data = Path(tmp)
        write_quote_files(data, dt.date(2026, 7, 1), DAY1, seed=seed)
        cfg = ClearingConfig(data)
        contracts, log0, book0, log1, book1 = build_size(positions, rng, cfg)
        with Ledger(cfg.ledger_path) as ledger:
            booking0, _ = compute_settlement(cfg, ledger, DAY0, log0, book0)
            ledger.book(booking0)
            n_prior = int(ledger.db.execute("SELECT COUNT(*) FROM positions").fetchone()[0])
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            booking, result = compute_settlement(cfg, ledger, DAY1, log1, book1, timings)
            t1 = time.perf_counter()
            ledger.book(booking)
            t2 = time.perf_counter()
            write_reports(data / "reports", result)
            t3 = time.perf_counter()
            base = run_baseline(ledger, log1, booking, contracts) if baseline else None
            assert ledger.entries_total() == 0
        return {
            "positions": n_prior,
            "positions_after": int(booking.pos_qty.shape[0]),
            "accounts": len(log1.account_names),
            "contracts_traded": len(contracts),
            "trades": len(log1) // 2,
            "trade_rows": len(log1),
            "compute_s": round(timings["compute_s"], 4),
            "inputs_s": round(timings["inputs_s"], 4),
            "ledger_s": round(t2 - t1, 4),
            "job_s": round(t2 - t0, 4),
            "reports_s": round(t3 - t2, 4),
            "baseline_s": None if base is None else round(base, 4),
            "speedup_vs_baseline": None if base is None else round(base / timings["compute_s"], 1),
        }


def parse_speed(rows: int = 200_000) -> tuple[float, float]:
    """Rows per second of the trade-log readers on a synthetic file: the numba parser
    (:func:`clearing.tradelog.read_tradelog`) and the csv-module baseline."""
    rng = np.random.default_rng(5)
    cfg = ClearingConfig(Path("."))
    contracts = _contracts(cfg)
    ref = [2800] * len(contracts)
    log, _ = synthetic_day(DAY1, contracts, ref, 1000, rows // 2, rng)
    with tempfile.TemporaryDirectory(prefix="flopex-bench-") as tmp:
        path = Path(tmp) / "t.csv"
        write_tradelog(path, log, {c.instrument_id: str(c.product.tick_size) for c in contracts})
        read_tradelog(path, DAY1)  # warm-up: loads the compiled parser from numba's cache
        t = time.perf_counter()
        read_tradelog(path, DAY1)
        fast = time.perf_counter() - t
        t = time.perf_counter()
        read_tradelog_csv(path, DAY1)
        slow = time.perf_counter() - t
        return rows / fast, rows / slow


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.settle", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="10k and 100k positions only")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    runs = [measure(n, baseline=n <= 100_000) for n in sizes]
    fast_rate, slow_rate = parse_speed(200_000 if args.quick else 1_000_000)
    out = {
        "benchmark": "settle",
        "machine_cpus": __import__("os").cpu_count(),
        "targets": {"compute_s": 1.0, "job_s": 10.0, "at_positions": 1_000_000},
        "runs": runs,
        "parse_rows_per_s": round(fast_rate),
        "parse_rows_per_s_csv_baseline": round(slow_rate),
        # the job read from a CSV trade log: job_s + the largest run's rows at the parse rate
        "job_with_csv_parse_est_s": round(
            runs[-1]["job_s"] + runs[-1]["trade_rows"] / fast_rate, 2
        ),
        # top-level keys of the largest run, for dashboards
        **{k: runs[-1][k] for k in ("positions", "trades", "compute_s", "job_s")},
    }
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"{'positions':>10} {'trades':>9} {'compute_s':>10} {'job_s':>8} {'ledger_s':>9} "
              f"{'reports_s':>10} {'baseline_s':>11} {'speedup':>8}")  # fmt: skip
        for r in runs:
            print(
                f"{r['positions']:>10} {r['trades']:>9} {r['compute_s']:>10} {r['job_s']:>8} "
                f"{r['ledger_s']:>9} {r['reports_s']:>10} {r['baseline_s'] or '-':>11} "
                f"{r['speedup_vs_baseline'] or '-':>8}"
            )
        print(
            f"trade-log parsing: {out['parse_rows_per_s']:,} rows/s "
            f"(csv-module baseline {out['parse_rows_per_s_csv_baseline']:,} rows/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
