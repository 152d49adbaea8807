"""A hand-computable data directory for the batch tests (files written as the exchange does).

Index: every June 2026 business day's H100 fixing is 2.800 + 0.002 x (k - 1) for the k-th
fixing day (five providers quoting the same price), so the June average is exactly 2.820;
H200 is 3.000 and the token index 11.25 throughout.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from clearing.methodology import DEFAULT_MODEL_WEIGHTS
from contracts.calendar import BusinessCalendar
from tests.clearing.helpers import close_ns, contract

CAL = BusinessCalendar.default()
JUNE = CAL.business_days(dt.date(2026, 6, 1), dt.date(2026, 6, 30))
TL_HEADER = (
    "trade_date,seq,ts_ns,match_id,symbol,instrument_id,account,side,price_ticks,price,"
    "quantity,aggressor\n"
)
CLOSE_HEADER = (
    "trade_date,symbol,instrument_id,close_ts_ns,best_bid_ticks,best_bid_qty,best_ask_ticks,"
    "best_ask_qty\n"
)


def h100_fixing_micros(day: dt.date) -> int:
    """The scenario's H100 fixing in millionths (constant 2.800 before June)."""
    k = JUNE.index(day) if day in JUNE else 0
    return 2_800_000 + 2_000 * k


def write_quotes(data_dir: Path, start: dt.date, end: dt.date) -> None:
    day = start
    while day <= end:
        ts = f"{day.isoformat()}T12:00:00Z"
        h100 = h100_fixing_micros(day)
        lines = ["timestamp,provider,item,price,volume"]
        for p in range(5):
            lines.append(f"{ts},prov-{p},H100,{h100 // 1_000_000}.{h100 % 1_000_000:06d},100")
            lines.append(f"{ts},prov-{p},H200,3.000,100")
        for model in DEFAULT_MODEL_WEIGHTS:
            lines.append(f"{ts},api-{model},tokens/{model}/input,5.00,")
            lines.append(f"{ts},api-{model},tokens/{model}/output,30.00,")
        path = data_dir / "index" / f"{day.isoformat()}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        day += dt.timedelta(days=1)


def write_day(
    data_dir: Path,
    day: dt.date,
    fills: list[tuple[str, str, str, int, int, int]],
    book: dict[str, tuple[int, int]] | None = None,
) -> None:
    """fills: (symbol, buyer, seller, price_ticks, qty, seconds_before_close)."""
    rows = [TL_HEADER]
    seq = 0
    for m, (sym, buyer, seller, px, qty, before) in enumerate(fills, start=1):
        c = contract(sym)
        ts = close_ns(c, day) - before * 1_000_000_000
        price = c.product.format_price(px)
        for acct, side, ag in ((buyer, "B", "Y"), (seller, "S", "N")):
            seq += 1
            rows.append(
                f"{day},{seq},{ts},{m},{sym},{c.instrument_id},{acct},{side},{px},{price},"
                f"{qty},{ag}\n"
            )
    (data_dir / "tradelog").mkdir(parents=True, exist_ok=True)
    (data_dir / "tradelog" / f"{day}.csv").write_text("".join(rows))
    lines = [CLOSE_HEADER]
    for sym, (bid, ask) in (book or {}).items():
        c = contract(sym)
        lines.append(f"{day},{sym},{c.instrument_id},{close_ns(c, day)},{bid},3,{ask},4\n")
    (data_dir / "close").mkdir(parents=True, exist_ok=True)
    (data_dir / "close" / f"{day}.csv").write_text("".join(lines))


D1, D2, D3 = dt.date(2026, 6, 26), dt.date(2026, 6, 29), dt.date(2026, 6, 30)


def build(data_dir: Path) -> Path:
    """Three days to the expiry of H100M26 (see tests/clearing/test_batch.py)."""
    write_quotes(data_dir, dt.date(2026, 5, 31), D3)
    write_day(
        data_dir,
        D1,
        [("H100M26", "A", "B", 2800, 3, 60), ("H100M26", "C", "B", 2810, 2, 30)],
        {"H100M26": (2790, 2815)},
    )
    write_day(data_dir, D2, [], {"H100M26": (2700, 2900)})
    write_day(data_dir, D3, [])
    return data_dir
