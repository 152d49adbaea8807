"""One session's reads through the one-call path, as one function of the read's bytes.

:meth:`CoreGateway.on_read <exchange.core.gateway.CoreGateway.on_read>` runs a read as one
compiled call (:func:`exchange.core.fused.read_batch`) and a little Python around it. In
the live gateway that Python costs far more than it does warm: between two reads the
client's own work evicts it from the caches, and every function a read runs through, and
every object it touches, must be fetched again (docs/gateway.md, "The read path as one
function"). :func:`make_reader` binds once, per session (and connection), what a read
needs, and spells out in one body the common case of the steps it used to call:

* the connection's receive bookkeeping (``SoupServerConnection.data_received``: the
  receive clock; ``FrameDecoder.skip``: the stream offset);
* the engine's event window (``MatchingEngine.kernel_window`` and ``kernel_skip``);
* the journal's commit of a group the kernel wrote into the segment's map
  (``GatewayJournal.commit_frames`` with ``Journal.wrote_frames``);
* the reply's write and store (``SoupServerConnection.write_now``,
  ``Session.keep_blob``).

Each of those methods says in its docstring that this module spells it out: keep them in
step. Anything else — a partial frame, a batch pending, a journal note only Python
writes, a read the kernel did not finish, replies for other sessions or for a connection
that cannot take them now (or a reader without one: ``on_read``'s), fills, GTD expiries,
a journal group that did not fit the map — goes through the gateway's own
methods (:meth:`CoreGateway._read_rest`), exactly as before. ``tests/exchange/core`` runs
every read of its differential tests through this function.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from exchange.core import fused as F
from exchange.core import kernel as K

log = logging.getLogger("flopex.gateway")

_R_FALLBACK, _R_APPLIED = F.R_FALLBACK, F.R_APPLIED
_AP_DONE, _G_GTD_NEW, _G_CLOSED = K.AP_DONE, K.G_GTD_NEW, K.G_CLOSED


def make_reader(
    gw: Any, s: Any, max_packet: int, conn: Any = None, spelled_out: bool = True
) -> Callable[[bytes], Any]:
    """The one-call path for session ``s``'s reads, as one function of a read's bytes.

    Without ``conn``: the function is :meth:`CoreGateway.on_read` for ``s``: True when
    it ran the read, False having done nothing when the read is not the one-call case;
    a read with replies then finishes through :meth:`CoreGateway._read_rest`.
    With ``conn``, the session's live :class:`~exchange.connection.SoupServerConnection`,
    it is that connection's ``data_received``: it also keeps the connection's receive
    clock and stream offset, writes the replies on its transport itself, and hands any
    read it does not take to ``conn.ordinary_read`` (whose result it returns). A bug
    raised inside costs that connection, never the server (as ``data_received``).
    Same replies, journal and state as the ordinary path. O(bytes + messages + events).

    With ``spelled_out`` false, every read the kernel ran goes through
    :meth:`CoreGateway._read_rest`, the methods this function spells out: the tests'
    reference for it (``tests/exchange/core/test_reader.py``).
    """
    row = s.row
    monotonic = time.monotonic
    getrefcount = sys.getrefcount
    dec = conn.decoder if conn is not None else None
    ordinary: Callable[[bytes], Any] = conn.ordinary_read if conn is not None else _declined

    def read(data: bytes) -> Any:
        try:
            if dec is not None and (conn.closing or dec.pending):
                return ordinary(data)
            if gw._n_be or gw._payloads or gw._decoding or gw._jlog or type(data) is not bytes:
                return ordinary(data)  # the entry point unboxes exactly the compiled types
            ep = gw._read_ep
            if not ep:
                if ep is False or not gw._warm_read():
                    return ordinary(data)
                ep = gw._read_ep
            seq = gw.sequencer
            d = gw.durable
            if d is not None:
                # CoreGateway._binary() and not _flags_changed(), spelled out: the kernel
                # frames this batch's journal note itself (else only Python writes it)
                j = d.journal
                sj = seq.journal
                blocked = gw.risk.blocked
                if (
                    j._pending
                    or not gw._names_journaled
                    or len(sj) != 1
                    or sj[0] is not d.listener
                    or gw._status_changed
                    or gw._Gv[_G_CLOSED] != gw._j_closed
                    or ((blocked or gw._j_blocked) and blocked != gw._j_blocked)
                ):
                    return ordinary(data)
                jseq, gwn, jaddr, jpos, jend = (
                    j.next_seq, d.gseq + 1, j.map_addr, j._seg_size, j.map_end
                )  # fmt: skip
            elif seq.journal:
                return ordinary(data)
            else:
                j = None
                jseq, gwn, jaddr, jpos, jend = -1, 0, 0, 0, 0
            tabs = gw._tabs
            if tabs is None:
                tabs = gw._fused_tables()
            # the kernel publishes the market data itself when the feed is the only
            # listener and nothing earlier waits to be published (its numbers stay in order)
            ls = seq.event_listeners
            feed = len(ls) == 1 and ls[0] is gw._kfeed and not seq._unpublished
            eng = seq.engine
            arena = eng._arena
            # MatchingEngine.kernel_window's common case: nothing outside the engine holds
            # a result (the references: the engine's two, this name, getrefcount's
            # argument), so the arena starts over
            if getrefcount(arena) == eng._arena_refs and eng._cap <= len(arena):
                words, e0, e1, handle = eng._arena_words, 0, eng._cap, eng._handle
            else:
                del arena
                words, arena, e0, e1, handle = eng.kernel_window()
            r = ep(
                data, max_packet, row, gw.mono_clock(), tabs, seq.clock(), seq.last_ts, words,
                arena, e0, e1, handle, jseq, gwn, jaddr, jpos, jend, feed,
            )  # fmt: skip
            del arena
            if r[0] == _R_FALLBACK:
                return ordinary(data)
            if dec is not None:
                conn.last_recv = monotonic()
                dec._consumed += len(data)  # FrameDecoder.skip
            n_out = r[13]
            t = conn.transport if conn is not None else None
            if not (
                spelled_out
                and (  # the replies go on this connection now (SoupServerConnection.write_now)
                    not n_out
                    or (s.sink is conn and t is not None and not conn._out and not t.is_closing())
                )
                and r[0] == _R_APPLIED
                and r[15] == _AP_DONE
                and r[18]  # every reply is this session's
                and not r[14]  # no fills
                and (r[19] >= 0 or not ls)  # the kernel published the market data, or
                # no one listens
                and not gw._Gv[_G_GTD_NEW]
                and (j is None or (r[16] > 0 and r[21]))  # the journal group is in the map
                and not gw._dirty
            ):
                gw._read_rest(s, data, r, d, gwn, eng, e0, ls)
                return True
            # the common case, done: nothing Python must decide, and no numpy call before
            # the replies are written (nothing is pending: _n_be and _n_cmd stay 0)
            gw._buf = data
            gw._n_cnt = 0
            n_cmd = r[4]
            seq.last_ts = r[6] + r[3] - 1  # Sequencer.reserve(n_be), done in the kernel
            seq.commands += n_cmd
            seq.events += r[8]
            if j is not None:
                # journaled (and fsynced) before any reply is written:
                # GatewayJournal.commit_frames of a group already in the map
                if r[17]:
                    d.gseq = gwn
                j.next_seq = nxt = j.next_seq + n_cmd  # Journal.wrote_frames
                j._seg_size += r[16]
                j.unsynced = True
                j.committed_seq = nxt - 1
                if j._sync_mode:
                    j._sync_per_policy()
                d._since_snapshot += n_cmd
                if d.snapshot_every and d._since_snapshot >= d.snapshot_every:
                    d.snapshot_due = True
            if n_out:
                raw = gw._out_mv[: r[12]].tobytes()
                # SoupServerConnection.write_now (the connection was checked above)
                t.write(raw)
                conn.last_sent = monotonic()
                if t.get_write_buffer_size() > conn.max_outbound:
                    conn.disconnect(
                        f"slow consumer: {t.get_write_buffer_size()} bytes not drained",
                        abort=True,
                    )
                # written first, then stored (nothing reads the store in between;
                # Sequenced Data carries no number): Session.keep_blob
                if s._tail:
                    s._settle()
                nxt = s.next_seq
                if nxt <= s.mark < nxt + n_out:
                    s.touched.append(s)
                s.next_seq = nxt + n_out
                s._log.add(raw, n_out)
            # the engine's events, after the replies (the kernel published them to the
            # feed, the only listener, or no one listens): MatchingEngine.kernel_skip
            eng._pos = e0 + r[8]
            if r[19] > 0 and gw._kpub.sinks:
                gw._kpub.deliver_pending(r[20])
            if d is not None and d.snapshot_due:
                d.snapshot(background=d.background)
            return True
        except Exception:  # a bug must cost one connection, never the server
            if conn is None:
                raise
            log.exception("internal error on %s; disconnecting it", conn.peer)
            conn.disconnect("internal error")
            return None

    return read


def _declined(data: bytes) -> bool:
    """The reader's answer, without a connection, for a read it does not take."""
    return False
