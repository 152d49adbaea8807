"""SoupBinTCP 4.0 framing and session packets, exactly as Nasdaq publishes them.

Every packet is ``uint16 big-endian length`` (bytes that follow, type byte included),
``char packet type``, payload. Alpha fields are ASCII; usernames and passwords are
right-padded with spaces, session names and sequence numbers (ASCII decimal) are
left-padded with spaces. Sequenced Data packets carry no sequence number: the client
counts them from the number given in Login Accepted.

:class:`FrameDecoder` is the incremental parser both the gateway and the client use.
"""

from __future__ import annotations

import struct

from exchange.protocol.layout import F, Layout

# --- packet types -------------------------------------------------------------------
DEBUG = b"+"
LOGIN_ACCEPTED = b"A"
LOGIN_REJECTED = b"J"
SEQUENCED_DATA = b"S"
SERVER_HEARTBEAT = b"H"
END_OF_SESSION = b"Z"
LOGIN_REQUEST = b"L"
UNSEQUENCED_DATA = b"U"
CLIENT_HEARTBEAT = b"R"
LOGOUT_REQUEST = b"O"

SERVER_PACKET_TYPES = frozenset(b"+AJSHZ")
CLIENT_PACKET_TYPES = frozenset(b"+LURO")

#: Login Rejected reason codes.
REJECT_NOT_AUTHORIZED = b"A"
REJECT_SESSION_NOT_AVAILABLE = b"S"

HEARTBEAT_INTERVAL_S = 1.0
TIMEOUT_S = 15.0

#: Largest inbound packet the gateway accepts (length field value); larger is a broken frame.
MAX_INBOUND_PACKET = 512
#: SoupBinTCP's own ceiling (the length field is 16 bits).
MAX_PACKET = 0xFFFF

LENGTH = struct.Struct(">H")
HEADER = struct.Struct(">Hc")

LOGIN_REQUEST_LAYOUT = Layout(
    "Login Request Packet",
    LOGIN_REQUEST,
    (
        F("packet_type", "char"),
        F("username", "alpha", 6),
        F("password", "alpha", 10),
        F("requested_session", "alpha", 10),
        F("requested_sequence_number", "alpha", 20),
    ),
)
LOGIN_ACCEPTED_LAYOUT = Layout(
    "Login Accepted Packet",
    LOGIN_ACCEPTED,
    (
        F("packet_type", "char"),
        F("session", "alpha", 10),
        F("sequence_number", "alpha", 20),
    ),
)
LOGIN_REJECTED_LAYOUT = Layout(
    "Login Rejected Packet",
    LOGIN_REJECTED,
    (F("packet_type", "char"), F("reject_reason_code", "char")),
)

SESSION_LAYOUTS: tuple[Layout, ...] = (
    LOGIN_REQUEST_LAYOUT,
    LOGIN_ACCEPTED_LAYOUT,
    LOGIN_REJECTED_LAYOUT,
)


class FramingError(Exception):
    """A broken frame: the session that sent it is disconnected (and the event logged)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at stream offset {offset}")
        self.offset = offset


class FrameDecoder:
    """Incremental SoupBinTCP frame parser.

    ``feed(data)`` returns the complete packets ``(type_byte_int, payload_bytes)`` found so
    far; partial packets wait for more bytes. A length of 0 or above ``max_packet`` raises
    :class:`FramingError` (the stream cannot be resynchronised). Amortised O(bytes).
    """

    __slots__ = ("_buf", "_consumed", "max_packet")

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self._buf = bytearray()
        self._consumed = 0  # stream offset of _buf[0], for error messages
        self.max_packet = max_packet

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet form a complete packet."""
        return len(self._buf)

    def skip(self, n: int) -> None:
        """Count ``n`` bytes of whole packets that someone else parsed (with nothing
        buffered), so later error messages give the right stream offsets. O(1).
        ``exchange.core.reader`` does this itself (``_consumed``): keep the two in step."""
        self._consumed += n

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Append ``data``; return every complete packet, in order.

        Works on the incoming ``bytes`` directly when nothing is buffered (the common
        case), so each payload is copied once.
        """
        buf = self._buf
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        out: list[tuple[int, bytes]] = []
        append = out.append
        pos = 0
        n = len(data)
        max_packet = self.max_packet
        while n - pos >= 2:
            length = (data[pos] << 8) | data[pos + 1]
            if length == 0 or length > max_packet:
                bad = self._consumed + pos
                self._consumed += n
                raise FramingError(f"bad packet length {length}", bad)
            end = pos + 2 + length
            if end > n:
                break
            append((data[pos + 2], data[pos + 3 : end]))
            pos = end
        if pos < n:
            buf += data[pos:]
        self._consumed += pos
        return out


# --- encoders -----------------------------------------------------------------------


def packet(type_byte: bytes, payload: bytes = b"") -> bytes:
    """One framed packet."""
    return LENGTH.pack(len(payload) + 1) + type_byte + payload


def sequenced(message: bytes) -> bytes:
    """A Sequenced Data packet around one application message."""
    return LENGTH.pack(len(message) + 1) + b"S" + message


def unsequenced(message: bytes) -> bytes:
    """An Unsequenced Data packet around one application message."""
    return LENGTH.pack(len(message) + 1) + b"U" + message


def _alpha_left(value: str, width: int, what: str) -> bytes:
    raw = value.encode("ascii")
    if len(raw) > width:
        raise ValueError(f"{what} longer than {width} characters: {value!r}")
    return raw.rjust(width, b" ")


def _alpha_right(value: str, width: int, what: str) -> bytes:
    raw = value.encode("ascii")
    if len(raw) > width:
        raise ValueError(f"{what} longer than {width} characters: {value!r}")
    return raw.ljust(width, b" ")


def login_request(username: str, password: str, session: str = "", sequence: int = 0) -> bytes:
    """A framed Login Request. ``session`` blank = current session; ``sequence`` 0 = newest."""
    body = LOGIN_REQUEST_LAYOUT.struct.pack(
        LOGIN_REQUEST,
        _alpha_right(username, 6, "username"),
        _alpha_right(password, 10, "password"),
        _alpha_left(session, 10, "session"),
        _alpha_left(str(int(sequence)), 20, "sequence number"),
    )
    return LENGTH.pack(len(body)) + body


def login_accepted(session: str, next_sequence: int) -> bytes:
    """A framed Login Accepted: ``next_sequence`` is the number of the next Sequenced Data."""
    body = LOGIN_ACCEPTED_LAYOUT.struct.pack(
        LOGIN_ACCEPTED,
        _alpha_left(session, 10, "session"),
        _alpha_left(str(int(next_sequence)), 20, "sequence number"),
    )
    return LENGTH.pack(len(body)) + body


def login_rejected(reason: bytes) -> bytes:
    """A framed Login Rejected with reason ``A`` (not authorised) or ``S`` (no session)."""
    return packet(LOGIN_REJECTED, reason)


SERVER_HEARTBEAT_PACKET = packet(SERVER_HEARTBEAT)
CLIENT_HEARTBEAT_PACKET = packet(CLIENT_HEARTBEAT)
END_OF_SESSION_PACKET = packet(END_OF_SESSION)
LOGOUT_REQUEST_PACKET = packet(LOGOUT_REQUEST)


# --- decoders -----------------------------------------------------------------------


class LoginRequest:
    """A decoded Login Request (fields stripped of padding)."""

    __slots__ = ("password", "requested_sequence", "requested_session", "username")

    def __init__(self, username: str, password: str, session: str, sequence: int) -> None:
        self.username = username
        self.password = password
        self.requested_session = session
        self.requested_sequence = sequence


def parse_login_request(payload: bytes) -> LoginRequest:
    """Decode a Login Request payload (after the type byte); ValueError names the bad field."""
    want = LOGIN_REQUEST_LAYOUT.size - 1
    if len(payload) != want:
        raise ValueError(f"Login Request payload is {len(payload)} bytes, expected {want}")
    _, user, pw, sess, seq = LOGIN_REQUEST_LAYOUT.struct.unpack(LOGIN_REQUEST + payload)
    try:
        username = user.decode("ascii").strip()
        password = pw.decode("ascii").strip()
        session = sess.decode("ascii").strip()
        seq_text = seq.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError("Login Request: non-ASCII byte in an alpha field") from None
    if seq_text == "":
        sequence = 0
    elif seq_text.isdigit():
        sequence = int(seq_text)
    else:
        raise ValueError(f"Login Request: requested_sequence_number {seq_text!r} is not numeric")
    return LoginRequest(username, password, session, sequence)


def parse_login_accepted(payload: bytes) -> tuple[str, int]:
    """Decode a Login Accepted payload -> ``(session, next_sequence)``."""
    want = LOGIN_ACCEPTED_LAYOUT.size - 1
    if len(payload) != want:
        raise ValueError(f"Login Accepted payload is {len(payload)} bytes, expected {want}")
    session = payload[:10].decode("ascii").strip()
    seq = int(payload[10:30].decode("ascii").strip() or "0")
    return session, seq
