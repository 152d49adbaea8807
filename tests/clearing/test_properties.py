"""Hypothesis properties of clearing: zero-sum VM, vectorised == reference, VM to expiry,
final price = average of fixings, idempotent batch re-runs. Bigger profiles are `slow`."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearing.batch import ClearingConfig, settle_day
from clearing.ledger import Ledger
from clearing.reference import reference_day
from clearing.settlement_prices import final_settlement_ticks
from clearing.synthetic import write_exchange_days, write_quote_files
from clearing.variation import compute_day
from contracts.calendar import BusinessCalendar
from tests.clearing.helpers import contract

N_ACC, N_C = 6, 3
TV = np.array([1000, 1000, 1000], np.int64)

fill = st.tuples(
    st.integers(0, N_ACC - 1),  # buyer
    st.integers(0, N_ACC - 1),  # seller
    st.integers(0, N_C - 1),  # contract
    st.integers(1, 50),  # qty
    st.integers(1, 40_000),  # price ticks
)
transfer = st.tuples(
    st.integers(0, N_ACC - 1), st.integers(0, N_ACC - 1), st.integers(0, N_C - 1),
    st.integers(1, 100),
)  # fmt: skip
prices = st.lists(st.integers(1, 40_000), min_size=N_C, max_size=N_C)


def _arrays(prior_pairs, fills):
    prior: dict[tuple[int, int], int] = {}
    for long_a, short_a, c, q in prior_pairs:
        prior[(long_a, c)] = prior.get((long_a, c), 0) + q
        prior[(short_a, c)] = prior.get((short_a, c), 0) - q
    prior = {k: v for k, v in prior.items() if v}
    rows = []
    for b, s, c, q, px in fills:
        rows += [(b, c, 1, q, px), (s, c, -1, q, px)]
    return prior, rows


def _vectorised(prior, rows, settle, prev):
    pk = list(prior)
    col = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
    i64 = lambda xs: np.array(list(xs), np.int64)  # noqa: E731
    return compute_day(
        i64(a for a, _ in pk), i64(c for _, c in pk), i64(prior.values()),
        i64(col[0]), i64(col[1]), i64(col[2]), i64(col[3]), i64(col[4]),
        i64(settle), i64(prev), TV, np.zeros(N_C, np.int64), N_ACC,
    )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(transfer, max_size=8), st.lists(fill, max_size=30), prices, prices)
def test_vm_sums_to_zero_and_matches_the_reference(prior_pairs, fills, settle, prev) -> None:
    prior, rows = _arrays(prior_pairs, fills)
    day = _vectorised(prior, rows, settle, prev)
    per_contract = np.zeros(N_C, np.int64)
    np.add.at(per_contract, day.cidx, day.vm)
    assert per_contract.tolist() == [0] * N_C
    ref = reference_day(
        prior, rows, dict(enumerate(settle)), dict(enumerate(prev)), dict(enumerate(TV.tolist()))
    )
    got = {
        (int(a), int(c)): (int(q), int(v))
        for a, c, q, v in zip(day.account, day.cidx, day.qty, day.vm, strict=True)
    }
    assert got == ref


@settings(max_examples=60, deadline=None)
@given(
    entry=st.integers(1, 40_000),
    qty=st.integers(1, 500),
    path=st.lists(st.integers(1, 40_000), min_size=1, max_size=25),
    noise=st.lists(st.lists(fill, max_size=4), min_size=25, max_size=25),
)
def test_vm_of_a_position_held_to_expiry_is_final_minus_entry(entry, qty, path, noise) -> None:
    # Account 0 buys `qty` of contract 0 at `entry` from account 1 on day 0 and holds;
    # others trade around it. The last settle in `path` is the final settlement price.
    prior: dict[tuple[int, int], int] = {}
    prev = [0, 0, 0]
    total = 0
    for k, s in enumerate(path):
        others = [(b + 2, s_ + 2, c, q, px) for b, s_, c, q, px in noise[k] if b % 4 != s_ % 4]
        others = [(2 + b % 4, 2 + s_ % 4, c, q, px) for b, s_, c, q, px in others]
        fills = ([(0, 1, 0, qty, entry)] if k == 0 else []) + others
        _, rows = _arrays([], fills)
        settle = [s, s, s]
        day = _vectorised(prior, rows, settle, prev)
        sel = (day.account == 0) & (day.cidx == 0)
        total += int(day.vm[sel].sum())
        prior = {(int(a), int(c)): int(q) for a, c, q in zip(day.account, day.cidx, day.qty,
                 strict=True) if q}  # fmt: skip
        prev = settle
    assert total == (path[-1] - entry) * qty * 1000


M26 = contract("H100M26")
N_FIX = len(M26.fixing_days)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 50_000_000), min_size=N_FIX, max_size=N_FIX))
def test_final_price_is_the_half_even_average_of_the_fixings(values) -> None:
    fixings = dict(zip(M26.fixing_days, values, strict=True))
    avg = Decimal(sum(values)) / Decimal(10**6) / Decimal(N_FIX)
    expected = int((avg / Decimal("0.001")).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    assert final_settlement_ticks(M26, fixings) == expected


def _synthetic_dir(tmp_path_factory, seed: int):
    cal = BusinessCalendar.default()
    days = cal.business_days(dt.date(2026, 7, 6), dt.date(2026, 7, 8))
    d = tmp_path_factory.mktemp(f"syn{seed}")
    write_quote_files(d, dt.date(2026, 7, 1), days[-1], seed=seed)
    write_exchange_days(d, days, n_accounts=8, matches_per_day=40, seed=seed)
    return d, days


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000))
def test_rerunning_any_settled_date_is_a_no_op(tmp_path_factory, seed) -> None:
    d, days = _synthetic_dir(tmp_path_factory, seed)
    cfg = ClearingConfig(d)
    for day in days:
        settle_day(cfg, day)
    with Ledger(cfg.ledger_path) as ledger:
        before = ledger.fingerprint()
        assert ledger.entries_total() == 0
    assert all(settle_day(cfg, day).status == "already" for day in days)
    with Ledger(cfg.ledger_path) as ledger:
        assert ledger.fingerprint() == before


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(st.lists(transfer, max_size=30), st.lists(fill, max_size=200), prices, prices)
def test_vm_matches_the_reference_large(prior_pairs, fills, settle, prev) -> None:
    test_vm_sums_to_zero_and_matches_the_reference.hypothesis.inner_test(
        prior_pairs, fills, settle, prev
    )
