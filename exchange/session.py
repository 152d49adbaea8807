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

from dataclasses import dataclass, field
from typing import Protocol

from exchange.auth import Login
from exchange.packetlog import PacketLog
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
        #: the newest replay_limit packets, a batch's replies as one chunk; packets
        #: appended one by one wait in _tail (numbered) and join the log as one chunk
        self._log = PacketLog(replay_limit)
        self._tail: list[bytes] = []
        self.next_seq = 1  # number the next sequenced packet will get
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
    def replay_limit(self) -> int:
        """How many of the newest packets are kept for replay."""
        return self._log.limit

    @property
    def first_seq(self) -> int:
        """The number of the oldest packet still kept for replay."""
        if self._tail:
            self._settle()
        return self._log.first

    def take_unjournaled(self) -> bytes:
        """The framed packets since the last call (concatenated); marks them journaled."""
        if self._tail:
            self._settle()
        out = self._log.read(max(self.mark, self._log.first))[0]
        self.mark = self.next_seq
        return out

    def restore(
        self, next_seq: int, frames: list[bytes], last_token: int, status_sent: bool
    ) -> None:
        """Reset the store to ``frames``, the newest packets ending at ``next_seq - 1``."""
        self._tail = []
        self._log.reset(next_seq, frames)
        self.next_seq = next_seq
        self.last_token = last_token
        self.status_sent = status_sent
        if self.touched is not None:
            self.mark = next_seq

    def append(self, framed: bytes) -> None:
        """Store one framed Sequenced Data packet and send it if connected. O(1)."""
        tail = self._tail
        tail.append(framed)
        if self.next_seq == self.mark:
            self.touched.append(self)  # type: ignore[union-attr]
        self.next_seq += 1
        if len(tail) >= 64:
            self._settle()
        sink = self.sink
        if sink is not None:
            sink.send(framed)

    def extend(self, blob: bytes, n: int) -> None:
        """:meth:`append` of ``n`` packets given as one byte string (``blob``, whole
        framed packets back to back), with one send of ``blob`` to the sink. O(1)
        amortized."""
        if n:
            self.keep_blob(blob, n)
        sink = self.sink
        if sink is not None:
            sink.send(blob)

    def keep_blob(self, blob: bytes, n: int) -> None:
        """Store ``n`` >= 1 packets given as one byte string (whole framed packets back to
        back) without sending them, for a caller that has written them to the sink
        itself; kept as it is. O(1) amortized. ``exchange.core.reader`` spells this out
        for the one-call read's common case: keep the two in step."""
        if self._tail:
            self._settle()
        if self.next_seq <= self.mark < self.next_seq + n:
            self.touched.append(self)  # type: ignore[union-attr]
        self.next_seq += n
        self._log.add(blob, n)

    def _settle(self) -> None:
        """The packets appended one by one join the log, as one chunk."""
        tail, self._tail = self._tail, []
        self._log.add(b"".join(tail), len(tail))

    def replay_from(self, seq: int) -> list[bytes]:
        """Framed packets ``seq .. next_seq-1`` in order. O(k) for k packets returned
        (plus the offset of ``seq`` into its batch).

        ``seq`` beyond the newest is clamped (nothing to replay); older than kept raises
        :class:`ReplayGap`.
        """
        if seq >= self.next_seq:
            return []
        if self._tail:
            self._settle()
        if seq < self._log.first:
            raise ReplayGap(f"sequence {seq} no longer kept (oldest {self._log.first})")
        return self._log.packets(seq)

    def take_token(self, token: int) -> bool:
        """Accept ``token`` if strictly greater than any before; False for a resend. O(1)."""
        if token <= self.last_token:
            return False
        self.last_token = token
        return True
