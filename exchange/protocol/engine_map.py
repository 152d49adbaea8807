"""The one place wire enums meet the matching engine's enums (``exchange.engine.abi``).

Lookup tables are 256-entry lists indexed by the wire byte / engine value, so mapping is a
single list index on the hot path. Unknown values map to 0 (the engine rejects them).
"""

from __future__ import annotations

from exchange.engine.abi import (
    CancelReason,
    InstrumentStatus,
    OrderType,
    RejectReason,
    Side,
    SmpInstruction,
    TimeInForce,
)
from exchange.protocol.codes import (
    RejectCode,
    WireCancelReason,
    WireOrderType,
    WireSide,
    WireSmp,
    WireTimeInForce,
    WireTradingState,
)


def _table(pairs: dict[int, int], default: int = 0) -> list[int]:
    t = [default] * 256
    for k, v in pairs.items():
        t[int(k)] = int(v)
    return t


#: wire byte -> engine value
SIDE_TO_ENGINE = _table({WireSide.BUY: Side.BUY, WireSide.SELL: Side.SELL})
ORDER_TYPE_TO_ENGINE = _table(
    {
        WireOrderType.LIMIT: OrderType.LIMIT,
        WireOrderType.MARKET: OrderType.MARKET,
        WireOrderType.STOP: OrderType.STOP_MARKET,
        WireOrderType.STOP_LIMIT: OrderType.STOP_LIMIT,
    }
)
TIF_TO_ENGINE = _table(
    {
        WireTimeInForce.DAY: TimeInForce.DAY,
        WireTimeInForce.GTC: TimeInForce.GTC,
        WireTimeInForce.IOC: TimeInForce.IOC,
        WireTimeInForce.FOK: TimeInForce.FOK,
        WireTimeInForce.GTD: TimeInForce.GTD,
    }
)
SMP_TO_ENGINE = _table(
    {
        WireSmp.DEFAULT: SmpInstruction.DEFAULT,
        WireSmp.CANCEL_RESTING: SmpInstruction.CANCEL_RESTING,
        WireSmp.CANCEL_INCOMING: SmpInstruction.CANCEL_INCOMING,
        WireSmp.CANCEL_BOTH: SmpInstruction.CANCEL_BOTH,
    }
)

#: engine value -> wire byte
SIDE_TO_WIRE = _table({Side.BUY: WireSide.BUY, Side.SELL: WireSide.SELL}, ord("?"))
CANCEL_REASON_TO_WIRE = _table(
    {
        CancelReason.USER: WireCancelReason.USER,
        CancelReason.IOC_REMAINDER: WireCancelReason.IOC_REMAINDER,
        CancelReason.FOK_NOT_FILLED: WireCancelReason.FOK_UNFILLED,
        CancelReason.MIN_QTY_NOT_MET: WireCancelReason.MIN_QTY_NOT_MET,
        CancelReason.SMP_RESTING: WireCancelReason.SELF_MATCH,
        CancelReason.SMP_INCOMING: WireCancelReason.SELF_MATCH,
        CancelReason.MASS_CANCEL: WireCancelReason.MASS_CANCEL,
        CancelReason.SESSION_END: WireCancelReason.SESSION_END,
        CancelReason.GTD_EXPIRED: WireCancelReason.SESSION_END,
        CancelReason.NO_LIQUIDITY: WireCancelReason.NO_LIQUIDITY,
    },
    WireCancelReason.OTHER,
)
STATUS_TO_WIRE = _table(
    {
        InstrumentStatus.CLOSED: WireTradingState.CLOSED,
        InstrumentStatus.PRE_OPEN: WireTradingState.PRE_OPEN,
        InstrumentStatus.OPEN: WireTradingState.TRADING,
        InstrumentStatus.HALTED: WireTradingState.HALTED,
    },
    WireTradingState.HALTED,
)
_ENGINE_REJECTS = {r.value for r in RejectReason if r is not RejectReason.NONE}


def reject_to_wire(reason: int) -> int:
    """Engine RejectReason -> wire reject code (same number; unknown -> ENGINE_OTHER)."""
    return reason if reason in _ENGINE_REJECTS else RejectCode.ENGINE_OTHER.value
