"""``flopex index``: prints the fixing with its inputs; bad input is one line, exit 2."""

from __future__ import annotations

import json

from exchange.cli import main


def test_index_prints_fixing_and_inputs_as_json(tmp_path, capsys) -> None:
    # Arrange: SYNTHETIC quotes for May 2026 written through the CLI itself.
    quotes = tmp_path / "q.csv"
    assert (
        main(
            [
                "index",
                "--synthetic-out",
                str(quotes),
                "--from",
                "2026-05-01",
                "--date",
                "2026-05-29",
            ]
        )
        == 0
    )
    capsys.readouterr()
    # Act
    code = main(["index", "--quotes", str(quotes), "--date", "2026-05-14", "--json"])
    # Assert
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert [f["index"] for f in out] == ["FLX-H100", "FLX-H200", "FLX-TOKEN"]
    h100 = out[0]
    assert h100["status"] == "computed" and h100["methodology"] == "FLX-IDX-1.0"
    assert sum(1 for i in h100["inputs"] if i["status"] == "used") >= 5


def test_index_table_names_the_index_and_status(tmp_path, capsys) -> None:
    quotes = tmp_path / "q.jsonl"
    main(["index", "--synthetic-out", str(quotes), "--from", "2026-05-01", "--date", "2026-05-20"])
    capsys.readouterr()
    assert (
        main(["index", "--quotes", str(quotes), "--date", "2026-05-14", "--index", "FLX-H200"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("FLX-H200 fixing 2026-05-14: ")
    assert "(computed, methodology FLX-IDX-1.0)" in out


def test_missing_quote_file_is_a_one_line_error(tmp_path, capsys) -> None:
    code = main(["index", "--quotes", str(tmp_path / "none.csv"), "--date", "2026-05-14"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip().endswith("none.csv: quote file not found")
    assert err.count("\n") == 1


def test_unknown_index_is_rejected(tmp_path, capsys) -> None:
    quotes = tmp_path / "q.csv"
    main(["index", "--synthetic-out", str(quotes), "--from", "2026-05-01", "--date", "2026-05-02"])
    assert main(["index", "--quotes", str(quotes), "--date", "2026-05-02", "--index", "X"]) == 2
    assert "--index: unknown index 'X'" in capsys.readouterr().err
