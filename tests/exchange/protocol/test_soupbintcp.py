"""SoupBinTCP framing and session packets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.protocol import soupbintcp as s


def test_login_request_bytes_follow_the_nasdaq_layout() -> None:
    raw = s.login_request("bob", "pw", "", 12)
    assert raw[:3] == b"\x00\x2fL"
    assert raw[3:9] == b"bob   "
    assert raw[9:19] == b"pw        "
    assert raw[19:29] == b" " * 10
    assert raw[29:49] == b" " * 18 + b"12"


def test_login_request_parses_back() -> None:
    raw = s.login_request("alice", "secret", "SESS01", 5)
    [(ptype, payload)] = s.FrameDecoder().feed(raw)
    req = s.parse_login_request(payload)
    assert (chr(ptype), req.username, req.password, req.requested_session) == (
        "L",
        "alice",
        "secret",
        "SESS01",
    )
    assert req.requested_sequence == 5


def test_login_request_with_non_numeric_sequence_is_refused() -> None:
    payload = s.login_request("a", "b", "", 1)[3:]
    bad = payload[:-1] + b"x"
    with pytest.raises(ValueError, match="requested_sequence_number"):
        s.parse_login_request(bad)


def test_login_accepted_round_trips() -> None:
    [(ptype, payload)] = s.FrameDecoder().feed(s.login_accepted("S1", 42))
    assert (chr(ptype), s.parse_login_accepted(payload)) == ("A", ("S1", 42))


@given(st.lists(st.binary(min_size=0, max_size=40), max_size=20), st.integers(1, 7))
def test_decoder_reassembles_packets_split_anywhere(payloads: list[bytes], chunk: int) -> None:
    # Arrange
    stream = b"".join(s.packet(b"S", p) for p in payloads)
    dec = s.FrameDecoder()
    # Act
    got = []
    for i in range(0, len(stream), chunk):
        got += dec.feed(stream[i : i + chunk])
    # Assert
    assert got == [(ord("S"), p) for p in payloads]
    assert dec.pending == 0


@pytest.mark.parametrize("length", [0, s.MAX_INBOUND_PACKET + 1, 0xFFFF])
def test_bad_length_is_a_framing_error_naming_the_offset(length: int) -> None:
    dec = s.FrameDecoder(max_packet=s.MAX_INBOUND_PACKET)
    good = s.packet(b"R")
    with pytest.raises(s.FramingError) as info:
        dec.feed(good + length.to_bytes(2, "big") + b"U")
    assert info.value.offset == len(good)


@given(st.binary(max_size=300))
def test_decoder_on_random_bytes_only_yields_packets_or_framing_errors(data: bytes) -> None:
    dec = s.FrameDecoder(max_packet=s.MAX_INBOUND_PACKET)
    try:
        packets = dec.feed(data)
    except s.FramingError:
        return
    consumed = sum(len(p) + 3 for _, p in packets)
    assert consumed + dec.pending == len(data)


@given(st.binary(max_size=60))
def test_login_request_parser_only_raises_value_error(payload: bytes) -> None:
    try:
        req = s.parse_login_request(payload)
    except ValueError:
        return
    assert req.requested_sequence >= 0
    assert len(req.username) <= 6 and len(req.password) <= 10
