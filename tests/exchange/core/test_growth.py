"""The core's order table and token table grow between kernel calls: a gateway that starts
with room for 4 orders takes 300, with cancels between, and answers exactly as the Python
gateway does."""

from __future__ import annotations

from exchange.core import kernel as K
from exchange.core.gateway import CoreGateway
from exchange.core.tables import CoreTables
from exchange.protocol import messages as m
from exchange.protocol import soupbintcp as soup
from exchange.venue import build_gateway
from tests.exchange.gateway.conftest import ACCESS, H100Z26, TRADE_DATE


def _small_core() -> tuple:
    """The Python gateway and a core whose tables start with room for 4 orders (and a
    16-slot token table)."""
    py = build_gateway(ACCESS, TRADE_DATE, engine="numba", compiled=False)
    core = build_gateway(ACCESS, TRADE_DATE, engine="numba")
    assert isinstance(core, CoreGateway)
    for g in (py, core):
        g.sequencer.clock = lambda: 1_000
    small = CoreTables.build(ACCESS, core.risk.checker, core.mono_clock(), orders=4)
    core.tables = core.risk.tables = small  # type: ignore[attr-defined]
    core._Gv = memoryview(small.G)
    core._tabs = None
    assert len(small.ORD) == 4 and len(small.TOKH) == 16
    return py, core


def test_tables_grow_and_the_replies_stay_the_python_gateways() -> None:
    # Arrange: the core with room for 4 orders (and a 16-slot token table)
    py, core = _small_core()
    pairs = [(g.session_for(ACCESS.logins["alice"]), g) for g in (py, core)]
    # Act: 300 resting orders in batches of 30, every third one canceled a batch later
    for batch in range(10):
        for s, g in pairs:
            for k in range(30):
                tok = batch * 30 + k + 1
                order = m.EnterOrder(
                    tok, H100Z26, ord("B"), ord("L"), ord("0"), 2700 + k, 1, account="ALICE"
                )
                g.on_message(s, m.encode_inbound(order))
                if batch and k % 3 == 0:
                    g.on_message(s, m.encode_inbound(m.CancelOrder(tok - 30)))
            g.flush()
    # Assert: it grew, every order is there, and the two gateways sent the same bytes
    assert len(core.tables.ORD) >= 256 and len(core.tables.TOKH) >= 512
    assert int(core.tables.G[K.G_ORDERS]) == len(py.orders) == 300 - 9 * 10
    (ps, _), (cs, _) = pairs
    assert cs.replay_from(1) == ps.replay_from(1)


def test_tables_grow_under_the_one_call_path() -> None:
    # Arrange: as above, the core reading whole reads through on_read
    py, core = _small_core()
    ps, cs = (g.session_for(ACCESS.logins["alice"]) for g in (py, core))
    taken = 0
    # Act: 300 resting orders in reads of 30, every third one canceled a read later
    for batch in range(10):
        msgs = []
        for k in range(30):
            tok = batch * 30 + k + 1
            order = m.EnterOrder(
                tok, H100Z26, ord("B"), ord("L"), ord("0"), 2700 + k, 1, account="ALICE"
            )
            msgs.append(m.encode_inbound(order))
            if batch and k % 3 == 0:
                msgs.append(m.encode_inbound(m.CancelOrder(tok - 30)))
        for data in msgs:
            py.on_message(ps, data)
        py.flush()
        taken += core.on_read(cs, b"".join(soup.unsequenced(d) for d in msgs), 512)
    # Assert: every read went the one-call way, the tables grew, the bytes are the same
    assert taken == 10
    assert len(core.tables.ORD) >= 256 and len(core.tables.TOKH) >= 512
    assert int(core.tables.G[K.G_ORDERS]) == len(py.orders) == 300 - 9 * 10
    assert cs.replay_from(1) == ps.replay_from(1)
