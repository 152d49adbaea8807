"""The order-entry core's kernel writes its constants out (numba's cache checks only the
kernel's own file); each must equal the protocol's layouts and enums and the engine's."""

from __future__ import annotations

import pytest

from exchange.core import kernel as K
from exchange.engine.abi import FLAG_POST_ONLY, CmdType, EventType, Side
from exchange.protocol import messages as m
from exchange.protocol.codes import (
    RejectCode,
    WireLiquidity,
    WireOrderType,
    WireSide,
    WireSmp,
    WireTimeInForce,
)

_EO = {name: off for name, off, _, _ in m.ENTER_ORDER.offsets()}


@pytest.mark.parametrize(
    ("const", "field"),
    [
        ("EO_TOKEN", "token"), ("EO_INST", "instrument_id"), ("EO_SIDE", "side"),
        ("EO_TYPE", "order_type"), ("EO_TIF", "time_in_force"), ("EO_PRICE", "price"),
        ("EO_QTY", "quantity"), ("EO_DISPLAY", "display_quantity"), ("EO_STOP", "stop_price"),
        ("EO_MINQ", "min_quantity"), ("EO_GROUP", "smp_group"),
        ("EO_SMP", "smp_instruction"), ("EO_ACCOUNT", "account"), ("EO_EXPIRE", "expire_time"),
        ("EO_POST", "post_only"),
    ],
)  # fmt: skip
def test_enter_order_offsets_match_the_layout(const: str, field: str) -> None:
    assert getattr(K, const) == _EO[field]


def test_message_sizes_and_framed_lengths_match_the_layouts() -> None:
    assert (m.ENTER_ORDER.size, m.CANCEL_ORDER.size) == (K.ENTER_SIZE, K.CANCEL_SIZE)
    assert (m.ENTER_ORDER.type_byte[0], m.CANCEL_ORDER.type_byte[0]) == (K.MSG_ENTER, K.MSG_CANCEL)
    assert K.ACCOUNT_WIDTH == m.ACCOUNT_WIDTH
    framed = {  # 2-byte length + 'S' + the message
        "LEN_ACCEPTED": m.ACCEPTED, "LEN_REJECTED": m.REJECTED, "LEN_EXECUTED": m.EXECUTED,
        "LEN_CANCELED": m.CANCELED, "LEN_STOP": m.STOP_TRIGGERED,
    }  # fmt: skip
    for const, layout in framed.items():
        assert getattr(K, const) == layout.size + 3, const


def test_wire_enums_match() -> None:
    assert (K.W_BUY, K.W_SELL) == (WireSide.BUY, WireSide.SELL)
    assert tuple(WireOrderType) == (K.W_LIMIT, K.W_MARKET, K.W_STOP, K.W_STOP_LIMIT)
    assert tuple(WireTimeInForce) == (K.W_DAY, K.W_GTC, K.W_IOC, K.W_FOK, K.W_GTD)
    assert tuple(WireSmp) == (K.W_SMP_DEFAULT, K.W_SMP_RESTING, K.W_SMP_INCOMING, K.W_SMP_BOTH)
    assert (K.W_POST_YES, K.W_POST_NO) == (m.POST_ONLY_YES, m.POST_ONLY_NO)
    assert (K.W_LIQ_ADDED, K.W_LIQ_REMOVED) == (WireLiquidity.ADDED, WireLiquidity.REMOVED)


@pytest.mark.parametrize(
    ("const", "code"),
    [
        ("R_BAD_SIDE", "BAD_SIDE"), ("R_BAD_ORDER_TYPE", "BAD_ORDER_TYPE"),
        ("R_BAD_TIF", "BAD_TIME_IN_FORCE"), ("R_BAD_SMP", "BAD_SMP_INSTRUCTION"),
        ("R_BAD_ACCOUNT", "BAD_ACCOUNT_FIELD"), ("R_TOKEN", "TOKEN_NOT_INCREASING"),
        ("R_UNKNOWN_TOKEN", "UNKNOWN_TOKEN"), ("R_BAD_QTY", "BAD_QUANTITY"),
        ("R_BAD_DISPLAY", "BAD_DISPLAY_QUANTITY"), ("R_BAD_MINQ", "BAD_MIN_QUANTITY"),
        ("R_BAD_STOP", "BAD_STOP_PRICE"), ("R_BAD_PRICE", "BAD_PRICE"),
        ("R_BAD_EXPIRE", "BAD_EXPIRE_TIME"), ("R_BAD_POST", "BAD_POST_ONLY"),
        ("R_THROTTLED", "THROTTLED"), ("R_NOT_PERMITTED", "ACCOUNT_NOT_PERMITTED"),
        ("R_BLOCKED", "ACCOUNT_BLOCKED"), ("R_NOT_WORKING", "ORDER_NOT_WORKING"),
        ("R_MARKET_CLOSED", "MARKET_CLOSED"), ("R_UNKNOWN_INSTRUMENT", "UNKNOWN_INSTRUMENT"),
        ("R_MAX_QTY", "RISK_MAX_ORDER_QTY"), ("R_MIN_QTY", "RISK_MIN_ORDER_QTY"),
        ("R_MAX_NOTIONAL", "RISK_MAX_NOTIONAL"), ("R_POSITION", "RISK_POSITION_LIMIT"),
        ("R_PRICE_LIMIT", "RISK_PRICE_LIMIT"),
    ],
)  # fmt: skip
def test_reject_codes_match(const: str, code: str) -> None:
    assert getattr(K, const) == RejectCode[code]


def test_engine_enums_match() -> None:
    assert (K.C_NEW, K.C_CANCEL) == (CmdType.NEW, CmdType.CANCEL)
    assert (K.E_ACCEPTED, K.E_REJECTED, K.E_TRADE, K.E_CANCELLED, K.E_STOP, K.E_LEVEL) == (
        EventType.ACCEPTED, EventType.REJECTED, EventType.TRADE, EventType.CANCELLED,
        EventType.STOP_TRIGGERED, EventType.LEVEL,
    )  # fmt: skip
    assert (K.ENG_BUY, K.ENG_SELL) == (Side.BUY, Side.SELL)
    assert K.FLAG_POST_ONLY == FLAG_POST_ONLY


def test_journal_framing_constants_match_the_journal() -> None:
    from exchange import journal as J

    assert K.J_MAGIC == J.RECORD_MAGIC and J.RECORD_HEADER.size == K.J_HEAD
    assert (K.J_COMMANDS, K.J_NOTE) == (J.RecordType.COMMANDS, J.RecordType.NOTE)
    assert K.J_COMMIT_END == J.FLAG_COMMIT_END and K.J_CMD_SIZE == J.CMD_SIZE
    assert K.BIN_NOTE_MAGIC.to_bytes(8, "little") == J.BIN_NOTE_MAGIC
    assert J._BIN_NOTE_HEAD.size == K.BN_WORDS * 8 and K.NF * 8 == J._BIN_ORDER_ROW
