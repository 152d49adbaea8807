"""The market data feed's common batch, compiled: engine events -> framed feed packets.

:func:`encode_feed` is :meth:`exchange.marketdata.FeedPublisher.publish_events` for a
batch whose published events are all Level Updates and Trades (every batch of ordinary
trading): it writes their SoupBinTCP Sequenced Data packets, byte for byte what the
publisher's ``struct`` path writes, and one row per packet for the publisher's own book.
A batch with a Trading Status, Reference Price or Indicative Opening Price event (a
session change, rare) is left to the Python path whole. The layouts are
``docs/marketdata.md``'s; ``tests/exchange/marketdata/test_feed_kernel.py`` checks the
output against the Python path on random event batches.

numba reads the event-type and side constants at compile time, so the cache entries go
stale when ``exchange/engine/abi.py`` changes (:func:`exchange.numba_cache.depends_on`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from exchange.engine import abi
from exchange.numba_cache import depends_on

depends_on(__file__, abi.__file__)

_E_LEVEL = int(abi.EventType.LEVEL)
_E_TRADE = int(abi.EventType.TRADE)
_E_STATUS = int(abi.EventType.STATUS)
_E_REF = int(abi.EventType.REFERENCE)
_E_IOP = int(abi.EventType.INDICATIVE_PRICE)
_BUY = int(abi.Side.BUY)
_SELL = int(abi.Side.SELL)

#: framed sizes: 2 length bytes, ``S``, then the message (docs/marketdata.md)
LEVEL_FRAMED = 2 + 1 + 42
TRADE_FRAMED = 2 + 1 + 46
#: columns of a packet row: its end offset in the output, 1 for a Level Update (0 for a
#: Trade), instrument, side, price, quantity, orders (a Level Update's; zeros for a Trade)
PK_END, PK_LEVEL, PK_INST, PK_SIDE, PK_PRICE, PK_QTY, PK_ORDERS = range(7)
PK_COLS = 7
#: :func:`encode_feed`'s refusals
DECLINED, FULL = -1, -2
#: the feed's state array (``int64[FS_LEN]``), which :func:`encode_feed` reads and
#: advances: the next feed sequence number, then the packets and bytes pending in the
#: buffers. It is the publisher's own state (``FeedPublisher.next_seq`` reads it), so a
#: compiled caller that encodes a batch leaves nothing for Python to update
FS_SEQ, FS_K, FS_P = range(3)
FS_LEN = 3


@njit(cache=True)
def _put(B, p, v, n):
    """Write the low ``n`` bytes of ``v`` big-endian at ``B[p:p + n]``."""
    for k in range(n - 1, -1, -1):
        B[p + k] = v & 0xFF
        v >>= 8


@njit(cache=True)
def _head(B, p, framed, mtype, seq, ts, iid):
    """A feed packet's first 24 bytes at ``B[p:]``: SoupBinTCP length (``framed`` - 2)
    and ``S``, then the message type, sequence number, timestamp and instrument."""
    B[p] = 0
    B[p + 1] = framed - 2
    B[p + 2] = 83  # S
    B[p + 3] = mtype
    _put(B, p + 4, seq, 8)
    _put(B, p + 12, ts, 8)
    _put(B, p + 20, iid, 4)


@njit(cache=True)
def _side_char(side):
    if side == _BUY:
        return 66  # B
    if side == _SELL:
        return 83  # S
    if side == 0:
        return 78  # N: none (an auction match)
    return -1


@njit(cache=True)
def encode_feed(ev, OUT, PK, FS):
    """Encode the published events of ``ev`` (an ``EVENT_DTYPE`` array) as framed feed
    packets numbered from ``FS[FS_SEQ]``, appended to the ``FS[FS_K]`` packets
    (``FS[FS_P]`` bytes) already in the buffers: each packet into ``OUT`` back to back,
    its row into ``PK`` (see ``PK_*``). Level Update for LEVEL; one Trade per match,
    from the aggressor's event (the buy side's when there is no aggressor); private
    events skipped.

    Returns how many packets it added, having advanced ``FS``; or, with ``FS``
    untouched, :data:`DECLINED` when the batch holds an event only the Python path
    encodes (status, reference, indicative price) or a side without a wire character,
    :data:`FULL` when the buffers lack room (the rows past ``FS[FS_K]`` then mean
    nothing). O(events), no allocation."""
    k0 = FS[FS_K]
    seq, k, p = FS[FS_SEQ], k0, FS[FS_P]
    cap = len(OUT)
    rows = PK.shape[0]
    for i in range(len(ev)):
        et = ev[i].event_type
        if et == _E_LEVEL:
            if p + LEVEL_FRAMED > cap or k >= rows:
                return FULL
            side = ev[i].side
            sc = _side_char(side)
            if sc < 0:
                return DECLINED
            iid = ev[i].instrument_id
            price, qty, orders = ev[i].price, ev[i].qty, ev[i].leaves
            _head(OUT, p, LEVEL_FRAMED, 76, seq, ev[i].timestamp, iid)  # L
            OUT[p + 24] = sc
            _put(OUT, p + 25, price, 8)
            _put(OUT, p + 33, qty, 8)
            _put(OUT, p + 41, orders, 4)
            p += LEVEL_FRAMED
            PK[k, PK_LEVEL] = 1
            PK[k, PK_SIDE] = side
            PK[k, PK_PRICE] = price
            PK[k, PK_QTY] = qty
            PK[k, PK_ORDERS] = orders
        elif et == _E_TRADE:
            side = ev[i].side
            aggr = ev[i].aggressor_side
            if side != aggr and (aggr != 0 or side != _BUY):
                continue  # the other side's event of the same match
            if p + TRADE_FRAMED > cap or k >= rows:
                return FULL
            sc = _side_char(aggr)
            if sc < 0:
                return DECLINED
            iid = ev[i].instrument_id
            _head(OUT, p, TRADE_FRAMED, 84, seq, ev[i].timestamp, iid)  # T
            _put(OUT, p + 24, ev[i].match_id, 8)
            _put(OUT, p + 32, ev[i].price, 8)
            _put(OUT, p + 40, ev[i].qty, 8)
            OUT[p + 48] = sc
            p += TRADE_FRAMED
            PK[k, PK_LEVEL] = 0
            PK[k, PK_SIDE] = 0
            PK[k, PK_PRICE] = 0
            PK[k, PK_QTY] = 0
            PK[k, PK_ORDERS] = 0
        elif et in (_E_STATUS, _E_REF, _E_IOP):
            return DECLINED
        else:
            continue  # private to the order's owner
        PK[k, PK_END] = p
        PK[k, PK_INST] = iid
        seq += 1
        k += 1
    FS[FS_SEQ] = seq
    FS[FS_K] = k
    FS[FS_P] = p
    return k - k0


def buffers(rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An output buffer and a packet-row table with room for ``rows`` packets, and a
    state array (next sequence number 1, nothing pending)."""
    fs = np.zeros(FS_LEN, np.int64)
    fs[FS_SEQ] = 1
    return np.zeros(rows * TRADE_FRAMED, np.uint8), np.zeros((rows, PK_COLS), np.int64), fs
