"""The market data feed, server side: aggregated books, sequenced messages, TCP fan-out.

:class:`FeedPublisher` is fed the engine's events (LEVEL, TRADE, STATUS, REFERENCE) after
every batch, plus daily settlement prices. It keeps the aggregated book of every
instrument (price -> visible quantity and order count per side), numbers every outgoing
message with the feed sequence number, and keeps a bounded history for replay.

:class:`FeedServer` serves it over TCP with SoupBinTCP 4.0 framing on its own port
(``docs/marketdata.md`` has every byte):

* Login with requested sequence number ``0`` (or a session name that is not the current
  one, or a number older than the history): a **snapshot** — Snapshot Begin, one Snapshot
  Instrument per instrument, one Snapshot Level per price level, Snapshot End — then the
  live incrementals from the snapshot's sequence number on. Snapshot messages sit outside
  the sequence (like Nasdaq GLIMPSE), incrementals carry their feed sequence number.
* Login with sequence number ``N`` still in the history: **replay** from ``N``, then live.
* A consumer that cannot keep up never slows the publisher: live fan-out is one
  non-blocking ``write`` per connection per batch; a connection whose send buffer passes
  ``max_buffer`` bytes is dropped (logged). It recovers by logging in again with its next
  sequence number (replay) or 0 (snapshot). Replays are paced by the connection's own
  flow control, never by the publisher.

Everything runs on the gateway's event loop; the publisher is plain synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from exchange import feed_kernel
from exchange.engine.abi import EVENT_DTYPE, EVENT_RECORD, EventType, InstrumentStatus, Side
from exchange.packetlog import PacketLog
from exchange.protocol import soupbintcp as soup
from exchange.protocol.layout import F, Layout

log = logging.getLogger("flopex.marketdata")

# --- message layouts (big-endian; docs/marketdata.md prints the same tables) -----------
LEVEL_UPDATE = Layout(
    "Level Update",
    b"L",
    (
        F("message_type", "char"),
        F("seq", "uint64"),
        F("timestamp", "int64"),
        F("instrument_id", "uint32"),
        F("side", "char"),
        F("price", "int64"),
        F("quantity", "uint64"),
        F("orders", "uint32"),
    ),
)
TRADE = Layout(
    "Trade",
    b"T",
    (
        F("message_type", "char"),
        F("seq", "uint64"),
        F("timestamp", "int64"),
        F("instrument_id", "uint32"),
        F("match_id", "uint64"),
        F("price", "int64"),
        F("quantity", "uint64"),
        F("aggressor_side", "char"),
    ),
)
TRADING_STATUS = Layout(
    "Trading Status",
    b"H",
    (
        F("message_type", "char"),
        F("seq", "uint64"),
        F("timestamp", "int64"),
        F("instrument_id", "uint32"),
        F("state", "char"),
    ),
)
REFERENCE_PRICE = Layout(
    "Reference Price",
    b"R",
    (
        F("message_type", "char"),
        F("seq", "uint64"),
        F("timestamp", "int64"),
        F("instrument_id", "uint32"),
        F("price", "int64"),
    ),
)
INDICATIVE_OPENING_PRICE = Layout(
    "Indicative Opening Price",
    b"O",
    (
        F("message_type", "char"),
        F("seq", "uint64"),
        F("timestamp", "int64"),
        F("instrument_id", "uint32"),
        F("price", "int64"),
        F("matched_quantity", "uint64"),
        F("imbalance_side", "char"),
        F("imbalance_quantity", "uint64"),
    ),
)
DAILY_SETTLEMENT = Layout(
    "Daily Settlement",
    b"D",
    (
        F("message_type", "char"),
        F("seq", "uint64"),
        F("timestamp", "int64"),
        F("instrument_id", "uint32"),
        F("trade_date", "uint32"),
        F("price", "int64"),
    ),
)
SNAPSHOT_BEGIN = Layout(
    "Snapshot Begin",
    b"G",
    (
        F("message_type", "char"),
        F("last_seq", "uint64"),
        F("instruments", "uint32"),
        F("levels", "uint32"),
    ),
)
SNAPSHOT_INSTRUMENT = Layout(
    "Snapshot Instrument",
    b"I",
    (
        F("message_type", "char"),
        F("instrument_id", "uint32"),
        F("state", "char"),
        F("reference_price", "int64"),
        F("settlement_price", "int64"),
        F("settlement_date", "uint32"),
    ),
)
SNAPSHOT_LEVEL = Layout(
    "Snapshot Level",
    b"P",
    (
        F("message_type", "char"),
        F("instrument_id", "uint32"),
        F("side", "char"),
        F("price", "int64"),
        F("quantity", "uint64"),
        F("orders", "uint32"),
    ),
)
SNAPSHOT_END = Layout(
    "Snapshot End",
    b"E",
    (F("message_type", "char"), F("last_seq", "uint64")),
)

INCREMENTAL_LAYOUTS: tuple[Layout, ...] = (
    LEVEL_UPDATE,
    TRADE,
    TRADING_STATUS,
    REFERENCE_PRICE,
    DAILY_SETTLEMENT,
    INDICATIVE_OPENING_PRICE,
)
SNAPSHOT_LAYOUTS: tuple[Layout, ...] = (
    SNAPSHOT_BEGIN,
    SNAPSHOT_INSTRUMENT,
    SNAPSHOT_LEVEL,
    SNAPSHOT_END,
)
FEED_LAYOUTS = INCREMENTAL_LAYOUTS + SNAPSHOT_LAYOUTS
LAYOUT_BY_TYPE: dict[int, Layout] = {lay.type_byte[0]: lay for lay in FEED_LAYOUTS}

#: Engine side -> wire side byte, and InstrumentStatus -> Trading Status state byte.
SIDE_CHAR = {int(Side.BUY): b"B", int(Side.SELL): b"S", 0: b"N"}  # N: none (auction)
#: The engine's pre-open indicative opening price event (see ``EventType``).
E_INDICATIVE = int(getattr(EventType, "INDICATIVE_PRICE", 11))
STATE_CHAR = {
    int(InstrumentStatus.PRE_OPEN): b"P",
    int(InstrumentStatus.OPEN): b"T",
    int(InstrumentStatus.HALTED): b"H",
    int(InstrumentStatus.CLOSED): b"C",
}

_LEVEL = LEVEL_UPDATE.struct
_TRADE = TRADE.struct
_STATUS = TRADING_STATUS.struct
_REF = REFERENCE_PRICE.struct
_SETTLE = DAILY_SETTLEMENT.struct
_IOP = INDICATIVE_OPENING_PRICE.struct

#: a whole framed Level Update (SoupBinTCP length, ``S``, the message) in one pack
_LEVEL_FRAMED = struct.Struct(">Hc" + _LEVEL.format.lstrip(">")).pack
_LEVEL_LEN = _LEVEL.size + 1
_F = {name: i for i, name in enumerate(EVENT_DTYPE.names)}
_F_TS, _F_PRICE, _F_QTY, _F_LEAVES = _F["timestamp"], _F["price"], _F["qty"], _F["leaves"]
_F_MATCH, _F_INST, _F_TYPE = _F["match_id"], _F["instrument_id"], _F["event_type"]
_F_SIDE, _F_AGGR = _F["side"], _F["aggressor_side"]
_E_LEVEL, _E_TRADE = int(EventType.LEVEL), int(EventType.TRADE)
_E_STATUS, _E_REF = int(EventType.STATUS), int(EventType.REFERENCE)
_BUY = int(Side.BUY)
_PUBLISHED = frozenset((_E_LEVEL, _E_STATUS, _E_REF, E_INDICATIVE))
_LEN = soup.LENGTH
#: packets the compiled path holds before the book and the history take them
_FEED_ROWS = 4096
#: events per batch the compiled path takes (a larger batch takes the struct path)
_FEED_BATCH = 256
_FS_SEQ, _FS_K, _FS_P = feed_kernel.FS_SEQ, feed_kernel.FS_K, feed_kernel.FS_P


def _framed(body: bytes) -> bytes:
    """A SoupBinTCP Sequenced Data packet around one feed message."""
    return _LEN.pack(len(body) + 1) + b"S" + body


@dataclass
class InstrumentState:
    """What the feed knows about one instrument: book levels, status, reference, settlement."""

    status: int = int(InstrumentStatus.CLOSED)
    reference: int = 0
    settlement: int = 0
    settlement_date: int = 0
    bids: dict[int, tuple[int, int]] = field(default_factory=dict)  # price -> (qty, orders)
    asks: dict[int, tuple[int, int]] = field(default_factory=dict)

    def side(self, side: int) -> dict[int, tuple[int, int]]:
        return self.bids if side == Side.BUY else self.asks


class FeedPublisher:
    """Turns engine events into sequenced feed messages and fans them out.

    ``publish_events`` is O(events); every message is encoded once, appended to the
    replay history (the newest ``history_limit`` messages) and handed, as one byte string
    per batch, to every live sink.
    """

    def __init__(self, session: str = "", history_limit: int = 1_000_000) -> None:
        self.session = session or _default_session_name()
        self._instruments: dict[int, InstrumentState] = {}
        #: the replay history: the newest history_limit packets, a batch's as one chunk
        self._history = PacketLog(history_limit)
        self.sinks: list[FeedSink] = []
        #: the compiled common batch (exchange.feed_kernel) appends its packets and their
        #: rows here; the book and the history take them in bulk (:meth:`_flush`) when
        #: the buffers fill or anything reads them. ``_fs`` holds the next sequence number
        #: and what is pending (``feed_kernel.FS_*``): the compiled batch advances it
        #: itself, also when the gateway's one-call path encodes a batch (kernel_buffers)
        self._out, self._pk, self._fs = feed_kernel.buffers(_FEED_ROWS)
        self._out_mv = memoryview(self._out)

    @property
    def next_seq(self) -> int:
        """The sequence number the next feed message gets."""
        return int(self._fs[_FS_SEQ])

    @next_seq.setter
    def next_seq(self, seq: int) -> None:
        self._fs[_FS_SEQ] = seq

    def kernel_buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The compiled batch's output buffer, packet rows and state array, for a
        compiled caller that encodes batches itself with :func:`feed_kernel.encode_feed`
        (the core gateway's one-call path). Such a caller must publish in event order
        with this publisher's own calls, and hand a batch's bytes to the sinks with
        :meth:`deliver_pending`. The arrays live as long as the publisher."""
        return self._out, self._pk, self._fs

    def deliver_pending(self, p0: int) -> None:
        """Hand the compiled bytes from offset ``p0`` on (one batch a compiled caller
        encoded) to every live sink. O(bytes)."""
        if self.sinks:
            self._deliver(self._out_mv[p0 : self._fs[_FS_P]].tobytes())

    @property
    def history_limit(self) -> int:
        """How many of the newest messages the replay history keeps."""
        return self._history.limit

    @history_limit.setter
    def history_limit(self, limit: int) -> None:
        self._history.limit = limit

    @property
    def instruments(self) -> dict[int, InstrumentState]:
        """What the feed knows per instrument (levels, status, reference, settlement),
        up to date with every message published."""
        self._flush()
        return self._instruments

    # ---- state ----------------------------------------------------------------------

    def add_instrument(self, instrument_id: int, status: int, reference: int = 0) -> None:
        """Declare an instrument (so snapshots list it before it has any event)."""
        st = self.instruments.setdefault(instrument_id, InstrumentState())
        st.status = int(status)
        st.reference = int(reference)

    def seed_from_engine(self, instruments: dict) -> None:
        """Take status, reference and aggregated levels from an engine book snapshot
        (``engine.snapshot()["instruments"]``), e.g. after the server recovered a book
        with resting orders: the next feed snapshot shows them. O(levels)."""
        for iid, ins in instruments.items():
            st = self.instruments.setdefault(int(iid), InstrumentState())
            st.status = int(ins["status"])
            st.reference = int(ins.get("reference") or 0)
            st.bids = {int(p): (int(q), int(n)) for p, q, n in ins.get("bids") or ()}
            st.asks = {int(p): (int(q), int(n)) for p, q, n in ins.get("asks") or ()}

    @property
    def history_first(self) -> int:
        """Oldest feed sequence number still replayable."""
        self._flush()
        return self._history.first

    def replay_packets(self, from_seq: int, max_bytes: int = 1 << 18) -> tuple[bytes, int]:
        """Framed packets from ``from_seq`` (at most about ``max_bytes``) and the next seq.

        ``from_seq`` must be within ``[history_first, next_seq]``. O(packets returned +
        offset into the history)."""
        self._flush()
        if not self._history.first <= from_seq <= self.next_seq:
            raise ValueError(f"sequence {from_seq} is not in the replay history")
        return self._history.read(from_seq, max_bytes)

    def snapshot_packets(self) -> tuple[bytes, int]:
        """The full snapshot (framed, outside the sequence) and the seq it is valid before."""
        last = self.next_seq - 1
        parts: list[bytes] = []
        nlevels = 0
        inst_pack = SNAPSHOT_INSTRUMENT.struct.pack
        lvl_pack = SNAPSHOT_LEVEL.struct.pack
        instruments = self.instruments
        for iid in sorted(instruments):
            st = instruments[iid]
            parts.append(
                _framed(
                    inst_pack(
                        b"I",
                        iid,
                        STATE_CHAR.get(st.status, b"C"),
                        st.reference,
                        st.settlement,
                        st.settlement_date,
                    )
                )
            )
            for side, book, rev in ((b"B", st.bids, True), (b"S", st.asks, False)):
                for price in sorted(book, reverse=rev):
                    qty, orders = book[price]
                    parts.append(_framed(lvl_pack(b"P", iid, side, price, qty, orders)))
                    nlevels += 1
        head = _framed(SNAPSHOT_BEGIN.struct.pack(b"G", last, len(instruments), nlevels))
        tail = _framed(SNAPSHOT_END.struct.pack(b"E", last))
        return head + b"".join(parts) + tail, last + 1

    # ---- publishing -----------------------------------------------------------------

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the compiled batch before serving."""
        feed_kernel.encode_feed(np.zeros(0, EVENT_DTYPE), self._out, self._pk, self._fs)

    def _emit(self, packets: list[bytes]) -> None:
        """Append ``packets`` to the history and hand them to every live sink."""
        if not packets:
            return
        self._history.extend(packets)
        if self.sinks:
            self._deliver(b"".join(packets))

    def _deliver(self, blob: bytes) -> None:
        for sink in list(self.sinks):
            sink.deliver(blob, self.next_seq)

    def publish_events(self, events: np.ndarray) -> int:
        """Publish the feed messages for one engine batch; returns how many were sent.

        LEVEL -> Level Update (quantity 0 = level gone); TRADE -> one Trade per match (the
        aggressor side's event; for an opening-auction match, which has no aggressor, the
        buy side's); STATUS -> Trading Status; REFERENCE -> Reference Price; the pre-open
        indicative price -> Indicative Opening Price.
        Other events are private to the order owner and not published. O(events): the
        records are unpacked from the array's bytes with one precompiled ``struct`` (no
        numpy per-call costs, small or large batch), or, for a batch of Level Updates and
        Trades only (ordinary trading), encoded by one compiled call
        (:func:`exchange.feed_kernel.encode_feed`), the same bytes."""
        n = len(events)
        if n == 0:
            return 0
        if n <= _FEED_BATCH:
            fs = self._fs
            p0 = fs[_FS_P]
            added = feed_kernel.encode_feed(events, self._out, self._pk, fs)
            if added == feed_kernel.FULL:
                self._flush()
                p0 = 0
                added = feed_kernel.encode_feed(events, self._out, self._pk, fs)
            if added >= 0:
                if added:
                    self.deliver_pending(p0)
                return added
        return self._publish_rows(EVENT_RECORD.iter_unpack(events.tobytes()))

    def _flush(self) -> None:
        """Take the compiled batches' pending packets into the history and their level
        updates into the book: the last update of each (instrument, side, price) only.
        O(packets), the book part O(levels updated) dict operations; O(1) when nothing
        is pending (every reader calls it first)."""
        fs = self._fs
        k = int(fs[_FS_K])
        if not k:
            return
        p = int(fs[_FS_P])
        fs[_FS_K] = fs[_FS_P] = 0
        blob = self._out_mv[:p].tobytes()
        rows = self._pk[:k]
        self._history.add(blob, k)
        instruments = self._instruments
        for iid in dict.fromkeys(rows[:, feed_kernel.PK_INST].tolist()):
            if iid not in instruments:
                instruments[iid] = InstrumentState()
        lv = rows[rows[:, feed_kernel.PK_LEVEL] == 1][:, feed_kernel.PK_INST :]
        if len(lv):
            # the last row of each level: sorted by key (a stable sort keeps each key's
            # rows in order), a row whose successor has another key
            lv = lv[np.lexsort((lv[:, 2], lv[:, 1], lv[:, 0]))]
            last = np.ones(len(lv), bool)
            last[:-1] = (lv[1:, :3] != lv[:-1, :3]).any(axis=1)
            for iid, side, price, qty, orders in lv[last].tolist():
                st = instruments[iid]
                book = st.bids if side == _BUY else st.asks
                if qty > 0:
                    book[price] = (qty, orders)
                else:
                    book.pop(price, None)

    def _publish_rows(self, rows: Iterable[tuple]) -> int:
        """:meth:`publish_events` on events as plain-int tuples in ``EVENT_DTYPE`` field
        order. O(events)."""
        self._flush()
        seq = self.next_seq
        packets: list[bytes] = []
        instruments = self._instruments
        for r in rows:
            et = r[_F_TYPE]
            if et == _E_TRADE:
                side, aggr = r[_F_SIDE], r[_F_AGGR]
                if side != aggr and (aggr != 0 or side != _BUY):
                    continue
            elif et not in _PUBLISHED:
                continue
            iid = r[_F_INST]
            st = instruments.get(iid)
            if st is None:
                st = instruments[iid] = InstrumentState()
            ts = r[_F_TS]
            if et == _E_LEVEL:
                side, price, qty, leaves = r[_F_SIDE], r[_F_PRICE], r[_F_QTY], r[_F_LEAVES]
                book = st.bids if side == _BUY else st.asks
                if qty > 0:
                    book[price] = (qty, leaves)
                else:
                    book.pop(price, None)
                packets.append(
                    _LEVEL_FRAMED(_LEVEL_LEN, b"S", b"L", seq, ts, iid, SIDE_CHAR[side], price,
                                  qty, leaves)
                )  # fmt: skip
                seq += 1
                continue
            elif et == _E_TRADE:
                body = _TRADE.pack(
                    b"T", seq, ts, iid, r[_F_MATCH], r[_F_PRICE], r[_F_QTY], SIDE_CHAR[r[_F_AGGR]]
                )
            elif et == _E_STATUS:
                qty = r[_F_QTY]
                st.status = qty
                body = _STATUS.pack(b"H", seq, ts, iid, STATE_CHAR[qty])
            elif et == E_INDICATIVE:
                body = _IOP.pack(
                    b"O", seq, ts, iid, r[_F_PRICE], r[_F_QTY],
                    SIDE_CHAR.get(r[_F_SIDE], b"N"), r[_F_LEAVES],
                )  # fmt: skip
            else:  # REFERENCE
                st.reference = r[_F_PRICE]
                body = _REF.pack(b"R", seq, ts, iid, r[_F_PRICE])
            packets.append(_LEN.pack(len(body) + 1) + b"S" + body)
            seq += 1
        if not packets:
            return 0
        self.next_seq = seq
        self._emit(packets)
        return len(packets)

    def publish_settlement(self, instrument_id: int, trade_date: int, price: int, ts: int) -> None:
        """Publish a daily settlement price (``trade_date`` as YYYYMMDD, ``price`` ticks)."""
        st = self.instruments.setdefault(instrument_id, InstrumentState())
        st.settlement = int(price)
        st.settlement_date = int(trade_date)
        body = _SETTLE.pack(b"D", self.next_seq, ts, instrument_id, trade_date, price)
        self.next_seq += 1
        self._emit([_framed(body)])

    def levels(self, instrument_id: int, side: int) -> list[tuple[int, int, int]]:
        """``(price, qty, orders)`` best first — the publisher's own view of a book side."""
        st = self.instruments.get(instrument_id)
        if st is None:
            return []
        book = st.side(side)
        return [(p, *book[p]) for p in sorted(book, reverse=side == Side.BUY)]


def _default_session_name() -> str:
    """A 10-character session name unique per publisher start (base-36 of the clock)."""
    n = time.time_ns() // 1_000_000
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return ("F" + out)[-10:]


class FeedSink:
    """Where the publisher delivers live bytes (a connection, or a test's collector)."""

    def deliver(self, blob: bytes, next_seq: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class _FeedConnection(asyncio.Protocol, FeedSink):
    """One feed subscriber: login, snapshot or replay, then live; dropped when too slow."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.pub = server.publisher
        self.transport: asyncio.Transport | None = None
        self.decoder = soup.FrameDecoder(soup.MAX_INBOUND_PACKET)
        self.logged_in = False
        self.live = False
        self.paused = False
        self.cursor = 0  # next feed seq this connection needs (while catching up)
        self.last_rx = time.monotonic()
        self.last_tx = time.monotonic()
        self.closed = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=self.server.max_buffer // 2)
        if self.server.sndbuf:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.server.sndbuf)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._detach()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.logged_in and not self.live:
            self._pump()

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        try:
            packets = self.decoder.feed(data)
        except soup.FramingError as exc:
            log.warning("feed: %s; disconnecting", exc)
            self.close()
            return
        for ptype, payload in packets:
            if ptype == ord("L") and not self.logged_in:
                self._login(payload)
            elif ptype == ord("O"):
                self.close()
                return
            # client heartbeats ('R') only refresh last_rx; other packets are ignored

    # session logic
    def _login(self, payload: bytes) -> None:
        try:
            req = soup.parse_login_request(payload)
        except ValueError as exc:
            log.warning("feed: bad login: %s", exc)
            self._send(soup.login_rejected(soup.REJECT_NOT_AUTHORIZED))
            self.close()
            return
        pub = self.pub
        want = req.requested_sequence
        same_session = req.requested_session in ("", pub.session)
        self.logged_in = True
        if want == 0 or not same_session or want < pub.history_first:
            snap, next_seq = pub.snapshot_packets()
            self._send(soup.login_accepted(pub.session, next_seq))
            self._send(snap)
            self.cursor = next_seq
        else:
            start = min(want, pub.next_seq)
            self._send(soup.login_accepted(pub.session, start))
            self.cursor = start
        self._pump()

    def _pump(self) -> None:
        """Send history from ``cursor`` while the socket accepts it; go live when caught up."""
        pub = self.pub
        while not self.closed and not self.paused:
            if self.cursor >= pub.next_seq:
                self.live = True
                pub.sinks.append(self)
                return
            if self.cursor < pub.history_first:
                log.warning("feed: subscriber fell out of the replay history; disconnecting")
                self.close()
                return
            blob, self.cursor = pub.replay_packets(self.cursor)
            self._send(blob)

    def deliver(self, blob: bytes, next_seq: int) -> None:
        t = self.transport
        if t is None or self.closed:
            return
        t.write(blob)
        self.last_tx = time.monotonic()
        if t.get_write_buffer_size() > self.server.max_buffer:
            self.server.slow_disconnects += 1
            log.warning(
                "feed: slow consumer (%d bytes buffered); disconnecting",
                t.get_write_buffer_size(),
            )
            self.close()

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)
            self.last_tx = time.monotonic()

    def _detach(self) -> None:
        self.closed = True
        if self.live:
            self.live = False
            with contextlib.suppress(ValueError):
                self.pub.sinks.remove(self)
        self.server.connections.discard(self)

    def close(self) -> None:
        t = self.transport
        self._detach()
        if t is not None:
            t.abort()


class FeedServer:
    """The feed's TCP listener and heartbeat timer; one per venue, on its own port."""

    def __init__(
        self, publisher: FeedPublisher, max_buffer: int = 4 << 20, sndbuf: int | None = None
    ) -> None:
        self.publisher = publisher
        self.max_buffer = max_buffer
        self.sndbuf = sndbuf  # kernel send buffer per connection (None = OS default)
        self.connections: set[_FeedConnection] = set()
        self.slow_disconnects = 0
        self._server: asyncio.base_events.Server | None = None
        self._hb_task: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; returns the bound port (``port=0`` picks a free one)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _FeedConnection(self), host, port)
        self._hb_task = asyncio.create_task(self._heartbeats())
        return int(self._server.sockets[0].getsockname()[1])

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(soup.HEARTBEAT_INTERVAL_S / 2)
            now = time.monotonic()
            for c in list(self.connections):
                if now - c.last_rx > soup.TIMEOUT_S:
                    c.close()
                elif c.logged_in and now - c.last_tx >= soup.HEARTBEAT_INTERVAL_S:
                    c._send(soup.SERVER_HEARTBEAT_PACKET)

    async def close(self) -> None:
        """Stop listening, send End of Session to every subscriber and close them."""
        if self._hb_task is not None:
            self._hb_task.cancel()
        for c in list(self.connections):
            c._send(soup.END_OF_SESSION_PACKET)
            t = c.transport
            c._detach()
            if t is not None:
                t.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def publish_all(publisher: FeedPublisher, batches: Iterable[np.ndarray]) -> int:
    """Publish several event batches; returns the number of messages (a test helper)."""
    return sum(publisher.publish_events(b) for b in batches)
