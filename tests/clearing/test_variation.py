"""Variation margin: hand-computed examples and the zero-sum invariant.

One contract with tick value 1000 cents ($10 per tick, as H100: $0.001 x 10,000 GPU-hours).
"""

from __future__ import annotations

import numpy as np
import pytest

from clearing.variation import ClearingInvariantError, compute_day

TV = np.array([1000], np.int64)
FEE = np.array([0], np.int64)


def a(*xs: int) -> np.ndarray:
    return np.array(xs, np.int64)


def run(prior, trades, settle=2804, prev=2790, fee=FEE, n_accounts=3):
    """prior: [(account, qty)], trades: [(account, side, qty, price)] on contract 0."""
    pa = a(*[p[0] for p in prior])
    pq = a(*[p[1] for p in prior])
    ta = a(*[t[0] for t in trades])
    return compute_day(
        pa, np.zeros_like(pa), pq,
        ta, np.zeros_like(ta), a(*[t[1] for t in trades]), a(*[t[2] for t in trades]),
        a(*[t[3] for t in trades]),
        a(settle), a(prev), TV, fee, n_accounts,
    )  # fmt: skip


def by_account(day) -> dict[int, tuple[int, int]]:
    return {int(x): (int(q), int(v)) for x, q, v in zip(day.account, day.qty, day.vm, strict=True)}


def test_prior_position_marks_to_the_settlement_change() -> None:
    # A long 3 from 2790 to 2804: 3 x 14 x $10 = $420 = 42000 cents; B short 3 pays it
    day = run([(0, 3), (1, -3)], [])
    assert by_account(day) == {0: (3, 42_000), 1: (-3, -42_000)}


def test_todays_trade_marks_from_trade_price_to_settlement() -> None:
    # A buys 2 @ 2800 from B, settle 2804: A +2 x 4 x 1000 = 8000, B -8000
    day = run([], [(0, 1, 2, 2800), (1, -1, 2, 2800)])
    assert by_account(day) == {0: (2, 8_000), 1: (-2, -8_000)}


def test_prior_position_and_trades_combine() -> None:
    # A long 3 (+42000) buys 2 @ 2800 (+8000); B short 3 (-42000) sells 2 (-8000);
    # C buys 1 @ 2810 from A: C -6000 (1 x -6 x 1000), A +6000 -> A 56000, B -50000
    day = run(
        [(0, 3), (1, -3)],
        [(0, 1, 2, 2800), (1, -1, 2, 2800), (2, 1, 1, 2810), (0, -1, 1, 2810)],
    )
    assert by_account(day) == {0: (4, 56_000), 1: (-5, -50_000), 2: (1, -6_000)}
    assert int(day.vm.sum()) == 0


def test_round_trip_intraday_locks_in_the_trade_pnl() -> None:
    # A buys 1 @ 2800 and sells 1 @ 2806 (vs B): flat, +6 ticks = 6000 cents whatever S is
    day = run([], [(0, 1, 1, 2800), (1, -1, 1, 2800), (0, -1, 1, 2806), (1, 1, 1, 2806)])
    assert by_account(day) == {0: (0, 6_000), 1: (0, -6_000)}


def test_fees_are_per_lot_traded_and_not_part_of_vm() -> None:
    day = run([], [(0, 1, 2, 2800), (1, -1, 2, 2800)], fee=a(50))
    assert day.fee.tolist() == [100, 100]
    assert int(day.vm.sum()) == 0


def test_unbalanced_prior_positions_are_refused() -> None:
    with pytest.raises(ClearingInvariantError, match="do not net to zero"):
        run([(0, 3), (1, -2)], [])


def test_unbalanced_fills_break_zero_sum_and_are_refused() -> None:
    with pytest.raises(ClearingInvariantError, match="sums to 8000, not zero"):
        run([], [(0, 1, 2, 2800)])


def test_sorted_grouping_matches_dense_grouping(monkeypatch) -> None:
    import clearing.variation as variation

    trades = [(0, 1, 2, 2800), (2, -1, 2, 2800), (1, 1, 5, 2790), (0, -1, 5, 2790)]
    dense = run([(0, 3), (1, -3)], trades)
    monkeypatch.setattr(variation, "DENSE_LIMIT", 0)
    sparse = run([(0, 3), (1, -3)], trades)
    assert by_account(dense) == by_account(sparse)
