"""The order-entry core's compiled kernels: inbound messages -> engine commands, and engine
events -> framed session replies, over the array tables of :mod:`exchange.core.tables`.

Three calls per batch (see :class:`exchange.core.gateway.CoreGateway`):

* :func:`decode_batch` — throttle, decode, field checks, pre-trade risk (reserving
  quantity), token checks and the order table, for Enter Order and Cancel Order, in the
  same order and with the same reject codes and offsets as the Python gateway
  (``exchange.gateway.Gateway.on_message``). Each message becomes one *batch entry*: an
  engine command (its row in ``CMDS``) or a gateway reject. It stops early, with a status,
  at a message it cannot take: another message type (the driver decodes it), a Cancel of
  an order still in this batch (the engine must number it first), or full buffers.
* :func:`apply_events` — walks the engine's events for the batch, updates the order
  table and the risk exposures (fills, cancels, rejects) and writes every reply as a
  framed Sequenced Data packet into ``OUT`` (``OUTIDX`` rows: session, offset, length),
  gateway rejects interleaved in arrival order, each stamped ``base + entry``.
* :func:`journal_batch` — the batch's journal commit group, framed as
  ``exchange.journal`` frames records (zlib's CRC-32, slice-by-8): its commands and a
  binary gateway note (``exchange.journal.decode_binary_note`` gives the layout).
  :func:`apply_journal` runs it right after :func:`apply_events` in the same call.

Every constant the kernels compare against is written out here, not imported: numba's
cache checks only this file, so a constant read from another module would stay frozen in
a cached kernel after that module changed. ``tests/exchange/core`` checks each one against
the protocol and engine enums. Nothing here allocates (``_nrt=False``) but
:func:`rehash_tokens`. Cost per message or event: O(1) expected (one open-addressing
probe sequence for a token, a binary search over the listed instruments).
"""

from __future__ import annotations

import numpy as np
from numba import njit

JIT = {"cache": True, "_nrt": False, "boundscheck": False}

# ----------------------------------------------------------------- wire constants
MSG_ENTER = 0x4F  # 'O'
MSG_CANCEL = 0x58  # 'X'
ENTER_SIZE = 70
CANCEL_SIZE = 5
# Enter Order field offsets
EO_TOKEN, EO_INST, EO_SIDE, EO_TYPE, EO_TIF = 1, 5, 9, 10, 11
EO_PRICE, EO_QTY, EO_DISPLAY, EO_STOP, EO_MINQ = 12, 20, 24, 28, 36
EO_GROUP, EO_SMP, EO_ACCOUNT, EO_EXPIRE, EO_POST = 40, 44, 45, 61, 69
ACCOUNT_WIDTH = 16
# wire enums
W_BUY, W_SELL = 0x42, 0x53
W_LIMIT, W_MARKET, W_STOP, W_STOP_LIMIT = 0x4C, 0x4D, 0x53, 0x54
W_DAY, W_GTC, W_IOC, W_FOK, W_GTD = 0x30, 0x31, 0x33, 0x34, 0x36
W_SMP_DEFAULT, W_SMP_RESTING, W_SMP_INCOMING, W_SMP_BOTH = 0x2D, 0x52, 0x49, 0x42
W_POST_YES, W_POST_NO = 0x59, 0x4E
W_LIQ_ADDED, W_LIQ_REMOVED = 0x41, 0x52
# reject codes (exchange.protocol.codes.RejectCode)
R_BAD_SIDE, R_BAD_ORDER_TYPE, R_BAD_TIF, R_BAD_SMP, R_BAD_ACCOUNT = 102, 103, 104, 105, 106
R_TOKEN, R_UNKNOWN_TOKEN, R_BAD_QTY, R_BAD_DISPLAY, R_BAD_MINQ = 107, 108, 109, 110, 111
R_BAD_STOP, R_BAD_PRICE, R_BAD_EXPIRE, R_BAD_POST = 112, 113, 115, 116
R_THROTTLED, R_NOT_PERMITTED, R_BLOCKED, R_NOT_WORKING = 120, 121, 122, 124
R_MARKET_CLOSED, R_UNKNOWN_INSTRUMENT = 2, 1
R_MAX_QTY, R_MIN_QTY, R_MAX_NOTIONAL, R_POSITION, R_PRICE_LIMIT = 130, 131, 132, 133, 134
# engine enums (exchange.engine.abi)
C_NEW, C_CANCEL = 1, 2
E_ACCEPTED, E_REJECTED, E_TRADE, E_CANCELLED, E_STOP, E_LEVEL = 1, 2, 3, 4, 6, 7
ENG_BUY, ENG_SELL = 1, 2
FLAG_POST_ONLY = 1
# framed outbound packets: 2-byte length, 'S', then the message
LEN_ACCEPTED, LEN_REJECTED, LEN_EXECUTED, LEN_CANCELED, LEN_STOP = 89, 21, 46, 26, 28

# ----------------------------------------------------------------- table layouts
# sessions (SESS rows)
S_LAST_TOKEN, S_RATE, S_LEVEL, S_LAST_NS = 0, 1, 2, 3
SF = 4
# accounts (ACCT rows): id, blocked, max notional (0 = the gateway default), raw field key
A_ID, A_BLOCKED, A_MAX_NOTIONAL, A_KEY0, A_KEY1 = 0, 1, 2, 3, 4
AF = 5
# listed instruments (INST rows, sorted by id)
I_ID, I_MIN_QTY, I_MAX_QTY, I_HAS_LIMITS, I_LO, I_HI = 0, 1, 2, 3, 4, 5
I_BAND_LO, I_BAND_HI, I_HAS_REF, I_REF, I_TICK_VALUE, I_PRODUCT = 6, 7, 8, 9, 10, 11
I_SPOT, I_LIMIT_ALL, I_LIMIT_SPOT = 12, 13, 14
IF = 15
# exposures EXP[account, instrument or n_inst + product, X_*]
X_POSITION, X_BUY, X_SELL = 0, 1, 2
# orders (ORD rows; a free row has O_REF 0 and O_NEXT the next free row, -1 ends)
O_REF, O_TOKEN, O_SESS, O_ACCT, O_INST, O_SIDE, O_PRICE = 0, 1, 2, 3, 4, 5, 6
O_QTY, O_ORDER_ID, O_STOP, O_WORKING, O_EXPIRE, O_NEXT = 7, 8, 9, 10, 11, 12
#: the order's place among its session's orders (entry, or a replace's new token), as the
#: Python gateway's per-session dict orders them: mass cancels go in this order
O_SEQ = 13
#: the last journal note that listed this row (so a note lists an order once)
O_NOTED = 14
OF = 15
#: an order reference (the engine's ``user_ref``) is ``serial << REF_SHIFT | row``
REF_SHIFT = 24
REF_ROW_MASK = (1 << REF_SHIFT) - 1
# token table TOKH[h] = (key, row); key = session << 32 | token; -1 empty, -2 deleted
H_EMPTY, H_DELETED = -1, -2
# globals (G)
G_CLOSED, G_NEXT_SERIAL, G_FREE, G_ORDERS, G_DEFAULT_MAX_NOTIONAL = 0, 1, 2, 3, 4
G_H_USED, G_H_DELETED, G_N_INST, G_GTD_NEW, G_NOTES = 5, 6, 7, 8, 9
GF = 10
# batch entries (BE rows)
B_KIND, B_SESS, B_ROW, B_TOKEN, B_REQUEST, B_CODE, B_OFFSET, B_RAW = 0, 1, 2, 3, 4, 5, 6, 7
#: the entry's order ref, a cancel's wire reason (0: from the engine), a counter slot
B_REF, B_REASON, B_COUNTER = 8, 9, 10
BF = 11
#: entry kinds: a client's Enter Order / Cancel Order, a gateway reject, a cancel on the
#: gateway's behalf (mass cancel, cancel-on-disconnect: B_REASON, B_COUNTER), a Replace,
#: an engine sweep (mass cancel by account, session close, GTD expiry: B_REASON), a
#: status change, and a reply only Python can write (``apply_events`` stops at it)
K_NEW, K_CANCEL, K_REJECT, K_CANCEL_FOR, K_REPLACE, K_SWEEP, K_STATUS, K_PY = range(8)
# decode_batch status
ST_DONE, ST_FLUSH_FIRST, ST_OTHER, ST_FULL, ST_GROW = 0, 1, 2, 3, 4
#: apply_events status: every event applied, or stopped at one only Python handles
AP_DONE, AP_EVENT, AP_ENTRY = 0, 1, 2
#: trade records for the trade log (TR rows)
T_TS, T_MATCH, T_INST, T_ACCOUNT, T_SIDE, T_PRICE, T_QTY, T_AGGRESSOR = range(8)
TF = 8
NS = 1_000_000_000


# ----------------------------------------------------------------- byte helpers
@njit(**JIT)
def _u32(b, p):
    return (
        (np.int64(b[p]) << 24)
        | (np.int64(b[p + 1]) << 16)
        | (np.int64(b[p + 2]) << 8)
        | (np.int64(b[p + 3]))
    )


@njit(**JIT)
def _i64(b, p):
    x = np.int64(0)
    for k in range(8):
        x = (x << 8) | np.int64(b[p + k])
    return x


@njit(**JIT)
def _put(o, p, x, n):
    """Write the low ``n`` bytes of ``x`` big-endian at ``o[p]``; returns ``p + n``."""
    for k in range(n):
        o[p + n - 1 - k] = np.uint8((x >> (8 * k)) & 0xFF)
    return p + n


# ----------------------------------------------------------------- token table
@njit(**JIT)
def _slot(key, mask):
    return ((key * np.int64(-7046029254386353131)) >> np.int64(17)) & mask


@njit(**JIT)
def tok_find(TOKH, sess, token):
    """The order row of ``(sess, token)``, or -1. O(1) expected."""
    key = (np.int64(sess) << 32) | np.int64(token)
    mask = TOKH.shape[0] - 1
    h = _slot(key, mask)
    while True:
        k = TOKH[h, 0]
        if k == key:
            return TOKH[h, 1]
        if k == H_EMPTY:
            return -1
        h = (h + 1) & mask


@njit(**JIT)
def _tok_put(TOKH, G, sess, token, row):
    key = (np.int64(sess) << 32) | np.int64(token)
    mask = TOKH.shape[0] - 1
    h = _slot(key, mask)
    while TOKH[h, 0] >= 0:
        h = (h + 1) & mask
    if TOKH[h, 0] == H_DELETED:
        G[G_H_DELETED] -= 1
    TOKH[h, 0] = key
    TOKH[h, 1] = row
    G[G_H_USED] += 1


@njit(**JIT)
def _tok_del(TOKH, G, sess, token, row):
    """Remove ``(sess, token)`` if it maps to ``row`` (a replaced token may map elsewhere)."""
    key = (np.int64(sess) << 32) | np.int64(token)
    mask = TOKH.shape[0] - 1
    h = _slot(key, mask)
    while True:
        k = TOKH[h, 0]
        if k == key:
            if TOKH[h, 1] == row:
                TOKH[h, 0] = H_DELETED
                G[G_H_USED] -= 1
                G[G_H_DELETED] += 1
            return
        if k == H_EMPTY:
            return
        h = (h + 1) & mask


@njit(cache=True, boundscheck=False)
def rehash_tokens(TOKH, NEW):
    """Copy every live entry of ``TOKH`` into the empty table ``NEW`` (a power of two).
    Returns the number copied. O(len(TOKH))."""
    mask = NEW.shape[0] - 1
    n = 0
    for i in range(TOKH.shape[0]):
        key = TOKH[i, 0]
        if key >= 0:
            h = _slot(key, mask)
            while NEW[h, 0] != H_EMPTY:
                h = (h + 1) & mask
            NEW[h, 0] = key
            NEW[h, 1] = TOKH[i, 1]
            n += 1
    return n


# ----------------------------------------------------------------- risk
@njit(**JIT)
def _inst_index(INST, n_inst, iid):
    lo, hi = 0, n_inst - 1
    while lo <= hi:
        mid = (lo + hi) >> 1
        v = INST[mid, I_ID]
        if v == iid:
            return mid
        if v < iid:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


@njit(**JIT)
def risk_check(INST, ACCT, EXP, G, a, i, side, otype, price, stop, qty, add, reserve):
    """The first failed pre-trade check's reject code, or 0 (``exchange.risk``'s
    ``RiskChecker._evaluate``, same order). With ``reserve``, a passing order's ``add``
    becomes working quantity of account row ``a`` in instrument row ``i``. O(1)."""
    if ACCT[a, A_BLOCKED]:
        return R_BLOCKED
    if qty > INST[i, I_MAX_QTY]:
        return R_MAX_QTY
    if qty < INST[i, I_MIN_QTY]:
        return R_MIN_QTY
    has_limit = otype in (W_LIMIT, W_STOP_LIMIT)
    has_lim = INST[i, I_HAS_LIMITS] != 0
    lo, hi = INST[i, I_LO], INST[i, I_HI]
    if has_lim:
        if has_limit and not (lo <= price <= hi):
            return R_PRICE_LIMIT
        if (otype in (W_STOP, W_STOP_LIMIT)) and not (lo <= stop <= hi):
            return R_PRICE_LIMIT
    max_notional = ACCT[a, A_MAX_NOTIONAL]
    if max_notional == 0:
        max_notional = G[G_DEFAULT_MAX_NOTIONAL]
    if max_notional:
        if has_limit:
            value_px = price
        elif has_lim:
            value_px = hi if side == W_BUY else lo
        elif side == W_BUY:
            value_px = INST[i, I_BAND_HI]
        else:
            value_px = (
                INST[i, I_REF] if INST[i, I_HAS_REF] and INST[i, I_REF] else (INST[i, I_BAND_HI])
            )
        # value_px * qty * tick value > max_notional, without overflow (qty >= 1 here)
        unit = qty * INST[i, I_TICK_VALUE]
        if value_px > 0 and unit > 0 and value_px > max_notional // unit:
            return R_MAX_NOTIONAL
    if add <= 0:
        return 0
    pi = G[G_N_INST] + INST[i, I_PRODUCT]  # the product's exposure row
    if side == W_BUY:
        if EXP[a, pi, X_POSITION] + EXP[a, pi, X_BUY] + add > INST[i, I_LIMIT_ALL] or (
            INST[i, I_SPOT]
            and EXP[a, i, X_POSITION] + EXP[a, i, X_BUY] + add > INST[i, I_LIMIT_SPOT]
        ):
            return R_POSITION
        if reserve:
            EXP[a, i, X_BUY] += add
            EXP[a, pi, X_BUY] += add
    else:
        if -EXP[a, pi, X_POSITION] + EXP[a, pi, X_SELL] + add > INST[i, I_LIMIT_ALL] or (
            INST[i, I_SPOT]
            and -EXP[a, i, X_POSITION] + EXP[a, i, X_SELL] + add > INST[i, I_LIMIT_SPOT]
        ):
            return R_POSITION
        if reserve:
            EXP[a, i, X_SELL] += add
            EXP[a, pi, X_SELL] += add
    return 0


# ----------------------------------------------------------------- decode
@njit(**JIT)
def _entry(BE, n_be, kind, sess, row, token, request, code, offset, raw, ref):
    """Write batch entry ``n_be`` (no cancel reason, no counter); returns ``n_be + 1``."""
    BE[n_be, B_KIND] = kind
    BE[n_be, B_SESS] = sess
    BE[n_be, B_ROW] = row
    BE[n_be, B_TOKEN] = token
    BE[n_be, B_REQUEST] = request
    BE[n_be, B_CODE] = code
    BE[n_be, B_OFFSET] = offset
    BE[n_be, B_RAW] = raw
    BE[n_be, B_REF] = ref
    BE[n_be, B_REASON] = 0
    BE[n_be, B_COUNTER] = -1
    return n_be + 1


@njit(**JIT)
def _reject(BE, n_be, sess, token, request, code, offset, raw):
    return _entry(BE, n_be, K_REJECT, sess, -1, token, request, code, offset, raw, 0)


@njit(**JIT)
def _enter_code(b, p, s, SESS, ACCT, PERM, G):
    """Decode checks and field checks of the Enter Order at ``b[p:]`` from session ``s``.

    Returns ``(code, offset, account row, token taken)``: code 0 = passed (the caller
    runs risk), else the reject. Same order as the Python gateway: enums and account
    field (decoder), then the token (taken only if increasing), then the fields."""
    post, side, otype = b[p + EO_POST], b[p + EO_SIDE], b[p + EO_TYPE]
    tif, smp = b[p + EO_TIF], b[p + EO_SMP]
    if post != W_POST_YES and post != W_POST_NO:
        return R_BAD_POST, EO_POST, -1
    if side != W_BUY and side != W_SELL:
        return R_BAD_SIDE, EO_SIDE, -1
    if otype != W_LIMIT and otype != W_MARKET and otype != W_STOP and otype != W_STOP_LIMIT:
        return R_BAD_ORDER_TYPE, EO_TYPE, -1
    if tif != W_DAY and tif != W_GTC and tif != W_IOC and tif != W_FOK and tif != W_GTD:
        return R_BAD_TIF, EO_TIF, -1
    if (
        smp != W_SMP_DEFAULT
        and smp != W_SMP_RESTING
        and smp != W_SMP_INCOMING
        and (smp != W_SMP_BOTH)
    ):
        return R_BAD_SMP, EO_SMP, -1
    for k in range(ACCOUNT_WIDTH):
        c = b[p + EO_ACCOUNT + k]
        if c < 0x20 or c > 0x7E:
            return R_BAD_ACCOUNT, EO_ACCOUNT + k, -1
    key0 = _i64(b, p + EO_ACCOUNT)
    key1 = _i64(b, p + EO_ACCOUNT + 8)
    a = -1
    for r in range(ACCT.shape[0]):
        if ACCT[r, A_KEY0] == key0 and ACCT[r, A_KEY1] == key1:
            if PERM[s, r]:
                a = r
            break
    tok = _u32(b, p + EO_TOKEN)
    if tok <= SESS[s, S_LAST_TOKEN]:
        return R_TOKEN, 1, a
    SESS[s, S_LAST_TOKEN] = tok
    qty = _u32(b, p + EO_QTY)
    expire = _i64(b, p + EO_EXPIRE)
    stop = _i64(b, p + EO_STOP)
    if a < 0:
        return R_NOT_PERMITTED, EO_ACCOUNT, a
    if G[G_CLOSED]:
        return R_MARKET_CLOSED, 0, a
    if qty == 0:
        return R_BAD_QTY, EO_QTY, a
    if _u32(b, p + EO_DISPLAY) > qty:
        return R_BAD_DISPLAY, EO_DISPLAY, a
    if _u32(b, p + EO_MINQ) > qty:
        return R_BAD_MINQ, EO_MINQ, a
    if (tif == W_GTD) != (expire != 0):
        return R_BAD_EXPIRE, EO_EXPIRE, a
    if (otype in (W_STOP, W_STOP_LIMIT)) != (stop != 0):
        return R_BAD_STOP, EO_STOP, a
    if (otype in (W_LIMIT, W_STOP_LIMIT)) and _i64(b, p + EO_PRICE) <= 0:
        return R_BAD_PRICE, EO_PRICE, a
    return 0, 0, a


@njit(**JIT)
def decode_batch(
    buf, MSG, start, n_msg, resumed, SESS, ACCT, PERM, INST, EXP, ORD, TOKH, G, MAPS, BE, n_be,
    CMDS, n_cmd, GTDB,
):  # fmt: skip
    """Turn messages ``start:n_msg`` into
    batch entries; ``MSG`` holds four int64 per message (``MSG[4 * j:4 * j + 4]``: session,
    offset in ``buf``, length, arrival time in monotonic ns for the throttle), flat, so
    that the gateway passes its ``array("q")`` and the read's ``bytes`` as they are (no
    numpy call on the way in). It makes
    batch entries ``BE[n_be:]`` and engine commands ``CMDS[n_cmd:]`` (each command's
    ``timestamp`` is its entry index: :func:`stamp` adds the batch's base). A new GTD
    order's (expiry, ref) goes to ``GTDB[G[G_GTD_NEW]]`` (the caller drains it; room for
    one per entry).

    ``resumed`` says message ``start`` already passed the throttle (and, for a Cancel, found
    its order) before the caller flushed for it. Returns ``(next message, n_be, n_cmd,
    status)``; ``status`` is :data:`ST_DONE` or why it stopped before ``next message``:
    :data:`ST_FLUSH_FIRST` (a Cancel of an order of this batch: run the batch, then call
    again with ``resumed``), :data:`ST_OTHER` (not Enter or Cancel Order, or an Enter Order
    for an unlisted instrument; it passed the throttle and, for the latter, took its token:
    the caller decides it), :data:`ST_FULL` (``BE`` or ``CMDS`` is full) or :data:`ST_GROW`
    (the order or token table needs room). O(messages)."""
    mask = TOKH.shape[0] - 1
    j = start
    while j < n_msg:
        if n_be >= BE.shape[0] or n_cmd >= CMDS.shape[0]:
            return j, n_be, n_cmd, ST_FULL
        if G[G_FREE] < 0 or 4 * (G[G_H_USED] + G[G_H_DELETED] + 1) > 3 * (mask + 1):
            return j, n_be, n_cmd, ST_GROW
        r = 4 * j
        s, p, ln = MSG[r], MSG[r + 1], MSG[r + 2]
        first = j == start and resumed
        if not first:
            # Throttle.allow(): an integer token bucket, units of 1/rate ns
            rate = SESS[s, S_RATE]
            cap = rate * NS
            now = MSG[r + 3]
            level = SESS[s, S_LEVEL] + (now - SESS[s, S_LAST_NS]) * rate
            SESS[s, S_LAST_NS] = now
            if level > cap:
                level = cap
            if level < NS:
                SESS[s, S_LEVEL] = level
                tok = _u32(buf, p + 1) if ln >= 5 else 0
                n_be = _reject(BE, n_be, s, tok, buf[p] if ln else 0, R_THROTTLED, 0, p)
                j += 1
                continue
            SESS[s, S_LEVEL] = level - NS
        mtype = buf[p] if ln else 0
        if ln == CANCEL_SIZE and mtype == MSG_CANCEL:
            tok = _u32(buf, p + 1)
            row = tok_find(TOKH, s, tok)
            if row < 0:
                if first:  # it was working before the flush: gone in that batch
                    n_be = _reject(BE, n_be, s, tok, MSG_CANCEL, R_NOT_WORKING, 1, p)
                else:
                    n_be = _reject(BE, n_be, s, tok, MSG_CANCEL, R_UNKNOWN_TOKEN, 1, p)
                j += 1
                continue
            if ORD[row, O_ORDER_ID] == 0:
                return j, n_be, n_cmd, ST_FLUSH_FIRST
            c = CMDS[n_cmd]
            c.timestamp = n_be
            c.user_ref = ORD[row, O_REF]
            c.client_token = tok
            c.order_id = ORD[row, O_ORDER_ID]
            c.price = 0
            c.stop_price = 0
            c.qty = 0
            c.display_qty = 0
            c.min_qty = 0
            c.expire_time = 0
            c.instrument_id = 0
            c.account = ACCT[ORD[row, O_ACCT], A_ID]
            c.smp_group = 0
            c.cmd_type = C_CANCEL
            c.side = 0
            c.order_type = 0
            c.tif = 0
            c.smp = 0
            c.flags = 0
            c.status = 0
            n_cmd += 1
            n_be = _entry(BE, n_be, K_CANCEL, s, row, tok, MSG_CANCEL, 0, 0, p, ORD[row, O_REF])
            j += 1
            continue
        if ln != ENTER_SIZE or mtype != MSG_ENTER:
            return j, n_be, n_cmd, ST_OTHER
        tok = _u32(buf, p + EO_TOKEN)
        code, off, a = _enter_code(buf, p, s, SESS, ACCT, PERM, G)
        if code == 0:
            iid = _u32(buf, p + EO_INST)
            i = _inst_index(INST, G[G_N_INST], iid)
            if i < 0:
                return j, n_be, n_cmd, ST_OTHER  # the caller tells expired from unknown
            side = buf[p + EO_SIDE]
            otype = buf[p + EO_TYPE]
            price = _i64(buf, p + EO_PRICE)
            stop = _i64(buf, p + EO_STOP)
            qty = _u32(buf, p + EO_QTY)
            code = risk_check(INST, ACCT, EXP, G, a, i, side, otype, price, stop, qty, qty, True)
        if code:
            n_be = _reject(BE, n_be, s, tok, MSG_ENTER, code, off, p)
            j += 1
            continue
        # the order row and its token
        row = G[G_FREE]
        G[G_FREE] = ORD[row, O_NEXT]
        serial = G[G_NEXT_SERIAL]
        G[G_NEXT_SERIAL] = serial + 1
        ref = (serial << REF_SHIFT) | row
        expire = _i64(buf, p + EO_EXPIRE)
        ORD[row, O_REF] = ref
        ORD[row, O_TOKEN] = tok
        ORD[row, O_SESS] = s
        ORD[row, O_ACCT] = a
        ORD[row, O_INST] = i
        ORD[row, O_SIDE] = side
        ORD[row, O_PRICE] = price
        ORD[row, O_QTY] = qty
        ORD[row, O_ORDER_ID] = 0
        ORD[row, O_STOP] = stop
        ORD[row, O_WORKING] = 0
        ORD[row, O_EXPIRE] = expire
        ORD[row, O_NEXT] = -1
        ORD[row, O_SEQ] = serial
        G[G_ORDERS] += 1
        if expire:
            g = G[G_GTD_NEW]
            GTDB[g, 0] = expire
            GTDB[g, 1] = ref
            G[G_GTD_NEW] = g + 1
        _tok_put(TOKH, G, s, tok, row)
        c = CMDS[n_cmd]
        c.timestamp = n_be
        c.user_ref = ref
        c.client_token = tok
        c.order_id = 0
        c.price = price
        c.stop_price = stop
        c.qty = qty
        c.display_qty = _u32(buf, p + EO_DISPLAY)
        c.min_qty = _u32(buf, p + EO_MINQ)
        c.expire_time = expire
        c.instrument_id = iid
        c.account = ACCT[a, A_ID]
        c.smp_group = _u32(buf, p + EO_GROUP)
        c.cmd_type = C_NEW
        c.side = MAPS[0, side]
        c.order_type = MAPS[1, otype]
        c.tif = MAPS[2, buf[p + EO_TIF]]
        c.smp = MAPS[3, buf[p + EO_SMP]]
        c.flags = FLAG_POST_ONLY if buf[p + EO_POST] == W_POST_YES else 0
        c.status = 0
        n_cmd += 1
        n_be = _entry(BE, n_be, K_NEW, s, row, tok, MSG_ENTER, 0, 0, p, ref)
        j += 1
    return j, n_be, n_cmd, ST_DONE


@njit(**JIT)
def stamp(CMDS, n, base):
    """Add the batch's first timestamp to the entry indexes in ``CMDS[:n].timestamp``."""
    for i in range(n):
        CMDS[i].timestamp += base


# ----------------------------------------------------------------- events -> replies
@njit(**JIT)
def _open(OUT, OUTIDX, n_out, pos, sess, length):
    OUTIDX[n_out, 0] = sess
    OUTIDX[n_out, 1] = pos
    OUTIDX[n_out, 2] = length
    pos = _put(OUT, pos, length - 2, 2)
    OUT[pos] = 0x53  # 'S': Sequenced Data
    return pos + 1


@njit(**JIT)
def _rejected(OUT, OUTIDX, n_out, pos, sess, ts, token, request, code, offset):
    q = _open(OUT, OUTIDX, n_out, pos, sess, LEN_REJECTED)
    OUT[q] = 0x4A  # 'J'
    q = _put(OUT, q + 1, ts, 8)
    q = _put(OUT, q, token, 4)
    OUT[q] = request
    q = _put(OUT, q + 1, code, 2)
    _put(OUT, q, offset, 2)
    return pos + LEN_REJECTED


@njit(**JIT)
def _forget(ORD, TOKH, G, row):
    """The order left the gateway's books: free its row and its token. O(1)."""
    _tok_del(TOKH, G, ORD[row, O_SESS], ORD[row, O_TOKEN], row)
    ORD[row, O_REF] = 0
    ORD[row, O_NEXT] = G[G_FREE]
    G[G_FREE] = row
    G[G_ORDERS] -= 1


@njit(**JIT)
def _working(EXP, G, INST, ORD, row, qty):
    """Add ``qty`` (may be negative) to the order's side's working quantity."""
    a, i = ORD[row, O_ACCT], ORD[row, O_INST]
    pi = G[G_N_INST] + INST[i, I_PRODUCT]
    x = X_BUY if ORD[row, O_SIDE] == W_BUY else X_SELL
    EXP[a, i, x] += qty
    EXP[a, pi, x] += qty


@njit(**JIT)
def _locals(BE, li, end, base, OUT, OUTIDX, pos, n_out):
    """Write the local entries ``BE[li:end]`` (gateway rejects, stamped ``base + entry``)
    up to the first one only Python can write (:data:`K_PY`). Returns ``(li, pos,
    n_out)``: ``li < end`` means it stopped there."""
    while li < end:
        kind = BE[li, B_KIND]
        if kind == K_REJECT:
            pos = _rejected(
                OUT, OUTIDX, n_out, pos, BE[li, B_SESS], base + li, BE[li, B_TOKEN],
                BE[li, B_REQUEST], BE[li, B_CODE], BE[li, B_OFFSET],
            )  # fmt: skip
            n_out += 1
        elif kind == K_PY:
            return li, pos, n_out
        li += 1
    return li, pos, n_out


@njit(**JIT)
def apply_events(
    EV, e0, n_ev, li0, base, buf, BE, n_be, SESS, ACCT, INST, EXP, ORD, TOKH, G, MAPS, CNT,
    OUT, OUTIDX, TR,
):  # fmt: skip
    """Apply one batch's engine events ``EV[e0:n_ev]`` (``EVENT_DTYPE``, stamped ``base +
    entry``) to the order table and the exposures, and write the replies — the batch's
    local entries from ``BE[li0:]`` in their places — into ``OUT`` as framed Sequenced
    Data packets (``OUTIDX`` rows: session, offset, length; ``OUT`` must hold ``89 *
    (events + entries)`` bytes). Fills also go to ``TR`` (``T_*`` columns), for the trade
    log. Cancels made for a Mass Cancel count in ``CNT[B_COUNTER]``.

    Stops at an event or entry only Python handles (a replace's outcome, a status change,
    a sweep's done, a reject of a replace or of an engine sweep, a reply Python builds):
    returns ``(e, li, bytes written, packets, fills, status)`` with status
    :data:`AP_EVENT` (event ``e`` is Python's: resume at ``e + 1``), :data:`AP_ENTRY`
    (entry ``li`` is Python's: resume at ``e`` with ``li + 1``) or :data:`AP_DONE`.
    O(events + entries)."""
    pos = 0
    n_out = 0
    n_tr = 0
    li = li0
    for e in range(e0, n_ev):
        ev = EV[e]
        et = ev.event_type
        if et == E_LEVEL:
            continue
        ts = ev.timestamp
        k = ts - base
        if li < k:
            li, pos, n_out = _locals(BE, li, k, base, OUT, OUTIDX, pos, n_out)
            if li < k:
                return e, li, pos, n_out, n_tr, AP_ENTRY
        ref = np.int64(ev.user_ref)
        row = ref & REF_ROW_MASK
        known = ref != 0 and row < ORD.shape[0] and ORD[row, O_REF] == ref
        kind = BE[k, B_KIND]
        if et == E_ACCEPTED:
            if known and kind == K_NEW:
                oid = ev.order_id
                ORD[row, O_ORDER_ID] = oid
                ORD[row, O_WORKING] = 1
                q = _open(OUT, OUTIDX, n_out, pos, ORD[row, O_SESS], LEN_ACCEPTED)
                OUT[q] = 0x41  # 'A'
                q = _put(OUT, q + 1, ts, 8)
                raw = BE[k, B_RAW]
                for t in range(1, ENTER_SIZE):  # the Enter Order's fields, echoed
                    OUT[q] = buf[raw + t]
                    q += 1
                _put(OUT, q, oid, 8)
                pos += LEN_ACCEPTED
                n_out += 1
            elif known:
                return e, li, pos, n_out, n_tr, AP_EVENT
        elif et == E_TRADE:
            if known:
                qty = ev.qty
                leaves = ev.leaves
                side = ORD[row, O_SIDE]
                iid = INST[ORD[row, O_INST], I_ID]
                liq = W_LIQ_REMOVED if ev.aggressor_side == ev.side else W_LIQ_ADDED
                q = _open(OUT, OUTIDX, n_out, pos, ORD[row, O_SESS], LEN_EXECUTED)
                OUT[q] = 0x45  # 'E'
                q = _put(OUT, q + 1, ts, 8)
                q = _put(OUT, q, ORD[row, O_TOKEN], 4)
                q = _put(OUT, q, iid, 4)
                OUT[q] = side
                q = _put(OUT, q + 1, ev.price, 8)
                q = _put(OUT, q, qty, 4)
                q = _put(OUT, q, ev.match_id, 8)
                OUT[q] = liq
                _put(OUT, q + 1, leaves, 4)
                pos += LEN_EXECUTED
                n_out += 1
                # the fill: working quantity becomes position
                a, i = ORD[row, O_ACCT], ORD[row, O_INST]
                pi = G[G_N_INST] + INST[i, I_PRODUCT]
                if side == W_BUY:
                    EXP[a, i, X_POSITION] += qty
                    EXP[a, pi, X_POSITION] += qty
                    EXP[a, i, X_BUY] -= qty
                    EXP[a, pi, X_BUY] -= qty
                else:
                    EXP[a, i, X_POSITION] -= qty
                    EXP[a, pi, X_POSITION] -= qty
                    EXP[a, i, X_SELL] -= qty
                    EXP[a, pi, X_SELL] -= qty
                TR[n_tr, T_TS] = ts
                TR[n_tr, T_MATCH] = ev.match_id
                TR[n_tr, T_INST] = iid
                TR[n_tr, T_ACCOUNT] = ACCT[a, A_ID]
                TR[n_tr, T_SIDE] = side
                TR[n_tr, T_PRICE] = ev.price
                TR[n_tr, T_QTY] = qty
                TR[n_tr, T_AGGRESSOR] = liq == W_LIQ_REMOVED
                n_tr += 1
                ORD[row, O_QTY] = leaves
                if leaves == 0:
                    _forget(ORD, TOKH, G, row)
        elif et == E_CANCELLED:
            if known:
                if kind == K_CANCEL_FOR and BE[k, B_REF] == ref and BE[k, B_REASON]:
                    reason = BE[k, B_REASON]
                    c = BE[k, B_COUNTER]
                    if c >= 0:
                        CNT[c] += 1
                elif kind == K_SWEEP:
                    reason = BE[k, B_REASON]
                else:
                    reason = MAPS[4, ev.reason]
                _working(EXP, G, INST, ORD, row, -ORD[row, O_QTY])
                q = _open(OUT, OUTIDX, n_out, pos, ORD[row, O_SESS], LEN_CANCELED)
                OUT[q] = 0x43  # 'C'
                q = _put(OUT, q + 1, ts, 8)
                q = _put(OUT, q, ORD[row, O_TOKEN], 4)
                q = _put(OUT, q, INST[ORD[row, O_INST], I_ID], 4)
                OUT[q] = ORD[row, O_SIDE]
                q = _put(OUT, q + 1, ev.qty, 4)
                OUT[q] = reason
                pos += LEN_CANCELED
                n_out += 1
                _forget(ORD, TOKH, G, row)
        elif et == E_REJECTED:
            code = MAPS[5, ev.reason]
            if kind == K_NEW:
                r = BE[k, B_ROW]
                _working(EXP, G, INST, ORD, r, -ORD[r, O_QTY])
                _forget(ORD, TOKH, G, r)
                pos = _rejected(
                    OUT, OUTIDX, n_out, pos, BE[k, B_SESS], ts, BE[k, B_TOKEN], MSG_ENTER, code, 0
                )
                n_out += 1
            elif kind == K_CANCEL:
                # the order's token now, as the Python gateway reports it: a Replace earlier
                # in the batch may have renamed it (the row is not reused within a batch)
                tok = ORD[BE[k, B_ROW], O_TOKEN]
                pos = _rejected(
                    OUT, OUTIDX, n_out, pos, BE[k, B_SESS], ts, tok, MSG_CANCEL, code, 0
                )
                n_out += 1
            elif kind != K_CANCEL_FOR:  # a replace's or an engine sweep's: Python
                return e, li, pos, n_out, n_tr, AP_EVENT
        elif et == E_STOP:
            if known:
                q = _open(OUT, OUTIDX, n_out, pos, ORD[row, O_SESS], LEN_STOP)
                OUT[q] = 0x54  # 'T'
                q = _put(OUT, q + 1, ts, 8)
                q = _put(OUT, q, ORD[row, O_TOKEN], 4)
                q = _put(OUT, q, INST[ORD[row, O_INST], I_ID], 4)
                _put(OUT, q, ORD[row, O_STOP], 8)
                pos += LEN_STOP
                n_out += 1
        else:  # REPLACED, STATUS, MASS_CANCEL_DONE, ...: Python
            return e, li, pos, n_out, n_tr, AP_EVENT
    li, pos, n_out = _locals(BE, li, n_be, base, OUT, OUTIDX, pos, n_out)
    return n_ev, li, pos, n_out, n_tr, (AP_ENTRY if li < n_be else AP_DONE)


# ----------------------------------------------------------------- journal notes
#: columns of a journal note's order rows (``exchange.gateway.order_row``'s fields, the
#: session as its table row)
N_REF, N_TOKEN, N_ACCOUNT, N_INST, N_SIDE, N_PRICE, N_QTY = 0, 1, 2, 3, 4, 5, 6
N_ORDER_ID, N_STOP, N_WORKING, N_SESS, N_EXPIRE = 7, 8, 9, 10, 11
NF = 12


@njit(**JIT)
def _note_ref(ref, ORD, ACCT, INST, G, note, NOTE, n, GONE, g):
    if ref == 0:
        return n, g
    row = ref & REF_ROW_MASK
    if row >= ORD.shape[0] or ORD[row, O_NOTED] == note:
        return n, g
    ORD[row, O_NOTED] = note  # rows freed in a batch are not reused before its note
    if ORD[row, O_REF] != ref:
        GONE[g] = ref
        return n, g + 1
    NOTE[n, N_REF] = ref
    NOTE[n, N_TOKEN] = ORD[row, O_TOKEN]
    NOTE[n, N_ACCOUNT] = ACCT[ORD[row, O_ACCT], A_ID]
    NOTE[n, N_INST] = INST[ORD[row, O_INST], I_ID]
    NOTE[n, N_SIDE] = ORD[row, O_SIDE]
    NOTE[n, N_PRICE] = ORD[row, O_PRICE]
    NOTE[n, N_QTY] = ORD[row, O_QTY]
    NOTE[n, N_ORDER_ID] = ORD[row, O_ORDER_ID]
    NOTE[n, N_STOP] = ORD[row, O_STOP]
    NOTE[n, N_WORKING] = ORD[row, O_WORKING]
    NOTE[n, N_SESS] = ORD[row, O_SESS]
    NOTE[n, N_EXPIRE] = ORD[row, O_EXPIRE]
    return n + 1, g


@njit(**JIT)
def note_orders(CMDS, n_cmd, EV, n_ev, ORD, ACCT, INST, G, NOTE, GONE):
    """The orders a batch touched (its commands' and events' refs), for the journal note:
    each working one's row into ``NOTE`` (``N_*`` columns), each gone one's ref into
    ``GONE``, each once. Both need room for ``n_cmd + n_ev`` rows. Returns ``(rows,
    gone)``. O(commands + events)."""
    note = G[G_NOTES] + 1
    G[G_NOTES] = note
    n = 0
    g = 0
    for i in range(n_cmd):
        n, g = _note_ref(np.int64(CMDS[i].user_ref), ORD, ACCT, INST, G, note, NOTE, n, GONE, g)
    for i in range(n_ev):
        n, g = _note_ref(np.int64(EV[i].user_ref), ORD, ACCT, INST, G, note, NOTE, n, GONE, g)
    return n, g


# ----------------------------------------------------------------- journal records
#: ``exchange.journal``'s record framing: magic, record types, the commit-end flag, the
#: command record size
J_MAGIC, J_COMMANDS, J_NOTE, J_COMMIT_END, J_CMD_SIZE = 0xF10E, 1, 2, 0x01, 100
J_HEAD = 20  # 16 header bytes, then the CRC-32 of those and the payload
#: a binary gateway note starts with these 8 bytes (little-endian); its first byte, 0xC1,
#: is never valid msgpack, so no reader takes it for a msgpack note
BIN_NOTE_MAGIC = 0x31_45_54_4F_4E_57_47_C1  # b"\xc1GWNOTE1"
#: the note's header words after the magic
BN_GW, BN_NR, BN_TS, BN_MSGS, BN_BLOB, BN_ORDERS, BN_GONE, BN_TOKENS = range(8)
BN_WORDS = 8


def _crc_tables() -> np.ndarray:
    """zlib's CRC-32 (reflected 0xEDB88320) as slice-by-8 tables: ``T[k, b]`` is the CRC
    of byte ``b`` followed by ``k`` zero bytes."""
    t = np.zeros((8, 256), np.int64)
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t[0, b] = c
    for k in range(1, 8):
        for b in range(256):
            c = int(t[k - 1, b])
            t[k, b] = (c >> 8) ^ int(t[0, c & 0xFF])
    return t


_CRC_T = _crc_tables()


@njit(**JIT)
def crc32(B, p, n, crc):
    """``zlib.crc32(B[p:p + n], crc)`` (slice-by-8: ~1 cycle per byte). O(n)."""
    T = _CRC_T
    c = (crc ^ 0xFFFFFFFF) & 0xFFFFFFFF
    i = p
    end = p + n
    while i + 8 <= end:
        lo = c ^ (
            np.int64(B[i])
            | (np.int64(B[i + 1]) << 8)
            | (np.int64(B[i + 2]) << 16)
            | (np.int64(B[i + 3]) << 24)
        )
        hi = (
            np.int64(B[i + 4])
            | (np.int64(B[i + 5]) << 8)
            | (np.int64(B[i + 6]) << 16)
            | (np.int64(B[i + 7]) << 24)
        )
        c = (
            T[7, lo & 0xFF]
            ^ T[6, (lo >> 8) & 0xFF]
            ^ T[5, (lo >> 16) & 0xFF]
            ^ T[4, (lo >> 24) & 0xFF]
            ^ T[3, hi & 0xFF]
            ^ T[2, (hi >> 8) & 0xFF]
            ^ T[1, (hi >> 16) & 0xFF]
            ^ T[0, (hi >> 24) & 0xFF]
        )
        i += 8
    while i < end:
        c = T[0, (c ^ np.int64(B[i])) & 0xFF] ^ (c >> 8)
        i += 1
    return c ^ 0xFFFFFFFF


@njit(**JIT)
def _le(B, p, x, n):
    """Write the low ``n`` bytes of ``x`` little-endian at ``B[p]``; returns ``p + n``."""
    for k in range(n):
        B[p + k] = np.uint8((x >> (8 * k)) & 0xFF)
    return p + n


@njit(**JIT)
def _record(JB, p, rtype, flags, length, seq):
    """Frame the record whose payload is already at ``JB[p + J_HEAD:]``: header, then the
    CRC over the header and the payload. Returns the record's end."""
    _le(JB, p, J_MAGIC, 2)
    JB[p + 2] = np.uint8(rtype)
    JB[p + 3] = np.uint8(flags)
    _le(JB, p + 4, length, 4)
    _le(JB, p + 8, seq, 8)
    c = crc32(JB, p, 16, 0)
    c = crc32(JB, p + J_HEAD, length, c)
    _le(JB, p + 16, c, 4)
    return p + J_HEAD + length


@njit(**JIT)
def journal_batch(
    CMD8, CMDS, n_cmd, seq, EV, n_ev, ORD, ACCT, INST, G, NOTE, GONE,
    OUT, end, OUTIDX, n_out, SESS, SSENT, JTOK, JSS, gw, ts, JB,
):  # fmt: skip
    """A batch's journal records, framed as ``exchange.journal`` writes them, into ``JB``:
    its commands (``CMD8``: ``CMDS`` as bytes), then a binary gateway note — the replies
    ``OUT[:end]`` with their session rows, the orders the batch touched
    (:func:`note_orders`), the sessions whose last token or status flag changed since
    the last note (``JTOK``/``JSS``, updated here), the order-reference counter and the
    clock — the last record flagged as the commit's end. No note if the batch changed
    none of those (as ``Gateway.journal_delta`` returns None). Returns ``(bytes,
    noted)``, or ``(-bytes needed, False)`` having done nothing if ``JB`` is smaller than
    :func:`journal_room` or ``NOTE``/``GONE`` have fewer than ``n_cmd + n_ev`` rows.
    O(bytes + sessions)."""
    need = journal_room(n_cmd, n_ev, end, n_out, SESS.shape[0])
    if JB.shape[0] < need or NOTE.shape[0] < n_cmd + n_ev or GONE.shape[0] < n_cmd + n_ev:
        return -need, False
    n_o, n_g = note_orders(CMDS, n_cmd, EV, n_ev, ORD, ACCT, INST, G, NOTE, GONE)
    n_tok = 0
    for r in range(SESS.shape[0]):
        if SESS[r, S_LAST_TOKEN] != JTOK[r] or SSENT[r] != JSS[r]:
            n_tok += 1
    noted = n_out > 0 or n_o > 0 or n_g > 0 or n_tok > 0
    p = 0
    if n_cmd:
        length = n_cmd * J_CMD_SIZE
        for i in range(length):
            JB[J_HEAD + i] = CMD8[i]
        p = _record(JB, 0, J_COMMANDS, 0 if noted else J_COMMIT_END, length, seq)
    if not noted:
        return p, False
    q0 = p + J_HEAD  # the payload's padding is relative to its start
    q = _le(JB, q0, BIN_NOTE_MAGIC, 8)
    for x in (gw, G[G_NEXT_SERIAL], ts, n_out, end, n_o, n_g, n_tok):
        q = _le(JB, q, x, 8)
    for i in range(n_out):
        q = _le(JB, q, OUTIDX[i, 0], 2)
    while (q - q0) & 7:
        JB[q] = 0
        q += 1
    for i in range(end):
        JB[q + i] = OUT[i]
    q += end
    while (q - q0) & 7:
        JB[q] = 0
        q += 1
    for i in range(n_o):
        for k in range(NF):
            q = _le(JB, q, NOTE[i, k], 8)
    for i in range(n_g):
        q = _le(JB, q, GONE[i], 8)
    for r in range(SESS.shape[0]):
        tok = SESS[r, S_LAST_TOKEN]
        if tok != JTOK[r] or SSENT[r] != JSS[r]:
            q = _le(JB, q, r, 8)
            q = _le(JB, q, tok, 8)
            q = _le(JB, q, SSENT[r], 8)
            JTOK[r] = tok
            JSS[r] = SSENT[r]
    return _record(JB, p, J_NOTE, J_COMMIT_END, q - q0, seq + n_cmd), True


@njit(**JIT)
def journal_room(n_cmd, n_ev, end, n_out, n_sess):
    """Bytes :func:`journal_batch` may write for a batch of these sizes (an upper bound)."""
    rows = n_cmd + n_ev
    return (
        2 * J_HEAD + n_cmd * J_CMD_SIZE + 8 * (1 + BN_WORDS) + 2 * n_out + end + 16
        + rows * (8 * NF + 8) + n_sess * 24
    )  # fmt: skip


@njit(**JIT)
def apply_journal(
    ev, e, n_ev, li, base, buf, BE, n_be, SESS, ACCT, INST, EXP, ORD, TOKH, G, MAPS, CNT,
    OUT, OUTIDX, TR, journal, CMD8, CMDS, n_cmd, seq, NOTE, GONE, SSENT, JTOK, JSS, gw, ts,
    JB,
):  # fmt: skip
    """:func:`apply_events`, then, if ``journal`` and every event is applied, the batch's
    journal records (:func:`journal_batch`) from the replies just written: one call where
    the common batch needed two. Returns ``apply_events``'s six values, then the journal's
    bytes (-1: not framed; below -1: ``-bytes needed``, nothing framed) and whether it
    holds a note. O(events + journal bytes + sessions)."""
    e, li, end, n_out, n_tr, st = apply_events(
        ev, e, n_ev, li, base, buf, BE, n_be, SESS, ACCT, INST, EXP, ORD, TOKH, G, MAPS,
        CNT, OUT, OUTIDX, TR,
    )  # fmt: skip
    jn = -1
    noted = False
    if journal and st == AP_DONE:
        jn, noted = journal_batch(
            CMD8, CMDS, n_cmd, seq, ev, n_ev, ORD, ACCT, INST, G, NOTE, GONE, OUT, end,
            OUTIDX, n_out, SESS, SSENT, JTOK, JSS, gw, ts, JB,
        )  # fmt: skip
    return e, li, end, n_out, n_tr, st, jn, noted
