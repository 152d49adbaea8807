"""Wire enumerations of the flopex order-entry protocol (one byte or uint16 each).

Every enum value here is what travels on the wire; ``docs/protocol.md`` lists the same
values. Mapping to the matching engine's own enums happens in exactly one place,
:mod:`exchange.protocol.engine_map`.
"""

from __future__ import annotations

from enum import IntEnum


class WireSide(IntEnum):
    """Order side: ``B`` buy, ``S`` sell."""

    BUY = ord("B")
    SELL = ord("S")


class WireOrderType(IntEnum):
    """``L`` limit, ``M`` market (with market protection), ``S`` stop-market, ``T`` stop-limit."""

    LIMIT = ord("L")
    MARKET = ord("M")
    STOP = ord("S")
    STOP_LIMIT = ord("T")


class WireTimeInForce(IntEnum):
    """FIX tag 59 codes: ``0`` day, ``1`` good-till-cancel, ``3`` IOC, ``4`` FOK, ``6``
    good-till-date (with an expire time)."""

    DAY = ord("0")
    GTC = ord("1")
    IOC = ord("3")
    FOK = ord("4")
    GTD = ord("6")


class WireSmp(IntEnum):
    """Self-match prevention instruction.

    ``-`` use the product default, ``R`` cancel resting, ``I`` cancel incoming, ``B`` cancel
    both. Orders of the same account, or of the same non-zero self-match group, never trade
    with each other; the instruction says which side gives way.
    """

    DEFAULT = ord("-")
    CANCEL_RESTING = ord("R")
    CANCEL_INCOMING = ord("I")
    CANCEL_BOTH = ord("B")


class WireLiquidity(IntEnum):
    """Liquidity flag on an execution: ``A`` added (maker), ``R`` removed (taker)."""

    ADDED = ord("A")
    REMOVED = ord("R")


class WireTradingState(IntEnum):
    """Trading Status: ``P`` pre-open, ``T`` trading, ``H`` halted, ``C`` closed."""

    PRE_OPEN = ord("P")
    TRADING = ord("T")
    HALTED = ord("H")
    CLOSED = ord("C")


class WireCancelReason(IntEnum):
    """Why an order left the book without trading (Canceled ``reason``)."""

    USER = ord("U")
    IOC_REMAINDER = ord("I")
    FOK_UNFILLED = ord("F")
    MIN_QTY_NOT_MET = ord("Q")
    SELF_MATCH = ord("S")
    MASS_CANCEL = ord("M")
    SESSION_END = ord("E")
    NO_LIQUIDITY = ord("L")
    DISCONNECT = ord("D")
    KILL_SWITCH = ord("K")
    OTHER = ord("O")


class RejectCode(IntEnum):
    """Reject reason codes (uint16).

    1-99 carry the engine's reject reasons; 100 and above are raised by the gateway before
    a command reaches the sequencer (bad message, throttle, risk, session rules).
    """

    # --- engine: the engine's RejectReason, same number and name ---
    UNKNOWN_INSTRUMENT = 1
    MARKET_CLOSED = 2
    MARKET_PRE_OPEN = 3
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
    ENGINE_OTHER = 99
    # --- gateway: message validation ---
    BAD_LENGTH = 100
    UNKNOWN_MESSAGE_TYPE = 101
    BAD_SIDE = 102
    BAD_ORDER_TYPE = 103
    BAD_TIME_IN_FORCE = 104
    BAD_SMP_INSTRUCTION = 105
    BAD_ACCOUNT_FIELD = 106
    TOKEN_NOT_INCREASING = 107
    UNKNOWN_TOKEN = 108
    BAD_QUANTITY = 109
    BAD_DISPLAY_QUANTITY = 110
    BAD_MIN_QUANTITY = 111
    BAD_STOP_PRICE = 112
    BAD_PRICE = 113
    BAD_ACTION = 114
    BAD_EXPIRE_TIME = 115
    BAD_POST_ONLY = 116
    # --- gateway: session rules ---
    THROTTLED = 120
    ACCOUNT_NOT_PERMITTED = 121
    ACCOUNT_BLOCKED = 122
    INSTRUMENT_NOT_TRADING = 123
    ORDER_NOT_WORKING = 124
    NOT_ADMIN = 125
    CONTRACT_EXPIRED = 126
    # --- gateway: pre-trade risk ---
    RISK_MAX_ORDER_QTY = 130
    RISK_MIN_ORDER_QTY = 131
    RISK_MAX_NOTIONAL = 132
    RISK_POSITION_LIMIT = 133
    RISK_PRICE_LIMIT = 134


def char_values(enum: type[IntEnum]) -> frozenset[int]:
    """The set of byte values a one-character wire enum accepts (O(members))."""
    return frozenset(int(m) for m in enum)
