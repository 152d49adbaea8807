"""The whole venue end to end: `flopex demo` over three trading days, a SIGKILL included.

Serve runs as a separate process per day; five firms trade over the wire protocol; the
clearing batch settles each evening. The third day's gateway is killed mid-session and
restarted: sessions must get back every acknowledged message and the journal must rebuild
the digest the live server reported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_three_day_demo_trades_survives_a_kill_and_settles(tmp_path: Path) -> None:
    # Arrange
    data = tmp_path / "demo"
    cmd = [sys.executable, "-m", "exchange.cli", "demo", "--days", "3", "--data-dir", str(data)]
    # Act
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    out = run.stdout
    # Assert
    assert run.returncode == 0, out + run.stderr
    assert "demo OK: every step checked out" in out
    assert "replayed identically" in out
    assert ": MATCH" in out
    assert "(vwap)" in out  # trades in the closing window set the settlement price
    assert "sum of all ledger entries: 0" in out
    for day in ("2026-11-02", "2026-11-03", "2026-11-04"):
        assert (data / "tradelog" / f"{day}.csv").exists()
        assert (data / "settlement" / f"{day}.csv").exists()


def test_demo_refuses_to_replace_a_directory_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    cmd = [sys.executable, "-m", "exchange.cli", "demo", "--data-dir", str(tmp_path)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2
    assert "exists and is not a demo directory" in run.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
