"""Quote files: CSV and JSON lines parse exactly; bad lines name file, line and field."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from clearing.quotes import Quote, load_quotes, write_quotes_csv, write_quotes_jsonl
from contracts.errors import FlopexError

HEADER = "timestamp,provider,item,price,volume\n"


def test_csv_quotes_parse_to_integers_at_index_scale(tmp_path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(HEADER + "2026-05-14T15:00:00Z,acme,H100,2.4999999,120\n")
    (quote,) = load_quotes(path)
    assert quote == Quote(
        int(dt.datetime(2026, 5, 14, 15, tzinfo=dt.UTC).timestamp()), "acme", "H100", 2_500_000, 120
    )


def test_jsonl_numbers_are_read_as_exact_decimals(tmp_path) -> None:
    path = tmp_path / "q.jsonl"
    rec = '{"timestamp": "2026-05-14T10:00:00-05:00", "provider": "a", "item": "H200", '
    path.write_text(rec + '"price": 3.1}\n')
    (quote,) = load_quotes(path)
    assert quote.price == 3_100_000
    assert quote.volume is None
    assert quote.when.hour == 15


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2026-05-14T15:00:00,a,H100,2.1,1", r"q.csv:2: timestamp: .* has no UTC offset"),
        ("yesterday,a,H100,2.1,1", r"q.csv:2: timestamp: 'yesterday' is not ISO 8601"),
        ("2026-05-14T15:00:00Z,a,H100,two,1", r"q.csv:2: price: .*'two' is not a decimal"),
        ("2026-05-14T15:00:00Z,a,H100,-2,1", r"q.csv:2: price: must be positive"),
        ("2026-05-14T15:00:00Z,a,H100,2.1,1.5", r"q.csv:2: volume: expected a non-negative"),
        ("2026-05-14T15:00:00Z,,H100,2.1,1", r"q.csv:2: provider: missing"),
        ("2026-05-14T15:00:00Z,a,H100", r"q.csv:2: expected 5 fields, got 3"),
    ],
)
def test_bad_csv_lines_name_the_line_and_field(tmp_path, line, message) -> None:
    path = tmp_path / "q.csv"
    path.write_text(HEADER + line + "\n")
    with pytest.raises(FlopexError, match=message):
        load_quotes(path)


def test_bad_json_line_names_line_and_column(tmp_path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"timestamp": "2026-05-14T15:00:00Z"}\n{oops\n')
    with pytest.raises(FlopexError, match=r"q.jsonl:1: provider: missing"):
        load_quotes(path)
    path.write_text("{oops\n")
    with pytest.raises(FlopexError, match=r"q.jsonl:1: invalid JSON at column 2"):
        load_quotes(path)


def test_missing_header_column_is_named(tmp_path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("timestamp,provider,price\n")
    with pytest.raises(FlopexError, match=r"q.csv:1: header: missing column 'item'"):
        load_quotes(path)


@pytest.mark.parametrize("writer", [write_quotes_csv, write_quotes_jsonl])
def test_written_quotes_read_back_identically(tmp_path, writer) -> None:
    quotes = [
        Quote(1_778_770_800, "a", "H100", 2_345_000, 7),
        Quote(1_778_770_801, "b", "x", 1, None),
    ]
    path = tmp_path / ("q.jsonl" if writer is write_quotes_jsonl else "q.csv")
    writer(path, quotes)
    assert load_quotes(path) == quotes
    if writer is write_quotes_jsonl:
        assert json.loads(path.read_text().splitlines()[0])["price"] == "2.345000"
