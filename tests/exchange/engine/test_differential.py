"""Differential test: the numba kernel and the reference book agree on everything.

Hypothesis drives both books with the same random command streams — every command type,
order type, time in force, self-match instruction, edge prices (band and daily-limit
edges, off-band), edge quantities, stale and foreign order ids, status changes — and
requires identical event streams, identical book snapshots and valid internal state
after every batch. Pre-open sequences (orders resting crossed, cancels, replaces, sweeps and
reference changes in pre-open, indicative prices) end in the opening auction. The kernel
runs with a tiny event buffer so that pausing and resuming mid-command (an auction
included) is exercised all the time.

Default profile: 800 random streams of up to 50 steps (~40 s, part of ``make test``); the
``slow`` variant runs 3,000 streams of up to 80 steps (~4 min).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from exchange.engine.abi import COMMAND_DTYPE, CmdType, EventType, event_tuples
from exchange.engine.book import MatchingEngine
from exchange.engine.config import InstrumentConfig
from exchange.engine.reference import ReferenceBook

A, B = 12612, 22612
CONFIGS = (
    InstrumentConfig(
        instrument_id=A,
        min_price_ticks=1,
        max_price_ticks=40,
        reference_price_ticks=20,
        price_limit_ticks=12,
        min_qty=1,
        max_qty=10,
        matching_algorithm=0,
        default_smp=1,
        market_protection_ticks=3,
    ),
    InstrumentConfig(
        instrument_id=B,
        min_price_ticks=100,
        max_price_ticks=229,  # more than two bitmap words
        reference_price_ticks=160,
        price_limit_ticks=0,
        min_qty=1,
        max_qty=10,
        matching_algorithm=1,
        default_smp=2,
        market_protection_ticks=70,
    ),
)
MAX_ORDERS = 24

small = st.integers(0, 3)
instrument = st.sampled_from([A, A, A, B, B])

#: One field at a time is made invalid (or pushed to an edge) in about a fifth of orders.
BAD_VALUES: dict[str, list[int]] = {
    "instrument_id": [999, 0],
    "side": [0, 3],
    "order_type": [0, 5],
    "tif": [0, 6],
    "qty": [0, 11, -1],
    "display_qty": [-1, 11],
    "min_qty": [-1, 11],
    "smp": [4, 7],
    "price": [0, 1, 7, 8, 9, 31, 32, 33, 40, 41, 99, 100, 229, 230],
    "stop_price": [0, 1, 8, 32, 33, 40, 41, 99, 100, 229, 230],
}


def price_for(iid: int) -> st.SearchStrategy[int]:
    if iid == B:
        return st.integers(157, 163)
    return st.integers(16, 24)


@st.composite
def new_cmd(draw: st.DrawFn) -> dict[str, int]:
    iid = draw(instrument)
    qty = draw(st.integers(1, 10))
    tif_bias = draw(st.integers(0, 3))
    otype = draw(st.sampled_from([1] * 12 + [2, 2, 3, 3, 4, 4]))
    tif = draw(st.sampled_from([1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 5]))
    iceberg = otype in (1, 4) and tif <= 3 and iid == A and draw(st.integers(0, 2)) == 0
    c = {
        "cmd_type": CmdType.NEW,
        "instrument_id": iid,
        "side": draw(st.sampled_from([1, 2])),
        "order_type": otype,
        "tif": tif,
        "qty": qty,
        "price": draw(price_for(iid)),
        "stop_price": draw(price_for(iid)),
        "display_qty": draw(st.integers(1, qty)) if iceberg else 0,
        "min_qty": draw(st.integers(1, qty)) if tif_bias == 0 else 0,
        "expire_time": draw(st.integers(-2, 40)),
        "account": draw(st.integers(1, 3)),
        "smp_group": draw(st.sampled_from([0, 0, 0, 1, 2])),
        "smp": draw(st.sampled_from([0, 0, 0, 1, 2, 3])),
        "flags": draw(st.sampled_from([0] * 7 + [1])),
        "user_ref": draw(st.integers(0, 2**64 - 1)),
        "client_token": draw(st.integers(0, 2**64 - 1)),
    }
    if draw(st.integers(0, 4)) == 0:
        field = draw(st.sampled_from(sorted(BAD_VALUES)))
        c[field] = draw(st.sampled_from(BAD_VALUES[field]))
    return c


class Differential(RuleBasedStateMachine):
    """Both books, one command stream."""

    @initialize()
    def setup(self) -> None:
        self.ref = ReferenceBook(CONFIGS, max_orders=MAX_ORDERS)
        self.eng = MatchingEngine(CONFIGS, max_orders=MAX_ORDERS, event_capacity=24)
        self.ts = 0
        self.orders: dict[int, int] = {}  # order id -> account (from ACCEPTED)

    def run(self, cmds: list[dict[str, int]]) -> None:
        arr = np.zeros(len(cmds), dtype=COMMAND_DTYPE)
        for k, c in enumerate(cmds):
            self.ts += 1
            arr[k]["timestamp"] = self.ts
            for f, v in c.items():
                arr[k][f] = v
        ev_ref = self.ref.process(arr)
        ev_eng = self.eng.process(arr)
        assert event_tuples(ev_eng) == event_tuples(ev_ref)
        for e in ev_ref[ev_ref["event_type"] == EventType.ACCEPTED]:
            self.orders[int(e["order_id"])] = int(e["account"])

    def known(self, draw_index: int, foreign: bool) -> tuple[int, int]:
        """An order id seen before (live ones 3 times in 4) and its owner (or a stranger)."""
        if not self.orders:
            return (1 << 32) | 3, 1
        live = sorted(o.order_id for o in self.ref.live.values())
        ids = live if live and draw_index % 4 else sorted(self.orders)
        oid = ids[draw_index % len(ids)]
        acct = self.orders[oid]
        return oid, (acct % 3) + 1 if foreign else acct

    @rule(cmds=st.lists(new_cmd(), min_size=1, max_size=6))
    def new_orders(self, cmds: list[dict[str, int]]) -> None:
        self.run(cmds)

    @rule(cmds=st.lists(new_cmd(), min_size=1, max_size=6))
    def more_new_orders(self, cmds: list[dict[str, int]]) -> None:
        self.run(cmds)

    @rule(k=st.integers(0, 10**6), foreign=st.booleans(), bogus=st.sampled_from([0, 0, 0, 1]))
    def cancel(self, k: int, foreign: bool, bogus: int) -> None:
        oid, acct = self.known(k, foreign and k % 4 == 0)
        if bogus:
            oid = [0, -5, (7 << 32) | 2, MAX_ORDERS + 3][k % 4]
        self.run([{"cmd_type": CmdType.CANCEL, "order_id": oid, "account": acct}])

    @rule(
        k=st.integers(0, 10**6),
        qty=st.one_of(st.integers(1, 10), st.sampled_from([0, 11])),
        dp=st.integers(-4, 4),
        ds=st.integers(-3, 3),
        same=st.booleans(),
    )
    def replace(self, k: int, qty: int, dp: int, ds: int, same: bool) -> None:
        oid, acct = self.known(k, k % 7 == 0)
        snap_price, snap_stop = self._order_prices(oid)
        price = snap_price if same else snap_price + dp
        self.run(
            [
                {
                    "cmd_type": CmdType.REPLACE,
                    "order_id": oid,
                    "account": acct,
                    "qty": qty,
                    "price": price,
                    "stop_price": snap_stop + ds,
                }
            ]
        )

    def _order_prices(self, oid: int) -> tuple[int, int]:
        slot = oid & 0xFFFFFFFF
        o = self.ref.live.get(slot)
        if o is None:
            return 20, 20
        return o.price, o.stop_price

    @rule(iid=st.sampled_from([0, A, B, 999]), account=small)
    def mass_cancel(self, iid: int, account: int) -> None:
        self.run([{"cmd_type": CmdType.MASS_CANCEL, "instrument_id": iid, "account": account}])

    @rule(iid=st.sampled_from([0, A, B]))
    def session_close(self, iid: int) -> None:
        self.run([{"cmd_type": CmdType.SESSION_CLOSE, "instrument_id": iid}])

    @rule(jump=st.integers(0, 10))
    def expire_gtd(self, jump: int) -> None:
        self.ts += jump
        self.run([{"cmd_type": CmdType.EXPIRE_GTD}])

    @rule(
        iid=st.sampled_from([A, B, 999]),
        status=st.sampled_from([0, 1, 3, 4]),
        reopen=st.sampled_from([True, True, True, False]),
    )
    def set_status(self, iid: int, status: int, reopen: bool) -> None:
        cmds = [{"cmd_type": CmdType.SET_STATUS, "instrument_id": iid, "status": status}]
        cmds.append({"cmd_type": CmdType.NEW, "instrument_id": iid, "side": 1, "qty": 1})
        if reopen:
            cmds.append({"cmd_type": CmdType.SET_STATUS, "instrument_id": iid, "status": 2})
        self.run(cmds)

    @rule(
        iid=st.sampled_from([A, A, B]),
        cmds=st.lists(new_cmd(), min_size=1, max_size=8),
        end=st.sampled_from([2, 2, 2, 1, 3]),
    )
    def pre_open_then_auction(self, iid: int, cmds: list[dict[str, int]], end: int) -> None:
        """Pre-open, orders that may cross (rest unmatched), then usually the auction."""
        pre = [{"cmd_type": CmdType.SET_STATUS, "instrument_id": iid, "status": 1}]
        self.run(
            pre + cmds + [{"cmd_type": CmdType.SET_STATUS, "instrument_id": iid, "status": end}]
        )

    @rule(iid=st.sampled_from([A, B]))
    def pre_open(self, iid: int) -> None:
        """Leave the instrument in pre-open so that later rules act on it there."""
        self.run([{"cmd_type": CmdType.SET_STATUS, "instrument_id": iid, "status": 1}])

    @rule()
    def reopen_all(self) -> None:
        self.run(
            [{"cmd_type": CmdType.SET_STATUS, "instrument_id": i, "status": 2} for i in (A, B)]
        )

    @rule(iid=st.sampled_from([A, B]), price=st.sampled_from([0, 15, 20, 25, 155, 160, 165, 230]))
    def set_reference(self, iid: int, price: int) -> None:
        self.run([{"cmd_type": CmdType.SET_REFERENCE, "instrument_id": iid, "price": price}])

    @rule(t=st.sampled_from([0, 9, 255]))
    def unknown_command(self, t: int) -> None:
        self.run([{"cmd_type": t}])

    @invariant()
    def same_books(self) -> None:
        if not hasattr(self, "ref"):
            return
        assert self.eng.snapshot() == self.ref.snapshot()
        self.eng.validate()
        self.ref.validate()


Differential.TestCase.settings = settings(
    max_examples=800,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestDifferential = Differential.TestCase


class SlowDifferential(Differential):
    pass


SlowDifferential.TestCase.settings = settings(
    max_examples=3000,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestDifferentialSlow = pytest.mark.slow(SlowDifferential.TestCase)
