"""``flopex settle``: summary table, idempotent re-run message, one-line errors."""

from __future__ import annotations

import json

from exchange.cli import main
from tests.clearing import scenario


def test_settle_prints_the_summary_table(tmp_path, capsys) -> None:
    scenario.build(tmp_path)
    assert main(["settle", "--data-dir", str(tmp_path), "--date", "2026-06-26"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("settlement 2026-06-26")
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("H100M26"))
    assert line.split()[:3] == ["H100M26", "vwap", "2.804"]


def test_settle_through_then_rerun_says_nothing_changed(tmp_path, capsys) -> None:
    scenario.build(tmp_path)
    args = ["settle", "--data-dir", str(tmp_path)]
    assert main([*args, "--through", "2026-06-30", "--from", "2026-06-26", "--json"]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert [s["business_date"] for s in summaries] == ["2026-06-26", "2026-06-29", "2026-06-30"]
    assert summaries[-1]["expired"] == ["H100M26", "H200M26", "TOKNM26"]
    assert main([*args, "--date", "2026-06-29"]) == 0
    assert capsys.readouterr().out == "2026-06-29: already settled; nothing changed\n"


def test_missing_trade_log_is_a_one_line_error_exit_2(tmp_path, capsys) -> None:
    scenario.build(tmp_path)
    (tmp_path / "tradelog" / "2026-06-26.csv").unlink()
    assert main(["settle", "--data-dir", str(tmp_path), "--date", "2026-06-26"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no trade log for this trading day" in err


def test_non_business_day_is_rejected(tmp_path, capsys) -> None:
    scenario.build(tmp_path)
    assert main(["settle", "--data-dir", str(tmp_path), "--date", "2026-06-27"]) == 2
    assert "2026-06-27 is not a business day" in capsys.readouterr().err
