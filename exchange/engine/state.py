# ruff: noqa: E741  (O is the order-field array, named as in DESIGN.md)
"""Engine state: the numpy arrays the kernel works on, their allocation and digest.

Arrays are allocated with ``np.full`` so every page is touched up front and matching
never page-faults. :class:`EngineState` is a plain container; the kernel receives the
arrays one by one (fewest-possible Python-boundary cost, see ``DESIGN.md``).

Memory: 60 bytes per order slot (15 int32 fields including the uint64 routing tag and the
int64 GTD expiry as halves, the instrument row packed into the flags; free slots chain
through their ``F_NEXT`` field, so the free list costs nothing)
plus 20 bytes per price level and a bit per level per book.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from contracts.errors import FlopexError
from exchange.engine import kernel as K
from exchange.engine.config import InstrumentConfig

#: Names of the state arrays, in the order ``kernel.process`` takes them (after C, E).
ARRAY_NAMES: tuple[str, ...] = ("O", "LV", "LVT", "BM", "INST", "S")
#: Width of ``INST`` before the indicative-price columns were appended (still loadable).
_INST_FIELDS_BEFORE_AUCTION = 21
#: Width of ``INST`` before the instrument-lookup hash columns were appended.
_INST_FIELDS_BEFORE_HASH = 25
#: Width of ``O`` before the instrument row moved into the flags (64-byte rows).
_O_FIELDS_BEFORE_PACK = 16


def _packed_order_rows(old: np.ndarray) -> np.ndarray:
    """Order rows of the 16-field layout (instrument in its own field 2, flags in 3) as
    today's 15-field rows (instrument in the flags' top bits; -1 flags for a free slot)."""
    inst = old[:, 2].astype(np.int64)
    flags = old[:, 3].astype(np.int64) | (inst << K.INST_SHIFT)
    new = _aligned_rows(old.shape[0], K.N_OFIELDS)
    new[:, : K.F_FLAGS] = old[:, :2]
    new[:, K.F_FLAGS] = np.where(inst >= 0, flags, -1).astype(np.int32)
    new[:, K.F_FLAGS + 1 :] = old[:, 4:]
    return new


def inst_bucket(instrument_id: int, rows: int) -> int:
    """Hash bucket of an instrument id among ``rows`` instruments: Fibonacci hashing into
    ``2**k <= rows`` buckets, exactly as ``kernel._find_inst`` computes it."""
    if rows == 1:
        return 0
    k = rows.bit_length() - 1
    return ((instrument_id * K.HASH_MUL) & 0xFFFFFFFFFFFFFFFF) >> (64 - k)


def link_instrument_buckets(inst: np.ndarray) -> None:
    """Fill the ``I_BUCKET`` / ``I_CHAIN`` columns so the kernel finds an instrument's
    row by id in expected O(1) (rows in a bucket chain in ascending order)."""
    n = inst.shape[0]
    inst[:, K.I_BUCKET] = -1
    inst[:, K.I_CHAIN] = -1
    tails: dict[int, int] = {}
    for r in range(n):
        b = inst_bucket(int(inst[r, K.I_ID]), n)
        if b in tails:
            inst[tails[b], K.I_CHAIN] = r
        else:
            inst[b, K.I_BUCKET] = r
        tails[b] = r


@dataclass
class EngineState:
    """All mutable engine state. Two states with equal arrays behave identically."""

    O: np.ndarray
    LV: np.ndarray
    LVT: np.ndarray
    BM: np.ndarray
    INST: np.ndarray
    S: np.ndarray

    def arrays(self) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, n) for n in ARRAY_NAMES)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Copies of every array, by name (for ``np.savez`` snapshots)."""
        return {n: getattr(self, n).copy() for n in ARRAY_NAMES}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> EngineState:
        """Rebuild a state from :meth:`to_arrays` output (validated for shape and dtype)."""
        missing = [n for n in ARRAY_NAMES if n not in arrays]
        if missing:
            raise FlopexError(f"engine snapshot: missing array {missing[0]}")
        st = cls(**{n: np.array(arrays[n], copy=True) for n in ARRAY_NAMES})
        if st.INST.ndim == 2 and st.INST.shape[1] in (
            _INST_FIELDS_BEFORE_AUCTION,
            _INST_FIELDS_BEFORE_HASH,
        ):
            # older snapshots: no indicative price published yet (before the auction);
            # the lookup columns are derived from the ids
            pad = np.zeros((st.INST.shape[0], K.N_IFIELDS - st.INST.shape[1]), dtype=np.int64)
            st.INST = np.concatenate([st.INST, pad], axis=1)
            link_instrument_buckets(st.INST)
        if st.O.dtype == np.int32 and st.O.ndim == 2 and st.O.shape[1] == _O_FIELDS_BEFORE_PACK:
            st.O = _packed_order_rows(st.O)
        if st.O.dtype != np.int32 or st.O.ndim != 2 or st.O.shape[1] != K.N_OFIELDS:
            raise FlopexError("engine snapshot: array O has the wrong layout")
        if st.INST.ndim != 2 or st.INST.shape[1] != K.N_IFIELDS:
            raise FlopexError("engine snapshot: array INST has the wrong layout")
        return st

    def digest(self) -> str:
        """SHA-256 over every state array (shape, dtype and bytes): equal iff equal state."""
        h = hashlib.sha256()
        for n in ARRAY_NAMES:
            a = np.ascontiguousarray(getattr(self, n))
            h.update(f"{n}{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def nbytes(self) -> int:
        return sum(getattr(self, n).nbytes for n in ARRAY_NAMES)


def _aligned_rows(n: int, width: int) -> np.ndarray:
    """An int32 ``(n, width)`` zero array starting on a 64-byte boundary (with 16 fields
    every row is one cache line; with 15, one or two)."""
    buf = np.full(n * width + 16, 0, dtype=np.int32)
    skip = (-buf.ctypes.data % 64) // 4
    return buf[skip : skip + n * width].reshape(n, width)


def make_state(configs: Sequence[InstrumentConfig], max_orders: int) -> EngineState:
    """Allocate a fresh state for ``configs`` with room for ``max_orders`` live orders."""
    if not configs:
        raise FlopexError("engine: at least one instrument is required")
    if not 1 <= max_orders < 2**31:
        raise FlopexError(f"engine: max_orders must be in 1..2**31-1, got {max_orders}")
    ids = [c.instrument_id for c in configs]
    if len(set(ids)) != len(ids):
        raise FlopexError("engine: duplicate instrument_id in configuration")
    n = len(configs)
    if n > K.MAX_INSTRUMENTS:
        raise FlopexError(f"engine: at most {K.MAX_INSTRUMENTS} instruments, got {n}")
    inst = np.full((n, K.N_IFIELDS), 0, dtype=np.int64)
    ladder = 0
    words = 0
    for i, cfg in enumerate(configs):
        cfg.validate()
        if cfg.max_price_ticks >= 2**31 or cfg.min_price_ticks < 0:
            raise FlopexError(f"instrument {cfg.instrument_id}: prices must fit in int32 ticks")
        nlev = cfg.n_levels
        nw = (nlev + 63) // 64
        row = inst[i]
        row[K.I_ID] = cfg.instrument_id
        row[K.I_MIN] = cfg.min_price_ticks
        row[K.I_MAX] = cfg.max_price_ticks
        row[K.I_NLEV] = nlev
        row[K.I_LADDER] = ladder
        row[K.I_BM] = words
        row[K.I_NWORDS] = nw
        row[K.I_REF] = cfg.reference_price_ticks or cfg.min_price_ticks
        row[K.I_LIMIT] = cfg.price_limit_ticks
        row[K.I_MINQ] = cfg.min_qty
        row[K.I_MAXQ] = cfg.max_qty
        row[K.I_ALGO] = cfg.matching_algorithm
        row[K.I_SMP] = cfg.default_smp
        row[K.I_PROT] = cfg.market_protection_ticks
        row[K.I_STATUS] = cfg.initial_status
        row[K.I_BEST : K.I_BEST + 4] = -1
        ladder += 4 * nlev
        words += 4 * nw
    link_instrument_buckets(inst)
    o = _aligned_rows(max_orders, K.N_OFIELDS)
    o[:, K.F_FLAGS] = -1  # free
    o[:, K.F_GEN] = 1
    o[:, K.F_NEXT] = np.arange(1, max_orders + 1, dtype=np.int32)  # free chain 0 -> 1 -> ...
    o[max_orders - 1, K.F_NEXT] = -1
    s = np.full(K.N_SFIELDS, 0, dtype=np.int64)
    s[K.S_MATCH_ID] = 1
    s[K.S_FREE_COUNT] = max_orders
    s[K.S_FREE_HEAD] = 0
    return EngineState(
        O=o,
        LV=np.full((3, ladder), -1, dtype=np.int32) * np.array([[1], [1], [0]], dtype=np.int32),
        LVT=np.full(ladder, 0, dtype=np.int64),
        BM=np.full(words, 0, dtype=np.uint64),
        INST=inst,
        S=s,
    )
