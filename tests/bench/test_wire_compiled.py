"""The compiled-round floor of ``bench.wire_compiled`` speaks the real wire format: its
replies decode with the protocol's own decoder and carry the engine's results."""

from __future__ import annotations

import numpy as np

from bench.wire_compiled import compiled_round
from exchange.engine.abi import COMMAND_DTYPE, EVENT_DTYPE, event_words
from exchange.engine.book import MatchingEngine
from exchange.engine.config import InstrumentConfig
from exchange.protocol import messages as m
from exchange.protocol import soupbintcp as soup

IID = 4242


def _round(state: dict, data: bytes) -> tuple[int, list]:
    """(engine commands the round made, its replies decoded)."""
    nc, w = compiled_round(
        np.frombuffer(data, np.uint8), state["cmds"], state["words"], *state["arrays"],
        state["out"], state["tok_oid"], state["tok_at"], 1_000,
    )  # fmt: skip
    out = bytes(state["out"][:w])
    packets = soup.FrameDecoder().feed(out)
    assert all(ptype == 0x53 for ptype, _ in packets)  # Sequenced Data only
    return nc, [m.decode_outbound(payload) for _, payload in packets]


def test_enter_then_cancel_replies_decode_as_accepted_and_canceled() -> None:
    # Arrange
    eng = MatchingEngine([InstrumentConfig(IID, 1, 100_000)], max_orders=64)
    state = {
        "cmds": np.zeros(64, COMMAND_DTYPE),
        "words": event_words(np.zeros(256, EVENT_DTYPE)),
        "arrays": eng.state.arrays(),
        "out": np.zeros(1 << 16, np.uint8),
        "tok_oid": np.zeros(64, np.int64),
        "tok_at": np.zeros(64, np.int64),
    }
    order = m.EnterOrder(7, IID, 0x42, 0x4C, 0x30, 1234, 5, account="A")
    # Act
    n_enter, (acc,) = _round(state, soup.unsequenced(m.encode_inbound(order)))
    n_cancel, (cxl,) = _round(state, soup.unsequenced(m.encode_inbound(m.CancelOrder(7))))
    # Assert
    assert (n_enter, n_cancel) == (1, 1)
    assert isinstance(acc, m.Accepted)
    assert (acc.token, acc.instrument_id, acc.side, acc.price, acc.quantity) == (
        7, IID, 0x42, 1234, 5,
    )  # fmt: skip
    assert acc.order_id == 1 << 32  # a fresh engine's first order: generation 1, slot 0
    assert isinstance(cxl, m.Canceled)
    assert (cxl.token, cxl.instrument_id, cxl.side, cxl.quantity) == (7, IID, 0x42, 5)
    assert eng.live_orders() == 0
