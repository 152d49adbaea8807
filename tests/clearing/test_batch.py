"""The settlement batch end to end on hand-computed files (tests/clearing/scenario.py).

H100M26, tick value $10 (1000 cents). June has 21 fixing days; the k-th fixing is
2.800 + 0.002 (k - 1), so the final settlement price is their average 2.820.

* 06-26: A buys 3 from B @ 2.800, C buys 2 from B @ 2.810, both in the closing window:
  VWAP 14020 / 5 = 2804 ticks. VM: A +12,000, C -12,000, B 0 (cents).
* 06-29: no trades, spread 200 ticks -> theo = (sum of 20 fixings + 2.838) / 21 = 2.8199
  -> 2820. VM: A +48,000, C +32,000, B -80,000.
* 06-30: final settlement 2820, VM 0; positions closed, contract expired.
Held to expiry: A 60,000 = (2820 - 2800) x 3 x 1000; C 20,000 = (2820 - 2810) x 2 x 1000.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import pytest

from clearing.batch import ClearingConfig, settle_day, settle_through
from clearing.ledger import Ledger
from contracts.errors import FlopexError
from tests.clearing import scenario
from tests.clearing.helpers import contract

IID = contract("H100M26").instrument_id


@pytest.fixture
def cfg(tmp_path):
    return ClearingConfig(scenario.build(tmp_path))


def vm_by_account(ledger: Ledger, day=None) -> dict[str, int]:
    q = (
        "SELECT a.name, SUM(e.amount_minor) FROM entries e JOIN ledger_accounts a "
        "USING (account_id) WHERE e.kind = 'variation_margin' AND e.instrument_id = ?"
    )
    args: list = [IID]
    if day is not None:
        q += " AND e.business_date = ?"
        args.append(day.isoformat())
    rows = ledger.db.execute(q + " GROUP BY a.name", args).fetchall()
    return {n: int(v) for n, v in rows}


def test_day_one_settles_on_vwap_and_books_hand_computed_vm(cfg) -> None:
    outcome = settle_day(cfg, scenario.D1)
    assert outcome.status == "settled"
    with Ledger(cfg.ledger_path) as ledger:
        (row,) = [r for r in ledger.settlement_prices(scenario.D1) if r[0] == IID]
        assert row[2:4] == (2804, "vwap")
        assert vm_by_account(ledger) == {"A": 12_000, "C": -12_000}  # B nets to 0: no entry
        assert ledger.entries_total() == 0


def test_three_days_to_expiry_match_the_hand_computation(cfg) -> None:
    settle_day(cfg, scenario.D1)
    outcomes = settle_through(cfg, scenario.D3)
    assert [o.status for o in outcomes] == ["settled", "settled"]
    with Ledger(cfg.ledger_path) as ledger:
        d2 = next(r for r in ledger.settlement_prices(scenario.D2) if r[0] == IID)
        d3 = next(r for r in ledger.settlement_prices(scenario.D3) if r[0] == IID)
        assert d2[2:4] == (2820, "theo")
        assert d3[2:4] == (2820, "final")
        assert vm_by_account(ledger, scenario.D2) == {"A": 48_000, "B": -80_000, "C": 32_000}
        # held to expiry: sum of VM = (final - entry) x qty x tick value
        assert vm_by_account(ledger) == {"A": 60_000, "B": -80_000, "C": 20_000}
        _a_ids, iids, _ = ledger.positions()
        assert IID not in iids.tolist()
        assert ledger.contract_states()[IID][1] == "expired"
        assert ledger.entries_total() == 0


def test_fees_are_booked_against_the_fees_account(cfg) -> None:
    settle_day(cfg, scenario.D1)
    with Ledger(cfg.ledger_path) as ledger:
        fees = dict(
            ledger.db.execute(
                "SELECT a.name || '/' || a.kind, SUM(amount_minor) FROM entries e JOIN "
                "ledger_accounts a USING (account_id) WHERE e.kind = 'clearing_fee' GROUP BY 1"
            ).fetchall()
        )
    assert fees == {"A/cash": -150, "B/cash": -250, "C/cash": -100, "CLEARING-HOUSE/fees": 500}


def test_rerunning_a_date_changes_nothing_and_says_so(cfg) -> None:
    settle_day(cfg, scenario.D1)
    with Ledger(cfg.ledger_path) as ledger:
        before = ledger.fingerprint()
    outcome = settle_day(cfg, scenario.D1)
    with Ledger(cfg.ledger_path) as ledger:
        assert ledger.fingerprint() == before
    assert outcome.status == "already"


def test_reports_and_published_settlement_prices(cfg) -> None:
    settle_day(cfg, scenario.D1)
    reports = cfg.clearing_dir / "reports" / "2026-06-26"
    rows = list(csv.DictReader((reports / "statements.csv").open()))
    a = next(r for r in rows if r["account"] == "A" and r["symbol"] == "H100M26")
    assert (a["qty"], a["settlement"], a["variation_margin"], a["clearing_fee"]) == (
        "3",
        "2.804",
        "120.00",
        "1.50",
    )
    statements = json.loads((reports / "statements.json").read_text())
    assert {s["account"]: s["variation_margin"] for s in statements} == {
        "A": "120.00",
        "B": "0.00",
        "C": "-120.00",
    }
    prices = json.loads((reports / "settlement-prices.json").read_text())
    assert next(p for p in prices if p["symbol"] == "H100M26")["tier"] == "vwap"
    published = list(csv.DictReader((cfg.data_dir / "settlement" / "2026-06-26.csv").open()))
    m26 = next(r for r in published if r["symbol"] == "H100M26")
    assert (m26["settlement_ticks"], m26["settlement_price"], m26["tier"]) == (
        "2804",
        "2.804",
        "vwap",
    )


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("tradelog/2026-06-26.csv", "no trade log for this trading day"),
        ("close/2026-06-26.csv", "no close record for this trading day"),
        ("index/2026-06-26.csv", "no index data for 2026-06-26"),
    ],
)
def test_missing_inputs_stop_the_job_with_nothing_booked(cfg, remove, message) -> None:
    (cfg.data_dir / remove).unlink()
    with pytest.raises(FlopexError, match=message):
        settle_day(cfg, scenario.D1)
    with Ledger(cfg.ledger_path) as ledger:
        assert ledger.settled_dates() == []
        assert ledger.entries_total() == 0
        assert ledger.fingerprint()[0] == (0, 0)
    assert not (cfg.data_dir / "settlement" / "2026-06-26.csv").exists()


def test_dates_must_be_settled_in_order(cfg) -> None:
    settle_day(cfg, scenario.D1)
    with pytest.raises(FlopexError, match="settle 2026-06-29 first"):
        settle_day(cfg, scenario.D3)


def test_a_run_killed_midway_leaves_the_previous_state_and_the_rerun_completes(cfg) -> None:
    settle_day(cfg, scenario.D1)
    with Ledger(cfg.ledger_path) as ledger:
        before = ledger.fingerprint()
    script = textwrap.dedent(
        f"""
        import datetime as dt, os
        from pathlib import Path
        from clearing import ledger as L
        original = L.Ledger._write_positions
        def die_midway(self, booking):
            original(self, booking)  # entries and positions written, not committed
            os._exit(9)
        L.Ledger._write_positions = die_midway
        from clearing.batch import ClearingConfig, settle_day
        settle_day(ClearingConfig(Path({str(cfg.data_dir)!r})), dt.date(2026, 6, 29))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == 9
    with Ledger(cfg.ledger_path) as ledger:
        assert ledger.fingerprint() == before
        assert ledger.last_settled() == scenario.D1
    assert settle_day(cfg, scenario.D2).status == "settled"
    with Ledger(cfg.ledger_path) as ledger:
        assert vm_by_account(ledger, scenario.D2) == {"A": 48_000, "B": -80_000, "C": 32_000}
        assert ledger.entries_total() == 0


def test_unbalanced_trade_log_is_refused(cfg) -> None:
    path = cfg.data_dir / "tradelog" / "2026-06-26.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")  # drop one side of a fill
    with pytest.raises(FlopexError, match="H100M26: bought and sold sides do not balance"):
        settle_day(cfg, scenario.D1)
