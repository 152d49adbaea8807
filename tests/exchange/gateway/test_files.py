"""Trade log, close record and reference-price files."""

from __future__ import annotations

import csv
import datetime as dt

import pytest

from contracts.calendar import listed_contracts
from contracts.errors import FlopexError
from contracts.registry import load_products
from exchange.tradelog import (
    CLOSE_HEADER,
    TRADELOG_HEADER,
    TradeLog,
    read_reference_prices,
    write_close_record,
)
from exchange.venue import read_reference_file, reference_ticks

DAY = dt.date(2026, 11, 25)
CONTRACTS = listed_contracts(load_products(), DAY)
Z = next(c for c in CONTRACTS if c.symbol == "H100Z26")


def test_trade_log_rows_follow_the_agreed_format(tmp_path) -> None:
    log = TradeLog(tmp_path, DAY, CONTRACTS)
    log.fill(1_000, 7, Z.instrument_id, "ACME", True, 2805, 3, False)
    log.flush()
    lines = log.path.read_text().splitlines()
    assert lines[0] == TRADELOG_HEADER
    assert lines[1] == "2026-11-25,1,1000,7,H100Z26,12612,ACME,B,2805,2.805,3,N"


def test_restarted_trade_log_continues_the_numbering(tmp_path) -> None:
    first = TradeLog(tmp_path, DAY, CONTRACTS)
    first.fill(1, 1, Z.instrument_id, "A", True, 2800, 1, True)
    first.close()
    again = TradeLog(tmp_path, DAY, CONTRACTS)
    again.fill(2, 1, Z.instrument_id, "B", False, 2800, 1, False)
    again.close()
    rows = list(csv.DictReader(again.path.open()))
    assert [r["seq"] for r in rows] == ["1", "2"]


def test_close_record_leaves_empty_sides_empty(tmp_path) -> None:
    path = write_close_record(tmp_path, DAY, 99, [(Z, 2790, 5, None, 0)])
    lines = path.read_text().splitlines()
    assert lines == [CLOSE_HEADER, "2026-11-25,H100Z26,12612,99,2790,5,,"]


def test_latest_settlement_before_the_day_is_the_reference(tmp_path) -> None:
    sdir = tmp_path / "settlement"
    sdir.mkdir()
    head = "trade_date,symbol,instrument_id,settlement_ticks,settlement_price,tier\n"
    (sdir / "2026-11-23.csv").write_text(head + "2026-11-23,H100Z26,12612,2700,2.700,vwap\n")
    (sdir / "2026-11-24.csv").write_text(head + "2026-11-24,H100Z26,12612,2750,2.750,vwap\n")
    (sdir / "2026-11-25.csv").write_text(head + "2026-11-25,H100Z26,12612,9999,9.999,vwap\n")
    assert read_reference_prices(tmp_path, DAY) == {"H100Z26": 2750}
    assert reference_ticks(CONTRACTS, DAY, tmp_path, None) == {12612: 2750}


def test_reference_prices_file_in_decimals(tmp_path) -> None:
    f = tmp_path / "refs.csv"
    f.write_text("symbol,price\nH100Z26,2.800\n")
    assert read_reference_file(f, CONTRACTS) == {"H100Z26": 2800}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("symbol,price\nH100Z26,2.8005\n", "refs.csv:2: price 2.8005 is not a multiple"),
        ("symbol,price\nXXXX,1\n", "refs.csv:2: symbol 'XXXX' is not listed"),
        ("sym,px\n", "needs columns"),
    ],
)
def test_bad_reference_file_names_the_line(tmp_path, text: str, message: str) -> None:
    f = tmp_path / "refs.csv"
    f.write_text(text)
    with pytest.raises(FlopexError, match=message):
        read_reference_file(f, CONTRACTS)


def test_a_weekend_is_not_a_trade_date() -> None:
    from exchange.auth import demo_access
    from exchange.venue import build_gateway

    with pytest.raises(FlopexError, match="2026-11-28 is not a business day"):
        build_gateway(demo_access(n=16)[0], dt.date(2026, 11, 28), engine="reference")
