# ruff: noqa: E741  (O is the order-field array, named as in DESIGN.md)
"""Reading the kernel's state from Python: book snapshots and the internal-state validator.

Both walk the arrays in plain Python (O(orders + levels)); they are for tests, recovery
checks and market-data snapshots, not for the hot path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exchange.engine import kernel as K
from exchange.engine.state import EngineState, inst_bucket

_STOP_TYPES = (K.T_STOP_MARKET, K.T_STOP_LIMIT)


def _order_tuple(st: EngineState, slot: int) -> tuple[int, ...]:
    O = st.O
    f = int(O[slot, K.F_FLAGS])
    otype = (f >> 2) & 7
    hidden = 0 if otype in _STOP_TYPES else int(O[slot, K.F_HIDDEN])
    return (
        (int(O[slot, K.F_GEN]) << 32) | slot,
        f & 3,
        otype,
        (f >> 5) & 7,
        int(O[slot, K.F_PRICE]),
        int(O[slot, K.F_STOP]),
        int(O[slot, K.F_SHOWN]),
        hidden,
        int(O[slot, K.F_DISPLAY]),
        int(np.uint32(O[slot, K.F_ACCOUNT])),
        int(np.uint32(O[slot, K.F_GROUP])),
        (f >> 8) & 3,
        (f >> 10) & 1,
        _pair(O, slot, K.F_UREF_LO) & 0xFFFFFFFFFFFFFFFF,
        _pair(O, slot, K.F_EXP_LO),
    )


def _pair(O: np.ndarray, slot: int, f: int) -> int:
    """A 64-bit value stored as two int32 halves (signed)."""
    return (int(O[slot, f + 1]) << 32) | (int(O[slot, f]) & 0xFFFFFFFF)


def _level_slots(st: EngineState, L: int) -> list[int]:
    out = []
    r = int(st.LV[0, L])
    while r >= 0:
        out.append(r)
        r = int(st.O[r, K.F_NEXT])
    return out


def _nonempty(st: EngineState, i: int, book: int) -> np.ndarray:
    """Non-empty level indices of one ladder, ascending."""
    row = st.INST[i]
    base = int(row[K.I_LADDER] + book * row[K.I_NLEV])
    return np.flatnonzero(st.LV[2, base : base + int(row[K.I_NLEV])] > 0)


def snapshot(st: EngineState) -> dict[str, Any]:
    """Same structure as :meth:`ReferenceBook.snapshot`."""
    out: dict[str, Any] = {"next_match_id": int(st.S[K.S_MATCH_ID]), "instruments": {}}
    for i in range(st.INST.shape[0]):
        row = st.INST[i]

        def levels(book: int, descending: bool, row: Any = row, i: int = i) -> list[int]:
            idx = _nonempty(st, i, book).tolist()
            base = int(row[K.I_LADDER] + book * row[K.I_NLEV])
            return [base + x for x in (reversed(idx) if descending else idx)]

        def agg(ls: list[int], row: Any = row) -> list[tuple[int, int, int]]:
            base_min = int(row[K.I_MIN])
            nlev = int(row[K.I_NLEV])
            lad = int(row[K.I_LADDER])
            return [((L - lad) % nlev + base_min, int(st.LVT[L]), int(st.LV[2, L])) for L in ls]

        def orders(ls: list[int]) -> list[tuple[int, ...]]:
            return [_order_tuple(st, s) for L in ls for s in _level_slots(st, L)]

        bids, asks = levels(K.B_BID, True), levels(K.B_ASK, False)
        out["instruments"][int(row[K.I_ID])] = {
            "status": int(row[K.I_STATUS]),
            "reference": int(row[K.I_REF]),
            "last": int(row[K.I_LAST]) if row[K.I_HAS_LAST] else None,
            "iop": tuple(int(x) for x in row[K.I_IOP : K.I_IOP + 4]),
            "bids": agg(bids),
            "asks": agg(asks),
            "bid_orders": orders(bids),
            "ask_orders": orders(asks),
            "buy_stops": orders(levels(K.B_BUY_STOP, False)),
            "sell_stops": orders(levels(K.B_SELL_STOP, True)),
        }
    return out


def validate(st: EngineState) -> None:
    """Check the kernel's invariants; raise AssertionError naming the first broken one.

    Linked lists are symmetric and end at head/tail; counts and visible totals match the
    orders; a level's bitmap bit is set iff it has orders; cached best prices are the
    extreme non-empty levels; books of OPEN instruments are not crossed (pre-open may
    cross); every live order is linked exactly once on the level its price says;
    free-list slots are free and unique.
    """
    O, LV, LVT = st.O, st.LV, st.LVT
    cap = O.shape[0]
    linked = np.zeros(cap, dtype=bool)
    for i in range(st.INST.shape[0]):
        row = st.INST[i]
        nlev, mn = int(row[K.I_NLEV]), int(row[K.I_MIN])
        bests = []
        for book in range(4):
            base = int(row[K.I_LADDER] + book * nlev)
            w0 = int(row[K.I_BM] + book * row[K.I_NWORDS])
            bits = np.unpackbits(
                st.BM[w0 : w0 + int(row[K.I_NWORDS])].view(np.uint8), bitorder="little"
            )[:nlev].astype(bool)
            counts = LV[2, base : base + nlev]
            assert np.array_equal(bits, counts > 0), f"bitmap disagrees with counts (book {book})"
            ne = np.flatnonzero(counts > 0)
            high = book in (K.B_BID, K.B_SELL_STOP)
            expect = -1 if len(ne) == 0 else int(ne[-1] if high else ne[0])
            assert int(row[K.I_BEST + book]) == expect, f"cached best wrong (book {book})"
            bests.append(expect)
            for idx in ne.tolist():
                L = base + idx
                slots = _level_slots(st, L)
                assert len(slots) == int(LV[2, L]), f"level {idx + mn} count"
                assert slots[-1] == int(LV[1, L]), f"level {idx + mn} tail"
                prev = -1
                total = 0
                for s in slots:
                    assert int(O[s, K.F_PREV]) == prev, "prev link broken"
                    assert not linked[s], "order linked twice"
                    linked[s] = True
                    assert int(O[s, K.F_FLAGS]) >> K.INST_SHIFT == i, (
                        "order on the wrong instrument"
                    )
                    f = int(O[s, K.F_FLAGS])
                    is_stop = ((f >> 2) & 7) in _STOP_TYPES
                    assert is_stop == (book >= 2), "stop/resting order in the wrong book"
                    side = f & 3
                    assert book % 2 == side - 1, "order on the wrong side"
                    price = int(O[s, K.F_STOP if is_stop else K.F_PRICE])
                    assert price == idx + mn, "order on the wrong level"
                    assert int(O[s, K.F_SHOWN]) > 0, "non-positive shown quantity"
                    total += int(O[s, K.F_SHOWN])
                    prev = s
                assert total == int(LVT[L]), f"level {idx + mn} total"
        if bests[0] >= 0 and bests[1] >= 0 and int(row[K.I_STATUS]) == K.ST_OPEN:
            assert bests[0] < bests[1], "crossed book while open"
    n_inst = st.INST.shape[0]
    for r in range(n_inst):
        walk = int(st.INST[inst_bucket(int(st.INST[r, K.I_ID]), n_inst), K.I_BUCKET])
        while walk >= 0 and walk != r:
            walk = int(st.INST[walk, K.I_CHAIN])
        assert walk == r, "instrument not reachable through its lookup bucket"
    count = int(st.S[K.S_FREE_COUNT])
    free = []
    s = int(st.S[K.S_FREE_HEAD])
    while s >= 0 and len(free) <= count:
        free.append(s)
        s = int(O[s, K.F_NEXT])
    assert len(free) == count and s == -1, "free chain length disagrees with the count"
    assert len(set(free)) == count, "free list has duplicates"
    assert np.all(O[free, K.F_FLAGS] == -1), "free slot is live"
    live = O[:, K.F_FLAGS] >= 0
    assert np.array_equal(live, linked), "live order not linked (or linked but free)"
    assert int(live.sum()) + count == cap, "slots leaked"
