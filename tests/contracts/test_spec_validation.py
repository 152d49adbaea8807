"""Every spec field is validated, and a bad spec is refused with file:line: field: reason."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from contracts.errors import FlopexError
from contracts.registry import load_products, load_spec_file, parse_spec_text


def _set(data: dict, path: str, value: object) -> dict:
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


_DELETE = object()


def _check(data: dict) -> str:
    with pytest.raises(FlopexError) as exc_info:
        parse_spec_text(yaml.safe_dump(data, sort_keys=False), "spec.yaml")
    return str(exc_info.value)


# (field path, bad value, expected fragment of the one-line message)
BAD_FIELDS = [
    ("code", "h1", "code: String should match pattern"),
    ("product_id", 0, "product_id: Input should be greater than or equal to 1"),
    ("name", "", "name: String should have at least 3 characters"),
    ("asset_class", "crypto", "asset_class: Input should be 'gpu_compute' or 'token_index'"),
    ("underlying_index", "", "underlying_index: String should have at least 2 characters"),
    ("contract_unit", -10, "contract_unit: Input should be greater than 0"),
    ("unit_of_measure", _DELETE, "unit_of_measure: required field is missing"),
    ("currency", "EUR", "currency: Input should be 'USD'"),
    ("currency_minor_digits", 7, "currency_minor_digits: Input should be less than or equal to 4"),
    ("price_quotation", _DELETE, "price_quotation: required field is missing"),
    ("tick_size", "-0.001", "tick_size: Input should be greater than 0"),
    ("tick_size", "abc", "tick_size: 'abc' is not a decimal number"),
    ("min_order_qty", 0, "min_order_qty: Input should be greater than or equal to 1"),
    ("max_order_qty", -5, "max_order_qty: Input should be greater than or equal to 1"),
    ("price_band.min", "30.000", "price_band: min 30.000 must be below max 20.000"),
    ("price_band.max", "0", "price_band.max: Input should be greater than 0"),
    ("listing.months", 0, "listing.months: Input should be greater than or equal to 1"),
    ("listing.cycle", "quarterly", "listing.cycle: Input should be 'consecutive_months'"),
    ("symbol.convention", "other", "symbol.convention: Input should be 'code_month_year2'"),
    ("trading_hours.timezone", "Mars/Olympus", "trading_hours.timezone: unknown time zone"),
    ("trading_hours.pre_open_minutes", -1, "trading_hours.pre_open_minutes: Input should be"),
    ("trading_hours.sessions", [], "trading_hours.sessions: List should have at least 1 item"),
    ("trading_hours.sessions.0.open", "17:00", "trading_hours.sessions.0: open 17:00 must be"),
    ("trading_hours.sessions.0.close", "25:00", "trading_hours.sessions.0.close: expected 'HH:MM'"),
    ("trading_hours.sessions.0.days", ["Mon", "Funday"], "trading_hours.sessions.0.days.1"),
    ("last_trading_day.rule", "third_friday", "last_trading_day.rule: Input should be"),
    ("last_trading_day.offset_business_days", -1, "last_trading_day.offset_business_days"),
    ("final_settlement.method", "physical", "final_settlement.method: Input should be 'cash'"),
    ("final_settlement.price", "last_fixing", "final_settlement.price: Input should be"),
    ("final_settlement.rounding", "up", "final_settlement.rounding: Input should be"),
    ("final_settlement.offset_business_days", 9, "final_settlement.offset_business_days"),
    ("daily_settlement.closing_window_seconds", 0, "daily_settlement.closing_window_seconds"),
    ("daily_settlement.min_volume", 0, "daily_settlement.min_volume: Input should be greater"),
    ("daily_settlement.max_spread_ticks", 0, "daily_settlement.max_spread_ticks: Input should"),
    ("price_limits.kind", "band", "price_limits.kind: Input should be 'percent' or 'fixed'"),
    ("price_limits.tiers", ["15", "10"], "price_limits.tiers: tiers must strictly increase"),
    ("price_limits.tiers", [], "price_limits.tiers: List should have at least 1 item"),
    ("position_limits.spot_month", 0, "position_limits.spot_month: Input should be greater"),
    ("position_limits.all_months", 10, "position_limits: spot_month limit exceeds all_months"),
    ("matching_algorithm", "pro-rata", "matching_algorithm: Input should be 'fifo' or 'pro_rata'"),
    ("self_match_prevention", "allow", "self_match_prevention: Input should be 'cancel_resting'"),
    ("market_protection", "0.0005", "market_protection 0.0005 is not a multiple of tick_size"),
    ("margin.scan_range_pct", "0", "margin.scan_range_pct: Input should be greater than 0"),
    ("margin.scan_range_pct", "150", "margin.scan_range_pct: a percentage must be at most 100"),
    ("margin.calendar_spread_charge", "-1", "margin.calendar_spread_charge: Input should be"),
    ("margin.inter_product_credit_pct", "101", "margin.inter_product_credit_pct: a percentage"),
    ("holiday_calendar", 5, "holiday_calendar: Input should be a valid string"),
    ("clearing_fee", "-0.50", "clearing_fee: Input should be greater than or equal to 0"),
    ("surprise", 1, "surprise: unknown field"),
]


@pytest.mark.parametrize(("path", "value", "fragment"), BAD_FIELDS, ids=[c[0] for c in BAD_FIELDS])
def test_bad_field_is_refused_naming_the_field(
    h100_data: dict, path: str, value: object, fragment: str
) -> None:
    # Arrange
    data = _set(h100_data, path, value)
    # Act
    message = _check(data)
    # Assert
    assert fragment in message
    assert message.startswith("spec.yaml:")
    assert "\n" not in message


def test_min_order_qty_above_max_is_refused(h100_data: dict) -> None:
    _set(h100_data, "min_order_qty", 600)
    assert "min_order_qty 600 exceeds max_order_qty 500" in _check(h100_data)


def test_tick_size_not_dividing_the_price_band_is_refused(h100_data: dict) -> None:
    _set(h100_data, "tick_size", "0.003")
    assert "price_band.min 0.001 is not a multiple of tick_size 0.003" in _check(h100_data)


def test_tick_size_not_dividing_fixed_price_limits_is_refused(h100_data: dict) -> None:
    _set(h100_data, "price_limits", {"kind": "fixed", "tiers": ["0.2505", "0.500"]})
    assert "price_limits.tiers.0 0.2505 is not a multiple of tick_size 0.001" in _check(h100_data)


def test_tick_value_must_be_whole_minor_units(h100_data: dict) -> None:
    _set(h100_data, "contract_unit", 1)
    assert "tick value 0.001 USD is not a whole number of minor units" in _check(h100_data)


def test_overlapping_trading_sessions_are_refused(h100_data: dict) -> None:
    h100_data["trading_hours"]["sessions"].append(
        {"days": ["Wed"], "open": "15:00", "close": "17:00"}
    )
    assert "sessions overlap on Wed: 08:00-16:00 and 15:00" in _check(h100_data)


def test_unquoted_time_is_read_as_a_time_not_a_base_60_number(h100_text: str) -> None:
    # YAML 1.1 would read 08:30 as the integer 510; the loader keeps it as text.
    text = h100_text.replace('open: "08:00"', "open: 08:30")
    spec = parse_spec_text(text, "h100.yaml")
    assert spec.trading_hours.sessions[0].open.isoformat() == "08:30:00"


def test_error_names_the_yaml_line_of_the_bad_key(h100_text: str) -> None:
    # Arrange: the line of matching_algorithm in the shipped file
    line = next(
        i for i, s in enumerate(h100_text.splitlines(), 1) if s.startswith("matching_algorithm")
    )
    text = h100_text.replace("matching_algorithm: fifo", "matching_algorithm: lifo")
    # Act
    with pytest.raises(FlopexError) as exc_info:
        parse_spec_text(text, "h100.yaml")
    # Assert
    assert str(exc_info.value).startswith(f"h100.yaml:{line}: matching_algorithm:")
    assert "got 'lifo'" in str(exc_info.value)


def test_missing_field_points_at_the_parent_line(h100_text: str) -> None:
    text = "\n".join(s for s in h100_text.splitlines() if not s.startswith("tick_size"))
    with pytest.raises(FlopexError, match=r"^h100.yaml:\d+: tick_size: required field is missing"):
        parse_spec_text(text, "h100.yaml")


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(FlopexError, match=r"^bad.yaml:3: not valid YAML: expected .,. or .]."):
        parse_spec_text("code: H100\nname: [unclosed\n", "bad.yaml")


def test_non_mapping_yaml_is_refused() -> None:
    with pytest.raises(FlopexError, match="a spec must be a YAML mapping"):
        parse_spec_text("- just\n- a list\n", "list.yaml")


def test_yaml_numbers_stay_exact_decimals(h100_path: Path) -> None:
    spec = load_spec_file(h100_path)
    assert spec.tick_size == Decimal("0.001")
    assert spec.tick_value_minor == 1000


def test_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(FlopexError, match="no such file"):
        load_spec_file(tmp_path / "nope.yaml")


def test_duplicate_product_codes_across_files_are_refused(tmp_path: Path, h100_text: str) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(h100_text)
    b.write_text(h100_text.replace("product_id: 1", "product_id: 9"))
    with pytest.raises(FlopexError, match=r"b.yaml: code: duplicate product code 'H100'"):
        load_products([a, b])


def test_duplicate_product_ids_across_files_are_refused(tmp_path: Path, h100_text: str) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(h100_text)
    b.write_text(h100_text.replace("code: H100", "code: H900"))
    with pytest.raises(FlopexError, match=r"b.yaml: product_id: duplicate product id 1"):
        load_products([a, b])


def test_shipped_specs_load_with_the_three_products() -> None:
    products = load_products()
    assert list(products) == ["H100", "H200", "TOKN"]
    assert {p.tick_value_minor for p in products.values()} == {1000}


@pytest.mark.parametrize(
    ("reference", "tier", "expected"),
    [(2800, 0, 280), (2805, 0, 280), (2800, 2, 560), (5, 0, 1), (2800, 99, 560)],
)
def test_percent_limits_round_down_to_whole_ticks(reference: int, tier: int, expected: int) -> None:
    spec = load_products()["H100"]
    assert spec.limit_ticks(reference, tier) == expected


def test_limit_band_is_clipped_to_the_price_band(h100_data: dict) -> None:
    _set(h100_data, "price_limits", {"kind": "fixed", "tiers": ["0.250"]})
    spec = parse_spec_text(yaml.safe_dump(h100_data), "x.yaml")
    assert spec.limit_band_ticks(5) == (1, 255)
    assert spec.limit_band_ticks(19_900) == (19_650, 20_000)


def test_fixed_limits_are_exact_ticks(h100_data: dict) -> None:
    _set(h100_data, "price_limits", {"kind": "fixed", "tiers": ["0.250", "0.500"]})
    spec = parse_spec_text(yaml.safe_dump(h100_data), "x.yaml")
    assert spec.limit_ticks(2800) == 250
    assert spec.limit_ticks(2800, tier=1) == 500
