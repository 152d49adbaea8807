"""``CoreGateway.warm_up`` compiles every kernel the gateway will call, with the argument
types it will call them with: serving afterwards compiles nothing (a compile inside the
event loop stalls every session for seconds on a cold cache)."""

from __future__ import annotations

from exchange.core import kernel as K
from exchange.core.gateway import CoreGateway
from exchange.protocol import messages as m
from exchange.venue import build_gateway
from tests.exchange.gateway.conftest import ACCESS, H100Z26, TRADE_DATE

KERNELS = (
    K.decode_batch, K.apply_events, K.note_orders, K.stamp, K.risk_check, K._tok_put,
    K._tok_del, K.tok_find, K._working,
)  # fmt: skip


def test_serving_after_warm_up_compiles_nothing_new() -> None:
    # Arrange
    gw = build_gateway(ACCESS, TRADE_DATE, engine="numba")
    assert isinstance(gw, CoreGateway)
    gw.warm_up()
    before = {f.__name__: len(f.overloads) for f in KERNELS}
    alice = gw.session_for(ACCESS.logins["alice"])
    bob = gw.session_for(ACCESS.logins["bob"])
    admin = gw.session_for(ACCESS.logins["admin"])
    enter = [
        (alice, m.EnterOrder(1, H100Z26, ord("B"), ord("L"), ord("0"), 2800, 5, account="ALICE")),
        (bob, m.EnterOrder(1, H100Z26, ord("S"), ord("L"), ord("0"), 2800, 2, account="BOB")),
        (alice, m.ReplaceOrder(1, 2, 2801, 4)),
        (alice, m.EnterOrder(3, H100Z26, ord("B"), ord("L"), ord("0"), 2790, 1, account="ALICE")),
        (alice, m.MassCancel(4)),
        (admin, m.KillSwitch(1, "BOB", ord("B"))),
    ]
    # Act
    for s, msg in enter:
        gw.on_message(s, m.encode_inbound(msg))
        gw.flush()
    gw.cancel_all(bob, ord("D"))
    gw.flush()
    # Assert: the flow did everything, and no kernel got a new specialization
    kinds = [type(m.decode_outbound(p[3:])).__name__ for p in alice.replay_from(1)]
    assert kinds.count("Replaced") == 1 and "MassCancelDone" in kinds and "Executed" in kinds
    assert {f.__name__: len(f.overloads) for f in KERNELS} == before
