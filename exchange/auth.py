"""Logins and accounts: salted scrypt password hashes, constant-time checks, the config file.

The gateway's access file (YAML) names the trading accounts and the logins allowed to use
them::

    accounts:
      - name: ACME                 # printable ASCII, at most 16 characters
        max_order_notional: "2000000.00"   # optional, USD; 0/absent = no limit
    logins:
      - username: alice            # at most 6 characters (SoupBinTCP)
        password_hash: "scrypt$16384$8$1$<salt hex>$<hash hex>"
        session: ALICE             # optional, at most 10 characters; default = username upper
        accounts: [ACME]           # accounts this login may trade
        throttle_per_second: 5000  # optional
        cancel_on_disconnect: true # optional
      - username: admin
        password_hash: "scrypt$..."
        accounts: []
        admin: true                # may send Kill Switch and Close Trading Day

Make a hash with ``flopex serve --hash-password`` (reads the password from stdin).
A password is never stored or logged in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from contracts.errors import FlopexError
from contracts.units import money_to_minor

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_DKLEN = 32


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """Salted scrypt hash, self-describing: ``scrypt$N$r$p$salt$hash`` (hex). 16-byte salt."""
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=_DKLEN)
    return f"scrypt${n}${r}${p}${salt.hex()}${dk.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True iff ``password`` matches ``stored``; the digest comparison is constant-time.

    A malformed ``stored`` value never matches (and never raises).
    """
    try:
        scheme, n, r, p, salt_hex, hash_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = bytes.fromhex(salt_hex)
        want = bytes.fromhex(hash_hex)
        dk = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, OverflowError, MemoryError):
        return False
    return hmac.compare_digest(dk, want)


@dataclass(frozen=True)
class Account:
    """A trading account: its name on the wire and its own risk overrides."""

    name: str
    account_id: int
    max_order_notional_minor: int = 0  # 0 = no account limit


@dataclass(frozen=True)
class Login:
    """A login: credentials, its session name, the accounts it may trade, session options."""

    username: str
    password_hash: str
    session: str
    accounts: frozenset[str]
    throttle_per_second: int = 5000
    cancel_on_disconnect: bool = False
    admin: bool = False


@dataclass
class AccessConfig:
    """Accounts and logins, by name."""

    accounts: dict[str, Account] = field(default_factory=dict)
    logins: dict[str, Login] = field(default_factory=dict)

    def authenticate(self, username: str, password: str) -> Login | None:
        """The login if the credentials are right, else None.

        An unknown user still costs one scrypt evaluation, so timing does not reveal
        which usernames exist.
        """
        login = self.logins.get(username)
        if login is None:
            verify_password(password, _DUMMY_HASH)
            return None
        return login if verify_password(password, login.password_hash) else None


_DUMMY_HASH = "scrypt$1024$8$1$" + "00" * 16 + "$" + "00" * 32


def _printable(text: str, width: int, what: str) -> str:
    if not text or len(text) > width or not all(0x21 <= ord(c) <= 0x7E for c in text):
        raise FlopexError(f"{what} {text!r}: need 1-{width} printable ASCII characters, no spaces")
    return text


def parse_access(data: object, source: str = "<access>") -> AccessConfig:
    """Validate an access document (already parsed YAML) into an :class:`AccessConfig`."""
    if not isinstance(data, dict):
        raise FlopexError(f"{source}: expected a mapping with 'accounts' and 'logins'")
    cfg = AccessConfig()
    for i, a in enumerate(data.get("accounts") or []):
        where = f"{source}: accounts[{i}]"
        if not isinstance(a, dict) or "name" not in a:
            raise FlopexError(f"{where}: needs a 'name'")
        name = _printable(str(a["name"]), 16, f"{where}.name")
        if name in cfg.accounts:
            raise FlopexError(f"{where}.name: duplicate account {name!r}")
        notional = a.get("max_order_notional", 0) or 0
        cfg.accounts[name] = Account(name, len(cfg.accounts) + 1, money_to_minor(str(notional)))
    for i, lg in enumerate(data.get("logins") or []):
        where = f"{source}: logins[{i}]"
        if not isinstance(lg, dict):
            raise FlopexError(f"{where}: expected a mapping")
        for key in ("username", "password_hash"):
            if key not in lg:
                raise FlopexError(f"{where}: missing '{key}'")
        user = _printable(str(lg["username"]), 6, f"{where}.username")
        if user in cfg.logins:
            raise FlopexError(f"{where}.username: duplicate login {user!r}")
        session = _printable(str(lg.get("session") or user.upper()), 10, f"{where}.session")
        accounts = frozenset(str(x) for x in (lg.get("accounts") or []))
        for acct in accounts:
            if acct not in cfg.accounts:
                raise FlopexError(f"{where}.accounts: unknown account {acct!r}")
        throttle = int(lg.get("throttle_per_second", 5000))
        if throttle < 1:
            raise FlopexError(f"{where}.throttle_per_second: must be >= 1")
        if not str(lg["password_hash"]).startswith("scrypt$"):
            raise FlopexError(f"{where}.password_hash: not a scrypt hash (use --hash-password)")
        cfg.logins[user] = Login(
            user,
            str(lg["password_hash"]),
            session,
            accounts,
            throttle,
            bool(lg.get("cancel_on_disconnect", False)),
            bool(lg.get("admin", False)),
        )
    sessions = [lg.session for lg in cfg.logins.values()]
    if len(set(sessions)) != len(sessions):
        raise FlopexError(f"{source}: two logins share a session name")
    return cfg


def load_access(path: str | Path) -> AccessConfig:
    """Read and validate an access file; FlopexError names the file and the bad entry."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise FlopexError(f"{p}: cannot read access file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise FlopexError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_access(data, str(p))


def demo_access(n: int = 2**10) -> tuple[AccessConfig, dict[str, str]]:
    """Demo logins ``alice``/``bob`` (accounts ``ALICE``/``BOB``) and ``admin``, with passwords.

    Used by ``flopex serve`` when no access file is given; ``n`` is the scrypt cost.
    """
    passwords = {"alice": "alice-pw", "bob": "bob-pw", "admin": "admin-pw"}
    doc = {
        "accounts": [{"name": "ALICE"}, {"name": "BOB"}],
        "logins": [
            {
                "username": user,
                "password_hash": hash_password(pw, n=n),
                "accounts": [] if user == "admin" else [user.upper()],
                "admin": user == "admin",
            }
            for user, pw in passwords.items()
        ],
    }
    return parse_access(doc, "<demo>"), passwords
