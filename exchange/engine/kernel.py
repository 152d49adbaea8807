# ruff: noqa: E741, SIM109  (O is the order-field array as in DESIGN.md; numba-friendly ors)
"""The numba matching kernel: the reference book's semantics on struct-of-arrays state.

Everything here is ``@njit(cache=True, _nrt=False)``: the kernels never allocate, so they
are compiled without numba's reference counting (the single biggest speed factor, see
``DESIGN.md``). State is a handful of numpy arrays created by :mod:`exchange.engine.state`:

``O``     int32 ``(capacity, N_OFIELDS)`` order fields: one 60-byte row per order, so a
          random cancel touches one or two lines, not fifteen (measured: 2x on cancels)
``LV``    int32 ``(3, levels)`` head, tail, order count per price level
``LVT``   int64 ``(levels,)`` visible quantity per level
``BM``    uint64 bitmap of non-empty levels (one bit per level)
``INST``  int64 ``(n_instruments, N_IFIELDS)`` per-instrument config and state
``S``     int64 ``(N_SFIELDS,)`` engine scalars (match id, free list, pending work)

Each instrument owns four ladders (bids, asks, buy stops, sell stops) over its price band,
laid end to end in ``LV``/``LVT`` and in ``BM``. Order ids are ``generation << 32 | slot``.

``process`` handles a batch; when the event buffer is nearly full it stops *between*
steps and records the unfinished work in ``S`` (an aggressor mid-sweep, pending stop
triggers, a mass cancel); the next call finishes that work first. No event is ever
dropped and the event stream is identical to an unbounded run.
"""

from __future__ import annotations

import operator

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.datamodel import models, register_default
from numba.core.errors import TypingError
from numba.core.imputils import lower_builtin
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros
from numba.extending import intrinsic
from numba.np.arrayobj import (
    getitem_array_tuple,
    getitem_arraynd_intp,
    make_array,
    populate_array,
    setitem_array,
)

# ---- order fields (rows of O)
F_PREV = 0
F_NEXT = 1
F_FLAGS = 2  # side | otype << 2 | tif << 5 | smp << 8 | post_only << 10 | instrument << 11
F_PRICE = 3
F_STOP = 4
F_SHOWN = 5
F_HIDDEN = 6  # untriggered stops keep their minimum quantity here
F_DISPLAY = 7
F_ACCOUNT = 8
F_GROUP = 9
F_GEN = 10
F_UREF_LO = 11  # gateway routing tag (uint64) as two int32 halves
F_UREF_HI = 12
F_EXP_LO = 13  # GTD expiry (int64 ns) as two int32 halves
F_EXP_HI = 14
N_OFIELDS = 15  # 60 bytes per order
#: The instrument row sits in the flags' top bits; a free slot's flags are -1 (so its
#: instrument reads -1). Rows fit 2**20 instruments.
INST_SHIFT = 11
MAX_INSTRUMENTS = 1 << 20

# ---- instrument fields (columns of INST)
I_ID = 0
I_MIN = 1
I_MAX = 2
I_NLEV = 3
I_LADDER = 4
I_BM = 5
I_NWORDS = 6
I_REF = 7
I_LIMIT = 8
I_MINQ = 9
I_MAXQ = 10
I_ALGO = 11
I_SMP = 12
I_PROT = 13
I_STATUS = 14
I_LAST = 15
I_HAS_LAST = 16
I_BEST = 17  # 17..20: best index per book (-1 = empty)
I_IOP = 21  # 21..24: last published indicative opening price, volume, imbalance side, qty
I_BUCKET = 25  # instrument lookup: first row of hash bucket <this row> (-1 = empty)
I_CHAIN = 26  # instrument lookup: next row in the same bucket (-1 = end)
N_IFIELDS = 27
#: Fibonacci hashing of instrument ids into 2**k buckets (2**k <= rows): ``inst_bucket``
HASH_MUL = 0x9E3779B97F4A7C15

# ---- engine scalars
S_MATCH_ID = 0
S_FREE_COUNT = 1
S_PEND_KIND = 2
S_PEND_SLOT = 3
S_PEND_CUR = 4
S_PEND_INST = 5
S_PEND_TS = 6
S_SW_TYPE = 7
S_SW_INST_ID = 8
S_SW_ACCT = 9
S_SW_COUNT = 10
S_SW_UREF = 11
S_SW_TOKEN = 12
S_NEED = 13
S_FREE_HEAD = 14  # first free slot (-1 = none); free slots chain through F_NEXT
S_AUC_PRICE = 15  # opening auction paused mid-uncross: its price
N_SFIELDS = 16

#: int64 words per event (``abi.EVENT_WORDS``: ``E`` is the word view of the event buffer)
N_EWORDS = 10

PEND_NONE = 0
PEND_AGGRESS = 1
PEND_TRIGGERS = 2
PEND_SWEEP = 3
PEND_AUCTION = 4

# ---- books
B_BID = 0
B_ASK = 1
B_BUY_STOP = 2
B_SELL_STOP = 3

#: Free event slots required before each step; a step emits at most 6 events.
MARGIN = 12

# enum values (mirrors abi.py; numba folds these as constants)
BUY = 1
SELL = 2
C_NEW = 1
C_CANCEL = 2
C_REPLACE = 3
C_MASS = 4
C_SESSION = 5
C_EXPIRE = 6
C_STATUS = 7
C_REFERENCE = 8
T_LIMIT = 1
T_MARKET = 2
T_STOP_MARKET = 3
T_STOP_LIMIT = 4
TIF_DAY = 1
TIF_GTD = 3
TIF_IOC = 4
TIF_FOK = 5
SMP_RESTING = 1
SMP_INCOMING = 2
SMP_BOTH = 3
ST_PRE_OPEN = 1
ST_OPEN = 2
E_ACCEPTED = 1
E_REJECTED = 2
E_TRADE = 3
E_CANCELLED = 4
E_REPLACED = 5
E_STOP_TRIGGERED = 6
E_LEVEL = 7
E_STATUS = 8
E_REFERENCE = 9
E_MASS_DONE = 10
E_INDICATIVE = 11
R_UNKNOWN_INSTRUMENT = 1
R_MARKET_CLOSED = 2
R_MARKET_PRE_OPEN = 3
R_HALTED = 4
R_INVALID_SIDE = 5
R_INVALID_ORDER_TYPE = 6
R_INVALID_TIF = 7
R_INVALID_QUANTITY = 8
R_PRICE_OUT_OF_BAND = 9
R_PRICE_OUTSIDE_LIMITS = 10
R_INVALID_DISPLAY = 11
R_INVALID_MIN_QTY = 12
R_POST_ONLY_WOULD_TRADE = 13
R_INVALID_POST_ONLY = 14
R_NO_LIQUIDITY = 15
R_INVALID_STOP = 16
R_INVALID_EXPIRE = 17
R_CAPACITY = 18
R_UNKNOWN_ORDER = 19
R_INVALID_SMP = 20
R_UNKNOWN_COMMAND = 21
R_INVALID_STATUS = 22
X_USER = 1
X_IOC = 2
X_FOK = 3
X_MIN_QTY = 4
X_SMP_RESTING = 5
X_SMP_INCOMING = 6
X_MASS = 7
X_SESSION = 8
X_GTD = 9
X_NO_LIQUIDITY = 10
PRO_RATA_MIN_ALLOCATION = 2

_U1 = np.uint64(1)
_U0 = np.uint64(0)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)

JIT = {"cache": True, "_nrt": False, "boundscheck": False}
#: Command handlers are inlined into the batch loop by numba (``inline="always"``); the
#: big rare ones (``_aggress``, ``_replace``, ...) stay out of line and take the state
#: handle ``P`` (below), so a call costs a few values instead of ~60 exploded array
#: fields. Small helpers are plain ``@njit`` functions instead: numba compiles each once
#: per signature and LLVM inlines them at -O3 anyway. Inlining those at numba's IR level
#: re-typed them at every call site: the cold compile took 60 s, now 27 s, and the
#: batch loop got 2-3 % faster (measured: docs/engine.md).
INLINE = {"cache": True, "_nrt": False, "boundscheck": False, "inline": "always"}
SMALL = {"cache": True, "_nrt": False, "boundscheck": False}


# =============================================================== small helpers
# ---- the state handle: data pointers and sizes of the state arrays, built once per
# ``process`` call. Handlers take ``P`` instead of the arrays: a call passes 12 values,
# not ~60 exploded array fields (shape, strides, ... of each), and the views rebuilt from
# it have compile-time row widths, so LLVM computes addresses without loading shapes or
# strides. Views are free (no allocation): pointer plus constant or ``P`` sizes.
P_E = 0
P_NE = 1
P_O = 2
P_NO = 3
P_LV = 4
P_NLV = 5
P_LVT = 6
P_BM = 7
P_NBM = 8
P_INST = 9
P_NINST = 10
P_S = 11


@intrinsic
def _data(typingctx, arr):
    """The data pointer of the C-contiguous ``arr`` (a ``CPointer`` of its dtype)."""
    if not isinstance(arr, types.Array) or arr.layout != "C":
        raise TypingError(f"state arrays must be C-contiguous numpy arrays, got {arr}")
    sig = types.CPointer(arr.dtype)(arr)

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, args[0]).data

    return sig, codegen


class StateView(types.Array):
    """Numba type of the state views: a C-contiguous array indexed by integers **without
    negative-index wraparound** (numba wraps a negative signed index like Python, which
    costs a sign test and the dimension's length at every access whose index LLVM cannot
    prove non-negative). The kernel never indexes state with negative numbers.

    ``role`` names the state array (``"E"``, ``"O"``, ...). Each role's loads and stores
    carry a type-based alias tag of their own (``!tbaa``), telling LLVM that a store into
    one state array never changes another (they are distinct allocations), so values
    loaded from one may stay in registers across stores into another (+1-2 % on the
    quick stream). Sound only because no two roles ever share memory."""

    role = None  # (a class default: cache indexes pickled before roles unpickle)

    def __init__(self, dtype, ndim, role):
        self.role = role
        super().__init__(dtype, ndim, "C", name=f"stateview({dtype}, {ndim}d, {role})")

    @property
    def key(self):
        return (*super().key, self.role)

    @property
    def mangling_args(self):  # the role in symbol names too: one symbol per signature
        name, args = super().mangling_args
        return name, [*args, self.role]


register_default(StateView)(models.ArrayModel)


def _int_indices(context, builder, idxty, idx):
    """The index values as intp if every index is an integer, else None."""
    tys = idxty.types if isinstance(idxty, types.BaseTuple) else (idxty,)
    if not all(isinstance(t, types.Integer) for t in tys):
        return None
    is_tuple = isinstance(idxty, types.BaseTuple)
    vals = cgutils.unpack_tuple(builder, idx, len(tys)) if is_tuple else [idx]
    return [context.cast(builder, v, t, types.intp) for v, t in zip(vals, tys, strict=True)]


def _view_pointer(context, builder, aryty, ary, inds):
    a = make_array(aryty)(context, builder, ary)
    shape = cgutils.unpack_tuple(builder, a.shape, aryty.ndim)
    strides = cgutils.unpack_tuple(builder, a.strides, aryty.ndim)
    return cgutils.get_item_pointer2(
        context, builder, a.data, shape, strides, "C", inds, wraparound=False
    )


def _tbaa(builder, role):
    """The ``!tbaa`` access tag of state array ``role`` (scalar TBAA: every role is its own
    type under one root, so accesses of different roles never alias)."""
    mod = builder.module
    root = mod.add_metadata([ir.MetaDataString(mod, "flopex state")])
    node = mod.add_metadata([ir.MetaDataString(mod, f"flopex {role}"), root, ir.IntType(64)(0)])
    return mod.add_metadata([node, node, ir.IntType(64)(0)])


@lower_builtin(operator.getitem, StateView, types.Integer)
@lower_builtin(operator.getitem, StateView, types.BaseTuple)
def _view_getitem(context, builder, sig, args):
    aryty, idxty = sig.args
    inds = _int_indices(context, builder, idxty, args[1])
    if inds is None or len(inds) != aryty.ndim:
        generic = (
            getitem_array_tuple if isinstance(idxty, types.BaseTuple) else getitem_arraynd_intp
        )
        return generic(context, builder, sig, args)
    ptr = _view_pointer(context, builder, aryty, args[0], inds)
    val = builder.load(ptr)
    val.set_metadata("tbaa", _tbaa(builder, aryty.role))
    return val


@lower_builtin(operator.setitem, StateView, types.Integer, types.Any)
@lower_builtin(operator.setitem, StateView, types.BaseTuple, types.Any)
def _view_setitem(context, builder, sig, args):
    aryty, idxty, valty = sig.args
    inds = _int_indices(context, builder, idxty, args[1])
    if inds is None or len(inds) != aryty.ndim:
        return setitem_array(context, builder, sig, args)
    ptr = _view_pointer(context, builder, aryty, args[0], inds)
    st = builder.store(context.cast(builder, args[2], valty, aryty.dtype), ptr)
    st.set_metadata("tbaa", _tbaa(builder, aryty.role))
    return context.get_dummy_value()


def _c_view(context, builder, retty, data, shape):
    """Codegen: the C-contiguous array value of type ``retty`` over ``data`` (a typed
    pointer) with ``shape`` (intp values): strides from the shape, no meminfo (nothing is
    allocated or reference counted)."""
    intp = context.get_value_type(types.intp)
    itemsize = intp(context.get_abi_sizeof(context.get_data_type(retty.dtype)))
    strides = []
    off = itemsize
    for d in reversed(shape):
        strides.append(off)
        off = builder.mul(off, d)
    strides.reverse()
    ary = make_array(retty)(context, builder)
    populate_array(ary, data=data, shape=shape, strides=strides, itemsize=itemsize, meminfo=None)
    return ary._getvalue()


def _state_view(role, ptr_at, *dims):
    """An intrinsic ``view(P)``: the C-contiguous array whose data pointer is
    ``P[ptr_at]``; each of ``dims`` is a constant (an int) or ``("P", k)`` for ``P[k]``."""

    @intrinsic
    def view(typingctx, P):
        retty = StateView(P.types[ptr_at].dtype, len(dims), role)

        def codegen(context, builder, signature, args):
            (handle,) = args
            intp = context.get_value_type(types.intp)
            shape = [
                builder.extract_value(handle, d[1]) if isinstance(d, tuple) else intp(d)
                for d in dims
            ]
            data = builder.extract_value(handle, ptr_at)
            return _c_view(context, builder, retty, data, shape)

        return retty(P), codegen

    return view


_E = _state_view("E", P_E, ("P", P_NE), N_EWORDS)
_O = _state_view("O", P_O, ("P", P_NO), N_OFIELDS)
_LV = _state_view("LV", P_LV, 3, ("P", P_NLV))
_LVT = _state_view("LVT", P_LVT, ("P", P_NLV))
_BM = _state_view("BM", P_BM, ("P", P_NBM))
_INST = _state_view("INST", P_INST, ("P", P_NINST), N_IFIELDS)
_S = _state_view("S", P_S, N_SFIELDS)


def _c_prefetch(builder, i8p):
    """Codegen: a read prefetch of the byte ``i8p`` points at, high locality (both
    prefetch intrinsics below emit it)."""
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
    builder.call(fn, [i8p, i32(0), i32(3), i32(1)])


@intrinsic
def _prefetch(typingctx, arr, flat):
    """Hint the CPU to load element ``flat`` (row-major flat index) of ``arr`` into cache.

    A hint only: it never faults and changes no state, so a stale index costs nothing
    but a wasted load.
    """
    sig = types.void(arr, flat)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        _c_prefetch(builder, builder.bitcast(ptr, ir.IntType(8).as_pointer()))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _prefetch_byte(typingctx, arr, offset):
    """Hint the CPU to load the line holding byte ``offset`` of ``arr``'s data (it never
    faults: past the end of the array it is a wasted hint)."""
    sig = types.void(arr, offset)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        i8p = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
        _c_prefetch(builder, builder.gep(i8p, [args[1]]))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _store_event(typingctx, E, ne, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9):
    """Event ``ne`` of ``E`` from its ten int64 words as two vector stores (64 + 16 bytes;
    LLVM splits the 64 bytes in two on machines without 512-bit registers) instead of ten
    scalar ones: far fewer store-queue entries, which the event lines' write misses hold
    (measured: docs/engine.md)."""
    sig = types.void(E, ne, *([types.int64] * 10))

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        base = builder.gep(ary.data, [builder.mul(args[1], i64(N_EWORDS))])
        words = args[2:]
        tag = _tbaa(builder, signature.args[0].role)
        for start, width in ((0, 8), (8, 2)):
            vt = ir.VectorType(i64, width)
            v = ir.Constant(vt, ir.Undefined)
            for j in range(width):
                v = builder.insert_element(v, words[start + j], ir.IntType(32)(j))
            ptr = builder.bitcast(builder.gep(base, [i64(start)]), vt.as_pointer())
            st = builder.store(v, ptr, align=8)
            st.set_metadata("tbaa", tag)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _rare(typingctx, cond):
    """``cond``, hinted to LLVM as almost always false (``llvm.expect``): the branch it
    decides is laid out off the hot path."""
    if not isinstance(cond, types.Boolean):
        raise TypingError("_rare takes a boolean")
    sig = types.boolean(cond)

    def codegen(context, builder, signature, args):
        i1 = ir.IntType(1)
        fnty = ir.FunctionType(i1, [i1, i1])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.expect.i1")
        return builder.call(fn, [args[0], i1(0)])

    return sig, codegen


@njit(**SMALL)
def _emit(
    E, ne, et, ts, uref, token, oid, iid, acct, side, agg, price, qty, leaves, mid, reason, otype
):
    _store_event(
        E,
        ne,
        np.int64(ts),
        np.int64(uref),
        np.int64(token),
        np.int64(oid),
        np.int64(price),
        np.int64(qty),
        np.int64(leaves),
        np.int64(mid),
        (np.int64(iid) & 0xFFFFFFFF) | (np.int64(acct) << 32),
        np.int64(et)
        | (np.int64(side) << 8)
        | (np.int64(agg) << 16)
        | (np.int64(reason) << 24)
        | (np.int64(otype) << 32),
    )
    return ne + 1


@njit(**SMALL)
def _set_pair(O, slot, f, x):
    """Store the 64-bit ``x`` in fields f (low half) and f + 1 (high half)."""
    O[slot, f] = np.int32(np.uint32(x & 0xFFFFFFFF))
    O[slot, f + 1] = np.int32(x >> 32)


@njit(**SMALL)
def _get_pair(O, slot, f):
    return (np.int64(O[slot, f + 1]) << 32) | (np.int64(O[slot, f]) & 0xFFFFFFFF)


@njit(**SMALL)
def _uref(O, slot):
    return np.uint64(_get_pair(O, slot, F_UREF_LO))


@njit(**SMALL)
def _oid(O, slot):
    return (np.int64(O[slot, F_GEN]) << 32) | slot


@njit(**SMALL)
def _side(O, slot):
    return O[slot, F_FLAGS] & 3


@njit(**SMALL)
def _otype(O, slot):
    return (O[slot, F_FLAGS] >> 2) & 7


@njit(**SMALL)
def _tif(O, slot):
    return (O[slot, F_FLAGS] >> 5) & 7


@njit(**SMALL)
def _smp(O, slot):
    return (O[slot, F_FLAGS] >> 8) & 3


@njit(**SMALL)
def _inst(O, slot):
    """Instrument row of the order in ``slot`` (-1 for a free slot)."""
    return np.int64(O[slot, F_FLAGS] >> INST_SHIFT)


@njit(**SMALL)
def _event_price(O, slot):
    t = _otype(O, slot)
    if t == T_STOP_MARKET or t == T_STOP_LIMIT:
        return np.int64(O[slot, F_STOP])
    return np.int64(O[slot, F_PRICE])


@njit(**SMALL)
def _emit_order(E, ne, O, INST, slot, et, ts, token, price, qty, leaves, mid, reason, agg):
    return _emit(
        E,
        ne,
        et,
        ts,
        _uref(O, slot),
        token,
        _oid(O, slot),
        INST[_inst(O, slot), I_ID],
        np.uint32(O[slot, F_ACCOUNT]),
        _side(O, slot),
        agg,
        price,
        qty,
        leaves,
        mid,
        reason,
        _otype(O, slot),
    )


@njit(**SMALL)
def _u(x):
    return np.uint64(x)


@njit(**SMALL)
def _scan_up(BM, w0, nw, idx):
    """Lowest non-empty level index >= idx in the ladder whose bitmap starts at word w0."""
    w = idx >> 6
    if w >= nw:
        return -1
    x = BM[w0 + w] & (_ALL << _u(idx & 63))
    while True:
        if x != _U0:
            return w * 64 + np.int64(trailing_zeros(x))
        w += 1
        if w >= nw:
            return -1
        x = BM[w0 + w]


@njit(**SMALL)
def _scan_down(BM, w0, idx):
    """Highest non-empty level index <= idx (idx may be -1 -> -1)."""
    if idx < 0:
        return -1
    w = idx >> 6
    b = idx & 63
    x = BM[w0 + w] & (((_U1 << _u(b)) << _U1) - _U1)
    while True:
        if x != _U0:
            return w * 64 + 63 - np.int64(leading_zeros(x))
        w -= 1
        if w < 0:
            return -1
        x = BM[w0 + w]


@njit(**SMALL)
def _level(INST, i, book, idx):
    return INST[i, I_LADDER] + book * INST[i, I_NLEV] + idx


@njit(**SMALL)
def _bm_base(INST, i, book):
    return INST[i, I_BM] + book * INST[i, I_NWORDS]


@njit(**INLINE)
def _link_tail(O, LV, LVT, BM, INST, i, book, idx, slot):
    """Append slot at the back of level idx of ``book``; O(1)."""
    L = _level(INST, i, book, idx)
    t = LV[1, L]
    O[slot, F_PREV] = t
    O[slot, F_NEXT] = -1
    if t >= 0:
        O[t, F_NEXT] = slot
    else:
        LV[0, L] = slot
        w = _bm_base(INST, i, book) + (idx >> 6)
        BM[w] = BM[w] | (_U1 << _u(idx & 63))
        best = INST[i, I_BEST + book]
        if book == B_BID or book == B_SELL_STOP:
            if idx > best:
                INST[i, I_BEST + book] = idx
        elif best < 0 or idx < best:
            INST[i, I_BEST + book] = idx
    LV[1, L] = slot
    LV[2, L] += 1
    LVT[L] += O[slot, F_SHOWN]


@njit(**INLINE)
def _unlink(O, LV, LVT, BM, INST, i, book, idx, slot):
    """Remove slot from its level; clears the bitmap bit and moves best if it empties; O(1)
    (amortised: finding the next best scans the bitmap words in between)."""
    L = _level(INST, i, book, idx)
    p = O[slot, F_PREV]
    n = O[slot, F_NEXT]
    if p >= 0:
        O[p, F_NEXT] = n
    else:
        LV[0, L] = n
    if n >= 0:
        O[n, F_PREV] = p
    else:
        LV[1, L] = p
    LV[2, L] -= 1
    LVT[L] -= O[slot, F_SHOWN]
    if LV[2, L] == 0:
        w0 = _bm_base(INST, i, book)
        w = w0 + (idx >> 6)
        BM[w] = BM[w] & ~(_U1 << _u(idx & 63))
        if INST[i, I_BEST + book] == idx:
            if book == B_BID or book == B_SELL_STOP:
                INST[i, I_BEST + book] = _scan_down(BM, w0, idx - 1)
            else:
                INST[i, I_BEST + book] = _scan_up(BM, w0, INST[i, I_NWORDS], idx + 1)


@njit(**SMALL)
def _book_idx(O, INST, slot):
    """(book, level index) where a linked order sits."""
    i = _inst(O, slot)
    side = O[slot, F_FLAGS] & 3
    t = (O[slot, F_FLAGS] >> 2) & 7
    if t == T_STOP_MARKET or t == T_STOP_LIMIT:
        return 1 + side, np.int64(O[slot, F_STOP]) - INST[i, I_MIN]
    return side - 1, np.int64(O[slot, F_PRICE]) - INST[i, I_MIN]


@njit(**SMALL)
def _free_slot(O, S, slot):
    """Bump the slot's generation and push it on the free list (chained through F_NEXT)."""
    g = (O[slot, F_GEN] + 1) & 0x7FFFFFFF
    O[slot, F_GEN] = g if g != 0 else 1
    O[slot, F_FLAGS] = -1  # free: no instrument
    O[slot, F_NEXT] = S[S_FREE_HEAD]
    S[S_FREE_HEAD] = slot
    S[S_FREE_COUNT] += 1


@njit(**SMALL)
def _emit_level(E, ne, LV, LVT, INST, i, book, idx, ts):
    L = _level(INST, i, book, idx)
    return _emit(
        E,
        ne,
        E_LEVEL,
        ts,
        _U0,
        _U0,
        0,
        INST[i, I_ID],
        0,
        book + 1,
        0,
        idx + INST[i, I_MIN],
        LVT[L],
        LV[2, L],
        0,
        0,
        0,
    )


@njit(**INLINE)
def _cancel_linked(ne, P, slot, reason, ts, token):
    """CANCELLED event, unlink, free (no LEVEL event)."""
    E = _E(P)
    O = _O(P)
    LV = _LV(P)
    LVT = _LVT(P)
    BM = _BM(P)
    INST = _INST(P)
    S = _S(P)
    ne = _emit_order(
        E,
        ne,
        O,
        INST,
        slot,
        E_CANCELLED,
        ts,
        token,
        _event_price(O, slot),
        np.int64(O[slot, F_SHOWN]) + _leaves_hidden(O, slot),
        0,
        0,
        reason,
        0,
    )
    book, idx = _book_idx(O, INST, slot)
    _unlink(O, LV, LVT, BM, INST, _inst(O, slot), book, idx, slot)
    _free_slot(O, S, slot)
    return ne


@njit(**SMALL)
def _cancel_unlinked(E, ne, O, INST, S, slot, qty, reason, ts):
    """CANCELLED for an order that is not (or no longer) in the book, then free its slot."""
    ne = _emit_order(
        E, ne, O, INST, slot, E_CANCELLED, ts, _U0, np.int64(O[slot, F_PRICE]), qty, 0, 0, reason, 0
    )
    _free_slot(O, S, slot)
    return ne


@njit(**SMALL)
def _leaves_hidden(O, slot):
    """Hidden quantity that counts as open (stops keep min qty in F_HIDDEN: not open)."""
    t = _otype(O, slot)
    if t == T_STOP_MARKET or t == T_STOP_LIMIT:
        return np.int64(0)
    return np.int64(O[slot, F_HIDDEN])


@njit(**SMALL)
def _limits(INST, i):
    lo = INST[i, I_MIN]
    hi = INST[i, I_MAX]
    lim = INST[i, I_LIMIT]
    if lim > 0:
        lo = max(lo, INST[i, I_REF] - lim)
        hi = min(hi, INST[i, I_REF] + lim)
    return lo, hi


@njit(**SMALL)
def _check_price(INST, i, price):
    if price < INST[i, I_MIN] or price > INST[i, I_MAX]:
        return R_PRICE_OUT_OF_BAND
    lo, hi = _limits(INST, i)
    if price < lo or price > hi:
        return R_PRICE_OUTSIDE_LIMITS
    return 0


@njit(**SMALL)
def _check_stop(INST, i, side, stop):
    r = _check_price(INST, i, stop)
    if r != 0:
        return r
    if INST[i, I_HAS_LAST] != 0:
        last = INST[i, I_LAST]
        if side == BUY and stop <= last:
            return R_INVALID_STOP
        if side == SELL and stop >= last:
            return R_INVALID_STOP
    return 0


@njit(**SMALL)
def _best_price(INST, i, book):
    """Best price of ``book`` or -1 when empty."""
    b = INST[i, I_BEST + book]
    if b < 0:
        return np.int64(-1)
    return b + INST[i, I_MIN]


@njit(**SMALL)
def _crosses(side, limit, opp_price):
    if side == BUY:
        return opp_price <= limit
    return opp_price >= limit


@njit(**SMALL)
def _protection(INST, i, side):
    """Market-with-protection limit price, or -1 if the opposite side is empty."""
    if side == BUY:
        best = _best_price(INST, i, B_ASK)
        if best < 0:
            return np.int64(-1)
        lo, hi = _limits(INST, i)
        return min(best + INST[i, I_PROT], hi)
    best = _best_price(INST, i, B_BID)
    if best < 0:
        return np.int64(-1)
    lo, hi = _limits(INST, i)
    return max(best - INST[i, I_PROT], lo)


@njit(**SMALL)
def _is_self(O, a, b):
    if O[a, F_ACCOUNT] == O[b, F_ACCOUNT]:
        return True
    g = O[a, F_GROUP]
    return g != 0 and g == O[b, F_GROUP]


@njit(**SMALL)
def _find_inst(INST, iid):
    """Row of instrument ``iid`` (-1 if unknown): its hash bucket's chain, expected O(1)
    (the chains were built by ``state.link_instrument_buckets``)."""
    n = INST.shape[0]
    if n == 1:
        return np.int64(0) if INST[0, I_ID] == iid else np.int64(-1)
    k = np.uint64(63 - leading_zeros(np.uint64(n)))
    r = INST[np.int64((np.uint64(iid) * np.uint64(HASH_MUL)) >> (np.uint64(64) - k)), I_BUCKET]
    while r >= 0:
        if INST[r, I_ID] == iid:
            return r
        r = INST[r, I_CHAIN]
    return np.int64(-1)


# ================================================================ matching
@njit(**JIT)
def _fillable(P, i, slot, needed):
    """Quantity the unlinked order ``slot`` would fill on entry (see reference._fillable)."""
    O = _O(P)
    LV = _LV(P)
    BM = _BM(P)
    INST = _INST(P)
    side = _side(O, slot)
    limit = np.int64(O[slot, F_PRICE])
    smp = _smp(O, slot)
    stops_incoming = smp == SMP_INCOMING or smp == SMP_BOTH
    fifo = INST[i, I_ALGO] == 0
    book = B_ASK if side == BUY else B_BID
    w0 = _bm_base(INST, i, book)
    nw = INST[i, I_NWORDS]
    mn = INST[i, I_MIN]
    idx = INST[i, I_BEST + book]
    total = np.int64(0)
    while idx >= 0:
        if not _crosses(side, limit, idx + mn):
            break
        L = _level(INST, i, book, idx)
        shown = np.int64(0)
        hidden = np.int64(0)
        r = LV[0, L]
        while r >= 0:
            if _is_self(O, slot, r):
                if stops_incoming:
                    return total + shown if fifo else total
            else:
                shown += O[r, F_SHOWN]
                hidden += O[r, F_HIDDEN]
                if fifo and total + shown >= needed:
                    return total + shown
            r = O[r, F_NEXT]
        total += shown + hidden
        if total >= needed:
            return total
        if side == BUY:
            idx = _scan_up(BM, w0, nw, idx + 1)
        else:
            idx = _scan_down(BM, w0, idx - 1)
    return total


@njit(**SMALL)
def _new_match(INST, S, i, price):
    """The next match id; ``price`` becomes the instrument's last trade price."""
    mid = S[S_MATCH_ID]
    S[S_MATCH_ID] = mid + 1
    INST[i, I_LAST] = price
    INST[i, I_HAS_LAST] = 1
    return mid


@njit(**SMALL)
def _emit_fill(E, ne, O, INST, r, ts, price, qty, mid, agg):
    """TRADE for a booked order ``r`` already reduced by the fill (leaves: shown + hidden)."""
    leaves = np.int64(O[r, F_SHOWN]) + O[r, F_HIDDEN]
    return _emit_order(E, ne, O, INST, r, E_TRADE, ts, _U0, price, qty, leaves, mid, 0, agg)


@njit(**INLINE)
def _trade(E, ne, O, LVT, INST, S, i, slot, r, L, qty, q_after, price, ts):
    """Book one fill of ``qty`` between aggressor slot and resting r; emit both sides."""
    mid = _new_match(INST, S, i, price)
    O[r, F_SHOWN] -= qty
    LVT[L] -= qty
    agg = _side(O, slot)
    ne = _emit_order(E, ne, O, INST, slot, E_TRADE, ts, _U0, price, qty, q_after, mid, 0, agg)
    ne = _emit_fill(E, ne, O, INST, r, ts, price, qty, mid, agg)
    return ne


@njit(**INLINE)
def _after_fill(O, LV, LVT, BM, INST, S, i, book, idx, r):
    """After a fill of resting order r: if its visible slice is used up, refresh an iceberg
    (the new slice joins the back of the queue) or unlink and free r. O(1)."""
    if O[r, F_SHOWN] != 0:
        return
    h = O[r, F_HIDDEN]
    if h > 0:
        d = min(O[r, F_DISPLAY], h)
        L = _level(INST, i, book, idx)
        if LV[1, L] != r:
            _unlink(O, LV, LVT, BM, INST, i, book, idx, r)
            O[r, F_SHOWN] = d
            O[r, F_HIDDEN] = h - d
            _link_tail(O, LV, LVT, BM, INST, i, book, idx, r)
        else:
            O[r, F_SHOWN] = d
            O[r, F_HIDDEN] = h - d
            LVT[L] += d
    else:
        _unlink(O, LV, LVT, BM, INST, i, book, idx, r)
        _free_slot(O, S, r)


@njit(**JIT)
def _aggress(ne, P, i, slot, cur, ts):
    """Match unlinked ``slot`` (open qty in F_SHOWN) against the opposite side.

    Returns (events, status): 0 done, 1 incoming cancelled by SMP, 2 paused (buffer
    nearly full; the aggressor and current level are saved in S).
    Cost: O(fills + SMP cancels + levels crossed); a pro-rata level costs O(orders there).
    """
    E = _E(P)
    O = _O(P)
    LV = _LV(P)
    LVT = _LVT(P)
    BM = _BM(P)
    INST = _INST(P)
    S = _S(P)
    cap = E.shape[0]
    side = _side(O, slot)
    limit = np.int64(O[slot, F_PRICE])
    smp = _smp(O, slot)
    pro_rata = INST[i, I_ALGO] == 1
    opp = B_ASK if side == BUY else B_BID
    mn = INST[i, I_MIN]
    q = np.int64(O[slot, F_SHOWN])
    status = 0
    while q > 0:
        b = INST[i, I_BEST + opp]
        if b < 0 or not _crosses(side, limit, b + mn):
            break
        L = _level(INST, i, opp, b)
        need = MARGIN
        if pro_rata and b != cur:
            need = 3 * np.int64(LV[2, L]) + MARGIN
        if cap - ne < need:
            O[slot, F_SHOWN] = q
            S[S_PEND_KIND] = PEND_AGGRESS
            S[S_PEND_SLOT] = slot
            S[S_PEND_CUR] = cur
            S[S_PEND_INST] = i
            S[S_PEND_TS] = ts
            if need > cap:
                S[S_NEED] = need
            return ne, 2
        price = b + mn
        if b != cur:
            if cur >= 0:
                ne = _emit_level(E, ne, LV, LVT, INST, i, opp, cur, ts)
            cur = b
            if pro_rata:
                # resolve self-matches at this level first (all of them, in time order)
                r = LV[0, L]
                while r >= 0:
                    nx = O[r, F_NEXT]
                    if _is_self(O, slot, r):
                        if smp == SMP_INCOMING:
                            status = 1
                            break
                        ne = _cancel_linked(ne, P, r, X_SMP_RESTING, ts, _U0)
                        if smp == SMP_BOTH:
                            status = 1
                    r = nx
                if status != 0:
                    break
                if LV[2, L] == 0:
                    continue
                total = LVT[L]
                if q < total:
                    q0 = q
                    r = LV[0, L]
                    while r >= 0:
                        alloc = q0 * np.int64(O[r, F_SHOWN]) // total
                        if alloc >= PRO_RATA_MIN_ALLOCATION:
                            q -= alloc
                            ne = _trade(E, ne, O, LVT, INST, S, i, slot, r, L, alloc, q, price, ts)
                        r = O[r, F_NEXT]
                continue
        r = LV[0, L]
        if _is_self(O, slot, r):
            if smp == SMP_INCOMING:
                status = 1
                break
            ne = _cancel_linked(ne, P, r, X_SMP_RESTING, ts, _U0)
            if smp == SMP_BOTH:
                status = 1
                break
            continue
        fill = min(q, np.int64(O[r, F_SHOWN]))
        q -= fill
        ne = _trade(E, ne, O, LVT, INST, S, i, slot, r, L, fill, q, price, ts)
        _after_fill(O, LV, LVT, BM, INST, S, i, opp, b, r)
    if cur >= 0:
        ne = _emit_level(E, ne, LV, LVT, INST, i, opp, cur, ts)
    O[slot, F_SHOWN] = q
    return ne, status


@njit(**INLINE)
def _finish(ne, P, i, slot, smp_stopped, ts):
    """After matching: free a filled order, cancel IOC/SMP remainders, rest the rest."""
    E = _E(P)
    O = _O(P)
    LV = _LV(P)
    LVT = _LVT(P)
    BM = _BM(P)
    INST = _INST(P)
    S = _S(P)
    q = np.int64(O[slot, F_SHOWN])
    if q == 0:
        _free_slot(O, S, slot)
        return ne
    tif = _tif(O, slot)
    if _rare(smp_stopped or tif == TIF_IOC or tif == TIF_FOK):
        reason = X_SMP_INCOMING if smp_stopped else X_IOC
        ne = _cancel_unlinked(E, ne, O, INST, S, slot, q, reason, ts)
        return ne
    d = O[slot, F_DISPLAY]
    shown = min(np.int64(d), q) if _rare(d > 0) else q
    O[slot, F_SHOWN] = shown
    O[slot, F_HIDDEN] = q - shown
    side = _side(O, slot)
    idx = np.int64(O[slot, F_PRICE]) - INST[i, I_MIN]
    _link_tail(O, LV, LVT, BM, INST, i, side - 1, idx, slot)
    return _emit_level(E, ne, LV, LVT, INST, i, side - 1, idx, ts)


@njit(**INLINE)
def _execute(ne, P, i, slot, needed, ts):
    """FOK / minimum-quantity check, match, then rest or cancel. Returns (events, paused)."""
    E = _E(P)
    O = _O(P)
    INST = _INST(P)
    S = _S(P)
    if _rare(needed > 0) and _fillable(P, i, slot, needed) < needed:
        reason = X_FOK if _tif(O, slot) == TIF_FOK else X_MIN_QTY
        q = np.int64(O[slot, F_SHOWN])
        ne = _cancel_unlinked(E, ne, O, INST, S, slot, q, reason, ts)
        return ne, False
    side = _side(O, slot)
    best = _best_price(INST, i, B_ASK if side == BUY else B_BID)
    st = 0
    if best >= 0 and _crosses(side, np.int64(O[slot, F_PRICE]), best):
        ne, st = _aggress(ne, P, i, slot, np.int64(-1), ts)
        if st == 2:
            return ne, True
    ne = _finish(ne, P, i, slot, st == 1, ts)
    return ne, False


@njit(**JIT)
def _triggers(ne, P, i, ts):
    """Trigger every stop the last price has reached, one at a time (reference._run_triggers)."""
    E = _E(P)
    O = _O(P)
    LV = _LV(P)
    LVT = _LVT(P)
    BM = _BM(P)
    INST = _INST(P)
    S = _S(P)
    cap = E.shape[0]
    while INST[i, I_HAS_LAST] != 0:
        last = INST[i, I_LAST]
        mn = INST[i, I_MIN]
        b = INST[i, I_BEST + B_BUY_STOP]
        book = -1
        if b >= 0 and b + mn <= last:
            book = B_BUY_STOP
        else:
            b = INST[i, I_BEST + B_SELL_STOP]
            if b >= 0 and b + mn >= last:
                book = B_SELL_STOP
        if book < 0:
            return ne, False
        if cap - ne < MARGIN:
            S[S_PEND_KIND] = PEND_TRIGGERS
            S[S_PEND_INST] = i
            S[S_PEND_TS] = ts
            return ne, True
        slot = np.int64(LV[0, _level(INST, i, book, b)])
        _unlink(O, LV, LVT, BM, INST, i, book, b, slot)
        leaves = np.int64(O[slot, F_SHOWN])
        ne = _emit_order(
            E,
            ne,
            O,
            INST,
            slot,
            E_STOP_TRIGGERED,
            ts,
            _U0,
            np.int64(O[slot, F_STOP]),
            leaves,
            leaves,
            0,
            0,
            0,
        )
        min_q = np.int64(O[slot, F_HIDDEN])
        O[slot, F_HIDDEN] = 0
        f = O[slot, F_FLAGS] & ~(7 << 2)
        if _otype(O, slot) == T_STOP_LIMIT:
            O[slot, F_FLAGS] = f | (T_LIMIT << 2)
        else:
            O[slot, F_FLAGS] = f | (T_MARKET << 2)
            p = _protection(INST, i, _side(O, slot))
            if p < 0:
                ne = _cancel_unlinked(E, ne, O, INST, S, slot, leaves, X_NO_LIQUIDITY, ts)
                continue
            O[slot, F_PRICE] = p
        needed = leaves if _tif(O, slot) == TIF_FOK else min(min_q, leaves)
        ne, paused = _execute(ne, P, i, slot, needed, ts)
        if paused:
            return ne, True
    return ne, False


# ========================================================= opening auction
@njit(**SMALL)
def _level_volume(O, LV, INST, i, book, idx):
    """Whole open quantity at a level: visible plus hidden iceberg quantity; O(orders)."""
    total = np.int64(0)
    r = LV[0, _level(INST, i, book, idx)]
    while r >= 0:
        total += np.int64(O[r, F_SHOWN]) + O[r, F_HIDDEN]
        r = O[r, F_NEXT]
    return total


@njit(**JIT)
def _equilibrium(P, i):
    """The call auction's (price, volume, imbalance side, imbalance qty); see
    ``reference.equilibrium``. Volume 0 = the book is not crossed (all four are 0).
    Cost: O(orders in the crossed range + ticks in it)."""
    O = _O(P)
    LV = _LV(P)
    INST = _INST(P)
    zero = np.int64(0)
    bb = INST[i, I_BEST + B_BID]
    ba = INST[i, I_BEST + B_ASK]
    if bb < 0 or ba < 0 or bb < ba:
        return zero, zero, zero, zero
    mn = INST[i, I_MIN]
    ref = INST[i, I_REF]
    demand = np.int64(0)
    for idx in range(ba, bb + 1):
        demand += _level_volume(O, LV, INST, i, B_BID, idx)
    supply = np.int64(0)
    best_p = np.int64(-1)
    best_v = np.int64(-1)
    best_imb = np.int64(0)
    best_dist = np.int64(0)
    for idx in range(ba, bb + 1):
        supply += _level_volume(O, LV, INST, i, B_ASK, idx)
        v = min(demand, supply)
        imb = demand - supply
        p = idx + mn
        dist = abs(p - ref)
        if (
            v > best_v
            or (v == best_v and abs(imb) < abs(best_imb))
            or (v == best_v and abs(imb) == abs(best_imb) and dist < best_dist)
        ):
            best_p = p
            best_v = v
            best_imb = imb
            best_dist = dist
        demand -= _level_volume(O, LV, INST, i, B_BID, idx)
    side = np.int64(BUY) if best_imb > 0 else (np.int64(SELL) if best_imb < 0 else zero)
    return best_p, best_v, side, abs(best_imb)


@njit(**JIT)
def _publish_iop(ne, P, i, ts):
    """In pre-open, emit INDICATIVE_PRICE when the equilibrium differs from the last one."""
    E = _E(P)
    INST = _INST(P)
    if INST[i, I_STATUS] != ST_PRE_OPEN:
        return ne
    p, v, side, imb = _equilibrium(P, i)
    if (
        p == INST[i, I_IOP]
        and v == INST[i, I_IOP + 1]
        and side == INST[i, I_IOP + 2]
        and imb == INST[i, I_IOP + 3]
    ):
        return ne
    INST[i, I_IOP] = p
    INST[i, I_IOP + 1] = v
    INST[i, I_IOP + 2] = side
    INST[i, I_IOP + 3] = imb
    return _emit(
        E, ne, E_INDICATIVE, ts, _U0, _U0, 0, INST[i, I_ID], 0, side, 0, p, v, imb, 0, 0, 0
    )


@njit(**JIT)
def _auction(ne, P, i, price, cur_b, cur_a, ts):
    """Uncross at ``price`` (reference._open): head of the best bid against head of the
    best ask while both cross ``price``. Returns (events, paused); when paused the
    position is saved in S. Cost: O(fills + levels emptied)."""
    E = _E(P)
    O = _O(P)
    LV = _LV(P)
    LVT = _LVT(P)
    BM = _BM(P)
    INST = _INST(P)
    S = _S(P)
    cap = E.shape[0]
    pidx = price - INST[i, I_MIN]
    while True:
        bb = INST[i, I_BEST + B_BID]
        ba = INST[i, I_BEST + B_ASK]
        if bb < 0 or ba < 0 or bb < pidx or ba > pidx:
            break
        if cap - ne < MARGIN:
            S[S_PEND_KIND] = PEND_AUCTION
            S[S_PEND_INST] = i
            S[S_PEND_TS] = ts
            S[S_PEND_SLOT] = cur_b
            S[S_PEND_CUR] = cur_a
            S[S_AUC_PRICE] = price
            return ne, True
        if cur_b >= 0 and cur_b != bb:
            ne = _emit_level(E, ne, LV, LVT, INST, i, B_BID, cur_b, ts)
        cur_b = bb
        if cur_a >= 0 and cur_a != ba:
            ne = _emit_level(E, ne, LV, LVT, INST, i, B_ASK, cur_a, ts)
        cur_a = ba
        Lb = _level(INST, i, B_BID, bb)
        La = _level(INST, i, B_ASK, ba)
        b = LV[0, Lb]
        a = LV[0, La]
        qty = min(np.int64(O[b, F_SHOWN]), np.int64(O[a, F_SHOWN]))
        mid = _new_match(INST, S, i, price)
        O[b, F_SHOWN] -= qty
        O[a, F_SHOWN] -= qty
        LVT[Lb] -= qty
        LVT[La] -= qty
        ne = _emit_fill(E, ne, O, INST, b, ts, price, qty, mid, 0)
        ne = _emit_fill(E, ne, O, INST, a, ts, price, qty, mid, 0)
        _after_fill(O, LV, LVT, BM, INST, S, i, B_BID, bb, b)
        _after_fill(O, LV, LVT, BM, INST, S, i, B_ASK, ba, a)
    if cur_b >= 0:
        ne = _emit_level(E, ne, LV, LVT, INST, i, B_BID, cur_b, ts)
    if cur_a >= 0:
        ne = _emit_level(E, ne, LV, LVT, INST, i, B_ASK, cur_a, ts)
    return ne, False


@njit(**JIT)
def _set_status(ne, c, P, i):
    """SET_STATUS (valid status): STATUS event; to OPEN: the opening auction, then stop
    triggers; to PRE_OPEN: publish the indicative price. Returns (events, paused)."""
    E = _E(P)
    INST = _INST(P)
    ts = c.timestamp
    status = np.int64(c.status)
    INST[i, I_STATUS] = status
    ne = _emit(
        E,
        ne,
        E_STATUS,
        ts,
        c.user_ref,
        c.client_token,
        0,
        c.instrument_id,
        c.account,
        0,
        0,
        0,
        status,
        0,
        0,
        0,
        0,
    )
    if status == ST_OPEN:
        p, v, _side, _imb = _equilibrium(P, i)
        for f in range(I_IOP, I_IOP + 4):
            INST[i, f] = 0
        if v == 0:
            return ne, False
        ne, paused = _auction(ne, P, i, p, np.int64(-1), np.int64(-1), ts)
        if paused:
            return ne, True
        if INST[i, I_BEST + B_BUY_STOP] >= 0 or INST[i, I_BEST + B_SELL_STOP] >= 0:
            return _triggers(ne, P, i, ts)
        return ne, False
    return _publish_iop(ne, P, i, ts), False


# ================================================================ commands
@njit(**SMALL)
def _reject(E, ne, c, reason):
    return _emit(
        E,
        ne,
        E_REJECTED,
        c.timestamp,
        c.user_ref,
        c.client_token,
        c.order_id,
        c.instrument_id,
        c.account,
        c.side,
        0,
        c.price,
        c.qty,
        0,
        0,
        reason,
        c.order_type,
    )


@njit(**SMALL)
def _status_reason(st):
    if st == 0:
        return R_MARKET_CLOSED
    if st == 1:
        return R_MARKET_PRE_OPEN
    return R_HALTED


@njit(**INLINE)
def _validate_new(c, INST, S, i):
    st = INST[i, I_STATUS]
    if _rare(st != ST_OPEN and st != ST_PRE_OPEN):
        return _status_reason(st)
    side = np.int64(c.side)
    otype = np.int64(c.order_type)
    tif = np.int64(c.tif)
    qty = c.qty
    display = c.display_qty
    min_qty = c.min_qty
    if _rare(side != BUY and side != SELL):
        return R_INVALID_SIDE
    if _rare(otype < 1 or otype > 4):
        return R_INVALID_ORDER_TYPE
    if _rare(tif < 1 or tif > 5):
        return R_INVALID_TIF
    if _rare(tif == TIF_GTD and c.expire_time <= c.timestamp):
        return R_INVALID_EXPIRE
    if _rare(c.smp > 3):
        return R_INVALID_SMP
    if _rare(qty < INST[i, I_MINQ] or qty > INST[i, I_MAXQ]):
        return R_INVALID_QUANTITY
    if _rare(display < 0 or display > qty):
        return R_INVALID_DISPLAY
    if _rare(display > 0) and (
        otype == T_MARKET
        or otype == T_STOP_MARKET
        or tif == TIF_IOC
        or tif == TIF_FOK
        or INST[i, I_ALGO] == 1
    ):
        return R_INVALID_DISPLAY
    if _rare(min_qty < 0 or min_qty > qty):
        return R_INVALID_MIN_QTY
    if otype == T_LIMIT or otype == T_STOP_LIMIT:
        r = _check_price(INST, i, c.price)
        if _rare(r != 0):
            return r
    if otype == T_STOP_MARKET or otype == T_STOP_LIMIT:
        r = _check_stop(INST, i, side, c.stop_price)
        if r != 0:
            return r
    if _rare(st == ST_PRE_OPEN) and (
        otype == T_MARKET
        or tif == TIF_IOC
        or tif == TIF_FOK
        or (c.flags & 1) != 0
        or (otype == T_LIMIT and min_qty > 0)
    ):
        return R_MARKET_PRE_OPEN
    opp = B_ASK if side == BUY else B_BID
    if _rare((c.flags & 1) != 0):
        if otype != T_LIMIT or tif == TIF_IOC or tif == TIF_FOK or min_qty > 0:
            return R_INVALID_POST_ONLY
        best = _best_price(INST, i, opp)
        if best >= 0 and _crosses(side, c.price, best):
            return R_POST_ONLY_WOULD_TRADE
    if _rare(otype == T_MARKET and INST[i, I_BEST + opp] < 0):
        return R_NO_LIQUIDITY
    if _rare(S[S_FREE_COUNT] == 0):
        return R_CAPACITY
    return 0


@njit(**INLINE)
def _new(ne, c, P):
    E = _E(P)
    O = _O(P)
    LV = _LV(P)
    LVT = _LVT(P)
    BM = _BM(P)
    INST = _INST(P)
    S = _S(P)
    ts = c.timestamp
    i = _find_inst(INST, np.int64(c.instrument_id))
    if _rare(i < 0):
        return _reject(E, ne, c, R_UNKNOWN_INSTRUMENT), False
    reason = _validate_new(c, INST, S, i)
    if _rare(reason != 0):
        return _reject(E, ne, c, reason), False
    side = np.int64(c.side)
    otype = np.int64(c.order_type)
    tif = np.int64(c.tif)
    qty = c.qty
    price = np.int64(0)
    if otype == T_LIMIT or otype == T_STOP_LIMIT:
        price = c.price
    elif otype == T_MARKET:
        price = _protection(INST, i, side)
    smp = np.int64(c.smp)
    if smp == 0:
        smp = INST[i, I_SMP]
    is_stop = otype == T_STOP_MARKET or otype == T_STOP_LIMIT
    slot = S[S_FREE_HEAD]
    S[S_FREE_HEAD] = O[slot, F_NEXT]
    S[S_FREE_COUNT] -= 1
    O[slot, F_FLAGS] = (
        side | (otype << 2) | (tif << 5) | (smp << 8) | ((c.flags & 1) << 10) | (i << INST_SHIFT)
    )
    O[slot, F_PRICE] = price
    O[slot, F_STOP] = c.stop_price if is_stop else 0
    O[slot, F_SHOWN] = qty
    O[slot, F_HIDDEN] = c.min_qty if is_stop else 0
    O[slot, F_DISPLAY] = c.display_qty
    O[slot, F_ACCOUNT] = c.account
    O[slot, F_GROUP] = c.smp_group
    _set_pair(O, slot, F_UREF_LO, np.int64(c.user_ref))
    _set_pair(O, slot, F_EXP_LO, c.expire_time if tif == TIF_GTD else 0)
    ne = _emit_order(
        E,
        ne,
        O,
        INST,
        slot,
        E_ACCEPTED,
        ts,
        c.client_token,
        _event_price(O, slot),
        qty,
        qty,
        0,
        0,
        0,
    )
    if _rare(is_stop):
        book = B_BUY_STOP if side == BUY else B_SELL_STOP
        _link_tail(O, LV, LVT, BM, INST, i, book, c.stop_price - INST[i, I_MIN], slot)
        return ne, False
    if _rare(INST[i, I_STATUS] == ST_PRE_OPEN):  # rests without matching
        ne = _finish(ne, P, i, slot, False, ts)
        return _publish_iop(ne, P, i, ts), False
    needed = qty if tif == TIF_FOK else c.min_qty
    mid0 = S[S_MATCH_ID]
    ne, paused = _execute(ne, P, i, slot, needed, ts)
    if _rare(paused):
        return ne, True
    if _rare(
        S[S_MATCH_ID] != mid0
        and (INST[i, I_BEST + B_BUY_STOP] >= 0 or INST[i, I_BEST + B_SELL_STOP] >= 0)
    ):
        return _triggers(ne, P, i, ts)
    return ne, False


@njit(**SMALL)
def _lookup(O, c):
    oid = c.order_id
    slot = oid & 0xFFFFFFFF
    if _rare(oid < 0 or slot >= O.shape[0]):
        return -1
    if _rare(np.int64(O[slot, F_GEN]) != (oid >> 32)):
        return -1
    if _rare(O[slot, F_FLAGS] < 0 or np.uint32(O[slot, F_ACCOUNT]) != c.account):
        return -1
    return slot


@njit(**INLINE)
def _cancel(ne, c, P):
    E = _E(P)
    O = _O(P)
    LV = _LV(P)
    LVT = _LVT(P)
    INST = _INST(P)
    slot = _lookup(O, c)
    if _rare(slot < 0):
        return _reject(E, ne, c, R_UNKNOWN_ORDER)
    i = _inst(O, slot)
    book, idx = _book_idx(O, INST, slot)
    ne = _cancel_linked(ne, P, slot, X_USER, c.timestamp, c.client_token)
    if book < 2:
        ne = _emit_level(E, ne, LV, LVT, INST, i, book, idx, c.timestamp)
        if _rare(INST[i, I_STATUS] == ST_PRE_OPEN):
            ne = _publish_iop(ne, P, i, c.timestamp)
    return ne


@njit(**JIT)
def _replace(ne, c, P):
    E = _E(P)
    O = _O(P)
    LV = _LV(P)
    LVT = _LVT(P)
    BM = _BM(P)
    INST = _INST(P)
    S = _S(P)
    ts = c.timestamp
    slot = _lookup(O, c)
    if slot < 0:
        return _reject(E, ne, c, R_UNKNOWN_ORDER), False
    i = _inst(O, slot)
    st = INST[i, I_STATUS]
    if st != ST_OPEN and st != ST_PRE_OPEN:
        return _reject(E, ne, c, _status_reason(st)), False
    qty = c.qty
    if _rare(qty < INST[i, I_MINQ] or qty > INST[i, I_MAXQ]):
        return _reject(E, ne, c, R_INVALID_QUANTITY), False
    otype = _otype(O, slot)
    side = _side(O, slot)
    is_stop = otype == T_STOP_MARKET or otype == T_STOP_LIMIT
    new_price = np.int64(O[slot, F_PRICE])
    if otype != T_STOP_MARKET:
        new_price = c.price
        r = _check_price(INST, i, new_price)
        if r != 0:
            return _reject(E, ne, c, r), False
    new_stop = np.int64(O[slot, F_STOP])
    if is_stop:
        new_stop = c.stop_price
        r = _check_stop(INST, i, side, new_stop)
        if r != 0:
            return _reject(E, ne, c, r), False
    if (O[slot, F_FLAGS] >> 10) & 1:
        best = _best_price(INST, i, B_ASK if side == BUY else B_BID)
        if best >= 0 and _crosses(side, new_price, best):
            return _reject(E, ne, c, R_POST_ONLY_WOULD_TRADE), False
    shown = np.int64(O[slot, F_SHOWN])
    leaves = shown + _leaves_hidden(O, slot)
    keeps = new_price == O[slot, F_PRICE] and new_stop == O[slot, F_STOP] and qty <= leaves
    token = c.client_token
    mn = INST[i, I_MIN]
    if is_stop:
        book = B_BUY_STOP if side == BUY else B_SELL_STOP
        if keeps:
            LVT[_level(INST, i, book, O[slot, F_STOP] - mn)] += qty - shown
            O[slot, F_SHOWN] = qty
        else:
            _unlink(O, LV, LVT, BM, INST, i, book, O[slot, F_STOP] - mn, slot)
            O[slot, F_PRICE] = new_price
            O[slot, F_STOP] = new_stop
            O[slot, F_SHOWN] = qty
            _link_tail(O, LV, LVT, BM, INST, i, book, new_stop - mn, slot)
        ne = _emit_order(E, ne, O, INST, slot, E_REPLACED, ts, token, new_stop, qty, qty, 0, 0, 0)
        return ne, False
    book = side - 1
    old_idx = np.int64(O[slot, F_PRICE]) - mn
    if keeps:
        new_shown = min(shown, qty)
        LVT[_level(INST, i, book, old_idx)] += new_shown - shown
        O[slot, F_SHOWN] = new_shown
        O[slot, F_HIDDEN] = qty - new_shown
        ne = _emit_order(E, ne, O, INST, slot, E_REPLACED, ts, token, new_price, qty, qty, 0, 0, 0)
        ne = _emit_level(E, ne, LV, LVT, INST, i, book, old_idx, ts)
        return _publish_iop(ne, P, i, ts), False
    _unlink(O, LV, LVT, BM, INST, i, book, old_idx, slot)
    O[slot, F_PRICE] = new_price
    O[slot, F_SHOWN] = qty
    O[slot, F_HIDDEN] = 0
    ne = _emit_order(E, ne, O, INST, slot, E_REPLACED, ts, token, new_price, qty, qty, 0, 0, 0)
    ne = _emit_level(E, ne, LV, LVT, INST, i, book, old_idx, ts)
    if st == ST_PRE_OPEN:  # moves in the book, never matches
        ne = _finish(ne, P, i, slot, False, ts)
        return _publish_iop(ne, P, i, ts), False
    mid0 = S[S_MATCH_ID]
    ne, st = _aggress(ne, P, i, slot, np.int64(-1), ts)
    if st == 2:
        return ne, True
    ne = _finish(ne, P, i, slot, st == 1, ts)
    if S[S_MATCH_ID] != mid0 and (
        INST[i, I_BEST + B_BUY_STOP] >= 0 or INST[i, I_BEST + B_SELL_STOP] >= 0
    ):
        return _triggers(ne, P, i, ts)
    return ne, False


@njit(**SMALL)
def _sweep_hit(O, slot, kind, acct, now):
    if kind == C_MASS:
        return acct == 0 or np.uint32(O[slot, F_ACCOUNT]) == acct
    if kind == C_SESSION:
        return _tif(O, slot) == TIF_DAY
    return _tif(O, slot) == TIF_GTD and _get_pair(O, slot, F_EXP_LO) <= now


@njit(**JIT)
def _sweep(ne, P):
    """Resume/perform the sweep described in S (walk order: see reference._sweep)."""
    E = _E(P)
    O = _O(P)
    LV = _LV(P)
    LVT = _LVT(P)
    BM = _BM(P)
    INST = _INST(P)
    S = _S(P)
    cap = E.shape[0]
    kind = S[S_SW_TYPE]
    iid = S[S_SW_INST_ID]
    acct = S[S_SW_ACCT]
    now = S[S_PEND_TS]
    reason = X_MASS if kind == C_MASS else (X_SESSION if kind == C_SESSION else X_GTD)
    for i in range(INST.shape[0]):
        if iid != 0 and INST[i, I_ID] != iid:
            continue
        nw = INST[i, I_NWORDS]
        nlev = INST[i, I_NLEV]
        for book in range(4):
            w0 = _bm_base(INST, i, book)
            idx = _scan_up(BM, w0, nw, 0)
            while idx >= 0:
                L = _level(INST, i, book, idx)
                need = np.int64(LV[2, L]) + MARGIN
                if cap - ne < need:
                    S[S_PEND_KIND] = PEND_SWEEP
                    if need > cap:
                        S[S_NEED] = need
                    return ne, True
                n = 0
                r = LV[0, L]
                while r >= 0:
                    nx = O[r, F_NEXT]
                    if _sweep_hit(O, r, kind, acct, now):
                        ne = _cancel_linked(ne, P, r, reason, now, _U0)
                        n += 1
                    r = nx
                if n > 0 and book < 2:
                    ne = _emit_level(E, ne, LV, LVT, INST, i, book, idx, now)
                S[S_SW_COUNT] += n
                idx = _scan_up(BM, w0, nw, idx + 1) if idx + 1 < nlev else -1
        if INST[i, I_STATUS] == ST_PRE_OPEN:
            if cap - ne < MARGIN:  # re-walking on resume is idempotent
                S[S_PEND_KIND] = PEND_SWEEP
                return ne, True
            ne = _publish_iop(ne, P, i, now)
    ne = _emit(
        E,
        ne,
        E_MASS_DONE,
        now,
        np.uint64(S[S_SW_UREF]),
        np.uint64(S[S_SW_TOKEN]),
        0,
        iid,
        acct,
        0,
        0,
        0,
        S[S_SW_COUNT],
        0,
        0,
        reason,
        0,
    )
    S[S_PEND_KIND] = PEND_NONE
    return ne, False


@njit(**JIT)
def _resume(ne, P):
    """Finish work a previous call left pending. Returns (events, still_paused)."""
    S = _S(P)
    kind = S[S_PEND_KIND]
    if kind == PEND_SWEEP:
        return _sweep(ne, P)
    S[S_PEND_KIND] = PEND_NONE
    i = S[S_PEND_INST]
    ts = S[S_PEND_TS]
    if kind == PEND_AUCTION:
        ne, paused = _auction(ne, P, i, S[S_AUC_PRICE], S[S_PEND_SLOT], S[S_PEND_CUR], ts)
        if paused:
            return ne, True
    elif kind == PEND_AGGRESS:
        slot = S[S_PEND_SLOT]
        ne, st = _aggress(ne, P, i, slot, S[S_PEND_CUR], ts)
        if st == 2:
            return ne, True
        ne = _finish(ne, P, i, slot, st == 1, ts)
    return _triggers(ne, P, i, ts)


@njit(**JIT)
def _other_command(ne, c, P):
    """The rare commands (mass cancel, session end, expiry, status, reference, unknown),
    out of line. Returns (events, paused)."""
    E = _E(P)
    INST = _INST(P)
    S = _S(P)
    t = c.cmd_type
    if t == C_MASS or t == C_SESSION or t == C_EXPIRE:
        iid = np.int64(c.instrument_id)
        if iid != 0 and _find_inst(INST, iid) < 0:
            return _reject(E, ne, c, R_UNKNOWN_INSTRUMENT), False
        S[S_SW_TYPE] = t
        S[S_SW_INST_ID] = iid
        S[S_SW_ACCT] = c.account
        S[S_SW_COUNT] = 0
        S[S_SW_UREF] = np.int64(c.user_ref)
        S[S_SW_TOKEN] = np.int64(c.client_token)
        S[S_PEND_TS] = c.timestamp
        return _sweep(ne, P)
    if t == C_STATUS or t == C_REFERENCE:
        i = _find_inst(INST, np.int64(c.instrument_id))
        if i < 0:
            return _reject(E, ne, c, R_UNKNOWN_INSTRUMENT), False
        if t == C_STATUS:
            if c.status > 3:
                return _reject(E, ne, c, R_INVALID_STATUS), False
            return _set_status(ne, c, P, i)
        if c.price < INST[i, I_MIN] or c.price > INST[i, I_MAX]:
            return _reject(E, ne, c, R_PRICE_OUT_OF_BAND), False
        INST[i, I_REF] = c.price
        ne = _emit(
            E,
            ne,
            E_REFERENCE,
            c.timestamp,
            c.user_ref,
            c.client_token,
            0,
            c.instrument_id,
            c.account,
            0,
            0,
            c.price,
            0,
            0,
            0,
            0,
            0,
        )
        return _publish_iop(ne, P, i, c.timestamp), False
    return _reject(E, ne, c, R_UNKNOWN_COMMAND), False


@njit(**INLINE)
def _command(ne, c, P):
    """One command. Returns (events, paused)."""
    t = c.cmd_type
    if t == C_NEW:
        return _new(ne, c, P)
    if t == C_CANCEL:
        return _cancel(ne, c, P), False
    if _rare(t != C_REPLACE):
        return _other_command(ne, c, P)
    return _replace(ne, c, P)


#: How many commands ahead ``process`` starts loading the order row a CANCEL / REPLACE
#: targets (measured on bench/engine.py's stream: 8-12 best, +3-5 %; also prefetching
#: queue neighbours and level tails cost more than it saved).
PREFETCH_FAR = 8
#: How many commands ahead ``process`` prefetches the command records themselves: the
#: hardware prefetcher alone left the load of command ``k + PREFETCH_FAR`` missing (on
#: this box; +1.5 % on the quick stream at 64, +0.5-2.7 % at 32).
CMD_AHEAD = 64


@njit(**SMALL)
def _prefetch_far(c, O, cap_o):
    """Start loading the order row a later CANCEL / REPLACE targets (a hint only).

    Branch-free: it prefetches the row ``order_id`` names whatever the command (a NEW's
    order id is usually 0: row 0, a wasted but harmless hint). Testing the command type
    here was a branch on a load that often misses (the command 8 ahead), mispredicted
    on a random mix of commands: 7-8 % of the stream's time (docs/engine.md)."""
    slot = c.order_id & 0xFFFFFFFF
    slot = slot if slot < cap_o else 0  # a select, not a branch
    # a 60-byte row may straddle two cache lines: load both
    _prefetch(O, slot * N_OFIELDS)
    _prefetch(O, slot * N_OFIELDS + N_OFIELDS - 1)


@njit(**SMALL)
def _clear_scratch(S):
    """Zero the bookkeeping of finished work so equal books have equal state digests."""
    for f in range(S_PEND_SLOT, S_SW_TOKEN + 1):
        S[f] = 0
    S[S_AUC_PRICE] = 0


@njit(**JIT)
def process(C, E, O, LV, LVT, BM, INST, S):
    """Apply commands ``C`` in order, writing events into ``E``.

    ``E`` is the int64 word view of an ``EVENT_DTYPE`` buffer (``abi.event_words``).
    While working on command ``k`` it prefetches the order row command ``k + 8``
    cancels or replaces, so that row's cache miss overlaps this command's work, and the
    record of command ``k + 64``.

    Returns ``(commands_consumed, events_written, more)``; ``more`` is 1 when work is
    pending or a bigger buffer is needed (then read ``S[S_PEND_KIND]`` / ``S[S_NEED]``).
    It stops early only when ``E`` is nearly full; unfinished work of the last consumed
    command is kept in ``S`` and completed by the next call before it reads commands
    (call again with the remaining commands, possibly none). If ``S[S_NEED]`` exceeds
    ``len(E)``
    the next call needs a bigger event buffer. Cost per command: O(1) for passive adds
    and cancels, plus O(fills) for aggressive orders.
    """
    P = (
        _data(E),
        E.shape[0],
        _data(O),
        O.shape[0],
        _data(LV),
        LV.shape[1],
        _data(LVT),
        _data(BM),
        BM.shape[0],
        _data(INST),
        INST.shape[0],
        _data(S),
    )
    E = _E(P)  # the same arrays with compile-time row widths
    O = _O(P)
    S = _S(P)
    cap = E.shape[0]
    ne = np.int64(0)
    S[S_NEED] = 0
    if S[S_PEND_KIND] != PEND_NONE:
        if cap < MARGIN:
            S[S_NEED] = MARGIN
            return 0, 0, 1
        ne, paused = _resume(ne, P)
        if paused:
            return 0, ne, 1
    n = C.shape[0]
    cap_o = O.shape[0]
    rec = C.itemsize
    for k in range(n):
        # the command records ahead: two hints 64 bytes apart per 100-byte record
        # reach every cache line of the stream
        ahead = (k + CMD_AHEAD) * rec
        _prefetch_byte(C, ahead)
        _prefetch_byte(C, ahead + 64)
        if k + PREFETCH_FAR < n:
            _prefetch_far(C[k + PREFETCH_FAR], O, cap_o)
        if _rare(cap - ne < MARGIN):
            if cap < MARGIN:
                S[S_NEED] = MARGIN
            _clear_scratch(S)
            return k, ne, 1 if cap < MARGIN else 0
        ne, paused = _command(ne, C[k], P)
        if _rare(paused):
            return k + 1, ne, 1
    _clear_scratch(S)
    return n, ne, 0


# ======================================================== the facade's entry point
# ``process`` with the state as one handle array (``entry.make_handle``): a call from
# Python unboxes four arrays instead of eight. Kept in this file so that any edit of the
# kernel invalidates its numba cache as well (numba checks only the function's own file).
def _view_intrinsic(dtype, ndim):
    """An intrinsic ``view(address, shape)``: the C-contiguous ``ndim``-d ``dtype`` array
    at ``address`` (the same codegen as the state views, :func:`_c_view`)."""
    retty = types.Array(dtype, ndim, "C")

    @intrinsic
    def view(typingctx, address, shape):
        def codegen(context, builder, signature, args):
            dims = [builder.extract_value(args[1], k) for k in range(ndim)]
            data = builder.inttoptr(args[0], context.get_value_type(types.CPointer(dtype)))
            return _c_view(context, builder, retty, data, dims)

        return retty(address, shape), codegen

    return view


_i32_2d = _view_intrinsic(types.int32, 2)
_i64_1d = _view_intrinsic(types.int64, 1)
_u64_1d = _view_intrinsic(types.uint64, 1)
_i64_2d = _view_intrinsic(types.int64, 2)


@njit(**JIT)
def process_handle(C, E_all, start, end, H):
    """``kernel.process(C, E_all[start:end], *state)`` with the state read from handle
    ``H`` (:func:`make_handle`). Same result and guarantees as ``kernel.process``."""
    O = _i32_2d(H[0], (H[1], H[2]))
    LV = _i32_2d(H[3], (H[4], H[5]))
    LVT = _i64_1d(H[6], (H[7],))
    BM = _u64_1d(H[8], (H[9],))
    INST = _i64_2d(H[10], (H[11], H[12]))
    S = _i64_1d(H[13], (H[14],))
    return process(C, E_all[start:end], O, LV, LVT, BM, INST, S)
