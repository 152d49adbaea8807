"""Trading sessions driven by the schedule: pre-open, open, close, DAY expiry, contract expiry.

The gateway applies ``exchange.schedule`` transitions as ordinary sequenced commands
(``Gateway.apply_transitions``); here they are fed directly (no wall clock).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.calendar import contract_for_symbol
from contracts.registry import load_products
from exchange.gateway import Gateway
from exchange.protocol import messages as m
from exchange.protocol.codes import RejectCode, WireCancelReason, WireTradingState
from exchange.schedule import Transition, transitions_to_commands
from exchange.session import Session
from exchange.venue import build_gateway

from .conftest import ACCESS, H100F27, H100Z26, TRADE_DATE


def _gateway(tmp_path: Path) -> tuple[Gateway, Session]:
    gw = build_gateway(ACCESS, TRADE_DATE, data_dir=tmp_path, engine="reference")
    s = gw.session_for(ACCESS.logins["alice"])
    gw.send_initial_status(s)
    return gw, s


def _messages(s: Session) -> list:
    return [m.decode_outbound(f[3:]) for f in s.replay_from(1)]


def _enter(
    gw: Gateway,
    s: Session,
    token: int,
    iid: int = H100Z26,
    tif: str = "0",
    side: str = "B",
    account: str = "ALICE",
) -> object:
    order = m.EnterOrder(token, iid, ord(side), ord("L"), ord(tif), 2800, 1, account=account)
    gw.on_message(s, m.encode_inbound(order))
    gw.flush()
    return next(x for x in reversed(_messages(s)) if getattr(x, "token", None) == token)


def _apply(gw: Gateway, *kinds: tuple[str, int]) -> None:
    ts = [Transition(1000 + i, iid, i, kind) for i, (kind, iid) in enumerate(kinds)]
    gw.apply_transitions(transitions_to_commands(ts))


def test_pre_open_is_published_and_nothing_trades_before_the_open(tmp_path: Path) -> None:
    # Arrange: alice and bob would cross at 2.800
    gw, s = _gateway(tmp_path)
    b = gw.session_for(ACCESS.logins["bob"])
    gw.send_initial_status(b)
    # Act
    _apply(gw, ("PRE_OPEN", H100Z26))
    _enter(gw, s, 1)
    _enter(gw, b, 1, side="S", account="BOB")
    in_pre_open = [x for x in _messages(s) + _messages(b) if isinstance(x, m.Executed)]
    _apply(gw, ("OPEN", H100Z26))
    _enter(gw, s, 2)
    _enter(gw, b, 2, side="S", account="BOB")
    # Assert
    states = [x.state for x in _messages(s) if isinstance(x, m.TradingStatus)
              and x.instrument_id == H100Z26]  # fmt: skip
    assert states[-2:] == [WireTradingState.PRE_OPEN, WireTradingState.TRADING]
    assert in_pre_open == []
    assert any(isinstance(x, m.Executed) for x in _messages(s))


@pytest.mark.parametrize(("tif", "expires"), [("0", True), ("1", False)])
def test_session_close_expires_day_orders_only(tmp_path: Path, tif: str, expires: bool) -> None:
    # Arrange
    gw, s = _gateway(tmp_path)
    _enter(gw, s, 1, tif=tif)
    # Act
    _apply(gw, ("CLOSED", H100Z26), ("SESSION_CLOSE", H100Z26))
    # Assert
    gone = [x for x in _messages(s) if isinstance(x, m.Canceled) and x.token == 1]
    assert bool(gone) == expires
    if expires:
        assert gone[0].reason == WireCancelReason.SESSION_END
    assert gw.status[H100Z26] == 0 and not gw.closed  # other instruments still trade


def test_expiry_cancels_good_till_cancel_orders_and_the_contract_stays_closed(
    tmp_path: Path,
) -> None:
    # Arrange
    gw, s = _gateway(tmp_path)
    _enter(gw, s, 1, tif="1")
    # Act
    _apply(gw, ("CLOSED", H100Z26), ("SESSION_CLOSE", H100Z26), ("EXPIRE", H100Z26))
    late = _enter(gw, s, 2)
    # Assert
    assert any(isinstance(x, m.Canceled) and x.token == 1 for x in _messages(s))
    assert isinstance(late, m.Rejected) and late.reason == RejectCode.MARKET_CLOSED


def test_the_day_closes_when_every_instrument_has_closed(tmp_path: Path) -> None:
    # Arrange
    gw, _s = _gateway(tmp_path)
    # Act
    _apply(gw, *[(k, iid) for iid in gw.contracts for k in ("CLOSED", "SESSION_CLOSE")])
    # Assert
    assert gw.closed
    assert (tmp_path / "close" / f"{TRADE_DATE.isoformat()}.csv").exists()


def test_transitions_for_instruments_not_listed_today_are_ignored(tmp_path: Path) -> None:
    # Arrange
    gw, s = _gateway(tmp_path)
    before = len(_messages(s))
    # Act
    _apply(gw, ("PRE_OPEN", 999_999))
    # Assert
    assert len(_messages(s)) == before and gw.status[H100F27] == 2


def test_an_order_for_a_contract_past_its_last_trading_day_is_rejected_with_a_reason(
    tmp_path: Path,
) -> None:
    # Arrange: H100V26 stopped trading at the end of October 2026
    gw, s = _gateway(tmp_path)
    expired = contract_for_symbol("H100V26", load_products()).instrument_id
    # Act
    reply = _enter(gw, s, 1, iid=expired)
    # Assert
    assert isinstance(reply, m.Rejected) and reply.reason == RejectCode.CONTRACT_EXPIRED


def test_serve_with_the_clock_schedule_publishes_the_scheduled_status(tmp_path: Path) -> None:
    # Arrange: today's trading day by the wall clock
    import asyncio
    import datetime as dt
    import signal
    import subprocess
    import sys
    import time

    from contracts.calendar import BusinessCalendar, contract_for_instrument_id
    from exchange.client import OrderClient
    from exchange.protocol.engine_map import STATUS_TO_WIRE
    from exchange.schedule import status_at

    today = dt.datetime.now(dt.UTC).date()
    if not BusinessCalendar.default().is_business_day(today):
        pytest.skip("the clock schedule is tested on business days")
    proc = subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", "serve", "--port", "0", "--engine", "reference",
         "--data-dir", str(tmp_path / "d"), "--trade-date", today.isoformat(),
         "--schedule", "clock", "--no-market-data", "--journal-sync", "off"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = ""
        while "listening on" not in line:
            line = proc.stdout.readline()
            assert line, "flopex serve did not start"
        port = int(line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])

        async def statuses() -> dict[int, int]:
            c = OrderClient("127.0.0.1", port, "alice", "alice-pw")
            await c.connect()
            await asyncio.sleep(0.3)
            await c.close()
            out: dict[int, int] = {}
            for x in c.messages:
                if isinstance(x, m.TradingStatus):
                    out[x.instrument_id] = x.state
            return out

        # Act
        got = asyncio.run(statuses())
        now = time.time_ns()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    # Assert: every listed instrument shows its scheduled state (transitions may have
    # happened during the test only at an exact boundary, which is tolerated)
    products = load_products()
    want = {
        iid: STATUS_TO_WIRE[int(status_at(contract_for_instrument_id(iid, products), now))]
        for iid in got
    }
    assert got and sum(got[i] != want[i] for i in got) <= len(got) // 10


@pytest.mark.parametrize("engine", ["reference", "numba"])
def test_the_opening_auction_fills_pre_open_orders_and_the_feed_shows_the_iop(
    tmp_path: Path, engine: str
) -> None:
    # Arrange: a gateway whose feed publisher collects what it publishes
    from exchange.bookbuilder import BookBuilder
    from exchange.marketdata import FeedPublisher, FeedSink
    from exchange.protocol import soupbintcp as soup

    gw = build_gateway(ACCESS, TRADE_DATE, data_dir=tmp_path, engine=engine)
    pub, builder = FeedPublisher(session="T"), BookBuilder()

    class Sink(FeedSink):
        def deliver(self, blob: bytes, next_seq: int) -> None:
            for _, payload in soup.FrameDecoder().feed(blob):
                builder.apply_payload(payload)

    blob, _ = pub.snapshot_packets()
    for _, payload in soup.FrameDecoder().feed(blob):
        builder.apply_payload(payload)
    pub.sinks.append(Sink())
    gw.sequencer.event_listeners.append(pub.publish_events)
    a, b = gw.session_for(ACCESS.logins["alice"]), gw.session_for(ACCESS.logins["bob"])
    # Act: crossing orders in pre-open, then the open
    _apply(gw, ("PRE_OPEN", H100Z26))
    gw.sequencer.publish()
    _enter(gw, a, 1)  # buy 1 @ 2.800
    _enter(gw, b, 1, side="S", account="BOB")  # sell 1 @ 2.800
    gw.sequencer.publish()
    iop = builder.book(H100Z26).indicative
    _apply(gw, ("OPEN", H100Z26))
    gw.sequencer.publish()
    # Assert: accepted and resting in pre-open, the IOP published, one auction fill
    assert isinstance(_messages(a)[0], m.Accepted) and isinstance(_messages(b)[0], m.Accepted)
    assert iop is not None and iop[:2] == (2800, 1)
    fills = [x for x in _messages(a) + _messages(b) if isinstance(x, m.Executed)]
    assert [(x.price, x.quantity) for x in fills] == [(2800, 1), (2800, 1)]
    assert fills[0].match_id == fills[1].match_id
    assert [(t.price, t.qty, t.aggressor_side) for t in builder.trades] == [(2800, 1, 0)]
