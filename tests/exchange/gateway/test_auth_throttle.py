"""Passwords (salted scrypt, constant-time), the access file, and the message throttle."""

from __future__ import annotations

import pytest

from contracts.errors import FlopexError
from exchange.auth import hash_password, load_access, parse_access, verify_password
from exchange.throttle import Throttle

CHEAP = {"n": 16}


def test_hash_verifies_only_its_password() -> None:
    h = hash_password("s3cret", **CHEAP)
    assert verify_password("s3cret", h)
    assert not verify_password("s3cret ", h)


def test_same_password_hashes_differently_each_time() -> None:
    assert hash_password("pw", **CHEAP) != hash_password("pw", **CHEAP)


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$x$8$1$00$00", "bcrypt$1$2$3$4$5"])
def test_malformed_hash_never_matches(stored: str) -> None:
    assert not verify_password("pw", stored)


def _doc(**login):
    base = {"username": "alice", "password_hash": hash_password("pw", **CHEAP)}
    base.update(login)
    return {"accounts": [{"name": "ACME"}], "logins": [base]}


def test_access_document_defaults() -> None:
    cfg = parse_access(_doc(accounts=["ACME"]))
    login = cfg.logins["alice"]
    assert (login.session, login.accounts, login.cancel_on_disconnect, login.admin) == (
        "ALICE",
        frozenset({"ACME"}),
        False,
        False,
    )
    assert cfg.authenticate("alice", "pw") is login
    assert cfg.authenticate("alice", "nope") is None
    assert cfg.authenticate("mallory", "pw") is None


@pytest.mark.parametrize(
    ("login", "message"),
    [
        ({"username": "toolongname"}, "username"),
        ({"accounts": ["NOPE"]}, "unknown account 'NOPE'"),
        ({"password_hash": "plaintext"}, "not a scrypt hash"),
        ({"throttle_per_second": 0}, "throttle_per_second"),
        ({"session": "WAY-TOO-LONG-SESSION"}, "session"),
    ],
)
def test_bad_access_entries_name_the_field(login: dict, message: str) -> None:
    with pytest.raises(FlopexError, match=message):
        parse_access(_doc(**login))


def test_missing_access_file_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(FlopexError, match="cannot read access file"):
        load_access(tmp_path / "nope.yaml")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def test_throttle_allows_a_burst_of_rate_then_refuses() -> None:
    clock = FakeClock()
    t = Throttle(10, clock)
    assert [t.allow() for _ in range(12)] == [True] * 10 + [False] * 2


def test_throttle_refills_at_the_rate() -> None:
    clock = FakeClock()
    t = Throttle(10, clock)
    for _ in range(10):
        t.allow()
    clock.now += 100_000_000  # 0.1 s -> one message
    assert [t.allow(), t.allow()] == [True, False]


def test_throttle_bucket_never_exceeds_one_second() -> None:
    clock = FakeClock()
    t = Throttle(5, clock)
    clock.now += 60 * 10**9
    assert sum(t.allow() for _ in range(20)) == 5
