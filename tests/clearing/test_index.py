"""Index fixings: hand-computed examples of every rule in docs/index-methodology.md."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest

from clearing.index import fix_index, fix_series
from clearing.methodology import FixingSchedule, GpuIndexMethod, TokenIndexMethod
from clearing.quotegen import generate_quotes
from clearing.quotes import Quote
from contracts.errors import FlopexError
from contracts.units import index_to_scaled

DAY = dt.date(2026, 5, 14)
UTC16 = FixingSchedule(dt.time(16, 0), "UTC", 24)
FIX_TS = int(dt.datetime(2026, 5, 14, 16, tzinfo=dt.UTC).timestamp())


def gpu(weighting: str = "equal", min_providers: int = 5) -> GpuIndexMethod:
    return GpuIndexMethod(
        "FLX-H100", "H100", schedule=UTC16, weighting=weighting, min_providers=min_providers
    )


def q(provider: str, price: str, *, age_h: float = 1, item: str = "H100", vol=None) -> Quote:
    return Quote(FIX_TS - int(age_h * 3600), provider, item, index_to_scaled(price), vol)


SIX = [("p1", "2.00"), ("p2", "2.10"), ("p3", "2.20"), ("p4", "2.30"), ("p5", "2.40")]


def test_gpu_fixing_trims_the_mad_outlier_and_averages_the_rest() -> None:
    # Arrange: median 2.25, MAD 0.15, limit 3 x 1.4826 x 0.15 = 0.667; 9.00 is out.
    quotes = [q(p, v) for p, v in SIX] + [q("p6", "9.00")]
    # Act
    fixing = fix_index(gpu(), quotes, DAY, None)
    # Assert: (2.00 + 2.10 + 2.20 + 2.30 + 2.40) / 5 = 2.20
    assert fixing.value == 2_200_000
    assert fixing.status == "computed"
    assert [i.provider for i in fixing.inputs if i.status == "outlier"] == ["p6"]


def test_volume_weights_are_capped_at_a_quarter_each() -> None:
    # Arrange: p5 reports 60 % of volume; capped to 25 %, the rest share 75 % equally.
    vols = [100, 100, 100, 100, 600]
    quotes = [q(p, v, vol=n) for (p, v), n in zip(SIX, vols, strict=True)]
    # Act
    fixing = fix_index(gpu("volume"), quotes, DAY, None)
    # Assert: 0.1875 x (2.0 + 2.1 + 2.2 + 2.3) + 0.25 x 2.4 = 2.2125
    assert fixing.value == 2_212_500
    assert {i.provider: i.weight_ppm for i in fixing.inputs}["p5"] == 250_000


def test_latest_quote_per_provider_wins_and_later_quotes_are_ignored() -> None:
    # Arrange: p1 quoted twice (the later 2.05 counts); a quote after the fixing is ignored.
    quotes = [q(p, v) for p, v in SIX]
    quotes += [q("p1", "2.05", age_h=0.5), q("p2", "7.00", age_h=-1)]
    # Act
    fixing = fix_index(gpu(), quotes, DAY, None)
    # Assert: (2.05 + 2.10 + 2.20 + 2.30 + 2.40) / 5 = 2.21
    assert fixing.value == 2_210_000


def test_stale_quotes_are_dropped_and_listed() -> None:
    # Arrange: p6's only quote is 30 hours old (window is 24 hours).
    quotes = [q(p, v) for p, v in SIX] + [q("p6", "3.00", age_h=30)]
    # Act
    fixing = fix_index(gpu(), quotes, DAY, None)
    # Assert
    assert fixing.value == 2_200_000
    assert [(i.provider, i.status) for i in fixing.inputs if i.status != "used"] == [
        ("p6", "stale")
    ]


def test_rounding_is_half_even_at_six_places() -> None:
    # Arrange: mean of 1.000001 and 1.000002 = 1.0000015 -> 1.000002 (the even neighbour)
    quotes = [q("a", "1.000001"), q("b", "1.000002")]
    method = gpu(min_providers=2)
    # Act
    fixing = fix_index(method, quotes, DAY, None)
    # Assert
    assert fixing.value == 1_000_002


def test_thin_data_carries_the_previous_fixing_forward_flagged() -> None:
    # Arrange: day 1 has five providers, day 2 only two.
    day1 = [q(p, v, age_h=25) for p, v in SIX]
    day2 = [q("p1", "5.00"), q("p2", "5.00")]
    # Act
    first, second = fix_series(gpu(), day1 + day2, [DAY - dt.timedelta(days=1), DAY])
    # Assert
    assert first.value == 2_200_000 and first.status == "computed"
    assert second.value == first.value
    assert second.status == "carried_forward"
    assert second.carried_from == DAY - dt.timedelta(days=1)
    assert "2 fresh provider quotes" in second.reason


def test_thin_data_without_history_is_an_error_not_a_zero() -> None:
    with pytest.raises(FlopexError, match=r"FLX-H100 on 2026-05-14: 2 fresh .* no earlier"):
        fix_index(gpu(), [q("p1", "2.00"), q("p2", "2.10")], DAY, None)


def tok(weights: dict[str, int]) -> TokenIndexMethod:
    return TokenIndexMethod("FLX-TOKEN", weights, schedule=UTC16)


def tq(provider: str, model: str, side: str, price: str) -> Quote:
    return q(provider, price, item=f"tokens/{model}/{side}")


def test_token_index_blends_3_to_1_and_weights_models() -> None:
    # Arrange: model a input median(4.90, 5.00, 5.30) = 5.00, output 30 -> blended 11.25;
    # model b input 1, output 3 -> blended 1.50; weights 3:1.
    quotes = [
        tq("x", "a", "input", "4.90"),
        tq("y", "a", "input", "5.00"),
        tq("z", "a", "input", "5.30"),
        tq("x", "a", "output", "30.00"),
        tq("x", "b", "input", "1.00"),
        tq("x", "b", "output", "3.00"),
    ]
    # Act
    fixing = fix_index(tok({"a": 3, "b": 1}), quotes, DAY, None)
    # Assert: (3 x 11.25 + 1 x 1.50) / 4 = 8.8125
    assert fixing.value == 8_812_500


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        (("a",), 11_250_000),  # b missing: 3/4 of the weight is enough, renormalised
        (("b",), None),  # a missing: 1/4 < 1/2 -> thin
    ],
)
def test_token_index_needs_half_the_model_weight(present, expected) -> None:
    quotes = []
    if "a" in present:
        quotes += [tq("x", "a", "input", "5.00"), tq("x", "a", "output", "30.00")]
    if "b" in present:
        quotes += [tq("x", "b", "input", "1.00"), tq("x", "b", "output", "3.00")]
    if expected is None:
        with pytest.raises(FlopexError, match="cover 1/4 of the weight"):
            fix_index(tok({"a": 3, "b": 1}), quotes, DAY, None)
    else:
        assert fix_index(tok({"a": 3, "b": 1}), quotes, DAY, None).value == expected


def test_configurable_blend_weights() -> None:
    method = TokenIndexMethod("T", {"a": 1}, schedule=UTC16, input_weight=1, output_weight=1)
    quotes = [tq("x", "a", "input", "5.00"), tq("x", "a", "output", "30.00")]
    assert fix_index(method, quotes, DAY, None).value == 17_500_000


def test_synthetic_quotes_give_fixings_within_the_seed_ranges() -> None:
    # Arrange: the generator is shaped by the seed (H100 $1.40-4.27, H200 $2.34-5.00).
    quotes = generate_quotes(dt.date(2026, 5, 1), dt.date(2026, 5, 31), seed=3)
    days = [dt.date(2026, 5, d) for d in range(4, 30)]
    for item, lo, hi in (("H100", "1.40", "4.27"), ("H200", "2.34", "5.00")):
        method = GpuIndexMethod(item, item)
        # Act
        fixings = fix_series(method, quotes, days)
        # Assert
        assert all(f.status == "computed" for f in fixings)
        assert all(index_to_scaled(lo) <= f.value <= index_to_scaled(hi) for f in fixings)
    assert all(q.provider.startswith("synthetic-") for q in quotes)
    assert len({q.provider for q in quotes if q.item == "H100"}) == 28


def test_synthetic_thin_day_is_carried_forward() -> None:
    thin = dt.date(2026, 5, 12)
    quotes = generate_quotes(dt.date(2026, 5, 1), dt.date(2026, 5, 31), thin_days=[thin])
    days = [dt.date(2026, 5, d) for d in range(4, 15)]
    fixings = {f.day: f for f in fix_series(GpuIndexMethod("H100", "H100"), quotes, days)}
    assert fixings[thin].status == "carried_forward"
    assert fixings[thin].value == fixings[dt.date(2026, 5, 11)].value


def test_mad_floor_keeps_identical_quotes_from_trimming_everything() -> None:
    # MAD is 0 here; the 1 % floor keeps 2.02 (within 3 x 1 % x 2.00 = 0.06), drops 2.10.
    quotes = [q(f"p{i}", "2.00") for i in range(5)] + [q("p5", "2.02"), q("p6", "2.10")]
    fixing = fix_index(gpu(), quotes, DAY, None)
    assert [i.provider for i in fixing.inputs if i.status == "outlier"] == ["p6"]
    assert fixing.value == round(Fraction(5 * 2_000_000 + 2_020_000, 6))
