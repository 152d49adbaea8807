"""Per-instrument engine configuration: plain integers the kernel can read.

:class:`InstrumentConfig` is what the matching engine knows about one listed contract
month. :func:`instrument_config_from_spec` derives it from a :class:`contracts.spec.ProductSpec`
so the engine never parses decimals itself.
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.errors import FlopexError
from exchange.engine.abi import InstrumentStatus, MatchingAlgorithm, SmpInstruction

#: Largest quantity an order may carry: order quantities live in int32 fields.
MAX_ORDER_QTY = 2**31 - 1
#: Largest price ladder one instrument may have (levels between min and max price).
MAX_LEVELS_PER_INSTRUMENT = 1 << 22


class InstrumentConfig(msgspec.Struct, frozen=True):
    """Everything the engine needs about one instrument, in ticks and contracts.

    ``min_price_ticks``..``max_price_ticks`` is the price band (the engine's dense ladder
    spans it); ``price_limit_ticks`` is the daily limit distance around
    ``reference_price_ticks`` (0 = no daily limit).
    """

    instrument_id: int
    min_price_ticks: int
    max_price_ticks: int
    reference_price_ticks: int = 0
    price_limit_ticks: int = 0
    min_qty: int = 1
    max_qty: int = 10_000
    matching_algorithm: int = MatchingAlgorithm.FIFO
    default_smp: int = SmpInstruction.CANCEL_RESTING
    market_protection_ticks: int = 10
    initial_status: int = InstrumentStatus.OPEN

    def validate(self) -> None:
        """Raise :class:`FlopexError` naming the first bad field."""
        if not 0 < self.instrument_id < 2**32:
            raise FlopexError(f"instrument_id: {self.instrument_id} is not a uint32 above 0")
        if self.min_price_ticks > self.max_price_ticks:
            raise FlopexError(
                f"instrument {self.instrument_id}: min_price_ticks above max_price_ticks"
            )
        if self.max_price_ticks - self.min_price_ticks + 1 > MAX_LEVELS_PER_INSTRUMENT:
            raise FlopexError(f"instrument {self.instrument_id}: price band too wide")
        ref = self.reference_price_ticks or self.min_price_ticks
        if not self.min_price_ticks <= ref <= self.max_price_ticks:
            raise FlopexError(
                f"instrument {self.instrument_id}: reference_price_ticks outside the band"
            )
        if self.price_limit_ticks < 0:
            raise FlopexError(f"instrument {self.instrument_id}: price_limit_ticks < 0")
        if not 1 <= self.min_qty <= self.max_qty <= MAX_ORDER_QTY:
            raise FlopexError(f"instrument {self.instrument_id}: need 1 <= min_qty <= max_qty")
        if self.matching_algorithm not in (MatchingAlgorithm.FIFO, MatchingAlgorithm.PRO_RATA):
            raise FlopexError(f"instrument {self.instrument_id}: unknown matching_algorithm")
        if self.default_smp not in (1, 2, 3):
            raise FlopexError(f"instrument {self.instrument_id}: default_smp must be 1, 2 or 3")
        if self.market_protection_ticks < 0:
            raise FlopexError(f"instrument {self.instrument_id}: market_protection_ticks < 0")
        if self.initial_status not in tuple(InstrumentStatus):
            raise FlopexError(f"instrument {self.instrument_id}: unknown initial_status")

    @property
    def n_levels(self) -> int:
        return self.max_price_ticks - self.min_price_ticks + 1


_SMP_NAMES = {
    "cancel_resting": SmpInstruction.CANCEL_RESTING,
    "cancel_incoming": SmpInstruction.CANCEL_INCOMING,
    "cancel_both": SmpInstruction.CANCEL_BOTH,
}
_ALGO_NAMES = {"fifo": MatchingAlgorithm.FIFO, "pro_rata": MatchingAlgorithm.PRO_RATA}


def instrument_config_from_spec(
    spec: Any,
    instrument_id: int,
    reference_price_ticks: int | None = None,
    limit_tier: int = 0,
    initial_status: int = InstrumentStatus.OPEN,
) -> InstrumentConfig:
    """Build the engine configuration of one contract month from its ``ProductSpec``.

    Prices are converted with :mod:`contracts.units` (exact; the spec guarantees the band
    and protection lie on the tick grid). Percent daily limits are converted around the
    reference price, rounded down to a whole tick (never wider than stated).
    """
    from contracts.units import decimal_to_scaled, div_round, price_to_ticks

    tick = spec.tick_size
    lo = price_to_ticks(spec.price_band.min, tick)
    hi = price_to_ticks(spec.price_band.max, tick)
    ref = reference_price_ticks if reference_price_ticks is not None else (lo + hi) // 2
    limit_ticks = 0
    limits = getattr(spec, "price_limits", None)
    if limits is not None:
        tier = limits.tiers[min(limit_tier, len(limits.tiers) - 1)]
        if limits.kind == "percent":
            pct_e4 = decimal_to_scaled(tier, 4, mode="down", what="price limit")
            limit_ticks = div_round(ref * pct_e4, 100 * 10_000, "floor")
        else:
            limit_ticks = price_to_ticks(tier, tick)
    protection = price_to_ticks(getattr(spec, "market_protection", 0) or 0, tick)
    cfg = InstrumentConfig(
        instrument_id=instrument_id,
        min_price_ticks=lo,
        max_price_ticks=hi,
        reference_price_ticks=ref,
        price_limit_ticks=limit_ticks,
        min_qty=int(spec.min_order_qty),
        max_qty=int(spec.max_order_qty),
        matching_algorithm=_ALGO_NAMES[spec.matching_algorithm],
        default_smp=_SMP_NAMES[spec.self_match_prevention],
        market_protection_ticks=protection,
        initial_status=initial_status,
    )
    cfg.validate()
    return cfg
