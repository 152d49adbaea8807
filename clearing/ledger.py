"""The clearing ledger: double-entry bookkeeping in SQLite (WAL), one transaction per date.

Tables (``docs/clearing.md`` has the full description):

* ``ledger_accounts`` — every account money can sit in: each member's ``cash`` (and, for the
  margin issue, ``margin``), the clearing house's ``settlement`` account (the central
  counterparty of every variation-margin flow) and ``fees``.
* ``entries`` — the journal; ``amount_minor`` is signed int64 minor units (credit to the
  account > 0). Every business date's entries sum to zero, so all entries always do.
* ``batches`` — one row per completed business date; its presence makes re-runs no-ops.
* ``positions`` — open positions after the last completed date.
* ``contracts`` — per instrument its last settlement price and status (active / expired).
* ``settlement_prices`` and ``fixings`` — the published history.

A date is booked by :meth:`Ledger.book` in a single ``BEGIN IMMEDIATE`` … ``COMMIT``: a run
killed midway leaves the previous state, and the next run books the date afresh.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clearing.index import Fixing
from clearing.settlement_prices import SettlementPrice
from clearing.variation import ClearingInvariantError

CH_SETTLEMENT = "CLEARING-HOUSE"
CH_FEES = "CLEARING-HOUSE"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_accounts (
    account_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('cash', 'margin', 'settlement', 'fees')),
    UNIQUE (name, kind)
);
CREATE TABLE IF NOT EXISTS batches (
    business_date TEXT PRIMARY KEY,
    completed_at TEXT NOT NULL,
    first_entry_id INTEGER NOT NULL,
    last_entry_id INTEGER NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    entry_id INTEGER PRIMARY KEY,
    business_date TEXT NOT NULL,
    account_id INTEGER NOT NULL,
    instrument_id INTEGER,
    kind TEXT NOT NULL,
    amount_minor INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    account_id INTEGER NOT NULL,
    instrument_id INTEGER NOT NULL,
    qty INTEGER NOT NULL,
    PRIMARY KEY (account_id, instrument_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contracts (
    instrument_id INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'expired')),
    last_settle_date TEXT,
    last_settle_ticks INTEGER,
    final_ticks INTEGER,
    expired_on TEXT
);
CREATE TABLE IF NOT EXISTS settlement_prices (
    business_date TEXT NOT NULL,
    instrument_id INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    ticks INTEGER NOT NULL,
    tier TEXT NOT NULL,
    basis TEXT NOT NULL,
    clamped INTEGER NOT NULL,
    unclamped_ticks INTEGER NOT NULL,
    PRIMARY KEY (business_date, instrument_id)
);
CREATE TABLE IF NOT EXISTS fixings (
    index_id TEXT NOT NULL,
    business_date TEXT NOT NULL,
    value INTEGER NOT NULL,
    status TEXT NOT NULL,
    methodology TEXT NOT NULL,
    reason TEXT NOT NULL,
    carried_from TEXT,
    inputs TEXT NOT NULL,
    PRIMARY KEY (index_id, business_date)
);
"""


@dataclass
class DayBooking:
    """Everything one business date books, prepared in memory before the transaction."""

    day: dt.date
    new_accounts: Sequence[tuple[int, str]]
    fixings: Sequence[Fixing]
    prices: Sequence[SettlementPrice]
    # per (account, contract) variation margin rows
    vm_account: np.ndarray
    vm_instrument: np.ndarray
    vm_amount: np.ndarray
    # per account fees
    fee_account: np.ndarray
    fee_amount: np.ndarray
    # positions after the date (nonzero only)
    pos_account: np.ndarray
    pos_instrument: np.ndarray
    pos_qty: np.ndarray
    expired: Mapping[int, int]  # instrument id -> final settlement ticks
    summary: Mapping[str, object]


class Ledger:
    """A clearing ledger stored in one SQLite file (created on first open)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._ensure_house_accounts()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_house_accounts(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(
            "INSERT OR IGNORE INTO ledger_accounts (name, kind) VALUES (?, 'settlement'), "
            "(?, 'fees')",
            (CH_SETTLEMENT, CH_FEES),
        )
        self.db.execute("COMMIT")

    # ---- reads -------------------------------------------------------------------------

    def house_account(self, kind: str) -> int:
        row = self.db.execute(
            "SELECT account_id FROM ledger_accounts WHERE kind = ?", (kind,)
        ).fetchone()
        return int(row[0])

    def member_accounts(self) -> dict[str, int]:
        """Member name -> id of its cash account."""
        rows = self.db.execute("SELECT name, account_id FROM ledger_accounts WHERE kind = 'cash'")
        return dict(rows.fetchall())

    def max_account_id(self) -> int:
        return int(self.db.execute("SELECT MAX(account_id) FROM ledger_accounts").fetchone()[0])

    def settled_dates(self) -> list[dt.date]:
        rows = self.db.execute("SELECT business_date FROM batches ORDER BY business_date")
        return [dt.date.fromisoformat(r[0]) for r in rows]

    def last_settled(self) -> dt.date | None:
        row = self.db.execute("SELECT MAX(business_date) FROM batches").fetchone()
        return dt.date.fromisoformat(row[0]) if row[0] else None

    def is_settled(self, day: dt.date) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM batches WHERE business_date = ?", (day.isoformat(),)
        ).fetchone()
        return row is not None

    def batch_summary(self, day: dt.date) -> dict | None:
        row = self.db.execute(
            "SELECT summary FROM batches WHERE business_date = ?", (day.isoformat(),)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Open positions ``(account_id, instrument_id, qty)`` as int64 arrays."""
        rows = self.db.execute("SELECT account_id, instrument_id, qty FROM positions").fetchall()
        if not rows:
            z = np.zeros(0, np.int64)
            return z, z.copy(), z.copy()
        arr = np.array(rows, np.int64)
        return arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()

    def contract_states(self) -> dict[int, tuple[str, str, int | None]]:
        """instrument id -> (symbol, status, last settlement ticks)."""
        rows = self.db.execute(
            "SELECT instrument_id, symbol, status, last_settle_ticks FROM contracts"
        )
        return {int(r[0]): (r[1], r[2], r[3]) for r in rows}

    def fixings(self, index_id: str) -> dict[dt.date, int]:
        rows = self.db.execute(
            "SELECT business_date, value FROM fixings WHERE index_id = ?", (index_id,)
        )
        return {dt.date.fromisoformat(d): int(v) for d, v in rows}

    def fixing_records(self, index_id: str) -> list[tuple[dt.date, int, str]]:
        rows = self.db.execute(
            "SELECT business_date, value, status FROM fixings WHERE index_id = ? "
            "ORDER BY business_date",
            (index_id,),
        )
        return [(dt.date.fromisoformat(d), int(v), s) for d, v, s in rows]

    def settlement_prices(self, day: dt.date) -> list[tuple]:
        return self.db.execute(
            "SELECT instrument_id, symbol, ticks, tier, basis, clamped, unclamped_ticks "
            "FROM settlement_prices WHERE business_date = ? ORDER BY instrument_id",
            (day.isoformat(),),
        ).fetchall()

    def balances(self) -> dict[int, int]:
        """account id -> balance (sum of its entries)."""
        rows = self.db.execute(
            "SELECT account_id, SUM(amount_minor) FROM entries GROUP BY account_id"
        )
        return {int(a): int(s) for a, s in rows}

    def entries_total(self) -> int:
        """Sum of every entry ever booked (always zero)."""
        return int(
            self.db.execute("SELECT COALESCE(SUM(amount_minor), 0) FROM entries").fetchone()[0]
        )

    def fingerprint(self) -> tuple:
        """A cheap digest of the ledger's state, for idempotency checks in tests."""
        q = self.db.execute
        return (
            q("SELECT COUNT(*), COALESCE(SUM(amount_minor * entry_id), 0) FROM entries").fetchone(),
            q("SELECT COUNT(*), COALESCE(SUM(qty * account_id), 0) FROM positions").fetchone(),
            q("SELECT COUNT(*) FROM batches").fetchone(),
            q("SELECT COUNT(*), COALESCE(SUM(ticks), 0) FROM settlement_prices").fetchone(),
            q("SELECT COUNT(*) FROM ledger_accounts").fetchone(),
            q("SELECT COUNT(*) FROM fixings").fetchone(),
        )

    # ---- the one write path --------------------------------------------------------------

    def book(self, b: DayBooking) -> None:
        """Book one business date atomically. Raises ClearingInvariantError (rolled back)
        if the date's entries do not sum to zero. O(rows) with executemany."""
        day = b.day.isoformat()
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if self.is_settled(b.day):
                raise ClearingInvariantError(f"{day} is already settled")
            first = int(db.execute("SELECT COALESCE(MAX(entry_id), 0) FROM entries").fetchone()[0])
            db.executemany(
                "INSERT INTO ledger_accounts (account_id, name, kind) VALUES (?, ?, 'cash')",
                b.new_accounts,
            )
            self._write_fixings(b.fixings)
            self._write_prices(day, b.prices)
            self._write_entries(day, b)
            self._write_positions(b)
            last = int(db.execute("SELECT COALESCE(MAX(entry_id), 0) FROM entries").fetchone()[0])
            total = db.execute(
                "SELECT COALESCE(SUM(amount_minor), 0) FROM entries WHERE entry_id > ?", (first,)
            ).fetchone()[0]
            if total != 0:
                raise ClearingInvariantError(f"{day}: entries sum to {total}, not zero")
            db.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?)",
                (
                    day,
                    dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    first + 1,
                    last,
                    json.dumps(b.summary, sort_keys=True),
                ),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _write_fixings(self, fixings: Iterable[Fixing]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO fixings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f.index_id,
                    f.day.isoformat(),
                    f.value,
                    f.status,
                    f.version,
                    f.reason,
                    f.carried_from.isoformat() if f.carried_from else None,
                    json.dumps([i.to_dict() for i in f.inputs]),
                )
                for f in fixings
            ],
        )

    def _write_prices(self, day: str, prices: Iterable[SettlementPrice]) -> None:
        prices = list(prices)
        self.db.executemany(
            "INSERT INTO settlement_prices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (day, p.instrument_id, p.symbol, p.ticks, p.tier, p.basis, int(p.clamped),
                 p.unclamped_ticks)
                for p in prices
            ],
        )  # fmt: skip
        self.db.executemany(
            "INSERT INTO contracts (instrument_id, symbol, status, last_settle_date, "
            "last_settle_ticks) VALUES (?, ?, ?, ?, ?) ON CONFLICT (instrument_id) DO UPDATE "
            "SET last_settle_date = excluded.last_settle_date, "
            "last_settle_ticks = excluded.last_settle_ticks, status = excluded.status, "
            "final_ticks = CASE WHEN excluded.status = 'expired' THEN excluded.last_settle_ticks "
            "ELSE final_ticks END, "
            "expired_on = CASE WHEN excluded.status = 'expired' THEN excluded.last_settle_date "
            "ELSE expired_on END",
            [
                (p.instrument_id, p.symbol, "expired" if p.tier == "final" else "active", day,
                 p.ticks)
                for p in prices
            ],
        )  # fmt: skip

    def _write_entries(self, day: str, b: DayBooking) -> None:
        db = self.db
        nz = b.vm_amount != 0
        vm_a, vm_i, vm_x = b.vm_account[nz], b.vm_instrument[nz], b.vm_amount[nz]
        n = int(vm_a.shape[0])
        db.executemany(
            "INSERT INTO entries (business_date, account_id, instrument_id, kind, amount_minor) "
            "VALUES (?, ?, ?, 'variation_margin', ?)",
            zip([day] * n, vm_a.tolist(), vm_i.tolist(), vm_x.tolist(), strict=True),
        )
        # The clearing house's settlement account is the counterparty: it collects from
        # every loser and pays every winner, per contract (two legs, netting to zero).
        house = self.house_account("settlement")
        legs = []
        for iid in np.unique(vm_i).tolist():
            m = vm_i == iid
            paid = int(vm_x[m & (vm_x > 0)].sum())
            collected = int(vm_x[m & (vm_x < 0)].sum())
            legs.append((day, house, iid, "vm_collected", -collected))
            legs.append((day, house, iid, "vm_paid", -paid))
        fz = b.fee_amount != 0
        fa, fx = b.fee_account[fz], b.fee_amount[fz]
        db.executemany(
            "INSERT INTO entries (business_date, account_id, instrument_id, kind, amount_minor) "
            "VALUES (?, ?, NULL, 'clearing_fee', ?)",
            zip([day] * int(fa.shape[0]), fa.tolist(), (-fx).tolist(), strict=True),
        )
        if fa.shape[0]:
            legs.append((day, self.house_account("fees"), None, "clearing_fee", int(fx.sum())))
        db.executemany(
            "INSERT INTO entries (business_date, account_id, instrument_id, kind, amount_minor) "
            "VALUES (?, ?, ?, ?, ?)",
            legs,
        )

    def _write_positions(self, b: DayBooking) -> None:
        self.db.execute("DELETE FROM positions")
        self.db.executemany(
            "INSERT INTO positions VALUES (?, ?, ?)",
            zip(b.pos_account.tolist(), b.pos_instrument.tolist(), b.pos_qty.tolist(), strict=True),
        )
