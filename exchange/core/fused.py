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

from numba import njit

from exchange.core import kernel as K
from exchange.engine import kernel as EK
from exchange.numba_cache import depends_on

depends_on(__file__, K.__file__, EK.__file__)

R_FALLBACK, R_DECODED, R_ENGINE, R_APPLIED = 0, 1, 2, 3

_U = 0x55  # 'U': Unsequenced Data
_ST_DONE = K.ST_DONE


@njit(**K.JIT)
def read_batch(
    data, max_packet, sess, arrived, MSG, T, now, last_ts, E_words, EV, e_start, e_end, H,
    jseq, gw,
):  # fmt: skip
    """Run one read of session row ``sess`` as one batch, with nothing pending in the
    gateway. ``data`` is the read (whole SoupBinTCP packets, none longer than
    ``max_packet``), ``arrived`` its monotonic ns (for the throttle). ``T`` holds the
    gateway's tables and buffers (``CoreGateway._fused_tables``); ``now`` and ``last_ts``
    are the sequencer's clock and last timestamp; ``E_words`` / ``EV`` are the engine's
    event arena (words and records) and ``[e_start, e_end)`` the part this call may
    write; ``H`` is the engine state handle; ``jseq`` >= 0 asks for the journal group
    (first record number ``jseq``, note number ``gw``), -1 for none.

    Returns ``(result, next message, n_messages, n_be, n_cmd, decode status, base, used,
    n_events, more)`` followed by ``apply_journal``'s eight values (zeros unless
    :data:`R_APPLIED`). O(bytes + messages + events), no allocation."""
    (
        SESS, ACCT, PERM, INST, EXP, ORD, TOKH, G, MAPS, BE, CMDS, GTDB, CNT, OUT, OUTIDX,
        TR, CMD8, NOTE, GONE, SSENT, JTOK, JSS, JB,
    ) = T  # fmt: skip
    # 1. frames: every packet a complete Unsequenced Data packet, or nothing is done
    n = len(data)
    pos = 0
    n_msg = 0
    cap = len(MSG) // 4
    while pos < n:
        if pos + 3 > n:
            return R_FALLBACK, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False
        ln = (data[pos] << 8) | data[pos + 1]
        if ln < 1 or ln > max_packet or pos + 2 + ln > n or data[pos + 2] != _U or n_msg >= cap:
            return R_FALLBACK, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False
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
        return R_DECODED, nxt, n_msg, n_be, n_cmd, st, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False
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
    return (
        R_APPLIED, nxt, n_msg, n_be, n_cmd, st, base, used, ne, more, e, li, end, n_out, n_tr,
        ast, jn, noted,
    )  # fmt: skip
