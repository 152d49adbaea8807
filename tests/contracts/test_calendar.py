"""Business days, listing calendar and symbols: weekends, holidays, year roll, expiry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from contracts.calendar import (
    BusinessCalendar,
    contract_for_instrument_id,
    contract_for_symbol,
    contracts_listed,
    listed_contracts,
)
from contracts.errors import FlopexError
from contracts.registry import load_products
from contracts.symbols import instrument_id, make_symbol, parse_symbol, split_instrument_id

D = dt.date


@pytest.fixture(scope="module")
def products():
    return load_products()


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar.default()


def test_weekends_and_holidays_are_not_business_days(cal: BusinessCalendar) -> None:
    assert not cal.is_business_day(D(2026, 11, 28))  # Saturday
    assert not cal.is_business_day(D(2026, 11, 26))  # Thanksgiving
    assert cal.is_business_day(D(2026, 11, 27))


def test_add_business_days_skips_weekends_and_holidays(cal: BusinessCalendar) -> None:
    assert cal.add_business_days(D(2026, 11, 25), 1) == D(2026, 11, 27)
    assert cal.add_business_days(D(2026, 11, 27), 1) == D(2026, 11, 30)
    assert cal.add_business_days(D(2026, 11, 30), -2) == D(2026, 11, 25)


def test_business_days_roll_over_the_year_end(cal: BusinessCalendar) -> None:
    days = cal.business_days(D(2026, 12, 30), D(2027, 1, 5))
    assert days == [D(2026, 12, 30), D(2026, 12, 31), D(2027, 1, 4), D(2027, 1, 5)]


def test_listing_on_a_date_is_twelve_consecutive_months_per_product(products, cal) -> None:
    listed = listed_contracts(products, D(2026, 11, 25), cal)
    assert len(listed) == 36
    h100 = [c.symbol for c in listed if c.product.code == "H100"]
    assert h100[0] == "H100X26" and h100[-1] == "H100V27"


def test_front_month_rolls_after_its_last_trading_day(products, cal) -> None:
    on_ltd = contracts_listed(products["H100"], D(2026, 11, 30), cal)
    after = contracts_listed(products["H100"], D(2026, 12, 1), cal)
    assert on_ltd[0].symbol == "H100X26"
    assert after[0].symbol == "H100Z26"
    assert after[-1].symbol == "H100X27"


def test_listing_rolls_over_the_year_boundary(products, cal) -> None:
    listed = contracts_listed(products["H100"], D(2027, 1, 4), cal)
    assert [c.symbol for c in listed[:2]] == ["H100F27", "H100G27"]
    assert listed[-1].symbol == "H100Z27"


def test_december_contract_last_trading_day_and_final_settlement(products, cal) -> None:
    c = contract_for_symbol("H100Z26", products, cal)
    assert c.last_trading_day == D(2026, 12, 31)
    assert c.final_settlement_date == D(2026, 12, 31)
    assert c.fixing_days[0] == D(2026, 12, 1)
    assert D(2026, 12, 25) not in c.fixing_days
    assert len(c.fixing_days) == 22


def test_last_trading_day_moves_back_when_month_end_is_a_holiday(products) -> None:
    # Arrange: 2027-01-29 (Friday, last weekday of January) declared a holiday
    cal = BusinessCalendar(frozenset({D(2027, 1, 29)}))
    # Act
    c = contract_for_symbol("H100F27", products, cal)
    # Assert
    assert c.last_trading_day == D(2027, 1, 28)
    assert D(2027, 1, 29) not in c.fixing_days


def test_last_trading_day_when_month_ends_on_a_weekend(products, cal) -> None:
    assert contract_for_symbol("H100F27", products, cal).last_trading_day == D(2027, 1, 29)


def test_first_trading_day_is_the_day_after_the_ltd_twelve_months_earlier(products, cal) -> None:
    c = contract_for_symbol("H100Z27", products, cal)
    assert c.first_trading_day == D(2027, 1, 4)  # day after LTD of H100Z26 (2026-12-31)


def test_every_business_day_lists_exactly_the_cycle(products, cal) -> None:
    for day in cal.business_days(D(2026, 1, 2), D(2027, 12, 31)):
        listed = contracts_listed(products["TOKN"], day, cal)
        assert len(listed) == 12
        assert all(c.is_trading_day(day) for c in listed), day


def test_holiday_calendar_file_is_configurable(tmp_path: Path, products) -> None:
    f = tmp_path / "h.yaml"
    f.write_text("name: test\nholidays:\n  - '2026-12-31'\n  - {date: '2026-12-30'}\n")
    cal = BusinessCalendar.from_file(f)
    assert contract_for_symbol("H100Z26", products, cal).last_trading_day == D(2026, 12, 29)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("holidays: 5\n", "holidays: expected a list of dates"),
        ("holidays:\n  - '2026-13-01'\n", "holidays.0.date: '2026-13-01' is not a date"),
        ("holidays: [\n", "not valid YAML"),
    ],
)
def test_bad_holiday_file_is_refused(tmp_path: Path, content: str, fragment: str) -> None:
    f = tmp_path / "h.yaml"
    f.write_text(content)
    with pytest.raises(FlopexError, match=fragment.replace("(", r"\(")):
        BusinessCalendar.from_file(f)


@pytest.mark.parametrize(
    ("code", "year", "month", "symbol"),
    [("H100", 2026, 12, "H100Z26"), ("TOKN", 2027, 1, "TOKNF27"), ("H200", 2030, 6, "H200M30")],
)
def test_symbol_round_trip(code: str, year: int, month: int, symbol: str) -> None:
    assert make_symbol(code, year, month) == symbol
    assert parse_symbol(symbol) == (code, year, month)


@pytest.mark.parametrize("bad", ["H100", "H100A26", "Z26", "H100Z2", "", "h100z26x"])
def test_malformed_symbols_are_refused(bad: str) -> None:
    with pytest.raises(FlopexError, match="is not CODE \\+ month code"):
        parse_symbol(bad)


def test_instrument_ids_are_stable_and_invertible(products, cal) -> None:
    assert instrument_id(1, 2026, 12) == 12612
    assert split_instrument_id(32701) == (3, 2027, 1)
    c = contract_for_instrument_id(22703, products, cal)
    assert c.symbol == "H200H27"


def test_unknown_product_in_symbol_is_refused(products) -> None:
    with pytest.raises(FlopexError, match="unknown product code 'XYZ'"):
        contract_for_symbol("XYZZ26", products)
