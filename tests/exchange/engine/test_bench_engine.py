"""pytest-benchmark suite for the engine: add, cancel, and a sweeping aggressive order.

Marked ``slow`` (run with ``make test-all`` or ``pytest -m slow --benchmark-only``); the
assertions check behaviour only — timings are reported by pytest-benchmark, never asserted.
"""

from __future__ import annotations

import numpy as np
import pytest

from exchange.engine.abi import COMMAND_DTYPE, CmdType, EventType, Side
from exchange.engine.book import MatchingEngine
from exchange.engine.config import InstrumentConfig

pytestmark = pytest.mark.slow

CFG = InstrumentConfig(instrument_id=12612, min_price_ticks=1, max_price_ticks=20_000)


def _adds(n: int, side: int, first_price: int, step: int) -> np.ndarray:
    c = np.zeros(n, dtype=COMMAND_DTYPE)
    c["cmd_type"] = CmdType.NEW
    c["instrument_id"] = 12612
    c["side"] = side
    c["order_type"] = 1
    c["tif"] = 2
    c["qty"] = 1
    c["account"] = np.arange(n) % 500 + 1
    c["price"] = first_price + step * (np.arange(n) % 50)
    return c


def test_bench_passive_add_batch(benchmark) -> None:
    cmds = _adds(4096, Side.BUY, 9_000, -1)

    def run() -> np.ndarray:
        eng = MatchingEngine([CFG], max_orders=8192)
        return eng.process(cmds)

    ev = benchmark(run)
    assert int((ev["event_type"] == EventType.ACCEPTED).sum()) == 4096


def test_bench_cancel_batch(benchmark) -> None:
    def setup():  # type: ignore[no-untyped-def]
        eng = MatchingEngine([CFG], max_orders=8192)
        acc = eng.process(_adds(4096, Side.BUY, 9_000, -1))
        acc = acc[acc["event_type"] == EventType.ACCEPTED]
        x = np.zeros(len(acc), dtype=COMMAND_DTYPE)
        x["cmd_type"] = CmdType.CANCEL
        x["order_id"] = acc["order_id"]
        x["account"] = acc["account"]
        return (eng, x), {}

    ev = benchmark.pedantic(lambda eng, x: eng.process(x), setup=setup, rounds=50)
    assert int((ev["event_type"] == EventType.CANCELLED).sum()) == 4096


def test_bench_sweeping_aggressive_order(benchmark) -> None:
    def setup():  # type: ignore[no-untyped-def]
        eng = MatchingEngine([CFG], max_orders=8192)
        eng.process(_adds(2000, Side.SELL, 10_001, 1))  # 40 orders on each of 50 levels
        return (eng,), {}

    def sweep(eng: MatchingEngine) -> np.ndarray:
        return eng.new_order(12612, Side.BUY, 2000, 10_050, account=999)

    ev = benchmark.pedantic(sweep, setup=setup, rounds=50)
    assert int((ev["event_type"] == EventType.TRADE).sum()) == 4000
