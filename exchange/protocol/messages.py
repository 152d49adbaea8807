"""Application messages: fixed-width big-endian records in the spirit of OUCH 5.0, for futures.

Inbound messages travel in SoupBinTCP Unsequenced Data packets, outbound ones in Sequenced
Data packets. Each layout below is printed in ``docs/protocol.md``; the tests check the doc
against these layouts. Prices are int64 ticks, quantities uint32 contracts, timestamps int64
nanoseconds since the Unix epoch (UTC) stamped by the sequencer.

Decoding never raises anything but :class:`MessageError`, which carries the reject code, the
offending byte offset inside the message and the client order token (0 when the message is
too short to hold one). Decoding is O(1) per message: one ``unpack_from`` and a few set
lookups.
"""

from __future__ import annotations

import struct

import msgspec

from exchange.protocol.codes import (
    RejectCode,
    WireOrderType,
    WireSide,
    WireSmp,
    WireTimeInForce,
    char_values,
)
from exchange.protocol.layout import F, Layout

ACCOUNT_WIDTH = 16
#: Enter Order ``post_only``: ``Y`` the order must add liquidity (rejected if it would
#: trade on entry), ``N`` it may trade.
POST_ONLY_YES = ord("Y")
POST_ONLY_NO = ord("N")

# --- inbound layouts ----------------------------------------------------------------
ENTER_ORDER = Layout(
    "Enter Order",
    b"O",
    (
        F("message_type", "char"),
        F("token", "uint32"),
        F("instrument_id", "uint32"),
        F("side", "char"),
        F("order_type", "char"),
        F("time_in_force", "char"),
        F("price", "int64"),
        F("quantity", "uint32"),
        F("display_quantity", "uint32"),
        F("stop_price", "int64"),
        F("min_quantity", "uint32"),
        F("smp_group", "uint32"),
        F("smp_instruction", "char"),
        F("account", "alpha", ACCOUNT_WIDTH),
        F("expire_time", "int64"),
        F("post_only", "char"),
    ),
)
REPLACE_ORDER = Layout(
    "Replace Order",
    b"U",
    (
        F("message_type", "char"),
        F("orig_token", "uint32"),
        F("token", "uint32"),
        F("price", "int64"),
        F("stop_price", "int64"),
        F("quantity", "uint32"),
    ),
)
CANCEL_ORDER = Layout(
    "Cancel Order",
    b"X",
    (F("message_type", "char"), F("token", "uint32")),
)
MASS_CANCEL = Layout(
    "Mass Cancel",
    b"C",
    (
        F("message_type", "char"),
        F("token", "uint32"),
        F("instrument_id", "uint32"),
        F("side", "char"),
    ),
)

# --- outbound layouts ---------------------------------------------------------------
ACCEPTED = Layout(
    "Accepted",
    b"A",
    (
        F("message_type", "char"),
        F("timestamp", "int64"),
        F("token", "uint32"),
        F("instrument_id", "uint32"),
        F("side", "char"),
        F("order_type", "char"),
        F("time_in_force", "char"),
        F("price", "int64"),
        F("quantity", "uint32"),
        F("display_quantity", "uint32"),
        F("stop_price", "int64"),
        F("min_quantity", "uint32"),
        F("smp_group", "uint32"),
        F("smp_instruction", "char"),
        F("account", "alpha", ACCOUNT_WIDTH),
        F("expire_time", "int64"),
        F("post_only", "char"),
        F("order_id", "uint64"),
    ),
)
REJECTED = Layout(
    "Rejected",
    b"J",
    (
        F("message_type", "char"),
        F("timestamp", "int64"),
        F("token", "uint32"),
        F("request_type", "char"),
        F("reason", "uint16"),
        F("offset", "uint16"),
    ),
)
EXECUTED = Layout(
    "Executed",
    b"E",
    (
        F("message_type", "char"),
        F("timestamp", "int64"),
        F("token", "uint32"),
        F("instrument_id", "uint32"),
        F("side", "char"),
        F("price", "int64"),
        F("quantity", "uint32"),
        F("match_id", "uint64"),
        F("liquidity", "char"),
        F("leaves", "uint32"),
    ),
)
CANCELED = Layout(
    "Canceled",
    b"C",
    (
        F("message_type", "char"),
        F("timestamp", "int64"),
        F("token", "uint32"),
        F("instrument_id", "uint32"),
        F("side", "char"),
        F("quantity", "uint32"),
        F("reason", "char"),
    ),
)
REPLACED = Layout(
    "Replaced",
    b"U",
    (
        F("message_type", "char"),
        F("timestamp", "int64"),
        F("token", "uint32"),
        F("orig_token", "uint32"),
        F("instrument_id", "uint32"),
        F("side", "char"),
        F("price", "int64"),
        F("stop_price", "int64"),
        F("quantity", "uint32"),
        F("order_id", "uint64"),
    ),
)
STOP_TRIGGERED = Layout(
    "Stop Triggered",
    b"T",
    (
        F("message_type", "char"),
        F("timestamp", "int64"),
        F("token", "uint32"),
        F("instrument_id", "uint32"),
        F("stop_price", "int64"),
    ),
)
MASS_CANCEL_DONE = Layout(
    "Mass Cancel Done",
    b"X",
    (
        F("message_type", "char"),
        F("timestamp", "int64"),
        F("token", "uint32"),
        F("canceled", "uint32"),
    ),
)
TRADING_STATUS = Layout(
    "Trading Status",
    b"H",
    (
        F("message_type", "char"),
        F("timestamp", "int64"),
        F("instrument_id", "uint32"),
        F("state", "char"),
    ),
)

KILL_SWITCH = Layout(
    "Kill Switch",
    b"K",
    (
        F("message_type", "char"),
        F("token", "uint32"),
        F("account", "alpha", ACCOUNT_WIDTH),
        F("action", "char"),
    ),
)
CLOSE_DAY = Layout(
    "Close Trading Day",
    b"Z",
    (F("message_type", "char"), F("token", "uint32")),
)

INBOUND_LAYOUTS: tuple[Layout, ...] = (
    ENTER_ORDER,
    REPLACE_ORDER,
    CANCEL_ORDER,
    MASS_CANCEL,
    KILL_SWITCH,
    CLOSE_DAY,
)
OUTBOUND_LAYOUTS: tuple[Layout, ...] = (
    ACCEPTED,
    REJECTED,
    EXECUTED,
    CANCELED,
    REPLACED,
    STOP_TRIGGERED,
    MASS_CANCEL_DONE,
    TRADING_STATUS,
)


# --- message values -----------------------------------------------------------------


class EnterOrder(msgspec.Struct, frozen=True):
    """Enter Order: a new order. ``display_quantity`` 0 = fully displayed."""

    token: int
    instrument_id: int
    side: int
    order_type: int
    time_in_force: int
    price: int
    quantity: int
    display_quantity: int = 0
    stop_price: int = 0
    min_quantity: int = 0
    smp_group: int = 0
    smp_instruction: int = WireSmp.DEFAULT
    account: str = ""
    expire_time: int = 0  # GTD: ns since the Unix epoch (UTC); 0 for every other TIF
    post_only: int = POST_ONLY_NO


class ReplaceOrder(msgspec.Struct, frozen=True):
    """Replace Order: new price, stop price and open quantity for the order ``orig_token``."""

    orig_token: int
    token: int
    price: int
    quantity: int
    stop_price: int = 0


class CancelOrder(msgspec.Struct, frozen=True):
    """Cancel Order: cancel the whole remaining quantity of the order ``token``."""

    token: int


class MassCancel(msgspec.Struct, frozen=True):
    """Mass Cancel: this session's working orders; ``instrument_id`` 0 = all, ``side`` 32 = both."""

    token: int
    instrument_id: int = 0
    side: int = ord(" ")


class KillSwitch(msgspec.Struct, frozen=True):
    """Admin only: ``action`` ``B`` blocks ``account`` and cancels its orders, ``U`` unblocks."""

    token: int
    account: str
    action: int = ord("B")


class CloseDay(msgspec.Struct, frozen=True):
    """Admin only: close the trading day (close record, expire day orders, End of Session)."""

    token: int


class Accepted(msgspec.Struct, frozen=True):
    timestamp: int
    token: int
    instrument_id: int
    side: int
    order_type: int
    time_in_force: int
    price: int
    quantity: int
    display_quantity: int
    stop_price: int
    min_quantity: int
    smp_group: int
    smp_instruction: int
    account: str
    expire_time: int
    post_only: int
    order_id: int


class Rejected(msgspec.Struct, frozen=True):
    timestamp: int
    token: int
    request_type: int
    reason: int
    offset: int = 0


class Executed(msgspec.Struct, frozen=True):
    timestamp: int
    token: int
    instrument_id: int
    side: int
    price: int
    quantity: int
    match_id: int
    liquidity: int
    leaves: int


class Canceled(msgspec.Struct, frozen=True):
    timestamp: int
    token: int
    instrument_id: int
    side: int
    quantity: int
    reason: int


class Replaced(msgspec.Struct, frozen=True):
    timestamp: int
    token: int
    orig_token: int
    instrument_id: int
    side: int
    price: int
    stop_price: int
    quantity: int
    order_id: int


class StopTriggered(msgspec.Struct, frozen=True):
    timestamp: int
    token: int
    instrument_id: int
    stop_price: int


class MassCancelDone(msgspec.Struct, frozen=True):
    timestamp: int
    token: int
    canceled: int


class TradingStatus(msgspec.Struct, frozen=True):
    timestamp: int
    instrument_id: int
    state: int


InboundMessage = EnterOrder | ReplaceOrder | CancelOrder | MassCancel | KillSwitch | CloseDay
OutboundMessage = (
    Accepted
    | Rejected
    | Executed
    | Canceled
    | Replaced
    | StopTriggered
    | MassCancelDone
    | TradingStatus
)


class MessageError(Exception):
    """A message that cannot be accepted: carries the wire reject code and byte offset."""

    def __init__(
        self, code: RejectCode, message: str, offset: int = 0, token: int = 0, request: int = 0
    ) -> None:
        super().__init__(message)
        self.code = code
        self.offset = offset
        self.token = token
        self.request = request


# --- inbound decode / encode --------------------------------------------------------

_SIDES = char_values(WireSide)
_ORDER_TYPES = char_values(WireOrderType)
_TIFS = char_values(WireTimeInForce)
_SMPS = char_values(WireSmp)
_MASS_SIDES = _SIDES | {ord(" ")}
_POST_ONLY = frozenset((POST_ONLY_YES, POST_ONLY_NO))

_ENTER = ENTER_ORDER.struct
_REPLACE = REPLACE_ORDER.struct
_CANCEL = CANCEL_ORDER.struct
_MASS = MASS_CANCEL.struct
_KILL = KILL_SWITCH.struct
_CLOSE = CLOSE_DAY.struct
_SIZES = {lay.type_byte[0]: lay.size for lay in INBOUND_LAYOUTS}
_OFF = {name: off for name, off, _, _ in ENTER_ORDER.offsets()}


def _token_of(data: bytes) -> int:
    if len(data) >= 5:
        return int.from_bytes(data[1:5], "big")
    return 0


def decode_inbound(data: bytes) -> InboundMessage:
    """Decode one inbound application message (the Unsequenced Data payload).

    Raises :class:`MessageError` for an empty message, an unknown type, a wrong length,
    a bad enum value or a non-ASCII/garbled account, naming the field's offset.
    """
    if not data:
        raise MessageError(RejectCode.BAD_LENGTH, "empty message", 0)
    mtype = data[0]
    size = _SIZES.get(mtype)
    if size is None:
        raise MessageError(
            RejectCode.UNKNOWN_MESSAGE_TYPE,
            f"unknown message type {mtype:#04x}",
            0,
            _token_of(data),
            mtype,
        )
    if len(data) != size:
        raise MessageError(
            RejectCode.BAD_LENGTH,
            f"message {chr(mtype)!r} is {len(data)} bytes, expected {size}",
            min(len(data), size),
            _token_of(data),
            mtype,
        )
    if mtype == 0x4F:  # 'O'
        (_, tok, inst, side, otype, tif, px, qty, disp, stop, minq, grp, smp, acct, exp, post) = (
            _ENTER.unpack(data)
        )
        side, otype, tif, smp, post = side[0], otype[0], tif[0], smp[0], post[0]
        if post not in _POST_ONLY:
            raise MessageError(
                RejectCode.BAD_POST_ONLY, "bad post_only", _OFF["post_only"], tok, mtype
            )
        if side not in _SIDES:
            raise MessageError(RejectCode.BAD_SIDE, "bad side", _OFF["side"], tok, mtype)
        if otype not in _ORDER_TYPES:
            raise MessageError(
                RejectCode.BAD_ORDER_TYPE, "bad order_type", _OFF["order_type"], tok, mtype
            )
        if tif not in _TIFS:
            raise MessageError(
                RejectCode.BAD_TIME_IN_FORCE,
                "bad time_in_force",
                _OFF["time_in_force"],
                tok,
                mtype,
            )
        if smp not in _SMPS:
            raise MessageError(
                RejectCode.BAD_SMP_INSTRUCTION,
                "bad smp_instruction",
                _OFF["smp_instruction"],
                tok,
                mtype,
            )
        account = _decode_alpha(acct, _OFF["account"], tok, mtype)
        return EnterOrder(
            tok, inst, side, otype, tif, px, qty, disp, stop, minq, grp, smp, account, exp, post
        )
    if mtype == 0x55:  # 'U'
        _, orig, tok, px, stop, qty = _REPLACE.unpack(data)
        return ReplaceOrder(orig, tok, px, qty, stop)
    if mtype == 0x58:  # 'X'
        return CancelOrder(_CANCEL.unpack(data)[1])
    if mtype == 0x4B:  # 'K'
        _, tok, acct, action = _KILL.unpack(data)
        if action[0] not in (0x42, 0x55):
            raise MessageError(RejectCode.BAD_ACTION, "bad action", 21, tok, mtype)
        return KillSwitch(tok, _decode_alpha(acct, 5, tok, mtype), action[0])
    if mtype == 0x5A:  # 'Z'
        return CloseDay(_CLOSE.unpack(data)[1])
    _, tok, inst, side = _MASS.unpack(data)
    side = side[0]
    if side not in _MASS_SIDES:
        raise MessageError(RejectCode.BAD_SIDE, "bad side", 9, tok, mtype)
    return MassCancel(tok, inst, side)


_ALPHA_CACHE: dict[bytes, str] = {}


def _decode_alpha(raw: bytes, offset: int, token: int, mtype: int) -> str:
    """Right-space-padded printable ASCII -> str, or MessageError at ``offset``.

    Valid values are memoised (accounts are few), so the common case is one dict lookup.
    """
    hit = _ALPHA_CACHE.get(raw)
    if hit is not None:
        return hit
    for i, b in enumerate(raw):
        if b < 0x20 or b > 0x7E:
            raise MessageError(
                RejectCode.BAD_ACCOUNT_FIELD,
                "account is not printable ASCII",
                offset + i,
                token,
                mtype,
            )
    text = raw.decode("ascii").rstrip(" ")
    if len(_ALPHA_CACHE) < 65536:
        _ALPHA_CACHE[raw] = text
    return text


_ALPHA_ENC: dict[tuple[str, int], bytes] = {}


def _alpha(text: str, width: int) -> bytes:
    """str -> right-space-padded ASCII field (memoised: accounts are few)."""
    hit = _ALPHA_ENC.get((text, width))
    if hit is not None:
        return hit
    raw = text.encode("ascii")
    if len(raw) > width:
        raise ValueError(f"account longer than {width} characters: {text!r}")
    out = raw.ljust(width, b" ")
    if len(_ALPHA_ENC) < 65536:
        _ALPHA_ENC[(text, width)] = out
    return out


def _c(v: int) -> bytes:
    return bytes((v,))


def encode_inbound(msg: InboundMessage) -> bytes:
    """Encode one inbound message (client side)."""
    if isinstance(msg, EnterOrder):
        return _ENTER.pack(
            b"O",
            msg.token,
            msg.instrument_id,
            _c(msg.side),
            _c(msg.order_type),
            _c(msg.time_in_force),
            msg.price,
            msg.quantity,
            msg.display_quantity,
            msg.stop_price,
            msg.min_quantity,
            msg.smp_group,
            _c(msg.smp_instruction),
            _alpha(msg.account, ACCOUNT_WIDTH),
            msg.expire_time,
            _c(msg.post_only),
        )
    if isinstance(msg, ReplaceOrder):
        return _REPLACE.pack(
            b"U", msg.orig_token, msg.token, msg.price, msg.stop_price, msg.quantity
        )
    if isinstance(msg, CancelOrder):
        return _CANCEL.pack(b"X", msg.token)
    if isinstance(msg, MassCancel):
        return _MASS.pack(b"C", msg.token, msg.instrument_id, _c(msg.side))
    if isinstance(msg, KillSwitch):
        return _KILL.pack(b"K", msg.token, _alpha(msg.account, ACCOUNT_WIDTH), _c(msg.action))
    if isinstance(msg, CloseDay):
        return _CLOSE.pack(b"Z", msg.token)
    raise TypeError(f"not an inbound message: {type(msg).__name__}")


# --- outbound encode / decode -------------------------------------------------------
_ACC = ACCEPTED.struct
_REJ = REJECTED.struct
_EXE = EXECUTED.struct
_CXL = CANCELED.struct
_RPL = REPLACED.struct
_STP = STOP_TRIGGERED.struct
_MCD = MASS_CANCEL_DONE.struct
_TST = TRADING_STATUS.struct


#: Accepted echoes the Enter Order's fields (token .. account) byte for byte, between its
#: timestamp and the order id: the gateway builds it from the raw inbound message.
_ECHO_LEN = ENTER_ORDER.size - 1
_ACC_ECHO = struct.Struct(f">cq{_ECHO_LEN}sQ")
assert [f for f in ACCEPTED.fields if f.name not in ("timestamp", "order_id")] == list(
    ENTER_ORDER.fields
), "Accepted must echo Enter Order's fields in order"


def encode_accepted_echo(ts: int, enter_order: bytes, order_id: int) -> bytes:
    """Accepted from the raw Enter Order bytes (already validated): one pack. O(1)."""
    return _ACC_ECHO.pack(b"A", ts, enter_order[1:], order_id)


def encode_accepted(m: Accepted) -> bytes:
    return _ACC.pack(
        b"A",
        m.timestamp,
        m.token,
        m.instrument_id,
        _c(m.side),
        _c(m.order_type),
        _c(m.time_in_force),
        m.price,
        m.quantity,
        m.display_quantity,
        m.stop_price,
        m.min_quantity,
        m.smp_group,
        _c(m.smp_instruction),
        _alpha(m.account, ACCOUNT_WIDTH),
        m.expire_time,
        _c(m.post_only),
        m.order_id,
    )


def encode_rejected(ts: int, token: int, request: int, reason: int, offset: int = 0) -> bytes:
    """Rejected: ``request`` is the type byte of the rejected message (0 if unknown)."""
    return _REJ.pack(b"J", ts, token & 0xFFFFFFFF, _c(request & 0xFF), reason, offset & 0xFFFF)


def encode_executed(
    ts: int,
    token: int,
    inst: int,
    side: int,
    px: int,
    qty: int,
    match_id: int,
    liq: int,
    leaves: int,
) -> bytes:
    return _EXE.pack(b"E", ts, token, inst, _c(side), px, qty, match_id, _c(liq), leaves)


def encode_canceled(ts: int, token: int, inst: int, side: int, qty: int, reason: int) -> bytes:
    return _CXL.pack(b"C", ts, token, inst, _c(side), qty, _c(reason))


def encode_replaced(
    ts: int,
    token: int,
    orig: int,
    inst: int,
    side: int,
    px: int,
    stop: int,
    qty: int,
    order_id: int,
) -> bytes:
    return _RPL.pack(b"U", ts, token, orig, inst, _c(side), px, stop, qty, order_id)


def encode_stop_triggered(ts: int, token: int, inst: int, stop_price: int) -> bytes:
    return _STP.pack(b"T", ts, token, inst, stop_price)


def encode_mass_cancel_done(ts: int, token: int, canceled: int) -> bytes:
    return _MCD.pack(b"X", ts, token, canceled)


def encode_trading_status(ts: int, inst: int, state: int) -> bytes:
    return _TST.pack(b"H", ts, inst, _c(state))


def encode_outbound(m: OutboundMessage) -> bytes:
    """Encode any outbound message value (convenience; the gateway uses the encoders above)."""
    if isinstance(m, Accepted):
        return encode_accepted(m)
    if isinstance(m, Rejected):
        return encode_rejected(m.timestamp, m.token, m.request_type, m.reason, m.offset)
    if isinstance(m, Executed):
        return encode_executed(
            m.timestamp, m.token, m.instrument_id, m.side, m.price, m.quantity,
            m.match_id, m.liquidity, m.leaves,
        )  # fmt: skip
    if isinstance(m, Canceled):
        return encode_canceled(m.timestamp, m.token, m.instrument_id, m.side, m.quantity, m.reason)
    if isinstance(m, Replaced):
        return encode_replaced(
            m.timestamp, m.token, m.orig_token, m.instrument_id, m.side, m.price,
            m.stop_price, m.quantity, m.order_id,
        )  # fmt: skip
    if isinstance(m, StopTriggered):
        return encode_stop_triggered(m.timestamp, m.token, m.instrument_id, m.stop_price)
    if isinstance(m, MassCancelDone):
        return encode_mass_cancel_done(m.timestamp, m.token, m.canceled)
    if isinstance(m, TradingStatus):
        return encode_trading_status(m.timestamp, m.instrument_id, m.state)
    raise TypeError(f"not an outbound message: {type(m).__name__}")


_OUT_SIZES = {lay.type_byte[0]: lay for lay in OUTBOUND_LAYOUTS}


def decode_outbound(data: bytes) -> OutboundMessage:
    """Decode one outbound message (client side). ValueError on a malformed message."""
    if not data:
        raise ValueError("empty outbound message")
    lay = _OUT_SIZES.get(data[0])
    if lay is None:
        raise ValueError(f"unknown outbound message type {data[0]:#04x}")
    if len(data) != lay.size:
        raise ValueError(f"outbound {lay.title} is {len(data)} bytes, expected {lay.size}")
    v = list(lay.struct.unpack(data))[1:]
    v = [x[0] if isinstance(x, bytes) and len(x) == 1 else x for x in v]
    if lay is ACCEPTED:
        v[13] = v[13].decode("ascii").rstrip(" ")
        return Accepted(*v)
    cls = {
        REJECTED.title: Rejected,
        EXECUTED.title: Executed,
        CANCELED.title: Canceled,
        REPLACED.title: Replaced,
        STOP_TRIGGERED.title: StopTriggered,
        MASS_CANCEL_DONE.title: MassCancelDone,
        TRADING_STATUS.title: TradingStatus,
    }[lay.title]
    return cls(*v)


# --- the gateway's hot path: framed outbound messages in one pack -------------------
# Each struct below is a whole SoupBinTCP Sequenced Data packet: the 2-byte length, the
# packet type ``S`` and the message, its char fields taken as ints. The bytes are exactly
# ``soupbintcp.sequenced(encode_...(...))``; the tests check that.


def _framed(lay: Layout) -> tuple[struct.Struct, int]:
    fmt = ">HB" + "".join("B" if f.type == "char" else f.fmt for f in lay.fields)
    return struct.Struct(fmt), lay.size + 1


_F_ACC_ECHO = struct.Struct(f">HBBq{_ECHO_LEN}sQ")
_F_ACC_LEN = ACCEPTED.size + 1
_F_REJ, _F_REJ_LEN = _framed(REJECTED)
_F_EXE, _F_EXE_LEN = _framed(EXECUTED)
_F_CXL, _F_CXL_LEN = _framed(CANCELED)


def seq_accepted_echo(ts: int, enter_order: bytes, order_id: int) -> bytes:
    """Framed Accepted from the raw Enter Order bytes (already validated). O(1)."""
    return _F_ACC_ECHO.pack(_F_ACC_LEN, 0x53, 0x41, ts, enter_order[1:], order_id)


def seq_rejected(ts: int, token: int, request: int, reason: int, offset: int = 0) -> bytes:
    """Framed Rejected (see :func:`encode_rejected`)."""
    return _F_REJ.pack(
        _F_REJ_LEN, 0x53, 0x4A, ts, token & 0xFFFFFFFF, request & 0xFF, reason, offset & 0xFFFF
    )


def seq_executed(
    ts: int,
    token: int,
    inst: int,
    side: int,
    px: int,
    qty: int,
    match_id: int,
    liq: int,
    leaves: int,
) -> bytes:
    """Framed Executed (see :func:`encode_executed`)."""
    return _F_EXE.pack(
        _F_EXE_LEN, 0x53, 0x45, ts, token, inst, side, px, qty, match_id, liq, leaves
    )


def seq_canceled(ts: int, token: int, inst: int, side: int, qty: int, reason: int) -> bytes:
    """Framed Canceled (see :func:`encode_canceled`)."""
    return _F_CXL.pack(_F_CXL_LEN, 0x53, 0x43, ts, token, inst, side, qty, reason)


#: Enter Order with its char fields as ints (same bytes as ``ENTER_ORDER``), message type
#: byte skipped: token, instrument, side, type, tif, price, qty, display, stop, min qty,
#: smp group, smp instruction, raw account (16 bytes), expire time, post only.
ENTER_ORDER_INTS = struct.Struct(
    ">x" + "".join("B" if f.type == "char" else f.fmt for f in ENTER_ORDER.fields[1:])
)
ENTER_ORDER_SIZE = ENTER_ORDER.size
SIDES = _SIDES
ORDER_TYPES = _ORDER_TYPES
TIMES_IN_FORCE = _TIFS
SMP_INSTRUCTIONS = _SMPS
POST_ONLY_VALUES = _POST_ONLY
