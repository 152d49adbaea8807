"""The kernel facade: batching, event-buffer limits, determinism, state save/restore."""

from __future__ import annotations

import numpy as np
import pytest

from contracts.errors import FlopexError
from exchange.engine import kernel as K
from exchange.engine.abi import (
    COMMAND_DTYPE,
    CmdType,
    EventType,
    OrderType,
    Side,
    TimeInForce,
    event_tuples,
    event_words,
)
from exchange.engine.book import MatchingEngine, events_to_structs
from exchange.engine.config import InstrumentConfig, instrument_config_from_spec
from exchange.engine.reference import ReferenceBook

from .helpers import FIFO_CFG, IID, PRO_RATA_CFG, kinds

CONFIGS = (FIFO_CFG, PRO_RATA_CFG)


def random_stream(n: int, seed: int) -> np.ndarray:
    """A seeded stream of adds, crosses, cancels (by guessed ids) and replaces."""
    rng = np.random.default_rng(seed)
    c = np.zeros(n, dtype=COMMAND_DTYPE)
    c["timestamp"] = np.arange(1, n + 1)
    c["instrument_id"] = IID
    kind = rng.integers(0, 10, n)
    c["cmd_type"] = np.where(kind < 7, CmdType.NEW, np.where(kind < 9, CmdType.CANCEL, 3))
    c["side"] = rng.integers(1, 3, n)
    c["order_type"] = OrderType.LIMIT
    c["tif"] = TimeInForce.GTC
    c["qty"] = rng.integers(1, 20, n)
    c["price"] = rng.integers(90, 111, n)
    c["account"] = rng.integers(1, 6, n)
    c["order_id"] = (1 << 32) | rng.integers(0, 256, n)
    return c


def test_batch_events_equal_the_reference_books() -> None:
    cmds = random_stream(3000, seed=1)
    eng = MatchingEngine(CONFIGS, max_orders=512)
    ref = ReferenceBook(CONFIGS, max_orders=512)
    assert event_tuples(eng.process(cmds)) == event_tuples(ref.process(cmds))
    assert eng.snapshot() == ref.snapshot()


def test_tiny_event_buffer_gives_the_same_events_as_a_large_one() -> None:
    cmds = random_stream(2000, seed=2)
    small = MatchingEngine(CONFIGS, max_orders=512, event_capacity=1)
    large = MatchingEngine(CONFIGS, max_orders=512, event_capacity=1 << 16)
    assert event_tuples(small.process(cmds)) == event_tuples(large.process(cmds))
    assert small.state_digest() == large.state_digest()


def test_mass_cancel_larger_than_the_event_buffer_loses_nothing() -> None:
    eng = MatchingEngine(CONFIGS, max_orders=512, event_capacity=16)
    for p in range(60, 140):
        eng.new_order(IID, Side.BUY if p < 100 else Side.SELL, 1, p if p < 100 else p + 1)
    ev = eng.mass_cancel()
    assert kinds(ev).count("CANCELLED") == 80
    assert ev[-1]["event_type"] == EventType.MASS_CANCEL_DONE and ev[-1]["qty"] == 80


def test_same_commands_give_the_same_events_and_digest() -> None:
    cmds = random_stream(1500, seed=3)
    a, b = MatchingEngine(CONFIGS, 256), MatchingEngine(CONFIGS, 256)
    assert event_tuples(a.process(cmds)) == event_tuples(b.process(cmds))
    assert a.state_digest() == b.state_digest()


def test_digest_changes_when_the_book_changes() -> None:
    eng = MatchingEngine(CONFIGS, 64)
    before = eng.state_digest()
    eng.new_order(IID, Side.BUY, 1, 100)
    assert eng.state_digest() != before


def test_restored_state_continues_exactly_like_the_original(tmp_path) -> None:
    cmds = random_stream(2000, seed=4)
    eng = MatchingEngine(CONFIGS, 256)
    eng.process(cmds[:1000])
    path = str(tmp_path / "engine.npz")
    eng.save(path)
    restored = MatchingEngine.load(CONFIGS, path)
    assert restored.state_digest() == eng.state_digest()
    assert event_tuples(restored.process(cmds[1000:])) == event_tuples(eng.process(cmds[1000:]))


def _pre_open_then_open() -> tuple[np.ndarray, np.ndarray]:
    """Crossed pre-open orders (IOP published), then the opening auction."""
    pre = np.zeros(5, dtype=COMMAND_DTYPE)
    pre["instrument_id"] = IID
    pre[0]["cmd_type"], pre[0]["status"] = CmdType.SET_STATUS, 1  # PRE_OPEN
    for k, (side, price, acct) in enumerate([(1, 102, 1), (2, 99, 2), (1, 100, 3), (2, 101, 4)]):
        r = pre[k + 1]
        r["cmd_type"], r["side"], r["price"], r["account"] = CmdType.NEW, side, price, acct
        r["order_type"], r["tif"], r["qty"] = OrderType.LIMIT, TimeInForce.GTC, 3
    opening = np.zeros(1, dtype=COMMAND_DTYPE)
    opening["cmd_type"], opening["instrument_id"], opening["status"] = CmdType.SET_STATUS, IID, 2
    return pre, opening


def test_state_restored_in_pre_open_opens_exactly_like_the_original() -> None:
    pre, opening = _pre_open_then_open()
    eng = MatchingEngine(CONFIGS, 64)
    eng.process(pre)
    restored = MatchingEngine.from_arrays(CONFIGS, eng.to_arrays())
    ev = eng.process(opening)
    assert event_tuples(restored.process(opening)) == event_tuples(ev)
    assert "TRADE" in kinds(ev)


def test_indicative_price_reads_the_last_published_one() -> None:
    pre, opening = _pre_open_then_open()
    eng = MatchingEngine(CONFIGS, 64)
    ev = eng.process(pre)
    last = ev[ev["event_type"] == EventType.INDICATIVE_PRICE][-1]
    assert eng.indicative_price(IID) == (
        int(last["price"]),
        int(last["qty"]),
        int(last["side"]),
        int(last["leaves"]),
    )
    eng.process(opening)
    assert eng.indicative_price(IID) == (0, 0, 0, 0)


def test_indicative_price_of_an_unknown_instrument_is_a_one_line_error() -> None:
    with pytest.raises(FlopexError, match="instrument_id: 999"):
        MatchingEngine(CONFIGS, 64).indicative_price(999)


def test_snapshot_from_before_the_auction_columns_still_loads() -> None:
    eng = MatchingEngine(CONFIGS, 64)
    eng.process(random_stream(300, seed=9))
    arrays = eng.to_arrays()
    arrays["INST"] = arrays["INST"][:, :21]  # the layout before INDICATIVE_PRICE existed
    restored = MatchingEngine.from_arrays(CONFIGS, arrays)
    assert restored.state_digest() == eng.state_digest()


def _rows_with_instrument_field(o: np.ndarray) -> np.ndarray:
    """Order rows in the 16-field layout used until 2026-12 (64 bytes: the instrument in
    its own field 2, the flags in field 3, -1 instrument for a free slot)."""
    flags = o[:, K.F_FLAGS].astype(np.int64)
    old = np.zeros((o.shape[0], 16), dtype=np.int32)
    old[:, :2] = o[:, :2]
    old[:, 2] = flags >> K.INST_SHIFT
    old[:, 3] = np.where(flags >= 0, flags & ((1 << K.INST_SHIFT) - 1), 0)
    old[:, 4:] = o[:, K.F_FLAGS + 1 :]
    return old


def test_snapshot_with_64_byte_order_rows_still_loads_and_continues_alike() -> None:
    cmds = random_stream(600, seed=11)
    eng = MatchingEngine(CONFIGS, 64)
    eng.process(cmds[:300])
    arrays = eng.to_arrays()
    arrays["O"] = _rows_with_instrument_field(arrays["O"])
    restored = MatchingEngine.from_arrays(CONFIGS, arrays)
    assert restored.state_digest() == eng.state_digest()
    assert event_tuples(restored.process(cmds[300:])) == event_tuples(eng.process(cmds[300:]))


def test_loading_a_damaged_snapshot_is_a_one_line_error(tmp_path) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a snapshot")
    with pytest.raises(FlopexError, match="engine snapshot"):
        MatchingEngine.load(CONFIGS, str(path))


def test_one_call_methods_return_structs_convertible_events() -> None:
    eng = MatchingEngine(CONFIGS, 64)
    ev = events_to_structs(eng.new_order(IID, Side.SELL, 3, 101, account=9, client_token=5))
    assert [e.event_type for e in ev] == [EventType.ACCEPTED, EventType.LEVEL]
    assert (ev[0].account, ev[0].client_token, ev[0].qty) == (9, 5, 3)


def test_commands_of_the_wrong_dtype_are_refused() -> None:
    eng = MatchingEngine(CONFIGS, 64)
    with pytest.raises(FlopexError, match="COMMAND_DTYPE"):
        eng.process(np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_price_ticks", 500),
        ("min_qty", 0),
        ("default_smp", 0),
        ("matching_algorithm", 7),
        ("instrument_id", 0),
    ],
)
def test_bad_instrument_config_names_the_problem(field: str, value: int) -> None:
    fields = {"instrument_id": 1, "min_price_ticks": 1, "max_price_ticks": 100}
    fields[field] = value
    with pytest.raises(FlopexError):
        MatchingEngine([InstrumentConfig(**fields)], 8)


def test_duplicate_instrument_ids_are_refused() -> None:
    with pytest.raises(FlopexError, match="duplicate"):
        MatchingEngine([FIFO_CFG, FIFO_CFG], 8)


def test_config_from_the_h100_spec_uses_ticks_limits_and_protection() -> None:
    from contracts.registry import load_products

    spec = load_products()["H100"]
    cfg = instrument_config_from_spec(spec, 12612, reference_price_ticks=3000)
    assert (cfg.min_price_ticks, cfg.max_price_ticks) == (1, 20000)
    assert cfg.price_limit_ticks == 300  # 10 % of 3000 ticks
    assert cfg.market_protection_ticks == 50
    assert cfg.max_qty == 500


@pytest.mark.parametrize("capacity", [24, 1 << 14])
def test_returned_events_never_change_and_cannot_be_written(monkeypatch, capacity) -> None:
    # Arrange: small arenas, so the run below starts several new ones
    monkeypatch.setattr("exchange.engine.book.ARENA_EVENTS", 64)
    cmds = random_stream(600, seed=7)
    eng = MatchingEngine(CONFIGS, max_orders=512, event_capacity=capacity)
    ref = ReferenceBook(CONFIGS, max_orders=512)
    # Act: one call per command, keeping every result
    kept = [(eng.process(cmds[k : k + 1]), ref.process(cmds[k : k + 1])) for k in range(600)]
    # Assert: each result still holds exactly its own command's events, and is read-only
    for ours, theirs in kept:
        assert event_tuples(ours) == event_tuples(theirs)
        assert not ours.flags.writeable
        with pytest.raises(ValueError):
            ours["qty"][:] = 0


def test_an_arena_nobody_holds_is_started_over_and_a_held_one_never_is(monkeypatch) -> None:
    # Arrange: small arenas; the fills and the arenas made are counted
    from exchange.engine import book

    monkeypatch.setattr(book, "ARENA_EVENTS", 64)
    cmds = random_stream(600, seed=12)
    eng = MatchingEngine(CONFIGS, max_orders=512, event_capacity=24)
    ref = ReferenceBook(CONFIGS, max_orders=512)
    made, fills = [0], [0]

    def words(arena: np.ndarray) -> np.ndarray:
        made[0] += 1
        return event_words(arena)

    new_arena = eng._new_arena

    def counted() -> None:
        fills[0] += 1
        new_arena()

    monkeypatch.setattr(book, "event_words", words)
    monkeypatch.setattr(eng, "_new_arena", counted)
    # Act 1: every result dropped before the next command
    for k in range(300):
        ours, theirs = eng.process(cmds[k : k + 1]), ref.process(cmds[k : k + 1])
        assert event_tuples(ours) == event_tuples(theirs)
        del ours
    # Assert 1: every call started the one arena over, so it never filled
    assert fills[0] == 0 and made[0] == 0 and eng._pos < 24
    # Act 2: every result kept
    fills[0] = 0
    kept = [(eng.process(cmds[k : k + 1]), ref.process(cmds[k : k + 1])) for k in range(300, 600)]
    # Assert 2: a fresh arena at every fill, and no kept result ever changed
    assert made[0] == fills[0] > 5
    for ours, theirs in kept:
        assert event_tuples(ours) == event_tuples(theirs)


def test_a_batch_bigger_than_the_arena_returns_every_event() -> None:
    cmds = random_stream(3000, seed=8)
    eng = MatchingEngine(CONFIGS, max_orders=512, event_capacity=1 << 17)
    ref = ReferenceBook(CONFIGS, max_orders=512)
    ours = eng.process(cmds)
    assert event_tuples(ours) == event_tuples(ref.process(cmds))
    assert not ours.flags.writeable


def test_read_only_commands_reuse_the_one_compiled_kernel() -> None:
    # Arrange: commands decoded from bytes, as journal replay has them (read-only)
    from exchange.engine import kernel as K

    cmds = random_stream(200, seed=9)
    frozen = np.frombuffer(cmds.tobytes(), COMMAND_DTYPE)
    assert not frozen.flags.writeable
    # Act
    ours = MatchingEngine(CONFIGS, max_orders=512).process(frozen)
    # Assert: same events as from writable commands, and no read-only specialization
    assert event_tuples(ours) == event_tuples(MatchingEngine(CONFIGS, max_orders=512).process(cmds))
    assert all(sig[0].mutable for sig in K.process.overloads)


def test_a_state_array_the_handle_cannot_describe_is_refused() -> None:
    from exchange.engine.entry import make_handle

    eng = MatchingEngine(CONFIGS, max_orders=64)
    eng.state.LVT = eng.state.LVT[::2]  # a strided view: its memory is not one block
    with pytest.raises(ValueError, match="engine state array LVT: not a C-contiguous 1-d int64"):
        make_handle(eng.state)
