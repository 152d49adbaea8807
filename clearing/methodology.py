"""Index methodologies: the versioned, configurable rules behind each daily fixing.

Two families (full text in ``docs/index-methodology.md``):

* :class:`GpuIndexMethod` — a GPU-hour rental index (H100, H200): one price per provider
  (its latest fresh quote), outliers trimmed by a median-absolute-deviation rule, then an
  equal- or volume-weighted mean.
* :class:`TokenIndexMethod` — a vendor-neutral token-price index: per model a blended price
  ``(3 x input + 1 x output) / 4`` (weights configurable), each side the median across the
  providers serving that model, then a weighted mean across the leading models.

Methodologies are frozen dataclasses carrying a ``version`` string that is stamped on every
fixing, so a fixing can always be traced to the exact rules that produced it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo

from contracts.errors import FlopexError

METHODOLOGY_VERSION = "FLX-IDX-1.0"

#: 1.4826 makes the MAD a consistent estimator of a normal distribution's sigma.
MAD_CONSISTENCY = Fraction(14826, 10000)

Weighting = Literal["equal", "volume"]


@dataclass(frozen=True)
class FixingSchedule:
    """When a fixing is taken and which quotes are fresh enough to count."""

    fixing_time: dt.time = dt.time(16, 0)
    timezone: str = "America/Chicago"
    max_age_hours: int = 24

    def fixing_instant(self, day: dt.date) -> int:
        """The fixing instant of ``day`` in whole UTC seconds."""
        local = dt.datetime.combine(day, self.fixing_time, ZoneInfo(self.timezone))
        return int(local.timestamp())

    def window(self, day: dt.date) -> tuple[int, int]:
        """``(oldest, newest)`` quote instants (inclusive) that count for ``day``'s fixing."""
        end = self.fixing_instant(day)
        return end - self.max_age_hours * 3600, end


@dataclass(frozen=True)
class GpuIndexMethod:
    """Rules of a GPU-hour rental index (see module docstring)."""

    index_id: str
    item: str
    description: str = ""
    schedule: FixingSchedule = field(default_factory=FixingSchedule)
    min_providers: int = 5
    mad_k: Fraction = Fraction(3)
    mad_floor: Fraction = Fraction(1, 100)
    weighting: Weighting = "equal"
    max_weight: Fraction = Fraction(1, 4)
    version: str = METHODOLOGY_VERSION

    def __post_init__(self) -> None:
        if self.min_providers < 1:
            raise FlopexError(f"{self.index_id}: min_providers must be at least 1")
        if self.weighting not in ("equal", "volume"):
            raise FlopexError(f"{self.index_id}: weighting must be 'equal' or 'volume'")


@dataclass(frozen=True)
class TokenIndexMethod:
    """Rules of the token-price index (see module docstring)."""

    index_id: str
    model_weights: dict[str, int]
    description: str = ""
    schedule: FixingSchedule = field(default_factory=FixingSchedule)
    input_weight: int = 3
    output_weight: int = 1
    min_coverage: Fraction = Fraction(1, 2)
    version: str = METHODOLOGY_VERSION

    def __post_init__(self) -> None:
        if not self.model_weights or any(w <= 0 for w in self.model_weights.values()):
            raise FlopexError(f"{self.index_id}: model weights must be positive integers")
        if self.input_weight < 0 or self.output_weight < 0:
            raise FlopexError(f"{self.index_id}: blend weights must be non-negative")
        if self.input_weight + self.output_weight == 0:
            raise FlopexError(f"{self.index_id}: blend weights must not both be zero")

    @staticmethod
    def item(model: str, side: Literal["input", "output"]) -> str:
        """Quote item name of one side of one model: ``tokens/<model>/<side>``."""
        return f"tokens/{model}/{side}"


IndexMethod = GpuIndexMethod | TokenIndexMethod

#: Illustrative model weights of the token index (leading models by API spend share).
DEFAULT_MODEL_WEIGHTS: dict[str, int] = {
    "gpt-5.5": 30,
    "claude-opus": 25,
    "gemini-pro": 20,
    "llama-405b": 15,
    "deepseek-v4": 10,
}


def default_methods(weighting: Weighting = "equal") -> dict[str, IndexMethod]:
    """The shipped methodologies keyed by index id (the specs' ``underlying_index``)."""
    return {
        "FLX-H100": GpuIndexMethod(
            "FLX-H100", "H100", "NVIDIA H100 rental, USD per GPU-hour", weighting=weighting
        ),
        "FLX-H200": GpuIndexMethod(
            "FLX-H200", "H200", "NVIDIA H200 rental, USD per GPU-hour", weighting=weighting
        ),
        "FLX-TOKEN": TokenIndexMethod(
            "FLX-TOKEN",
            dict(DEFAULT_MODEL_WEIGHTS),
            "Blended LLM API price, USD per million tokens",
        ),
    }


def method_for(underlying_index: str, methods: dict[str, IndexMethod]) -> IndexMethod:
    """The methodology of a product's ``underlying_index`` (exact, case-insensitive)."""
    key = underlying_index.strip().upper()
    for k, m in methods.items():
        if k.upper() == key:
            return m
    raise FlopexError(f"underlying_index {underlying_index!r}: no index methodology for it")
