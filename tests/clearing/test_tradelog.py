"""Trade-log and close-record readers: the fast parser equals the csv reader; bad lines
name file, line and field."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from clearing.fastcsv import parse_tradelog_fast
from clearing.synthetic import synthetic_day
from clearing.tradelog import read_close, read_tradelog, read_tradelog_csv, write_tradelog
from contracts.errors import FlopexError
from tests.clearing import scenario
from tests.clearing.helpers import contract

DAY = dt.date(2026, 6, 26)
_REST = b"price,quantity,aggressor"
FIELDS = ("ts_ns", "match_id", "instrument_id", "account", "side", "price_ticks", "quantity")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_parser_matches_the_csv_reader(tmp_path, seed) -> None:
    cs = [contract(s) for s in ("H100M26", "H200N26", "TOKNQ26")]
    log, _ = synthetic_day(DAY, cs, [2800, 3100, 750], 37, 500, np.random.default_rng(seed))
    path = tmp_path / "t.csv"
    write_tradelog(path, log, {c.instrument_id: str(c.product.tick_size) for c in cs})
    header = b"trade_date,seq,ts_ns,match_id,symbol,instrument_id,account,side,price_ticks,"
    assert parse_tradelog_fast(path.read_bytes(), header + _REST, DAY.isoformat()) is not None
    fast, slow = read_tradelog(path, DAY), read_tradelog_csv(path, DAY)
    for f in (*FIELDS, "aggressor"):
        assert np.array_equal(getattr(fast, f), getattr(slow, f)), f
    assert fast.account_names == slow.account_names
    assert fast.symbols == slow.symbols
    assert len(fast) == 1000


def test_quoted_account_names_take_the_csv_path(tmp_path) -> None:
    scenario.write_day(tmp_path, DAY, [("H100M26", "A", "B", 2800, 3, 60)])
    path = tmp_path / "tradelog" / f"{DAY}.csv"
    path.write_text(path.read_text().replace(",A,", ',"A",'))
    log = read_tradelog(path, DAY)
    assert log.account_names == ["A", "B"]


def _bad(tmp_path, old: str, new: str):
    scenario.write_day(tmp_path, DAY, [("H100M26", "A", "B", 2800, 3, 60)])
    path = tmp_path / "tradelog" / f"{DAY}.csv"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (",B,2800", ",X,2800", r"t?\d.csv:2: side: expected B or S, got 'X'"),
        (",3,Y", ",0,Y", r":2: quantity: must be positive"),
        (",3,Y", ",3,maybe", r":2: aggressor: expected Y or N, got 'maybe'"),
        ("2026-06-26,1,", "2026-06-25,1,", r":2: trade_date: '2026-06-25' is not 2026-06-26"),
        (",2800,2.800,3,Y", ",28x0,2.800,3,Y", r":2: price_ticks: expected an integer"),
        (",A,", ",,", r":2: account: missing"),
        (",3,N\n", ",3\n", r":3: expected 12 fields, got 11"),
    ],
)
def test_bad_trade_log_lines_are_named(tmp_path, old, new, message) -> None:
    path = _bad(tmp_path, old, new)
    with pytest.raises(FlopexError, match=message):
        read_tradelog(path, DAY)


def test_wrong_header_is_refused(tmp_path) -> None:
    path = _bad(tmp_path, "trade_date,seq", "date,seq")
    with pytest.raises(FlopexError, match=r":1: header: expected trade_date,seq,"):
        read_tradelog(path, DAY)


def test_close_record_rejects_crossed_book(tmp_path) -> None:
    scenario.write_day(tmp_path, DAY, [], {"H100M26": (2810, 2800)})
    with pytest.raises(FlopexError, match=r":2: best_bid_ticks 2810 is not below the ask"):
        read_close(tmp_path / "close" / f"{DAY}.csv", DAY)


def test_close_record_empty_sides_read_as_no_price(tmp_path) -> None:
    scenario.write_day(tmp_path, DAY, [], {"H100M26": (2790, 2815)})
    path = tmp_path / "close" / f"{DAY}.csv"
    path.write_text(path.read_text().replace(",2790,3,", ",,,"))
    book = read_close(path, DAY)
    assert book.bid_ticks[0] == np.iinfo(np.int64).min
    assert book.ask_ticks[0] == 2815


@pytest.mark.parametrize(
    ("ts", "fast"),
    [
        ("9223372036854775807", True),
        ("9223372036854775808", False),
        ("12345678901234567890", False),
    ],
)
def test_fast_parser_refuses_int64_overflow(ts, fast) -> None:
    header = b"h"
    row = (
        f"\n{DAY},1,{ts},1,H100M26,12606,A,B,1,0.001,1,Y"
        f"\n{DAY},2,1,1,H100M26,12606,B,S,1,0.001,1,N\n"
    )
    got = parse_tradelog_fast(header + row.encode(), header, DAY.isoformat())
    assert (got is not None) == fast
    if fast:
        assert int(got[0][0]) == int(ts)
