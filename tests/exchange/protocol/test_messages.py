"""Application message codecs: round trips, and every kind of bad input becomes a reject code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.protocol import messages as m
from exchange.protocol.codes import RejectCode

u32 = st.integers(0, 2**32 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
u64 = st.integers(0, 2**64 - 1)
acct = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=16)


def _order(**kw: object) -> m.EnterOrder:
    base = dict(
        token=7,
        instrument_id=12612,
        side=ord("B"),
        order_type=ord("L"),
        time_in_force=ord("0"),
        price=600,
        quantity=5,
        account="ACME",
    )
    base.update(kw)
    return m.EnterOrder(**base)  # type: ignore[arg-type]


@given(
    token=u32,
    inst=u32,
    side=st.sampled_from(b"BS"),
    otype=st.sampled_from(b"LMST"),
    tif=st.sampled_from(b"01346"),
    px=i64,
    qty=u32,
    disp=u32,
    stop=i64,
    minq=u32,
    grp=u32,
    smp=st.sampled_from(b"-RIB"),
    account=acct,
    expire=i64,
    post=st.sampled_from(b"YN"),
)
def test_enter_order_round_trips(
    token, inst, side, otype, tif, px, qty, disp, stop, minq, grp, smp, account, expire, post
) -> None:
    msg = m.EnterOrder(
        token, inst, side, otype, tif, px, qty, disp, stop, minq, grp, smp, account, expire, post
    )
    assert m.decode_inbound(m.encode_inbound(msg)) == msg


@given(orig=u32, token=u32, px=i64, qty=u32, stop=i64)
def test_replace_round_trips(orig, token, px, qty, stop) -> None:
    msg = m.ReplaceOrder(orig, token, px, qty, stop)
    assert m.decode_inbound(m.encode_inbound(msg)) == msg


@pytest.mark.parametrize(
    "msg",
    [
        m.CancelOrder(5),
        m.MassCancel(9),
        m.MassCancel(9, 12612, ord("S")),
        m.KillSwitch(3, "ACME", ord("U")),
        m.CloseDay(4),
    ],
)
def test_cancel_messages_round_trip(msg: m.InboundMessage) -> None:
    assert m.decode_inbound(m.encode_inbound(msg)) == msg


@pytest.mark.parametrize(
    ("field", "offset", "code"),
    [
        ("side", 9, RejectCode.BAD_SIDE),
        ("order_type", 10, RejectCode.BAD_ORDER_TYPE),
        ("time_in_force", 11, RejectCode.BAD_TIME_IN_FORCE),
        ("smp_instruction", 44, RejectCode.BAD_SMP_INSTRUCTION),
        ("post_only", 69, RejectCode.BAD_POST_ONLY),
    ],
)
def test_bad_enum_names_its_offset(field: str, offset: int, code: RejectCode) -> None:
    # Arrange
    raw = bytearray(m.encode_inbound(_order()))
    raw[offset] = ord("?")
    # Act
    with pytest.raises(m.MessageError) as info:
        m.decode_inbound(bytes(raw))
    # Assert
    assert (info.value.code, info.value.offset, info.value.token) == (code, offset, 7)


def test_non_ascii_account_is_rejected_at_its_byte() -> None:
    raw = bytearray(m.encode_inbound(_order()))
    raw[47] = 0xFF
    with pytest.raises(m.MessageError) as info:
        m.decode_inbound(bytes(raw))
    assert (info.value.code, info.value.offset) == (RejectCode.BAD_ACCOUNT_FIELD, 47)


@pytest.mark.parametrize("cut", [1, 5, 30, 60])
def test_truncated_enter_order_is_bad_length(cut: int) -> None:
    raw = m.encode_inbound(_order())[:cut]
    with pytest.raises(m.MessageError) as info:
        m.decode_inbound(raw)
    assert info.value.code == RejectCode.BAD_LENGTH


def test_unknown_message_type_is_rejected() -> None:
    with pytest.raises(m.MessageError) as info:
        m.decode_inbound(b"Q\x00\x00\x00\x09")
    assert (info.value.code, info.value.token) == (RejectCode.UNKNOWN_MESSAGE_TYPE, 9)


def test_empty_message_is_bad_length() -> None:
    with pytest.raises(m.MessageError) as info:
        m.decode_inbound(b"")
    assert info.value.code == RejectCode.BAD_LENGTH


@given(st.binary(max_size=120))
def test_decoder_never_raises_anything_but_message_error(data: bytes) -> None:
    try:
        msg = m.decode_inbound(data)
    except m.MessageError as exc:
        assert isinstance(exc.code, RejectCode)
        assert 0 <= exc.offset <= len(data)
    else:
        assert m.encode_inbound(msg) == data


@given(st.sampled_from(m.INBOUND_LAYOUTS), st.data())
def test_decoder_on_right_sized_random_bodies(layout, data) -> None:
    body = layout.type_byte + data.draw(
        st.binary(min_size=layout.size - 1, max_size=layout.size - 1)
    )
    try:
        msg = m.decode_inbound(body)
    except m.MessageError as exc:
        assert exc.code in {
            RejectCode.BAD_SIDE,
            RejectCode.BAD_ORDER_TYPE,
            RejectCode.BAD_TIME_IN_FORCE,
            RejectCode.BAD_SMP_INSTRUCTION,
            RejectCode.BAD_POST_ONLY,
            RejectCode.BAD_ACCOUNT_FIELD,
            RejectCode.BAD_ACTION,
        }
    else:
        assert m.encode_inbound(msg).rstrip(b" ") == body.rstrip(b" ")


OUTBOUND_SAMPLES: list[m.OutboundMessage] = [
    m.Accepted(1, 2, 12612, 66, 76, 48, 600, 5, 0, 0, 0, 0, 45, "ACME", 0, 78, 2**40 + 3),
    m.Accepted(
        1, 2, 12612, 66, 76, 54, 600, 5, 0, 0, 0, 0, 45, "ACME", 1_795_000_000 * 10**9, 89, 7
    ),
    m.Rejected(1, 2, ord("O"), RejectCode.THROTTLED, 0),
    m.Executed(1, 2, 12612, 83, 601, 3, 77, ord("A"), 2),
    m.Canceled(1, 2, 12612, 66, 5, ord("U")),
    m.Replaced(1, 3, 2, 12612, 66, 602, 0, 4, 99),
    m.StopTriggered(1, 2, 12612, 590),
    m.MassCancelDone(1, 4, 17),
    m.TradingStatus(1, 12612, ord("T")),
]


@pytest.mark.parametrize("msg", OUTBOUND_SAMPLES, ids=lambda x: type(x).__name__)
def test_outbound_round_trips(msg: m.OutboundMessage) -> None:
    raw = m.encode_outbound(msg)
    assert m.decode_outbound(raw) == msg
