"""Daily spot-index fixings from provider quotes (methodology in ``docs/index-methodology.md``).

:func:`fix_index` computes one index's fixing for one day; :func:`fix_series` walks days in
order so thin days can carry the previous fixing forward. A fixing is never a silent zero:
it is either ``computed`` from enough fresh quotes, or ``carried_forward`` from the last
fixing with the reason recorded, or the call raises :class:`FlopexError`.

All arithmetic is exact (ints and :class:`fractions.Fraction`); the fixing value is an int
at :data:`contracts.units.INDEX_SCALE` places, rounded half-even once at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from clearing.methodology import (
    MAD_CONSISTENCY,
    GpuIndexMethod,
    IndexMethod,
    TokenIndexMethod,
)
from clearing.quotes import Quote
from contracts.errors import FlopexError
from contracts.units import INDEX_SCALE, div_round, scaled_to_index

InputStatus = Literal["used", "outlier", "stale", "no_volume", "model_missing"]
FixingStatus = Literal["computed", "carried_forward"]


@dataclass(frozen=True, slots=True)
class FixingInput:
    """One quote considered by a fixing and what the methodology did with it."""

    provider: str
    item: str
    ts: int
    price: int
    volume: int | None
    status: InputStatus
    weight_ppm: int = 0  # share of the fixing in millionths (0 unless used)

    def to_dict(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "item": self.item,
            "timestamp": dt.datetime.fromtimestamp(self.ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "price": scaled_to_index(self.price),
            "volume": self.volume,
            "status": self.status,
            "weight_pct": _ppm_pct(self.weight_ppm),
        }


def _ppm_pct(ppm: int) -> str:
    """Millionths -> percent string with 4 places (``250000 -> "25.0000"``)."""
    return f"{ppm // 10_000}.{ppm % 10_000:04d}"


@dataclass(frozen=True)
class Fixing:
    """A daily index fixing: int ``value`` at INDEX_SCALE, how it was obtained, its inputs."""

    index_id: str
    day: dt.date
    value: int
    status: FixingStatus
    version: str
    reason: str = ""
    carried_from: dt.date | None = None
    inputs: tuple[FixingInput, ...] = field(default=())

    @property
    def value_str(self) -> str:
        return scaled_to_index(self.value)

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index_id,
            "date": self.day.isoformat(),
            "value": self.value_str,
            "status": self.status,
            "methodology": self.version,
            "reason": self.reason,
            "carried_from": self.carried_from.isoformat() if self.carried_from else None,
            "inputs": [i.to_dict() for i in self.inputs],
        }


class ThinData(Exception):
    """Internal: not enough data for a computed fixing (message says why)."""

    def __init__(self, reason: str, inputs: Sequence[FixingInput]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.inputs = tuple(inputs)


def _median(values: Sequence[Fraction | int]) -> Fraction:
    """Exact median (mean of the two middle values for an even count). O(n log n)."""
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return Fraction(s[mid]) if n % 2 else Fraction(s[mid - 1] + s[mid], 2)


def _round_index(x: Fraction) -> int:
    return div_round(x.numerator, x.denominator, "half_even")


def _latest_per_provider(
    quotes: Iterable[Quote], item: str, lo: int, hi: int
) -> tuple[list[Quote], list[Quote]]:
    """Split each provider's latest quote at or before ``hi`` into (fresh, stale).

    A quote is fresh if ``lo <= ts <= hi``; later quotes in file order win ties.
    """
    latest: dict[str, Quote] = {}
    for q in quotes:
        if q.item != item or q.ts > hi:
            continue
        cur = latest.get(q.provider)
        if cur is None or q.ts >= cur.ts:
            latest[q.provider] = q
    fresh = [q for q in latest.values() if q.ts >= lo]
    stale = [q for q in latest.values() if q.ts < lo]
    fresh.sort(key=lambda q: q.provider)
    stale.sort(key=lambda q: q.provider)
    return fresh, stale


def _capped_weights(raw: list[Fraction], cap: Fraction) -> list[Fraction]:
    """Normalise ``raw`` to sum 1 with no share above ``cap``; excess is redistributed
    proportionally among the uncapped (iterated until stable). Infeasible caps
    (``n x cap < 1``) fall back to equal weights."""
    n = len(raw)
    if n * cap < 1:
        return [Fraction(1, n)] * n
    total = sum(raw)
    w = [r / total for r in raw]
    capped = [False] * n
    while True:
        over = [i for i in range(n) if not capped[i] and w[i] > cap]
        if not over:
            return w
        for i in over:
            capped[i] = True
        free = 1 - cap * sum(capped)
        base = sum(raw[i] for i in range(n) if not capped[i])
        w = [
            cap if capped[i] else (raw[i] * free / base if base else Fraction(0)) for i in range(n)
        ]


def compute_gpu(method: GpuIndexMethod, quotes: Sequence[Quote], day: dt.date) -> Fixing:
    """A GPU-hour fixing from fresh quotes; raises :class:`ThinData` when data is too thin.

    Rule: each provider's latest quote in the freshness window; ``median`` M and median
    absolute deviation MAD of those prices; scale = max(1.4826 x MAD, mad_floor x M);
    quotes with ``|p - M| > mad_k x scale`` are outliers; the rest are averaged with equal
    or volume weights (volume weights capped at ``max_weight`` each). O(q + p log p).
    """
    lo, hi = method.schedule.window(day)
    fresh, stale = _latest_per_provider(quotes, method.item, lo, hi)
    inputs = [FixingInput(q.provider, q.item, q.ts, q.price, q.volume, "stale") for q in stale]
    if len(fresh) < method.min_providers:
        inputs += [FixingInput(q.provider, q.item, q.ts, q.price, q.volume, "used") for q in fresh]
        raise ThinData(
            f"{len(fresh)} fresh provider quotes, methodology needs {method.min_providers}",
            inputs,
        )
    m = _median([q.price for q in fresh])
    mad = _median([abs(q.price - m) for q in fresh])
    scale = max(MAD_CONSISTENCY * mad, method.mad_floor * m)
    limit = method.mad_k * scale
    kept = [q for q in fresh if abs(q.price - m) <= limit]
    outliers = [q for q in fresh if abs(q.price - m) > limit]
    inputs += [
        FixingInput(q.provider, q.item, q.ts, q.price, q.volume, "outlier") for q in outliers
    ]
    if len(kept) < method.min_providers:
        raise ThinData(f"only {len(kept)} quotes left after trimming outliers", inputs)
    users = kept
    if method.weighting == "volume":
        users = [q for q in kept if q.volume]
        inputs += [
            FixingInput(q.provider, q.item, q.ts, q.price, q.volume, "no_volume")
            for q in kept
            if not q.volume
        ]
        if not users:
            raise ThinData("volume weighting but no kept quote reports a volume", inputs)
        weights = _capped_weights([Fraction(q.volume or 0) for q in users], method.max_weight)
    else:
        weights = [Fraction(1, len(users))] * len(users)
    value = _round_index(sum(w * q.price for w, q in zip(weights, users, strict=True)))
    inputs += [
        FixingInput(q.provider, q.item, q.ts, q.price, q.volume, "used", _round_index(w * 10**6))
        for w, q in zip(weights, users, strict=True)
    ]
    inputs.sort(key=lambda i: (i.status != "used", i.provider))
    return Fixing(method.index_id, day, value, "computed", method.version, inputs=tuple(inputs))


def compute_token(method: TokenIndexMethod, quotes: Sequence[Quote], day: dt.date) -> Fixing:
    """A token-index fixing; raises :class:`ThinData` when model coverage is too low.

    Per model and side the median of the providers' latest fresh quotes; blended price
    ``(wi x input + wo x output) / (wi + wo)``; index = model-weighted mean over models that
    have both sides, weights renormalised, provided they cover at least ``min_coverage`` of
    the total model weight. O(q x models).
    """
    lo, hi = method.schedule.window(day)
    inputs: list[FixingInput] = []
    blended: dict[str, Fraction] = {}
    fresh_by_model: dict[str, list[Quote]] = {}
    for model in method.model_weights:
        sides: dict[str, Fraction] = {}
        fresh_all: list[Quote] = []
        for side in ("input", "output"):
            fresh, stale = _latest_per_provider(quotes, method.item(model, side), lo, hi)
            inputs += [
                FixingInput(q.provider, q.item, q.ts, q.price, q.volume, "stale") for q in stale
            ]
            fresh_all += fresh
            if fresh:
                sides[side] = _median([q.price for q in fresh])
        fresh_by_model[model] = fresh_all
        if len(sides) == 2:
            wi, wo = method.input_weight, method.output_weight
            blended[model] = (wi * sides["input"] + wo * sides["output"]) / (wi + wo)
        else:
            inputs += [
                FixingInput(q.provider, q.item, q.ts, q.price, q.volume, "model_missing")
                for q in fresh_all
            ]
    total_w = sum(method.model_weights.values())
    have_w = sum(method.model_weights[m] for m in blended)
    if Fraction(have_w, total_w) < method.min_coverage or not blended:
        missing = [m for m in method.model_weights if m not in blended]
        raise ThinData(
            f"models with both input and output prices cover {have_w}/{total_w} of the weight "
            f"(missing: {', '.join(missing)})",
            inputs,
        )
    value = _round_index(sum(method.model_weights[m] * b for m, b in blended.items()) / have_w)
    for model in blended:
        share = Fraction(method.model_weights[model], have_w)
        for q in fresh_by_model[model]:
            inputs.append(
                FixingInput(
                    q.provider, q.item, q.ts, q.price, q.volume, "used", _round_index(share * 10**6)
                )
            )
    inputs.sort(key=lambda i: (i.status != "used", i.item, i.provider))
    return Fixing(method.index_id, day, value, "computed", method.version, inputs=tuple(inputs))


def fix_index(
    method: IndexMethod, quotes: Sequence[Quote], day: dt.date, previous: Fixing | None
) -> Fixing:
    """Compute ``day``'s fixing, or carry ``previous`` forward (flagged) when data is thin.

    Raises FlopexError when the data is thin and there is no previous fixing: the index is
    never a silent zero.
    """
    try:
        if isinstance(method, GpuIndexMethod):
            return compute_gpu(method, quotes, day)
        return compute_token(method, quotes, day)
    except ThinData as thin:
        if previous is None:
            raise FlopexError(
                f"index {method.index_id} on {day}: {thin.reason}; no earlier fixing to carry "
                "forward"
            ) from None
        return Fixing(
            method.index_id,
            day,
            previous.value,
            "carried_forward",
            method.version,
            reason=thin.reason,
            carried_from=previous.carried_from or previous.day,
            inputs=thin.inputs,
        )


def fix_series(
    method: IndexMethod,
    quotes: Sequence[Quote],
    days: Iterable[dt.date],
    previous: Fixing | None = None,
) -> list[Fixing]:
    """Fixings for ``days`` in ascending order, each able to carry the one before forward."""
    out: list[Fixing] = []
    for day in sorted(days):
        previous = fix_index(method, quotes, day, previous)
        out.append(previous)
    return out


__all__ = [
    "INDEX_SCALE",
    "Fixing",
    "FixingInput",
    "ThinData",
    "compute_gpu",
    "compute_token",
    "fix_index",
    "fix_series",
]
