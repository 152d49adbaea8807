"""Per-login session state that outlives connections: sequenced message store, tokens, orders.

A :class:`Session` is created once per login for the trading day. Connections come and go;
the session keeps

* every Sequenced Data packet it has sent (already framed), numbered from 1, so a re-login
  with a lower sequence number is replayed exactly (bounded by ``replay_limit``);
* the last client order token (tokens must strictly increase, so resends are never
  entered twice);
* its working orders by token.

All state is plain Python data, easy to snapshot; nothing here touches a socket.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from exchange.auth import Login
from exchange.packetlog import split_packets
from exchange.throttle import Throttle


class Sink(Protocol):
    """Where a live connection's bytes go (the gateway's connection object)."""

    def send(self, data: bytes) -> None: ...

    def write_now(self, data: bytes) -> bool:
        """Write ``data`` at once if nothing is queued; False, doing nothing, otherwise."""
        ...


@dataclass(slots=True)
class OrderRec:
    """One order of a session, as the gateway tracks it between engine events."""

    ref: int  # gateway-wide order reference (engine client tag)
    token: int
    account_id: int
    instrument_id: int
    side: int  # wire side byte
    price: int
    quantity: int  # open (leaves) quantity
    order_id: int = 0  # engine order id, once accepted
    stop_price: int = 0
    working: bool = False
    session: Session | None = field(default=None, repr=False)
    expire: int = 0  # GTD expiry (ns since the epoch), 0 for other time-in-force values


class ReplayGap(Exception):
    """The requested sequence number is older than what the store keeps."""


class Session:
    """One login's session: name, sequence store, tokens, orders, throttle, live sink."""

    def __init__(self, login: Login, replay_limit: int = 1_000_000) -> None:
        self.login = login
        self.name = login.session
        self._store: deque[bytes] = deque()
        self._first = 1  # sequence number of _store[0]
        #: packets numbered and written but not yet in _store: byte strings of whole
        #: packets, in order (keep_blob; split into the store when it is next read)
        self._blobs: list[bytes] = []
        self.next_seq = 1  # number the next sequenced packet will get
        self.replay_limit = replay_limit
        self.last_token = 0
        self.orders: dict[int, OrderRec] = {}  # token -> working order
        #: raw Enter Order account field -> account id, for accounts this login may trade
        #: (filled as they are first used; the gateway's fast path needs one dict hit)
        self.account_ids: dict[bytes, int] = {}
        self.throttle = Throttle(login.throttle_per_second)
        self.sink: Sink | None = None
        self.status_sent = False
        # journaling: the first sequence number not yet journaled (0 = not tracked) and the
        # gateway's list of sessions with unjournaled messages
        self.mark = 0
        self.touched: list[Session] | None = None

    def track(self, touched: list[Session]) -> None:
        """Report this session in ``touched`` when it gets its first unjournaled message."""
        self.touched = touched
        self.mark = self.next_seq

    @property
    def first_seq(self) -> int:
        """The number of the oldest packet still kept for replay."""
        if self._blobs:
            self._settle()
        return self._first

    def take_unjournaled(self) -> bytes:
        """The framed packets since the last call (concatenated); marks them journaled."""
        if self._blobs:
            self._settle()
        start = max(self.mark, self._first) - self._first
        store = self._store
        out = b"".join([store[i] for i in range(start, len(store))])
        self.mark = self.next_seq
        return out

    def restore(
        self, next_seq: int, frames: list[bytes], last_token: int, status_sent: bool
    ) -> None:
        """Reset the store to ``frames``, the newest packets ending at ``next_seq - 1``."""
        kept = frames[-self.replay_limit :] if self.replay_limit else []
        self._store = deque(kept)
        self._blobs = []
        self.next_seq = next_seq
        self._first = next_seq - len(kept)
        self.last_token = last_token
        self.status_sent = status_sent
        if self.touched is not None:
            self.mark = next_seq

    def append(self, framed: bytes) -> None:
        """Store one framed Sequenced Data packet and send it if connected. O(1)."""
        if self._blobs:
            self._settle()
        store = self._store
        store.append(framed)
        if self.next_seq == self.mark:
            self.touched.append(self)  # type: ignore[union-attr]
        self.next_seq += 1
        if len(store) > self.replay_limit:
            store.popleft()
            self._first += 1
        sink = self.sink
        if sink is not None:
            sink.send(framed)

    def extend(self, framed: list[bytes], blob: bytes) -> None:
        """:meth:`append` of each of ``framed`` (``blob`` is their concatenation), with
        one send of ``blob`` to the sink. O(len(framed))."""
        self.keep(framed)
        sink = self.sink
        if sink is not None:
            sink.send(blob)

    def keep(self, framed: list[bytes]) -> None:
        """Store ``framed`` (Sequenced Data packets, in order) without sending them: for a
        caller that has written them to the sink itself. O(len(framed))."""
        if self._blobs:
            self._settle()
        n = len(framed)
        if self.next_seq <= self.mark < self.next_seq + n:
            self.touched.append(self)  # type: ignore[union-attr]
        self.next_seq += n
        self._store_extend(framed)

    def keep_blob(self, blob: bytes, n: int) -> None:
        """:meth:`keep` of ``n`` packets given as one byte string (whole framed packets
        back to back, as written to the sink). O(1): they are split into the store when
        it is next read (or 64 such strings are waiting), in bulk."""
        if self.next_seq <= self.mark < self.next_seq + n:
            self.touched.append(self)  # type: ignore[union-attr]
        self.next_seq += n
        blobs = self._blobs
        blobs.append(blob)
        if len(blobs) >= 64:
            self._settle()

    def _settle(self) -> None:
        """Split the waiting byte strings (:meth:`keep_blob`) into the store."""
        blobs, self._blobs = self._blobs, []
        self._store_extend(split_packets(b"".join(blobs)))

    def _store_extend(self, framed: list[bytes]) -> None:
        store = self._store
        store.extend(framed)
        excess = len(store) - self.replay_limit
        if excess > 0:
            for _ in range(excess):
                store.popleft()
            self._first += excess

    def replay_from(self, seq: int) -> list[bytes]:
        """Framed packets ``seq .. next_seq-1`` in order. O(k) for k packets returned.

        ``seq`` beyond the newest is clamped (nothing to replay); older than kept raises
        :class:`ReplayGap`.
        """
        if seq >= self.next_seq:
            return []
        if self._blobs:
            self._settle()
        if seq < self._first:
            raise ReplayGap(f"sequence {seq} no longer kept (oldest {self._first})")
        start = seq - self._first
        store = self._store
        if start == 0:
            return list(store)
        return [store[i] for i in range(start, len(store))]

    def take_token(self, token: int) -> bool:
        """Accept ``token`` if strictly greater than any before; False for a resend. O(1)."""
        if token <= self.last_token:
            return False
        self.last_token = token
        return True
