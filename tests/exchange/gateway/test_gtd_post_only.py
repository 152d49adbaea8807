"""GTD orders (expire time on the wire, expired by the gateway's EXPIRE_GTD) and post-only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exchange.datadir import DataDir
from exchange.gateway import Gateway
from exchange.journal import GatewayJournal, Journal, SyncPolicy
from exchange.protocol import messages as m
from exchange.protocol.codes import RejectCode, WireCancelReason
from exchange.session import Session
from exchange.venue import build_gateway, recover_venue

from .conftest import ACCESS, H100Z26, TRADE_DATE

HOUR = 3600 * 10**9


def _messages(s: Session) -> list:
    return [m.decode_outbound(f[3:]) for f in s.replay_from(1)]


def _send(gw: Gateway, s: Session, msg: m.InboundMessage) -> object:
    gw.on_message(s, m.encode_inbound(msg))
    gw.flush()
    return _messages(s)[-1]


def _order(token: int, price: int = 2800, side: str = "B", **kw: object) -> m.EnterOrder:
    return m.EnterOrder(token, H100Z26, ord(side), ord("L"), kw.pop("tif", ord("0")), price, 1,
                        account=kw.pop("account", "ALICE"), **kw)  # type: ignore[arg-type]  # fmt: skip


def _gtd(token: int, expire: int) -> m.EnterOrder:
    return _order(token, tif=ord("6"), expire_time=expire)


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return build_gateway(ACCESS, TRADE_DATE, data_dir=tmp_path, engine="reference")


def test_gtd_order_is_accepted_with_its_expire_time(gw: Gateway) -> None:
    s = gw.session_for(ACCESS.logins["alice"])
    expire = time.time_ns() + HOUR
    reply = _send(gw, s, _gtd(1, expire))
    assert isinstance(reply, m.Accepted) and reply.expire_time == expire


def test_gtd_order_is_canceled_when_its_time_comes(gw: Gateway) -> None:
    # Arrange: a GTD order and a GTC order
    s = gw.session_for(ACCESS.logins["alice"])
    expire = time.time_ns() + HOUR
    _send(gw, s, _gtd(1, expire))
    _send(gw, s, _order(2, tif=ord("1")))
    # Act
    early = gw.expire_due(expire - 1)
    due = gw.expire_due(expire)
    # Assert
    canceled = [x for x in _messages(s) if isinstance(x, m.Canceled)]
    assert (early, due) == (False, True)
    assert [(x.token, x.reason) for x in canceled] == [(1, WireCancelReason.SESSION_END)]
    assert gw.next_gtd_expiry() is None and 2 in s.orders


def test_gtd_expire_time_in_the_past_is_rejected(gw: Gateway) -> None:
    s = gw.session_for(ACCESS.logins["alice"])
    reply = _send(gw, s, _gtd(1, time.time_ns() - HOUR))
    assert isinstance(reply, m.Rejected) and reply.reason == RejectCode.INVALID_EXPIRE_TIME


@pytest.mark.parametrize(("price", "accepted"), [(2800, False), (2790, True)])
def test_post_only_order_never_takes_liquidity(gw: Gateway, price: int, accepted: bool) -> None:
    # Arrange: bob offers at 2.800
    b = gw.session_for(ACCESS.logins["bob"])
    _send(gw, b, _order(1, side="S", account="BOB"))
    a = gw.session_for(ACCESS.logins["alice"])
    # Act
    reply = _send(gw, a, _order(1, price, post_only=m.POST_ONLY_YES))
    # Assert
    if accepted:
        assert isinstance(reply, m.Accepted) and reply.post_only == m.POST_ONLY_YES
    else:
        assert isinstance(reply, m.Rejected)
        assert reply.reason == RejectCode.POST_ONLY_WOULD_TRADE
    assert not any(isinstance(x, m.Executed) for x in _messages(a))


def test_gtd_expiry_survives_a_restart(tmp_path: Path) -> None:
    # Arrange: a journaled gateway with a GTD order, stopped without a snapshot
    dd = DataDir.open(tmp_path / "d", create=True)
    gw = build_gateway(ACCESS, TRADE_DATE, data_dir=dd.root, engine="numba")
    gj = GatewayJournal(gw, dd, SyncPolicy("off"))
    expire = time.time_ns() + HOUR
    _send(gw, gw.session_for(ACCESS.logins["alice"]), _gtd(1, expire))
    gj.journal.close()
    # Act: recover into a new gateway, then the time comes
    j = Journal(dd.journal_dir, SyncPolicy("off"))
    rec = recover_venue(dd, j)
    back = build_gateway(ACCESS, TRADE_DATE, data_dir=dd.root, engine=rec.engine)
    GatewayJournal(back, dd, SyncPolicy("off"), journal=j, last_note=rec.day, gseq=rec.gseq)
    back.restore_state(rec.image)
    due = back.expire_due(expire)
    # Assert
    s = back.sessions["ALICE"]
    assert due and isinstance(_messages(s)[-1], m.Canceled) and not s.orders
