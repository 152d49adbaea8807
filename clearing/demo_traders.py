"""Simulated market participants for ``flopex demo`` (SYNTHETIC order flow).

Each business day a handful of firms trade over the real wire protocol against a running
``flopex serve``: two market makers quote the front contracts around a fair value taken
from the previous day's index fixing; a neocloud operator sells GPU-hours forward
(hedging capacity it will rent out), an inference company buys token and H200 exposure
(hedging its compute bill), and a speculator sends market, stop and iceberg orders. The
flow is seeded, so a demo run is repeatable.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from exchange.client import OrderClient
from exchange.protocol import messages as m

#: (username, password, account, session) of each simulated participant.
PARTICIPANTS: dict[str, tuple[str, str]] = {
    "mm1": ("MAKER1", "market maker"),
    "mm2": ("MAKER2", "market maker"),
    "ncld": ("NEOCLD", "neocloud operator (sells GPU-hours forward)"),
    "infr": ("INFRCO", "inference company (buys compute forward)"),
    "spec": ("SPEC01", "speculator"),
}
ADMIN = "admin"


def password_for(user: str) -> str:
    """Demo password of a simulated user (the access file stores only scrypt hashes)."""
    return f"{user}-pw"


@dataclass
class DayFlow:
    """What one simulated day sent and got back."""

    orders: int = 0
    fills: int = 0
    rejects: int = 0
    reject_reasons: dict[int, int] = field(default_factory=dict)


class Participants:
    """The connected sessions of all simulated users on one gateway."""

    def __init__(self, host: str, port: int) -> None:
        self.clients = {
            u: OrderClient(host, port, u, password_for(u)) for u in [*PARTICIPANTS, ADMIN]
        }

    async def connect(self) -> None:
        await asyncio.gather(*(c.connect() for c in self.clients.values()))

    async def reconnect(self) -> None:
        """Log in again after a gateway restart; each session replays what it missed."""
        await asyncio.gather(*(c.reconnect() for c in self.clients.values()))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients.values()))

    def acked(self, user: str, token: int) -> bool:
        c = self.clients[user]
        return any(
            getattr(msg, "token", None) == token
            and isinstance(msg, m.Accepted | m.Rejected | m.Replaced)
            for msg in c.messages
        )

    async def settle_down(self, timeout: float = 5.0) -> None:
        """Wait until every session has an answer for every token it sent."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            pending = 0
            for c in self.clients.values():
                answered = {
                    msg.token
                    for msg in c.messages
                    if isinstance(msg, m.Accepted | m.Rejected | m.Replaced | m.MassCancelDone)
                }
                pending += sum(1 for t in range(1, c.last_token + 1) if t not in answered)
            if pending == 0:
                return
            await asyncio.sleep(0.02)

    def flow(self, since: dict[str, int]) -> DayFlow:
        """Count the messages each session received since the indexes in ``since``."""
        out = DayFlow()
        for user, c in self.clients.items():
            for msg in c.messages[since.get(user, 0) :]:
                if isinstance(msg, m.Accepted):
                    out.orders += 1
                elif isinstance(msg, m.Executed):
                    out.fills += 1
                elif isinstance(msg, m.Rejected):
                    out.rejects += 1
                    out.reject_reasons[msg.reason] = out.reject_reasons.get(msg.reason, 0) + 1
        return out

    def marks(self) -> dict[str, int]:
        return {u: len(c.messages) for u, c in self.clients.items()}


def quote_book(p: Participants, fair: dict[int, int], rng: random.Random, levels: int = 3) -> None:
    """Both market makers quote ``levels`` prices a side around each fair value (ticks)."""
    for user, skew in (("mm1", 0), ("mm2", 1)):
        c = p.clients[user]
        account = PARTICIPANTS[user][0]
        for iid, f in fair.items():
            half = 2 + skew
            for k in range(levels):
                q = rng.randint(5, 25)
                c.enter(iid, "B", q, price=f - half - k, account=account)
                c.enter(iid, "S", q, price=f + half + k, account=account)


def hedge_and_speculate(
    p: Participants, fair: dict[int, int], rng: random.Random, by_product: dict[str, list[int]]
) -> None:
    """Aggressive flow that trades through the makers' quotes."""
    ncld, infr, spec = p.clients["ncld"], p.clients["infr"], p.clients["spec"]
    for iid in by_product.get("H100", [])[:2]:
        # The neocloud sells its next months' capacity: marketable limit, IOC.
        ncld.enter(iid, "S", rng.randint(5, 15), price=fair[iid] - 4, account="NEOCLD", tif="3")
        # An iceberg offer to work a larger hedge without showing it all.
        ncld.enter(iid, "S", 40, price=fair[iid] + 6, account="NEOCLD", display_quantity=10)
    for iid in by_product.get("H200", [])[:1] + by_product.get("TOKN", [])[:2]:
        infr.enter(iid, "B", rng.randint(5, 15), price=fair[iid] + 4, account="INFRCO", tif="3")
    for iid in list(fair)[:: max(1, len(fair) // 3)]:
        side = rng.choice("BS")
        spec.enter(iid, side, rng.randint(1, 6), account="SPEC01", order_type="M", tif="3")
        # A protective stop far from the market: rests as a stop order.
        stop_side = "S" if side == "B" else "B"
        stop = fair[iid] - 40 if stop_side == "S" else fair[iid] + 40
        spec.enter(iid, stop_side, 2, account="SPEC01", order_type="S", stop_price=stop, tif="0")


def closing_trades(p: Participants, fair: dict[int, int], rng: random.Random) -> None:
    """Trades into the closing window: the makers re-centre and cross small size."""
    for iid, f in fair.items():
        q = rng.randint(3, 8)
        p.clients["mm1"].enter(iid, "S", q, price=f, account="MAKER1")
        p.clients["mm2"].enter(iid, "B", q, price=f, account="MAKER2", tif="3")
