"""One compiled call per read: a connection's bytes -> replies and journal records.

:func:`read_batch` is the whole common batch of :class:`exchange.core.gateway.CoreGateway`
in one call: it frames the read's SoupBinTCP packets, decodes them
(:func:`exchange.core.kernel.decode_batch`), stamps the commands with the sequencer's
timestamps, runs the engine kernel (``exchange.engine.kernel.process_handle``) and applies
the events, writing the replies and the journal commit group
(:func:`exchange.core.kernel.apply_journal`). The gateway then copies the journal group into
its map, appends the replies to the session stores and writes them: one compiled call and
a little Python per read, where the batch path made three compiled calls and ~40 Python
steps (docs/gateway.md, "One compiled call per read", for what that bought live).

It stops, handing the rest to the gateway's ordinary path, wherever the batch leaves the
common case; every stop is at a point the ordinary path can resume from:

* :data:`R_FALLBACK` — nothing was done: the read holds a packet that is not a complete
  Unsequenced Data packet (a heartbeat, a logout, a partial frame) or more messages than
  ``MSG`` has rows for.
* :data:`R_DECODED` — the messages are decoded as far as ``decode_batch`` went (its status
  says why it stopped) and the engine has not run; ``MSG`` holds the messages' rows.
* :data:`R_ENGINE` — the engine's first call ran (``used`` commands, ``ne`` events,
  ``more``) but did not finish the batch, or the reply buffers lack room: the gateway
  finishes the engine and applies the events.
* :data:`R_APPLIED` — the events went through ``apply_journal``, whose eight results are
  returned (it may still have stopped at an event only Python handles).

numba's cache keys a function on its own file only, and this function embeds the core's
and the engine's kernels: :func:`exchange.numba_cache.depends_on` makes its cache entries
go stale whenever either file changes (which is also why it may read their constants).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.np.numpy_support import from_dtype

from exchange import feed_kernel as FK
from exchange.core import kernel as K
from exchange.engine import kernel as EK
from exchange.engine.abi import COMMAND_DTYPE
from exchange.engine.kernel import _view_intrinsic
from exchange.numba_cache import depends_on

depends_on(__file__, K.__file__, EK.__file__, FK.__file__)

R_FALLBACK, R_DECODED, R_ENGINE, R_APPLIED = 0, 1, 2, 3

_U = 0x55  # 'U': Unsequenced Data
_NO_FEED = FK.DECLINED  # the feed result when no feed was encoded
_ST_DONE = K.ST_DONE

#: the gateway's tables and buffers read_batch takes through one handle (name, dtype,
#: ndim), in handle order: each is its address, then its shape. A handle is one array
#: argument where the arrays themselves were 22 (~850 ns of unboxing per call, warm)
TABLES = (
    ("SESS", np.int64, 2), ("ACCT", np.int64, 2), ("PERM", np.int64, 2),
    ("INST", np.int64, 2), ("EXP", np.int64, 3), ("ORD", np.int64, 2),
    ("TOKH", np.int64, 2), ("G", np.int64, 1), ("MAPS", np.int64, 2), ("BE", np.int64, 2),
    ("GTDB", np.int64, 2), ("CNT", np.int64, 1), ("OUT", np.uint8, 1),
    ("OUTIDX", np.int64, 2), ("TR", np.int64, 2), ("CMD8", np.uint8, 1),
    ("NOTE", np.int64, 2), ("GONE", np.int64, 1), ("SSENT", np.int64, 1),
    ("JTOK", np.int64, 1), ("JSS", np.int64, 1), ("JB", np.uint8, 1),
    ("FOUT", np.uint8, 1), ("FPK", np.int64, 2), ("FS", np.int64, 1),
    ("MSG", np.int64, 1), ("CMDS", COMMAND_DTYPE, 1),
)  # fmt: skip


def table_handle(arrays: tuple) -> np.ndarray:
    """The handle of ``arrays`` (one per :data:`TABLES` entry, in order). Raises
    ValueError for an array that is not a C-contiguous, writable array of its entry's
    dtype and ndim: a handle must never describe memory differently from the array. The
    caller keeps the arrays alive for as long as it uses the handle. O(tables)."""
    out: list[int] = []
    for (name, dtype, ndim), a in zip(TABLES, arrays, strict=True):
        if a.dtype != dtype or a.ndim != ndim or not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"core table {name}: not a writable C-contiguous {ndim}-d {dtype}")
        out.append(a.ctypes.data)
        out.extend(a.shape)
    return np.array(out, dtype=np.int64)


_I1 = _view_intrinsic(types.int64, 1)
_I2 = _view_intrinsic(types.int64, 2)
_I3 = _view_intrinsic(types.int64, 3)
_U1 = _view_intrinsic(types.uint8, 1)
_C1 = _view_intrinsic(from_dtype(COMMAND_DTYPE), 1)


@njit(**K.JIT)
def read_batch(
    data, max_packet, sess, arrived, T, now, last_ts, E_words, EV, e_start, e_end, H, jseq, gw,
    jaddr, jpos, jend, feed,
):  # fmt: skip
    """Run one read of session row ``sess`` as one batch, with nothing pending in the
    gateway. ``data`` is the read (whole SoupBinTCP packets, none longer than
    ``max_packet``), ``arrived`` its monotonic ns (for the throttle). ``T`` is the handle
    of the gateway's tables and buffers (:func:`table_handle`), its message rows
    (``MSG``) and command buffer (``CMDS``) included; ``now`` and ``last_ts``
    are the sequencer's clock and last timestamp; ``E_words`` / ``EV`` are the engine's
    event arena (words and records) and ``[e_start, e_end)`` the part this call may
    write; ``H`` is the engine state handle; ``jseq`` >= 0 asks for the journal group
    (first record number ``jseq``, note number ``gw``), -1 for none: with ``jaddr`` (the
    address of the journal's segment map, 0 for none) the group is also copied into the
    map at offset ``jpos`` when it ends by ``jend``. With ``feed`` true,
    a batch that ends in the common case (everything applied, no journal note only
    Python writes) also has its market data encoded into the feed buffers of the
    handle (``FOUT``, ``FPK``, ``FS``: :func:`exchange.feed_kernel.encode_feed`).

    Returns ``(result, next message, n_messages, n_be, n_cmd, decode status, base, used,
    n_events, more)`` followed by ``apply_journal``'s eight values, whether every reply
    is for session row ``sess`` (zeros and False unless :data:`R_APPLIED`), the feed
    packets encoded (:data:`~exchange.feed_kernel.DECLINED` or ``FULL`` when the feed
    buffers were left as they were, as they are when ``feed`` is false or the batch
    did not end in the common case), the feed buffer's byte offset before them, and
    whether the journal group is in the journal's map (else only in ``JB``).
    O(bytes + messages + events), no allocation."""
    SESS = _I2(T[0], (T[1], T[2]))
    ACCT = _I2(T[3], (T[4], T[5]))
    PERM = _I2(T[6], (T[7], T[8]))
    INST = _I2(T[9], (T[10], T[11]))
    EXP = _I3(T[12], (T[13], T[14], T[15]))
    ORD = _I2(T[16], (T[17], T[18]))
    TOKH = _I2(T[19], (T[20], T[21]))
    G = _I1(T[22], (T[23],))
    MAPS = _I2(T[24], (T[25], T[26]))
    BE = _I2(T[27], (T[28], T[29]))
    GTDB = _I2(T[30], (T[31], T[32]))
    CNT = _I1(T[33], (T[34],))
    OUT = _U1(T[35], (T[36],))
    OUTIDX = _I2(T[37], (T[38], T[39]))
    TR = _I2(T[40], (T[41], T[42]))
    CMD8 = _U1(T[43], (T[44],))
    NOTE = _I2(T[45], (T[46], T[47]))
    GONE = _I1(T[48], (T[49],))
    SSENT = _I1(T[50], (T[51],))
    JTOK = _I1(T[52], (T[53],))
    JSS = _I1(T[54], (T[55],))
    JB = _U1(T[56], (T[57],))
    FOUT = _U1(T[58], (T[59],))
    FPK = _I2(T[60], (T[61], T[62]))
    FS = _I1(T[63], (T[64],))
    MSG = _I1(T[65], (T[66],))
    CMDS = _C1(T[67], (T[68],))
    # 1. frames: every packet a complete Unsequenced Data packet, or nothing is done
    n = len(data)
    pos = 0
    n_msg = 0
    cap = len(MSG) // 4
    while pos < n:
        if pos + 3 > n:
            return (
                R_FALLBACK, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False, False,
                _NO_FEED, 0, False,
            )  # fmt: skip
        ln = (data[pos] << 8) | data[pos + 1]
        if ln < 1 or ln > max_packet or pos + 2 + ln > n or data[pos + 2] != _U or n_msg >= cap:
            return (
                R_FALLBACK, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False, False,
                _NO_FEED, 0, False,
            )  # fmt: skip
        pos += 2 + ln
        n_msg += 1
    pos = 0
    for j in range(n_msg):
        ln = (data[pos] << 8) | data[pos + 1]
        MSG[4 * j] = sess
        MSG[4 * j + 1] = pos + 3
        MSG[4 * j + 2] = ln - 1
        MSG[4 * j + 3] = arrived
        pos += 2 + ln
    # 2. decode: each message to a batch entry (the gateway's checks and risk)
    nxt, n_be, n_cmd, st = K.decode_batch(
        data, MSG, 0, n_msg, False, SESS, ACCT, PERM, INST, EXP, ORD, TOKH, G, MAPS, BE, 0,
        CMDS, 0, GTDB,
    )  # fmt: skip
    if st != _ST_DONE or nxt != n_msg or n_cmd == 0:
        return (
            R_DECODED, nxt, n_msg, n_be, n_cmd, st, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False,
            False, _NO_FEED, 0, False,
        )  # fmt: skip
    # 3. the sequencer's timestamps (Sequencer.reserve) and the engine
    base = now if now > last_ts else last_ts + 1
    K.stamp(CMDS, n_cmd, base)
    used, ne, more = EK.process_handle(CMDS[:n_cmd], E_words, e_start, e_end, H)
    if more or used != n_cmd or OUTIDX.shape[0] < n_be + ne:
        return (
            R_ENGINE,
            nxt,
            n_msg,
            n_be,
            n_cmd,
            st,
            base,
            used,
            ne,
            more,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            False,
            False,
            _NO_FEED,
            0,
            False,
        )
    # 4. events -> replies, order table, exposures; then the journal group
    ev = EV[e_start : e_start + ne]
    journal = jseq >= 0
    ts = base + n_be - 1
    e, li, end, n_out, n_tr, ast, jn, noted = K.apply_journal(
        ev, 0, ne, 0, base, data, BE, n_be, SESS, ACCT, INST, EXP, ORD, TOKH, G, MAPS, CNT,
        OUT, OUTIDX, TR, journal, CMD8, CMDS, n_cmd, jseq, NOTE, GONE, SSENT, JTOK, JSS, gw,
        ts, JB,
    )  # fmt: skip
    mine = True  # every reply is for this read's session (one write, ahead of the rest)
    for i in range(n_out):
        if OUTIDX[i, 0] != sess:
            mine = False
            break
    # 5. when the gateway will take this batch's common case: the journal group into
    # the journal's map, if it fits, and the market data
    common = ast == K.AP_DONE and (not journal or jn >= 0)
    in_map = False
    if common and journal and jaddr != 0 and jn > 0 and jpos + jn <= jend:
        M = _U1(jaddr + jpos, (jn,))
        for i in range(jn):
            M[i] = JB[i]
        in_map = True
    fed = _NO_FEED
    p0 = FS[FK.FS_P]
    if feed and common:
        fed = FK.encode_feed(ev, FOUT, FPK, FS)
    return (
        R_APPLIED, nxt, n_msg, n_be, n_cmd, st, base, used, ne, more, e, li, end, n_out, n_tr,
        ast, jn, noted, mine, fed, p0, in_map,
    )  # fmt: skip
