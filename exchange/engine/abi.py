"""The engine's binary interface: commands in, events out, as numpy structured dtypes.

Both books (the numba kernel and the plain-Python reference twin) consume
``COMMAND_DTYPE`` records and produce ``EVENT_DTYPE`` records with identical content.
Every enum's numeric value is part of the ABI (journals store them) and is listed in
``docs/engine.md``; never renumber, only append.

Field conventions
-----------------
* Prices are int64 **ticks**; quantities are int64 contracts. No floats anywhere.
* ``instrument_id`` is the stable external id (``product_id*10000 + yy*100 + month``).
* ``order_id`` is the exchange order id: ``generation << 32 | slot`` (never 0).
* ``timestamp`` is the sequencer's int64 nanoseconds; the engine never reads a clock,
  every event carries the timestamp of the command that caused it.
* ``user_ref`` is an opaque uint64 the gateway uses to route replies (its session id);
  it is stored with the order and echoed on every event about that order.
  ``client_token`` is echoed on the direct acknowledgement of a command (ACCEPTED,
  REJECTED, REPLACED, and CANCELLED answering a CANCEL) and is 0 on other events; the
  gateway maps ``order_id`` back to its client token from the ACCEPTED event.
"""

from __future__ import annotations

import struct
from enum import IntEnum

import numpy as np


class CmdType(IntEnum):
    """What a command asks for."""

    NEW = 1
    CANCEL = 2
    REPLACE = 3
    MASS_CANCEL = 4  # instrument_id 0 = all instruments, account 0 = all accounts
    SESSION_CLOSE = 5  # expire DAY orders (instrument_id 0 = all)
    EXPIRE_GTD = 6  # expire GTD orders whose expire_time <= command timestamp
    SET_STATUS = 7  # status field: InstrumentStatus
    SET_REFERENCE = 8  # price field: new reference price for daily limits


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2  # market with protection: limit = best opposite +/- protection ticks
    STOP_MARKET = 3
    STOP_LIMIT = 4


class TimeInForce(IntEnum):
    DAY = 1
    GTC = 2
    GTD = 3
    IOC = 4  # fill and kill (FAK)
    FOK = 5


class SmpInstruction(IntEnum):
    """Self-match prevention instruction; the incoming (aggressing) order's one applies."""

    DEFAULT = 0  # use the instrument's default from the contract spec
    NONE = 0  # alias of DEFAULT: no per-order override
    CANCEL_RESTING = 1
    CANCEL_INCOMING = 2
    CANCEL_BOTH = 3


class InstrumentStatus(IntEnum):
    CLOSED = 0
    PRE_OPEN = 1
    OPEN = 2
    HALTED = 3


class MatchingAlgorithm(IntEnum):
    FIFO = 0
    PRO_RATA = 1


class EventType(IntEnum):
    ACCEPTED = 1
    REJECTED = 2
    TRADE = 3  # one per side of each fill; both carry the same match_id
    CANCELLED = 4
    REPLACED = 5
    STOP_TRIGGERED = 6
    LEVEL = 7  # price level changed: qty = visible total, leaves = order count
    STATUS = 8  # instrument status changed: qty = new InstrumentStatus
    REFERENCE = 9  # reference price set: price = new reference
    MASS_CANCEL_DONE = 10  # end of MASS_CANCEL / SESSION_CLOSE / EXPIRE_GTD: qty = count
    #: pre-open indicative opening price changed: price = IOP (0 = no cross), qty = matched
    #: volume, side = imbalance side (0 = none), leaves = imbalance quantity
    INDICATIVE_PRICE = 11


class RejectReason(IntEnum):
    NONE = 0
    UNKNOWN_INSTRUMENT = 1
    MARKET_CLOSED = 2
    MARKET_PRE_OPEN = 3  # order type / TIF not accepted in pre-open (market, IOC, FOK, ...)
    INSTRUMENT_HALTED = 4
    INVALID_SIDE = 5
    INVALID_ORDER_TYPE = 6
    INVALID_TIF = 7
    INVALID_QUANTITY = 8
    PRICE_OUT_OF_BAND = 9
    PRICE_OUTSIDE_LIMITS = 10
    INVALID_DISPLAY_QTY = 11
    INVALID_MIN_QTY = 12
    POST_ONLY_WOULD_TRADE = 13
    INVALID_POST_ONLY = 14
    NO_LIQUIDITY = 15
    INVALID_STOP_PRICE = 16
    INVALID_EXPIRE_TIME = 17
    ORDER_CAPACITY = 18
    UNKNOWN_ORDER = 19
    INVALID_SMP = 20
    UNKNOWN_COMMAND = 21
    INVALID_STATUS = 22


class CancelReason(IntEnum):
    NONE = 0
    USER = 1
    IOC_REMAINDER = 2
    FOK_NOT_FILLED = 3
    MIN_QTY_NOT_MET = 4
    SMP_RESTING = 5  # resting order cancelled by self-match prevention
    SMP_INCOMING = 6  # incoming order (remainder) cancelled by self-match prevention
    MASS_CANCEL = 7
    SESSION_END = 8  # DAY order expired at the session close
    GTD_EXPIRED = 9
    NO_LIQUIDITY = 10  # triggered stop-market found an empty opposite side


#: Command flag bits (``flags`` field).
FLAG_POST_ONLY = 1

COMMAND_DTYPE = np.dtype(
    [
        ("timestamp", "<i8"),
        ("user_ref", "<u8"),
        ("client_token", "<u8"),
        ("order_id", "<i8"),  # CANCEL / REPLACE target
        ("price", "<i8"),  # limit price; SET_REFERENCE: reference price
        ("stop_price", "<i8"),
        ("qty", "<i8"),  # NEW: order qty; REPLACE: new leaves qty
        ("display_qty", "<i8"),  # 0 = not an iceberg
        ("min_qty", "<i8"),  # 0 = none
        ("expire_time", "<i8"),  # GTD expiry (ns)
        ("instrument_id", "<u4"),
        ("account", "<u4"),
        ("smp_group", "<u4"),  # 0 = none (self-match by account only)
        ("cmd_type", "u1"),
        ("side", "u1"),
        ("order_type", "u1"),
        ("tif", "u1"),
        ("smp", "u1"),
        ("flags", "u1"),
        ("status", "u1"),  # SET_STATUS: InstrumentStatus
        ("_pad", "u1"),
    ]
)

EVENT_DTYPE = np.dtype(
    [
        ("timestamp", "<i8"),
        ("user_ref", "<u8"),
        ("client_token", "<u8"),
        ("order_id", "<i8"),
        ("price", "<i8"),
        ("qty", "<i8"),  # TRADE: fill qty; ACCEPTED/REPLACED: order qty; LEVEL: visible qty
        ("leaves", "<i8"),  # qty still open after this event; LEVEL: order count
        ("match_id", "<i8"),
        ("instrument_id", "<u4"),
        ("account", "<u4"),
        ("event_type", "u1"),
        ("side", "u1"),
        ("aggressor_side", "u1"),  # TRADE only
        ("reason", "u1"),  # RejectReason for REJECTED, CancelReason for CANCELLED/DONE
        ("order_type", "u1"),
        ("_pad", "u1", (3,)),
    ]
)

#: One command record as a precompiled ``struct`` (little-endian, unpadded: exactly
#: ``COMMAND_DTYPE``'s bytes), for packing small batches without numpy's per-call costs.
COMMAND_RECORD = struct.Struct("<qQQqqqqqqqIIIBBBBBBBB")
#: One event record (``EVENT_DTYPE``'s bytes, the 3 pad bytes skipped): ``iter_unpack``
#: over an event array's bytes gives plain-int tuples in ``EVENT_DTYPE`` field order.
EVENT_RECORD = struct.Struct("<qQQqqqqqIIBBBBB3x")
assert COMMAND_RECORD.size == COMMAND_DTYPE.itemsize
assert EVENT_RECORD.size == EVENT_DTYPE.itemsize

#: The kernel writes events as ten little-endian int64 words per record (one store per
#: word, in memory order, instead of fifteen field stores): words 0-7 are ``timestamp``
#: .. ``match_id``; word 8 packs ``instrument_id | account << 32``; word 9 packs
#: ``event_type | side << 8 | aggressor_side << 16 | reason << 24 | order_type << 32``.
EVENT_WORDS = 10
_WORD_OFFSETS = {"instrument_id": 64, "account": 68, "event_type": 72, "side": 73}
_WORD_OFFSETS.update(aggressor_side=74, reason=75, order_type=76)
assert EVENT_DTYPE.itemsize == 8 * EVENT_WORDS
assert all(EVENT_DTYPE.fields[f][1] == off for f, off in _WORD_OFFSETS.items())


def event_words(events: np.ndarray) -> np.ndarray:
    """The ``(n, EVENT_WORDS)`` int64 view of an ``EVENT_DTYPE`` array that the kernel
    writes into (shares memory: no copy)."""
    return events.view(np.int64).reshape(-1, EVENT_WORDS)


EVENT_FIELDS: tuple[str, ...] = (
    "event_type",
    "timestamp",
    "user_ref",
    "client_token",
    "order_id",
    "instrument_id",
    "account",
    "side",
    "aggressor_side",
    "price",
    "qty",
    "leaves",
    "match_id",
    "reason",
    "order_type",
)


def event_tuples(events: np.ndarray) -> list[tuple[int, ...]]:
    """Events as plain-int tuples in :data:`EVENT_FIELDS` order (for comparisons and logs)."""
    cols = [events[f].tolist() for f in EVENT_FIELDS]
    return list(zip(*cols, strict=True))


def make_commands(n: int) -> np.ndarray:
    """A zeroed command array of length ``n``."""
    return np.zeros(n, dtype=COMMAND_DTYPE)
