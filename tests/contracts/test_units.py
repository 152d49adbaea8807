"""Fixed-point conversions: exact round trips and stated rounding rules."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.errors import FlopexError
from contracts.units import (
    decimal_to_scaled,
    div_round,
    format_thousands,
    index_to_scaled,
    minor_to_money,
    money_to_minor,
    price_to_ticks,
    scaled_to_decimal_str,
    scaled_to_index,
    scaled_to_ticks,
    ticks_to_price,
)

TICKS = ["0.001", "0.005", "0.01", "0.25", "1", "5"]


@given(ticks=st.integers(-(2**62), 2**62), tick=st.sampled_from(TICKS))
def test_ticks_round_trip_through_price_string(ticks: int, tick: str) -> None:
    assert price_to_ticks(ticks_to_price(ticks, tick), tick) == ticks


@given(minor=st.integers(-(2**63), 2**63 - 1), digits=st.integers(0, 4))
def test_minor_units_round_trip_through_money_string(minor: int, digits: int) -> None:
    assert money_to_minor(minor_to_money(minor, digits), digits) == minor


@given(n=st.integers(-(10**15), 10**15), scale=st.integers(0, 9))
def test_scaled_string_matches_decimal_arithmetic(n: int, scale: int) -> None:
    assert Decimal(scaled_to_decimal_str(n, scale)) == Decimal(n).scaleb(-scale)


@given(n=st.integers(-(10**12), 10**12), d=st.integers(1, 10**6))
def test_div_round_half_even_matches_decimal(n: int, d: int) -> None:
    expected = int((Decimal(n) / Decimal(d)).quantize(Decimal(1), rounding="ROUND_HALF_EVEN"))
    assert div_round(n, d, "half_even") == expected


@given(n=st.integers(-(10**12), 10**12), d=st.integers(1, 10**6))
def test_div_round_half_up_rounds_ties_away_from_zero(n: int, d: int) -> None:
    expected = int((Decimal(n) / Decimal(d)).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    assert div_round(n, d, "half_up") == expected


@pytest.mark.parametrize(
    ("num", "den", "mode", "expected"),
    [
        (5, 2, "half_even", 2),
        (7, 2, "half_even", 4),
        (-5, 2, "half_even", -2),
        (5, 2, "half_up", 3),
        (-5, 2, "half_up", -3),
        (7, 2, "down", 3),
        (-7, 2, "down", -3),
        (-7, 2, "floor", -4),
        (7, 2, "ceiling", 4),
        (6, 2, "exact", 3),
    ],
)
def test_div_round_modes(num: int, den: int, mode: str, expected: int) -> None:
    assert div_round(num, den, mode) == expected  # type: ignore[arg-type]


def test_div_round_exact_refuses_a_remainder() -> None:
    with pytest.raises(ValueError, match="not exact"):
        div_round(7, 2, "exact")


@pytest.mark.parametrize(
    ("price", "tick", "ticks"),
    [("2.345", "0.005", 469), ("3.000", "0.001", 3000), ("11.25", "0.01", 1125), ("0", "0.01", 0)],
)
def test_price_to_ticks(price: str, tick: str, ticks: int) -> None:
    assert price_to_ticks(price, tick) == ticks


def test_off_grid_price_is_refused_with_the_tick_size_named() -> None:
    with pytest.raises(FlopexError, match=r"price 2.3451 is not a multiple of the tick size 0.005"):
        price_to_ticks("2.3451", "0.005")


def test_off_grid_price_rounds_when_asked() -> None:
    assert price_to_ticks("2.3476", "0.005", "half_even") == 470


@pytest.mark.parametrize("bad", ["", "1e3", "NaN", "1.2.3", "abc", "--1"])
def test_malformed_decimal_strings_are_refused(bad: str) -> None:
    with pytest.raises(FlopexError, match="is not a decimal number"):
        money_to_minor(bad)


def test_floats_are_refused() -> None:
    with pytest.raises(FlopexError, match="not floats"):
        money_to_minor(1.1)  # type: ignore[arg-type]


def test_money_with_too_many_places_is_refused() -> None:
    with pytest.raises(FlopexError, match="more than 2 decimal places"):
        money_to_minor("1.234")


def test_index_values_round_half_even_at_six_places() -> None:
    assert index_to_scaled("2.7900005") == 2790000
    assert index_to_scaled("2.7900015") == 2790002
    assert scaled_to_index(2790002) == "2.790002"


def test_scaled_to_ticks_rounds_index_to_tick_grid() -> None:
    assert scaled_to_ticks(2_345_500, 6, "0.001") == 2346  # 2.3455 -> tie -> even 2.346
    assert scaled_to_ticks(2_344_500, 6, "0.001") == 2344  # 2.3445 -> tie -> even 2.344


def test_format_thousands() -> None:
    assert format_thousands(-123456789) == "-1,234,567.89"
    assert decimal_to_scaled("1_000.5", 1) == 10005
