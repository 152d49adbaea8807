"""`flopex contracts ...`: output a user reads, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exchange.cli import main


def test_list_json_gives_dates_for_each_listed_contract(capsys) -> None:
    assert main(["contracts", "list", "--date", "2026-11-25", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    first = out["contracts"][0]
    assert first == {
        "symbol": "H100X26",
        "instrument_id": 12611,
        "product": "H100",
        "contract_month": "2026-11",
        "first_trading_day": "2025-12-01",
        "last_trading_day": "2026-11-30",
        "final_settlement_date": "2026-11-30",
        "fixing_days": 20,
    }
    assert len(out["contracts"]) == 36


def test_list_table_has_a_row_per_contract(capsys) -> None:
    assert main(["contracts", "list", "--date", "2026-12-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("H100Z26")
    assert len(lines) == 2 + 36


def test_show_prints_a_cme_style_spec_table(capsys) -> None:
    assert main(["contracts", "show", "tokn", "--date", "2026-11-25"]) == 0
    out = capsys.readouterr().out
    assert "| Contract unit             | 1,000 million tokens " in out
    assert "0.01 USD per million tokens = 10.00 USD per contract" in out
    assert "TOKNX26 ... TOKNV27" in out
    assert "cancel resting" in out


def test_show_unknown_code_is_exit_2(capsys) -> None:
    assert main(["contracts", "show", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "flopex: error: unknown product code 'NOPE' (known: H100, H200, TOKN)"


def test_validate_good_files(capsys) -> None:
    from contracts.registry import shipped_spec_paths

    assert main(["contracts", "validate", *map(str, shipped_spec_paths())]) == 0
    assert capsys.readouterr().out.count("ok  ") == 3


def test_validate_bad_file_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    from contracts.registry import shipped_spec_paths

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        shipped_spec_paths()[0].read_text().replace("max_order_qty: 500", "max_order_qty: -5")
    )
    assert main(["contracts", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{bad}:14: max_order_qty: Input should be greater than or equal to 1" in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["contracts", "list", "--date", "tomorrow"], "--date: 'tomorrow' is not a date"),
        (["contracts", "frobnicate"], "invalid choice: 'frobnicate'"),
        (["contracts", "list", "--holidays", "/nonexistent.yaml"], "no such file"),
    ],
)
def test_bad_cli_input_is_one_line_exit_2(argv: list[str], fragment: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
