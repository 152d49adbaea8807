"""Client side of the market data feed: message decoder, book builder, and a TCP client.

:class:`BookBuilder` applies feed messages (snapshot and incrementals) and keeps, per
instrument, the aggregated book (price -> visible quantity, order count), the trading
state, the reference and the last settlement price, and the trades seen. It checks the
feed sequence: an incremental older than expected is a duplicate and ignored (replays
overlap), a newer one is a gap and raises :class:`SequenceGap` — the caller recovers by
logging in again with :attr:`BookBuilder.next_seq` (replay) or 0 (snapshot).

:class:`FeedClient` does exactly that over TCP: it connects, logs in (snapshot when it
has no state, replay from its next sequence number otherwise), feeds the builder, and on
a disconnect or a gap reconnects and recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from exchange.engine.abi import InstrumentStatus, Side
from exchange.marketdata import LAYOUT_BY_TYPE
from exchange.protocol import soupbintcp as soup

_STATE_OF_CHAR = {
    ord("P"): int(InstrumentStatus.PRE_OPEN),
    ord("T"): int(InstrumentStatus.OPEN),
    ord("H"): int(InstrumentStatus.HALTED),
    ord("C"): int(InstrumentStatus.CLOSED),
}
_SIDE_OF_CHAR = {ord("B"): int(Side.BUY), ord("S"): int(Side.SELL), ord("N"): 0}


class FeedDecodeError(ValueError):
    """A feed message that does not match its layout (names the type and length)."""


def decode(payload: bytes) -> tuple[int, tuple]:
    """One feed message -> ``(type byte, field tuple in layout order, type byte dropped)``.

    O(1): one ``unpack``. Raises :class:`FeedDecodeError` on an unknown type or length."""
    if not payload:
        raise FeedDecodeError("empty feed message")
    t = payload[0]
    lay = LAYOUT_BY_TYPE.get(t)
    if lay is None:
        raise FeedDecodeError(f"unknown feed message type {chr(t)!r}")
    if len(payload) != lay.size:
        raise FeedDecodeError(f"{lay.title}: {len(payload)} bytes, expected {lay.size}")
    return t, lay.struct.unpack(payload)[1:]


class SequenceGap(Exception):
    """An incremental arrived with a sequence number above the expected one."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"feed gap: expected sequence {expected}, got {got}")
        self.expected = expected
        self.got = got


@dataclass
class Trade:
    seq: int
    timestamp: int
    instrument_id: int
    match_id: int
    price: int
    qty: int
    aggressor_side: int


@dataclass
class InstrumentBook:
    """The client's picture of one instrument."""

    status: int = int(InstrumentStatus.CLOSED)
    reference: int = 0
    settlement: int = 0
    settlement_date: int = 0
    bids: dict[int, tuple[int, int]] = field(default_factory=dict)
    asks: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: during pre-open: (indicative price or 0, matched qty, imbalance side or 0, imbalance)
    indicative: tuple[int, int, int, int] | None = None

    def levels(self, side: int) -> list[tuple[int, int, int]]:
        """``(price, qty, orders)`` best first (highest bid / lowest ask)."""
        book = self.bids if side == Side.BUY else self.asks
        return [(p, *book[p]) for p in sorted(book, reverse=side == Side.BUY)]

    def best(self, side: int) -> tuple[int, int] | None:
        lv = self.levels(side)
        return (lv[0][0], lv[0][1]) if lv else None


class BookBuilder:
    """Rebuilds every book from the feed. O(1) per incremental (dict update)."""

    def __init__(self, keep_trades: bool = True) -> None:
        self.books: dict[int, InstrumentBook] = {}
        self.next_seq = 0  # 0 = no state yet (needs a snapshot)
        self.trades: list[Trade] = []
        self.keep_trades = keep_trades
        self.snapshots_applied = 0
        self._pending: dict[int, InstrumentBook] | None = None
        self._pending_seq = 0

    @property
    def has_state(self) -> bool:
        return self.next_seq > 0

    def book(self, instrument_id: int) -> InstrumentBook:
        return self.books.setdefault(instrument_id, InstrumentBook())

    def apply_payload(self, payload: bytes) -> None:
        t, f = decode(payload)
        self.apply(t, f)

    def apply(self, t: int, f: tuple) -> None:
        """Apply one decoded message. Raises :class:`SequenceGap` on a missing incremental."""
        if t == 0x47:  # G snapshot begin
            self._pending = {}
            self._pending_seq = f[0]
            return
        if t == 0x49:  # I snapshot instrument
            if self._pending is not None:
                iid, state, ref, settle, sdate = f
                self._pending[iid] = InstrumentBook(_STATE_OF_CHAR[state[0]], ref, settle, sdate)
            return
        if t == 0x50:  # P snapshot level
            if self._pending is not None:
                iid, side, price, qty, orders = f
                b = self._pending.setdefault(iid, InstrumentBook())
                (b.bids if side == b"B" else b.asks)[price] = (qty, orders)
            return
        if t == 0x45:  # E snapshot end
            if self._pending is not None and f[0] == self._pending_seq:
                self.books = self._pending
                self.next_seq = f[0] + 1
                self.snapshots_applied += 1
            self._pending = None
            return
        seq = f[0]
        if self.next_seq == 0:
            return  # no state yet: wait for a snapshot
        if seq < self.next_seq:
            return  # duplicate (replay overlap)
        if seq > self.next_seq:
            raise SequenceGap(self.next_seq, seq)
        self.next_seq = seq + 1
        if t == 0x4C:  # L level update
            _, _ts, iid, side, price, qty, orders = f
            b = self.book(iid)
            book = b.bids if side == b"B" else b.asks
            if qty:
                book[price] = (qty, orders)
            else:
                book.pop(price, None)
        elif t == 0x54:  # T trade
            _, ts, iid, match_id, price, qty, aggr = f
            if self.keep_trades:
                self.trades.append(
                    Trade(seq, ts, iid, match_id, price, qty, _SIDE_OF_CHAR[aggr[0]])
                )
        elif t == 0x48:  # H trading status
            self.book(f[2]).status = _STATE_OF_CHAR[f[3][0]]
        elif t == 0x52:  # R reference
            self.book(f[2]).reference = f[3]
        elif t == 0x4F:  # O indicative opening price
            _, _ts, iid, price, matched, side, imbalance = f
            self.book(iid).indicative = (price, matched, _SIDE_OF_CHAR[side[0]], imbalance)
        elif t == 0x44:  # D daily settlement
            b = self.book(f[2])
            b.settlement_date = f[3]
            b.settlement = f[4]


class FeedClient:
    """A self-healing feed subscriber over TCP (asyncio).

    ``await client.sync(target_seq)`` reads until the builder has applied every message up
    to ``target_seq`` (reconnecting and recovering on a disconnect or a gap). Recovery:
    replay from ``builder.next_seq`` if the builder has state, else a snapshot.
    """

    def __init__(
        self, host: str, port: int, builder: BookBuilder | None = None, username: str = "feed"
    ) -> None:
        self.host = host
        self.port = port
        self.builder = builder or BookBuilder()
        self.username = username
        self.session = ""
        self.reconnects = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = soup.FrameDecoder()

    async def connect(self, force_snapshot: bool = False) -> None:
        """(Re)connect and log in: replay from ``next_seq`` or, without state, a snapshot."""
        await self.close()
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._decoder = soup.FrameDecoder()
        seq = 0 if force_snapshot or not self.builder.has_state else self.builder.next_seq
        session = self.session if seq else ""
        self._writer.write(soup.login_request(self.username, "", session, seq))
        await self._writer.drain()

    async def _read_some(self) -> bool:
        """Read one chunk and apply it; False when the connection ended."""
        assert self._reader is not None
        data = await self._reader.read(1 << 16)
        if not data:
            return False
        for ptype, payload in self._decoder.feed(data):
            if ptype == 0x53:  # S
                self.builder.apply_payload(payload)
            elif ptype == 0x41:  # A login accepted
                self.session, _ = soup.parse_login_accepted(payload)
            elif ptype == 0x4A:  # J rejected
                raise ConnectionError("feed login rejected")
            elif ptype == 0x5A:  # Z end of session
                return False
        return True

    async def sync(self, target_seq: int, timeout: float = 10.0) -> None:
        """Return once every message up to ``target_seq`` is applied (or raise TimeoutError)."""

        async def run() -> None:
            if self._reader is None:
                await self.connect()
            while self.builder.next_seq <= target_seq:
                try:
                    alive = await self._read_some()
                except SequenceGap:
                    alive = False
                except (ConnectionError, OSError):
                    alive = False
                if not alive:
                    self.reconnects += 1
                    await self.connect()

        await asyncio.wait_for(run(), timeout)

    async def close(self) -> None:
        w = self._writer
        self._reader = self._writer = None
        if w is not None:
            with contextlib.suppress(Exception):
                w.write(soup.LOGOUT_REQUEST_PACKET)
                w.close()
                await w.wait_closed()
