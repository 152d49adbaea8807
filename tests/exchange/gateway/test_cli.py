"""A new user's session: ``flopex serve`` in its own process, ``flopex order`` tickets."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from exchange.cli import main


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "exchange.cli", "serve", "--port", "0", "--engine", "reference",
            "--data-dir", str(data), "--trade-date", "2026-11-25",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    assert "digest" in line, proc.stderr.read()  # fresh data directory, digest ...
    line = proc.stdout.readline()
    assert "listening on" in line, proc.stderr.read()
    port = line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1]
    md_port = line.split("market data ", 1)[1].split(",")[0].rsplit(":", 1)[1]
    yield port, data, md_port
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def _order(port: str, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["order", "--port", port, "--wait", "0.2", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_enter_replace_cancel_and_see_fills_between_two_sessions(server, capsys) -> None:
    port, data, _ = server
    # buy 5 @ 2.800 for alice, sell 3 @ 2.800 for bob: a fill on both sides
    code, out, _ = _order(port, capsys, "--user", "alice", "buy", "H100Z26", "5", "2.800")
    assert code == 0 and "ACCEPTED  token 1  BUY 5 H100Z26 @ 2.800" in out
    code, out, _ = _order(port, capsys, "--user", "bob", "sell", "H100Z26", "3", "2.800")
    assert "FILLED    token 1  SELL 3 H100Z26 @ 2.800" in out and "(taker)" in out
    code, out, _ = _order(port, capsys, "--user", "alice", "status")
    assert "working token      1  BUY      2 H100Z26 @ 2.800" in out
    assert "FILLED    token 1  BUY 3 H100Z26 @ 2.800" in out and "(maker), 2 left" in out
    # replace the rest, then cancel it
    code, out, _ = _order(
        port, capsys, "--user", "alice", "replace", "1", "--price", "2.790", "--qty", "4"
    )
    assert code == 0 and "REPLACED  token 1 -> 2  4 H100Z26 @ 2.790" in out
    code, out, _ = _order(port, capsys, "--user", "alice", "cancel", "2")
    assert code == 0 and "CANCELED  token 2  4 H100Z26 (USER)" in out
    rows = list(csv.DictReader((Path(data) / "tradelog" / "2026-11-25.csv").open()))
    assert sorted((r["account"], r["side"], r["quantity"], r["price"]) for r in rows) == [
        ("ALICE", "B", "3", "2.800"),
        ("BOB", "S", "3", "2.800"),
    ]


def test_market_data_feed_shows_the_book(server, capsys) -> None:
    import asyncio

    from exchange.bookbuilder import FeedClient

    port, _, md_port = server
    _order(port, capsys, "--user", "bob", "buy", "H100Z26", "7", "2.700")

    async def read_book():
        client = FeedClient("127.0.0.1", int(md_port))
        await client.connect()
        for _ in range(200):
            if client.builder.has_state and client.builder.book(12612).best(1):
                break
            await client._read_some()
        best = client.builder.book(12612).best(1)
        await client.close()
        return best

    assert asyncio.run(read_book()) == (2700, 7)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["buy", "H100Z26", "1", "2.8005"], "not a multiple of the tick size"),
        (["buy", "ZZZZZ26", "1", "2.8"], "unknown product code"),
        (["buy", "H100Z26", "1"], "needs a PRICE"),
        (["cancel", "99"], "UNKNOWN_TOKEN"),
    ],
)
def test_bad_tickets_are_one_line_errors(server, capsys, argv, message) -> None:
    port, _, _ = server
    code, out, err = _order(port, capsys, "--user", "alice", *argv)
    assert code in (1, 2)
    assert message in out + err
    assert "Traceback" not in out + err


def test_wrong_password_is_a_one_line_error(server, capsys) -> None:
    port, _, _ = server
    code, _, err = _order(port, capsys, "--user", "alice", "--password", "x", "status")
    assert code == 2
    assert err.strip() == "flopex: error: login rejected: not authorised (A)"


def test_no_server_is_a_one_line_error(capsys) -> None:
    code, _, err = _order("1", capsys, "--user", "alice", "status")
    assert code == 2
    assert err.startswith("flopex: error: cannot connect to 127.0.0.1:1")


def test_gtd_ticket_is_accepted_with_its_expire_time(server, capsys) -> None:
    port, _, _ = server
    code, out, _ = _order(
        port, capsys, "--user", "alice", "buy", "H100Z26", "1", "2.500", "--tif", "gtd",
        "--expire", "2099-01-01T00:00:00Z",
    )  # fmt: skip
    assert code == 0 and "@ 2.500 GTD until 2099-01-01T00:00:00Z" in out


@pytest.mark.parametrize(("price", "accepted"), [("2.950", False), ("2.400", True)])
def test_post_only_ticket_rests_or_is_rejected(server, capsys, price, accepted) -> None:
    port, _, _ = server
    _order(port, capsys, "--user", "bob", "sell", "H100Z26", "1", "2.950")
    code, out, _ = _order(
        port, capsys, "--user", "alice", "buy", "H100Z26", "1", price, "--post-only"
    )
    if accepted:
        assert code == 0 and f"@ {price} post-only" in out
    else:
        assert code == 1 and "POST_ONLY_WOULD_TRADE" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--password", "x" * 11, "status"], "password longer than 10 characters"),
        (["buy", "H100Z26", "1", "2.8", "--tif", "gtd"], "needs --expire"),
        (["buy", "H100Z26", "1", "2.8", "--expire", "2099-01-01"], "only a GTD order"),
        (["buy", "H100Z26", "1", "2.8", "--tif", "gtd", "--expire", "soon"], "not an ISO 8601"),
        (["buy", "H100Z26", "99999999999", "2.8"], "does not fit the wire format"),
    ],
)
def test_ticket_input_errors_never_show_a_traceback(server, capsys, argv, message) -> None:
    port, _, _ = server
    code, out, err = _order(port, capsys, "--user", "alice", *argv)
    assert code == 2
    assert message in err and "Traceback" not in out + err


def test_admin_close_day_writes_the_close_record(server, capsys) -> None:
    port, data, _ = server
    _order(port, capsys, "--user", "bob", "sell", "H100Z26", "2", "2.810")
    code, out, _ = _order(port, capsys, "--user", "admin", "close-day")
    assert code == 0 and "DONE" in out
    rows = {
        r["symbol"]: r for r in csv.DictReader((Path(data) / "close" / "2026-11-25.csv").open())
    }
    assert (rows["H100Z26"]["best_ask_ticks"], rows["H100Z26"]["best_ask_qty"]) == ("2810", "2")


def test_hash_password_prints_a_scrypt_hash(capsys, monkeypatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("hunter2\n"))
    assert main(["serve", "--hash-password"]) == 0
    from exchange.auth import verify_password

    assert verify_password("hunter2", capsys.readouterr().out.strip())
