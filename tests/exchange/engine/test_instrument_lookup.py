"""The kernel finds an instrument by id through hash buckets kept in ``INST``.

Arrange / Act / Assert: many listed months (and random ids) in one engine; an order on
each is accepted on that instrument, an unknown id is rejected, and snapshots from before
the lookup columns existed still find their instruments.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.engine import kernel as K
from exchange.engine.abi import EventType, RejectReason, Side
from exchange.engine.book import MatchingEngine
from exchange.engine.config import InstrumentConfig
from exchange.engine.state import EngineState, inst_bucket, link_instrument_buckets

LISTED = [p * 10000 + 2600 + m for p in (1, 2, 3) for m in range(1, 13)]  # 36 months


def _cfg(iid: int) -> InstrumentConfig:
    return InstrumentConfig(instrument_id=iid, min_price_ticks=1, max_price_ticks=200)


def _accepted_on(eng: MatchingEngine, iid: int) -> int:
    ev = eng.new_order(iid, Side.BUY, 1, 50)
    assert int(ev["event_type"][0]) == EventType.ACCEPTED, ev
    return int(ev["instrument_id"][0])


@pytest.mark.parametrize("n", [1, 2, 3, 36])
def test_every_listed_instrument_is_found(n: int) -> None:
    eng = MatchingEngine([_cfg(i) for i in LISTED[:n]])
    for iid in LISTED[:n]:
        assert _accepted_on(eng, iid) == iid
    assert eng.live_orders() == n


def test_unknown_instrument_is_rejected_with_many_listed() -> None:
    eng = MatchingEngine([_cfg(i) for i in LISTED])
    ev = eng.new_order(99999, Side.BUY, 1, 50)
    assert int(ev["event_type"][0]) == EventType.REJECTED
    assert int(ev["reason"][0]) == RejectReason.UNKNOWN_INSTRUMENT


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=70, unique=True), st.data())
def test_random_ids_are_all_found(ids: list[int], data: st.DataObject) -> None:
    eng = MatchingEngine([_cfg(i) for i in ids], max_orders=128)
    probe = data.draw(st.sampled_from(ids))
    assert _accepted_on(eng, probe) == probe
    missing = data.draw(st.integers(1, 2**32 - 1).filter(lambda x: x not in ids))
    ev = eng.new_order(missing, Side.BUY, 1, 50)
    assert int(ev["reason"][0]) == RejectReason.UNKNOWN_INSTRUMENT


def test_buckets_chain_every_row_from_its_hash() -> None:
    eng = MatchingEngine([_cfg(i) for i in LISTED])
    inst = eng.state.INST
    for r, iid in enumerate(LISTED):
        walk = int(inst[inst_bucket(iid, len(LISTED)), K.I_BUCKET])
        seen = []
        while walk >= 0:
            seen.append(walk)
            walk = int(inst[walk, K.I_CHAIN])
        assert r in seen


def test_snapshot_without_lookup_columns_still_finds_instruments() -> None:
    eng = MatchingEngine([_cfg(i) for i in LISTED])
    arrays = eng.state.to_arrays()
    arrays["INST"] = arrays["INST"][:, : K.I_BUCKET]  # as written before the hash columns
    restored = MatchingEngine([_cfg(i) for i in LISTED], state=EngineState.from_arrays(arrays))
    assert _accepted_on(restored, LISTED[-1]) == LISTED[-1]
    expect = np.array(restored.state.INST)
    link_instrument_buckets(expect)
    assert np.array_equal(expect, restored.state.INST)
