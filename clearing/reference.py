"""A plain-Python reference for positions and variation margin: the readable spec.

One dict entry per (account, contract), one loop iteration per fill. It is what
:func:`clearing.variation.compute_day` must agree with (differential tests) and the
baseline the settlement benchmark measures against. O(rows) with Python-level constants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def reference_day(
    prior: Mapping[tuple[int, int], int],
    fills: Iterable[tuple[int, int, int, int, int]],
    settle: Mapping[int, int],
    prev_settle: Mapping[int, int],
    tick_value: Mapping[int, int],
) -> dict[tuple[int, int], tuple[int, int]]:
    """``{(account, contract): (new_qty, vm_minor)}``.

    ``fills`` are ``(account, contract, side, qty, price_ticks)`` with side +1 buy / -1 sell.
    VM = tick value x (prior x (S - P) + sum side x qty x (S - price)).
    """
    out: dict[tuple[int, int], list[int]] = {}
    for (a, c), q in prior.items():
        out[(a, c)] = [q, tick_value[c] * q * (settle[c] - prev_settle[c])]
    for a, c, side, q, px in fills:
        row = out.setdefault((a, c), [0, 0])
        row[0] += side * q
        row[1] += tick_value[c] * side * q * (settle[c] - px)
    return {k: (v[0], v[1]) for k, v in out.items()}
