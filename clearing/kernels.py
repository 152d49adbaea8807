"""Numba kernels for the settlement hot paths: one pass over the fills, no allocation.

Both kernels are plain loops over int64 arrays (``@njit(cache=True)``), replacing chains of
numpy temporaries over ten million trade-log rows with a single pass. Their numpy
equivalents are the readable specification in :mod:`clearing.variation` (sorted path) and
:mod:`clearing.reference`; the tests check the kernels against both.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def window_sums(
    cidx: np.ndarray,
    side: np.ndarray,
    ts_ns: np.ndarray,
    qty: np.ndarray,
    price: np.ndarray,
    close_ns: np.ndarray,
    window_ns: np.ndarray,
    vol: np.ndarray,
    notional: np.ndarray,
) -> None:
    """Add each buy row inside its contract's ``[close - window, close]`` to ``vol`` and
    ``notional`` (price x qty). Rows with ``cidx < 0`` are skipped. O(rows)."""
    for i in range(cidx.shape[0]):
        c = cidx[i]
        if c < 0 or side[i] <= 0:
            continue
        t = ts_ns[i]
        if close_ns[c] - window_ns[c] <= t <= close_ns[c]:
            vol[c] += qty[i]
            notional[c] += qty[i] * price[i]


@njit(cache=True)
def accumulate_cells(
    prior_account: np.ndarray,
    prior_cidx: np.ndarray,
    prior_qty: np.ndarray,
    trade_account: np.ndarray,
    account_map: np.ndarray,
    trade_cidx: np.ndarray,
    side: np.ndarray,
    qty: np.ndarray,
    price: np.ndarray,
    n_c: int,
    sums: np.ndarray,
) -> None:
    """Scatter prior positions and fills into ``sums[cell] = (prior, net, gross, notional)``
    with cell = account x n_c + contract; ``net`` = signed lots, ``gross`` = lots traded,
    ``notional`` = signed lots x price. A fill's account is ``account_map[trade_account]``
    when ``account_map`` is non-empty. One row of ``sums`` is one cache line's worth, so
    each fill costs one random memory access. O(positions + rows)."""
    for i in range(prior_account.shape[0]):
        sums[prior_account[i] * n_c + prior_cidx[i], 0] += prior_qty[i]
    mapped = account_map.shape[0] > 0
    for i in range(trade_account.shape[0]):
        a = account_map[trade_account[i]] if mapped else trade_account[i]
        k = a * n_c + trade_cidx[i]
        q = qty[i]
        sq = side[i] * q
        sums[k, 1] += sq
        sums[k, 2] += q
        sums[k, 3] += sq * price[i]


@njit(cache=True)
def lookup(table: np.ndarray, keys: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = table[keys[i]]``, or -1 where the key is outside the table. O(rows)."""
    n = table.shape[0]
    for i in range(keys.shape[0]):
        k = keys[i]
        out[i] = table[k] if 0 <= k < n else -1
