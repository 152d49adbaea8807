"""Daily settlement prices by the documented waterfall, and final settlement prices.

Tiers, in order (``docs/clearing.md``):

1. ``vwap`` — volume-weighted average price of the trades in the closing window
   ``[close - closing_window_seconds, close]`` if that volume reaches ``min_volume``;
2. ``mid`` — midpoint of the best bid and offer at the close if both sides exist and the
   spread is at most ``max_spread_ticks``;
3. ``theo`` — the index-based theoretical value: in the delivery month
   ``(sum of fixings so far + latest fixing x remaining fixing days) / total fixing days``;
   before it, the nearest month of the same product that settled on tier 1 or 2 today
   plus yesterday's calendar spread to it, else the latest fixing.

The result is rounded to a tick with the spec's rounding mode, then clamped to the daily
price limits around the previous settlement price (around the theoretical value on a
contract's first settlement, when there is no previous one). The final settlement price
is the average of the contract month's daily fixings, rounded to a tick, never clamped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from clearing.kernels import lookup, window_sums
from clearing.tradelog import NO_PRICE, CloseBook, TradeLog
from contracts.calendar import Contract
from contracts.errors import FlopexError
from contracts.units import INDEX_SCALE, decimal_to_scaled, div_round

TIERS = ("vwap", "mid", "theo", "final")


@dataclass(frozen=True)
class SettlementPrice:
    """A contract's settlement price in ticks, the tier that produced it and why."""

    instrument_id: int
    symbol: str
    ticks: int
    tier: str
    basis: str
    clamped: bool
    unclamped_ticks: int
    prev_ticks: int | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def tick_at_index_scale(contract: Contract) -> int:
    """The tick size as an int at INDEX_SCALE (``0.001 -> 1000``)."""
    return decimal_to_scaled(contract.product.tick_size, INDEX_SCALE, what="tick size")


def index_to_ticks(value_num: int, value_den: int, contract: Contract) -> int:
    """``(value_num / value_den)`` index units (INDEX_SCALE ints) -> ticks, spec rounding."""
    mode = contract.product.final_settlement.rounding
    return div_round(value_num, value_den * tick_at_index_scale(contract), mode)


def _fixing(fixings: Mapping[dt.date, int], day: dt.date, contract: Contract) -> int:
    if day not in fixings:
        raise FlopexError(
            f"{contract.symbol}: no {contract.product.underlying_index} fixing for {day}"
        )
    return fixings[day]


def theoretical_ticks(
    contract: Contract, day: dt.date, fixings: Mapping[dt.date, int]
) -> tuple[int, str]:
    """Index-based theoretical value of ``contract`` on ``day`` in ticks, and its basis.

    In the delivery month: ``(sum of fixings on fixing days <= day + latest fixing x
    remaining fixing days) / total fixing days``; before it: the latest fixing (``day``'s).
    Needs every fixing day's fixing up to ``day`` (FlopexError otherwise). O(fixing days).
    """
    latest = _fixing(fixings, day, contract)
    if (day.year, day.month) == (contract.year, contract.month):
        days = contract.fixing_days
        past = [d for d in days if d <= day]
        total = sum(_fixing(fixings, d, contract) for d in past)
        remaining = len(days) - len(past)
        ticks = index_to_ticks(total + latest * remaining, len(days), contract)
        return ticks, f"month average: {len(past)} fixings + latest x {remaining} remaining"
    return index_to_ticks(latest, 1, contract), "latest fixing"


def final_settlement_ticks(contract: Contract, fixings: Mapping[dt.date, int]) -> int:
    """Average of the fixings on all the contract month's fixing days, rounded per spec."""
    days = contract.fixing_days
    return index_to_ticks(sum(_fixing(fixings, d, contract) for d in days), len(days), contract)


def closing_window_stats(
    log: TradeLog,
    iids: np.ndarray,
    close_ts_ns: np.ndarray,
    window_s: np.ndarray,
    cidx: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per instrument in ``iids`` (sorted): volume and sum of price x quantity (ticks) of the
    trades (buy rows, so each fill counts once) in ``[close - window, close]``. ``cidx``
    (each row's index into ``iids``, -1 if absent) is computed if not given. O(rows)."""
    vol = np.zeros(iids.size, np.int64)
    notional = np.zeros(iids.size, np.int64)
    if len(log) == 0:
        return vol, notional
    if cidx is None:
        cidx = contract_index(iids, log.instrument_id)
    window_sums(
        cidx, log.side, log.ts_ns, log.quantity, log.price_ticks,
        np.ascontiguousarray(close_ts_ns, np.int64),
        np.ascontiguousarray(window_s, np.int64) * 1_000_000_000, vol, notional,
    )  # fmt: skip
    return vol, notional


def contract_index(iids: np.ndarray, instrument_id: np.ndarray) -> np.ndarray:
    """Each row's index into the sorted ``iids`` (-1 if absent), via a dense lookup table
    over instrument ids (ids are small: product x 10000 + yymm). O(rows)."""
    if instrument_id.shape[0] == 0:
        return np.zeros(0, np.int64)
    top = int(max(int(iids.max(initial=0)), int(instrument_id.max()))) + 1
    lut = np.full(top, -1, np.int64)
    lut[iids] = np.arange(iids.size)
    out = np.empty(instrument_id.shape[0], np.int64)
    lookup(lut, np.ascontiguousarray(instrument_id, np.int64), out)
    return out


def market_tier(
    contract: Contract, volume: int, notional: int, bid: int, ask: int
) -> tuple[int, str, str] | None:
    """Tier 1 or 2 if the market supports it: ``(ticks, tier, basis)``, else None."""
    ds = contract.product.daily_settlement
    mode = contract.product.final_settlement.rounding
    if volume >= ds.min_volume and volume > 0:
        return div_round(notional, volume, mode), "vwap", f"closing-window VWAP of {volume} lots"
    if bid != NO_PRICE and ask != NO_PRICE and 0 < ask - bid <= ds.max_spread_ticks:
        return div_round(bid + ask, 2, mode), "mid", f"bid/ask midpoint, spread {ask - bid} ticks"
    return None


def clamp_to_limits(contract: Contract, ticks: int, reference: int) -> int:
    """Clamp ``ticks`` to the daily price limits around ``reference`` (spec tier 0)."""
    lo, hi = contract.product.limit_band_ticks(reference)
    return min(max(ticks, lo), hi)


def settle_contracts(
    contracts: Sequence[Contract],
    day: dt.date,
    log: TradeLog,
    close: CloseBook,
    fixings: Mapping[str, Mapping[dt.date, int]],
    prev: Mapping[int, int],
    trade_cidx: np.ndarray | None = None,
) -> dict[int, SettlementPrice]:
    """Settlement prices of ``contracts`` on ``day`` (final price on a final settlement date).

    ``fixings`` maps index id -> date -> fixing (INDEX_SCALE ints); ``prev`` maps instrument
    id -> previous settlement ticks. Vectorised over trades; O(rows + contracts x fixing days).
    """
    ordered = sorted(contracts, key=lambda c: c.instrument_id)
    iids = np.array([c.instrument_id for c in ordered], np.int64)
    close_ts = np.zeros(iids.size, np.int64)
    bid = np.full(iids.size, NO_PRICE, np.int64)
    ask = np.full(iids.size, NO_PRICE, np.int64)
    for j, c in enumerate(ordered):
        r = close.row(c.instrument_id)
        if r is not None:
            close_ts[j] = close.close_ts_ns[r]
            bid[j], ask[j] = close.bid_ticks[r], close.ask_ticks[r]
        else:
            end = c.product.trading_hours.close_on(day)
            close_ts[j] = int(end.timestamp()) * 1_000_000_000 if end else 0
    window = np.array(
        [c.product.daily_settlement.closing_window_seconds for c in ordered], np.int64
    )
    vol, notional = closing_window_stats(log, iids, close_ts, window, trade_cidx)

    market: dict[int, tuple[int, str, str]] = {}
    for j, c in enumerate(ordered):
        if c.final_settlement_date == day:
            continue
        got = market_tier(c, int(vol[j]), int(notional[j]), int(bid[j]), int(ask[j]))
        if got is not None:
            market[c.instrument_id] = got

    out: dict[int, SettlementPrice] = {}
    for c in ordered:
        iid = c.instrument_id
        p_prev = prev.get(iid)
        index_fixings = fixings.get(c.product.underlying_index, {})
        if c.final_settlement_date == day:
            ticks = final_settlement_ticks(c, index_fixings)
            basis = f"average of {len(c.fixing_days)} daily fixings"
            out[iid] = SettlementPrice(iid, c.symbol, ticks, "final", basis, False, ticks, p_prev)
            continue
        theo, theo_basis = theoretical_ticks(c, day, index_fixings)
        if iid in market:
            raw, tier, basis = market[iid]
        else:
            raw, tier, basis = theo, "theo", theo_basis
            if not c.is_spot_month(day) and p_prev is not None:
                nb = _neighbour_spread(c, ordered, market, prev)
                if nb is not None:
                    raw, basis = nb
        reference = p_prev if p_prev is not None else theo
        ticks = clamp_to_limits(c, raw, reference)
        out[iid] = SettlementPrice(iid, c.symbol, ticks, tier, basis, ticks != raw, raw, p_prev)
    return out


def _neighbour_spread(
    c: Contract,
    ordered: Sequence[Contract],
    market: Mapping[int, tuple[int, str, str]],
    prev: Mapping[int, int],
) -> tuple[int, str] | None:
    """Nearest same-product month settled on tier 1/2 today plus yesterday's spread to it."""
    me = c.year * 12 + c.month
    best: tuple[int, Contract] | None = None
    for o in ordered:
        if o.product.code != c.product.code or o.instrument_id not in market:
            continue
        if o.instrument_id not in prev:
            continue
        dist = abs(o.year * 12 + o.month - me)
        if dist and (best is None or dist < best[0]):
            best = (dist, o)
    if best is None:
        return None
    o = best[1]
    spread = prev[c.instrument_id] - prev[o.instrument_id]
    return market[o.instrument_id][0] + spread, f"{o.symbol} settlement + spread {spread} ticks"
