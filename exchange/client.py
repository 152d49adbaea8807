"""An asyncio client for flopex order entry: login, send, await acks and fills, reconnect.

::

    client = OrderClient("127.0.0.1", 7001, "alice", "alice-pw")
    await client.connect()
    tok = client.enter(instrument_id=12612, side="B", price=2800, quantity=5, account="ALICE")
    ack = await client.wait_for_token(tok)          # Accepted or Rejected
    fill = await client.wait_for(lambda m: isinstance(m, Executed) and m.token == tok)
    await client.close()

The client counts Sequenced Data packets (``next_seq``); :meth:`OrderClient.reconnect`
logs in again asking for ``next_seq``, so the gateway replays everything missed while
disconnected, in order. Tokens continue from the highest token seen in the session's
messages (a fresh client that logs in with ``sequence=1`` learns it from the replay), so a
new process never reuses a token. Client heartbeats go out every second while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Callable

from contracts.errors import FlopexError
from exchange.protocol import messages as m
from exchange.protocol import soupbintcp as soup

_TOKENED = (m.Accepted, m.Rejected, m.Replaced, m.MassCancelDone)


class LoginRejected(FlopexError):
    """The gateway refused the login (``reason`` ``A`` not authorised, ``S`` no session)."""

    def __init__(self, reason: str) -> None:
        text = {"A": "not authorised", "S": "session not available"}.get(reason, reason)
        super().__init__(f"login rejected: {text} ({reason})")
        self.reason = reason


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, client: OrderClient) -> None:
        self.client = client
        self.decoder = soup.FrameDecoder()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            packets = self.decoder.feed(data)
        except soup.FramingError as exc:
            self.client._fail(FlopexError(f"gateway sent a broken frame: {exc}"))
            if self.transport is not None:
                self.transport.close()
            return
        self.client._on_packets(packets)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._on_lost(self)


class OrderClient:
    """One SoupBinTCP session with the flopex gateway (see module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        session: str = "",
        heartbeat_s: float = soup.HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.session = session
        self.heartbeat_s = heartbeat_s
        self.messages: list[m.OutboundMessage] = []
        self.next_seq = 1
        self.last_token = 0
        self.connected = False
        self.end_of_session = asyncio.Event()
        self._proto: _ClientProtocol | None = None
        self._login: asyncio.Future | None = None
        self._changed: asyncio.Future | None = None
        self._error: Exception | None = None
        self._hb_task: asyncio.Task | None = None
        self._last_sent = 0.0
        self._last_recv = time.monotonic()

    # --- connection --------------------------------------------------------------------
    async def connect(self, sequence: int | None = None, timeout: float = 10.0) -> int:
        """Connect and log in; returns the sequence number the gateway starts from.

        ``sequence`` defaults to ``next_seq`` (1 for a new client: the whole session is
        replayed, which also teaches the client its last token). Raises
        :class:`LoginRejected` or :class:`FlopexError` (connection refused, timeout).
        """
        loop = asyncio.get_running_loop()
        self._error = None
        want = self.next_seq if sequence is None else sequence
        try:  # checked before connecting: SoupBinTCP's fixed-width login fields
            login = soup.login_request(self.username, self.password, self.session, want)
        except ValueError as exc:
            raise FlopexError(
                f"login: {exc} (SoupBinTCP allows a username of up to 6 and a password of up"
                " to 10 printable ASCII characters)"
            ) from None
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: _ClientProtocol(self), self.host, self.port),
                timeout,
            )
        except (OSError, TimeoutError, OverflowError, ValueError) as exc:
            raise FlopexError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        self._proto = proto
        self._login = loop.create_future()
        self._write(login)
        try:
            start = await asyncio.wait_for(self._login, timeout)
        except TimeoutError:
            self._drop()
            raise FlopexError("login timed out") from None
        except BaseException:
            self._drop()
            raise
        self.connected = True
        if self._hb_task is None or self._hb_task.done():
            self._hb_task = asyncio.create_task(self._heartbeats())
        return start

    async def reconnect(self, timeout: float = 10.0) -> int:
        """Drop the connection (if any) and log in again from ``next_seq``: missed
        messages are replayed in order."""
        self._drop()
        return await self.connect(timeout=timeout)

    async def close(self) -> None:
        """Log out and close."""
        if self._proto is not None and self._proto.transport is not None:
            with contextlib.suppress(Exception):
                self._write(soup.LOGOUT_REQUEST_PACKET)
        self._drop()
        if self._hb_task is not None:
            self._hb_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hb_task
            self._hb_task = None

    def _drop(self) -> None:
        proto, self._proto = self._proto, None
        self.connected = False
        if proto is not None and proto.transport is not None:
            proto.transport.close()

    async def _heartbeats(self) -> None:
        """Client heartbeat after ``heartbeat_s`` idle; drop a gateway silent for 15 s."""
        while True:
            await asyncio.sleep(self.heartbeat_s / 2)
            if not self.connected:
                continue
            now = time.monotonic()
            if now - self._last_recv > soup.TIMEOUT_S:
                self._drop()
            elif now - self._last_sent >= self.heartbeat_s:
                self._write(soup.CLIENT_HEARTBEAT_PACKET)

    # --- sending -----------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        proto = self._proto
        if proto is None or proto.transport is None or proto.transport.is_closing():
            raise FlopexError("not connected to the gateway")
        proto.transport.write(data)
        self._last_sent = time.monotonic()

    def new_token(self) -> int:
        """The next client order token (strictly increasing for the session)."""
        self.last_token += 1
        return self.last_token

    def send(self, msg: m.InboundMessage) -> None:
        """Send one inbound message as Unsequenced Data. FlopexError (nothing sent) for a
        field that does not fit the wire (a negative or oversized number, a long account)."""
        try:
            data = m.encode_inbound(msg)
        except (struct.error, ValueError, OverflowError) as exc:
            name = type(msg).__name__
            raise FlopexError(f"{name}: a field does not fit the wire format ({exc})") from None
        if hasattr(msg, "token") and not isinstance(msg, m.CancelOrder):
            self.last_token = max(self.last_token, msg.token)
        self._write(soup.unsequenced(data))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (tests and benchmarks)."""
        self._write(data)

    def enter(
        self,
        instrument_id: int,
        side: str,
        quantity: int,
        price: int = 0,
        account: str = "",
        order_type: str = "L",
        tif: str = "0",
        display_quantity: int = 0,
        stop_price: int = 0,
        min_quantity: int = 0,
        smp_group: int = 0,
        smp: str = "-",
        token: int | None = None,
        expire_time: int = 0,
        post_only: bool = False,
    ) -> int:
        """Send an Enter Order; returns its token. Prices in ticks; ``expire_time`` (ns since
        the Unix epoch) with ``tif="6"`` (GTD); ``post_only`` orders never take liquidity."""
        tok = self.new_token() if token is None else token
        self.send(
            m.EnterOrder(
                tok, instrument_id, ord(side), ord(order_type), ord(tif), price, quantity,
                display_quantity, stop_price, min_quantity, smp_group, ord(smp), account,
                expire_time, m.POST_ONLY_YES if post_only else m.POST_ONLY_NO,
            )
        )  # fmt: skip
        return tok

    def replace(self, token: int, price: int, quantity: int, stop_price: int = 0) -> int:
        """Send a Replace Order for the order ``token``; returns the order's new token."""
        new = self.new_token()
        self.send(m.ReplaceOrder(token, new, price, quantity, stop_price))
        return new

    def cancel(self, token: int) -> None:
        """Send a Cancel Order for the order ``token``."""
        self.send(m.CancelOrder(token))

    def mass_cancel(self, instrument_id: int = 0, side: str = " ") -> int:
        """Cancel this session's working orders (optionally one instrument/side)."""
        tok = self.new_token()
        self.send(m.MassCancel(tok, instrument_id, ord(side)))
        return tok

    # --- receiving ---------------------------------------------------------------------
    def _on_packets(self, packets: list[tuple[int, bytes]]) -> None:
        self._last_recv = time.monotonic()
        new = False
        for ptype, payload in packets:
            if ptype == 0x53:  # S
                try:
                    msg = m.decode_outbound(payload)
                except ValueError as exc:
                    self._fail(FlopexError(f"gateway sent a bad message: {exc}"))
                    continue
                self.messages.append(msg)
                self.next_seq += 1
                if isinstance(msg, _TOKENED) and msg.token > self.last_token:
                    self.last_token = msg.token
                new = True
            elif ptype == 0x41:  # A
                session, seq = soup.parse_login_accepted(payload)
                self.session = session
                self.next_seq = seq
                if self._login is not None and not self._login.done():
                    self._login.set_result(seq)
            elif ptype == 0x4A:  # J
                reason = payload[:1].decode("ascii", "replace")
                if self._login is not None and not self._login.done():
                    self._login.set_exception(LoginRejected(reason))
            elif ptype == 0x5A:  # Z
                self.end_of_session.set()
        if new:
            self._wake()

    def _on_lost(self, proto: _ClientProtocol) -> None:
        if proto is self._proto:
            self.connected = False
        if self._login is not None and not self._login.done():
            self._login.set_exception(FlopexError("gateway closed the connection"))
        self._wake()

    def _fail(self, exc: Exception) -> None:
        self._error = exc
        self._wake()

    def _wake(self) -> None:
        fut, self._changed = self._changed, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def wait_for(
        self,
        pred: Callable[[m.OutboundMessage], bool],
        timeout: float = 5.0,
        start: int = 0,
    ) -> m.OutboundMessage:
        """The first message (from index ``start``) satisfying ``pred``; waits up to
        ``timeout`` seconds, then raises :class:`FlopexError`."""
        deadline = asyncio.get_running_loop().time() + timeout
        i = start
        while True:
            while i < len(self.messages):
                if pred(self.messages[i]):
                    return self.messages[i]
                i += 1
            if self._error is not None:
                raise self._error
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise FlopexError(f"no matching reply from the gateway within {timeout:g} s")
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._changed), remaining)

    async def wait_for_token(self, token: int, timeout: float = 5.0) -> m.OutboundMessage:
        """The direct answer to the request that used ``token`` (Accepted, Rejected,
        Replaced or Mass Cancel Done)."""
        return await self.wait_for(
            lambda x: isinstance(x, _TOKENED) and x.token == token, timeout=timeout
        )
