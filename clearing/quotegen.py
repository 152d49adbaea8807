"""SYNTHETIC provider quotes for tests and the demo (never real market data).

Shaped by the market context in the seed article: 28 GPU platforms, median H100 rental
between $1.40 and $4.27 per GPU-hour, H200 between $2.34 and $5.00, and token prices such
as $5 / $30 per million input / output tokens for a leading model. Every provider name
starts with ``synthetic-`` so a generated file can never be mistaken for real data.

The generator is deterministic for a given seed: a daily market level follows a bounded
random walk inside the seed's range, each provider quotes at a persistent premium or
discount to it, a few times per day, with occasional fat-finger outliers and gaps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np

from clearing.methodology import DEFAULT_MODEL_WEIGHTS, TokenIndexMethod
from clearing.quotes import Quote
from contracts.units import INDEX_SCALE

N_GPU_PROVIDERS = 28
#: (low, high) per GPU-hour in cents, from the seed (May 2026 medians across 28 platforms).
GPU_RANGES_CENTS = {"H100": (140, 427), "H200": (234, 500)}
#: Illustrative (input, output) USD-cent prices per million tokens; gpt-5.5 is the seed's.
TOKEN_PRICES_CENTS: dict[str, tuple[int, int]] = {
    "gpt-5.5": (500, 3000),
    "claude-opus": (500, 2500),
    "gemini-pro": (250, 1500),
    "llama-405b": (300, 900),
    "deepseek-v4": (60, 220),
}
TOKEN_PROVIDERS_PER_MODEL = 3
_CENT = 10 ** (INDEX_SCALE - 2)


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def generate_quotes(
    start: dt.date,
    end: dt.date,
    seed: int = 7,
    quotes_per_day: int = 3,
    outlier_rate: float = 0.01,
    gap_rate: float = 0.05,
    thin_days: Iterable[dt.date] = (),
) -> list[Quote]:
    """SYNTHETIC quotes for every calendar day in ``[start, end]``, sorted by time.

    ``thin_days`` get quotes from only two GPU providers and one token model, so the
    index falls back to carrying the previous fixing forward on those days.
    """
    rng = np.random.default_rng(seed)
    thin = set(thin_days)
    out: list[Quote] = []
    gpu_providers = [f"synthetic-gpu-{i:02d}" for i in range(1, N_GPU_PROVIDERS + 1)]
    # Persistent provider premium in [-35%, +35%] of the level (spreads the cross-section
    # over the seed's min..max), and a per-provider volume scale.
    premium = {item: rng.uniform(-0.35, 0.35, N_GPU_PROVIDERS) for item in GPU_RANGES_CENTS}
    vol_scale = rng.integers(500, 20_000, N_GPU_PROVIDERS)
    level = {item: (lo + hi) / 2 for item, (lo, hi) in GPU_RANGES_CENTS.items()}
    token_level = {m: 1.0 for m in TOKEN_PRICES_CENTS}
    for day in _days(start, end):
        midnight = int(dt.datetime.combine(day, dt.time(0), dt.UTC).timestamp())
        # Before a thin day, quote only in the morning so nothing fresh reaches its fixing.
        span = 43_200 if day + dt.timedelta(days=1) in thin else 86_400
        for item, (lo, hi) in GPU_RANGES_CENTS.items():
            mid = (lo + hi) / 2
            level[item] = float(
                np.clip(level[item] * (1 + rng.normal(0, 0.02)), mid * 0.8, mid * 1.2)
            )
            providers = range(2) if day in thin else range(N_GPU_PROVIDERS)
            for p in providers:
                if day not in thin and rng.random() < gap_rate:
                    continue
                for _ in range(quotes_per_day):
                    cents = level[item] * (1 + premium[item][p]) * (1 + rng.normal(0, 0.01))
                    if rng.random() < outlier_rate:
                        cents *= rng.choice([0.2, 5.0])
                    cents = int(np.clip(round(cents), lo // 2, hi * 6))
                    ts = midnight + int(rng.integers(0, span))
                    vol = int(vol_scale[p] * rng.uniform(0.5, 1.5))
                    out.append(Quote(ts, gpu_providers[p], item, cents * _CENT, vol))
        models = list(TOKEN_PRICES_CENTS)[:1] if day in thin else list(TOKEN_PRICES_CENTS)
        for model in models:
            token_level[model] = float(
                np.clip(token_level[model] * (1 + rng.normal(0, 0.005)), 0.7, 1.3)
            )
            for k in range(TOKEN_PROVIDERS_PER_MODEL):
                provider = f"synthetic-api-{model}-{k + 1}"
                for side, base in zip(("input", "output"), TOKEN_PRICES_CENTS[model], strict=True):
                    cents = max(1, round(base * token_level[model] * (1 + rng.normal(0, 0.01))))
                    ts = midnight + int(rng.integers(0, span))
                    item = TokenIndexMethod.item(model, side)  # type: ignore[arg-type]
                    out.append(Quote(ts, provider, item, cents * _CENT, None))
    out.sort(key=lambda q: (q.ts, q.provider, q.item))
    return out


assert set(TOKEN_PRICES_CENTS) == set(DEFAULT_MODEL_WEIGHTS)
