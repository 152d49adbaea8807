"""Positions and variation margin, vectorised over every account and contract.

For each account ``a`` and contract ``c`` on a business date, with settlement price ``S``,
previous settlement ``P`` and tick value ``tv`` (minor units per tick per contract)::

    VM[a, c] = tv x ( prior[a, c] x (S - P)  +  sum over today's fills of side x qty x (S - price) )
             = tv x ( prior x (S - P) + S x net_qty - signed_notional )

with ``side`` +1 for a buy and -1 for a sell. Because every fill has a buyer and a seller
at the same price and quantity, and prior positions net to zero per contract, VM sums to
zero per contract; :func:`compute_day` checks this and refuses to continue otherwise.
All arithmetic is int64 (ticks, lots, minor units); no float is involved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clearing.kernels import accumulate_cells


class ClearingInvariantError(RuntimeError):
    """An internal accounting invariant failed (a bug or corrupt input): nothing is booked."""


#: Above this many (account x contract) cells grouping switches from dense (numba) to sorted.
DENSE_LIMIT = 64_000_000


@dataclass
class DayPositions:
    """One row per (account, contract) with a prior position or a fill today.

    ``cidx`` indexes the contract arrays passed to :func:`compute_day`.
    """

    account: np.ndarray
    cidx: np.ndarray
    prior: np.ndarray
    bought: np.ndarray
    sold: np.ndarray
    net: np.ndarray
    notional: np.ndarray
    qty: np.ndarray
    vm: np.ndarray
    fee: np.ndarray

    def __len__(self) -> int:
        return int(self.account.shape[0])


def compute_day(
    prior_account: np.ndarray,
    prior_cidx: np.ndarray,
    prior_qty: np.ndarray,
    trade_account: np.ndarray,
    trade_cidx: np.ndarray,
    trade_side: np.ndarray,
    trade_qty: np.ndarray,
    trade_price: np.ndarray,
    settle: np.ndarray,
    prev_settle: np.ndarray,
    tick_value: np.ndarray,
    fee_per_lot: np.ndarray,
    n_accounts: int,
    account_map: np.ndarray | None = None,
) -> DayPositions:
    """Positions, VM and fees for every (account, contract) touched today. O(rows).

    ``account_map``, if given, maps ``trade_account`` values (e.g. indexes into a trade
    log's account names) to account ids. ``prev_settle[c]`` may be any value where no
    account held ``c`` before today (it then multiplies zero). Raises
    :class:`ClearingInvariantError` if VM does not sum to zero per contract, or if prior
    positions do not net to zero per contract.
    """
    n_c = int(settle.shape[0])
    i64 = np.int64
    size = max(1, n_accounts * n_c)
    amap = np.zeros(0, i64) if account_map is None else np.ascontiguousarray(account_map, i64)
    if size <= DENSE_LIMIT:
        sums = np.zeros((size, 4), i64)
        accumulate_cells(
            *(np.ascontiguousarray(x, i64) for x in (prior_account, prior_cidx, prior_qty)),
            np.ascontiguousarray(trade_account, i64), amap,
            *(np.ascontiguousarray(x, i64) for x in (trade_cidx, trade_side, trade_qty,
                                                     trade_price)),
            n_c, sums,
        )  # fmt: skip
        uniq = np.flatnonzero((sums[:, 0] != 0) | (sums[:, 2] != 0))
        cell_sums = sums[uniq]
        prior, net, gross, notional = (np.ascontiguousarray(cell_sums[:, j]) for j in range(4))
    else:
        if amap.shape[0]:
            trade_account = amap[trade_account]
        prior_cell = np.asarray(prior_account, i64) * n_c + prior_cidx
        trade_cell = np.asarray(trade_account, i64) * n_c + trade_cidx
        uniq, inv = np.unique(np.concatenate([prior_cell, trade_cell]), return_inverse=True)
        n_prior = prior_cell.shape[0]
        g_prior, g_trade = inv[:n_prior], inv[n_prior:]
        m = uniq.shape[0]
        prior = np.zeros(m, i64)
        net = np.zeros(m, i64)
        gross = np.zeros(m, i64)
        notional = np.zeros(m, i64)
        np.add.at(prior, g_prior, prior_qty)
        np.add.at(net, g_trade, trade_side * trade_qty)
        np.add.at(gross, g_trade, trade_qty)
        np.add.at(notional, g_trade, trade_side * trade_qty * trade_price)
    bought = (gross + net) // 2
    sold = (gross - net) // 2
    account = uniq // n_c
    cidx = uniq % n_c
    s = settle[cidx]
    vm = tick_value[cidx] * (prior * (s - prev_settle[cidx]) + s * net - notional)
    fee = fee_per_lot[cidx] * (bought + sold)
    per_contract_vm = np.zeros(n_c, np.int64)
    per_contract_oi = np.zeros(n_c, np.int64)
    np.add.at(per_contract_vm, cidx, vm)
    np.add.at(per_contract_oi, cidx, prior)
    if np.any(per_contract_oi):
        c = int(np.flatnonzero(per_contract_oi)[0])
        raise ClearingInvariantError(f"prior positions of contract #{c} do not net to zero")
    if np.any(per_contract_vm):
        c = int(np.flatnonzero(per_contract_vm)[0])
        raise ClearingInvariantError(
            f"variation margin of contract #{c} sums to {int(per_contract_vm[c])}, not zero"
        )
    return DayPositions(account, cidx, prior, bought, sold, net, notional, prior + net, vm, fee)
