"""One TCP connection speaking SoupBinTCP 4.0 (server side), as an asyncio ``Protocol``.

The connection owns framing, login, heartbeats bookkeeping and the outbound byte buffer;
everything else is the :class:`~exchange.gateway.Gateway`'s. A broken frame, an unknown
packet type or a protocol violation disconnects this connection only (and is logged);
nothing a client sends can raise out of ``data_received``.

Outbound data is coalesced: ``send`` appends to a list and the gateway calls
``drain_out`` once per batch, one ``transport.write`` per connection. A connection whose
transport buffer grows beyond ``max_outbound`` bytes is a slow consumer: it is
disconnected; its session keeps every message, so a re-login replays what it missed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from exchange.gateway import Gateway
from exchange.protocol import soupbintcp as soup
from exchange.session import ReplayGap, Session

log = logging.getLogger("flopex.gateway")

_L, _U, _R, _O, _DEBUG = (ord(c) for c in "LURO+")


class SoupServerConnection(asyncio.Protocol):
    """Server side of one SoupBinTCP connection."""

    def __init__(
        self,
        gateway: Gateway,
        registry: set,
        max_outbound: int,
        sndbuf: int | None = None,
        idle_timeout: float = soup.TIMEOUT_S,
    ) -> None:
        self.sndbuf = sndbuf
        self.idle_timeout = idle_timeout
        self.gateway = gateway
        self.registry = registry
        self.max_outbound = max_outbound
        self.transport: asyncio.Transport | None = None
        self.decoder = soup.FrameDecoder(max_packet=soup.MAX_INBOUND_PACKET)
        self.session: Session | None = None
        self.peer = "?"
        self._out: list[bytes] = []
        self.last_recv = self.last_sent = time.monotonic()
        self.closing = False

    # --- asyncio callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.sndbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        self.registry.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.registry.discard(self)
        self.closing = True
        s = self.session
        if s is not None and s.sink is self:
            s.sink = None
            self.session = None
            vars(self).pop("data_received", None)  # the gateway's reader, bound to s
            log.info("session %s disconnected (%s)", s.name, self.peer)
            if s.login.cancel_on_disconnect and not self.gateway.closed:
                from exchange.protocol.codes import WireCancelReason

                self.gateway.cancel_all(s, WireCancelReason.DISCONNECT.value)

    def data_received(self, data: bytes) -> None:
        """A read before login (after it, the gateway's reader, when it has one, takes
        this method's place: :meth:`_login`)."""
        self.ordinary_read(data)

    def ordinary_read(self, data: bytes) -> None:
        """Frame ``data`` and dispatch its packets one by one: every read before login,
        and the reads the gateway's reader does not take (a partial frame, a heartbeat,
        a logout, anything but the one-call case)."""
        if self.closing:
            return
        self.last_recv = time.monotonic()
        try:
            packets = self.decoder.feed(data)
        except soup.FramingError as exc:
            self.disconnect(f"broken frame: {exc}")
            return
        try:
            self._dispatch(packets)
        except Exception:  # a bug must cost one connection, never the server
            log.exception("internal error on %s; disconnecting it", self.peer)
            self.disconnect("internal error")

    def _dispatch(self, packets: list[tuple[int, bytes]]) -> None:
        for ptype, payload in packets:
            if self.closing:
                return
            if self.session is not None:
                if ptype == _U:
                    self.gateway.on_message(self.session, payload)
                elif ptype in (_R, _DEBUG):
                    pass
                elif ptype == _O:
                    self.disconnect("logout", level=logging.INFO)
                else:
                    self.disconnect(f"unexpected packet type {ptype:#04x} after login")
            elif ptype == _L:
                self._login(payload)
            elif ptype == _DEBUG:
                pass
            else:
                self.disconnect(f"packet type {ptype:#04x} before login")

    # --- login -------------------------------------------------------------------------
    def _login(self, payload: bytes) -> None:
        try:
            req = soup.parse_login_request(payload)
        except ValueError as exc:
            self.disconnect(f"bad login request: {exc}")
            return
        gw = self.gateway
        login = gw.access.authenticate(req.username, req.password)
        if login is None:
            log.warning("login rejected (not authorised) for %r from %s", req.username, self.peer)
            self._refuse(soup.REJECT_NOT_AUTHORIZED)
            return
        s = gw.session_for(login)
        if (
            gw.closed
            or (s.sink is not None)
            or (req.requested_session and req.requested_session != s.name)
        ):
            log.warning("login rejected (session unavailable) for %r", req.username)
            self._refuse(soup.REJECT_SESSION_NOT_AVAILABLE)
            return
        gw.flush()  # everything already decided for this session is in its store
        want = req.requested_sequence
        start = s.next_seq if want == 0 or want > s.next_seq else want
        try:
            replay = s.replay_from(start)
        except ReplayGap as exc:
            log.warning("login rejected for %r: %s", req.username, exc)
            self._refuse(soup.REJECT_SESSION_NOT_AVAILABLE)
            return
        self.session = s
        self._out.append(soup.login_accepted(s.name, start))
        self._out.extend(replay)
        s.sink = self
        reader = getattr(gw, "reader", None)
        if reader is not None and self.transport is not None:
            # the one-call path becomes this connection's data_received; uvloop binds the
            # method once, when the protocol is set, so set it again
            self.data_received = reader(s, self.decoder.max_packet, self)  # type: ignore[method-assign]
            set_protocol = getattr(self.transport, "set_protocol", None)
            if set_protocol is not None:
                set_protocol(self)
        log.info("session %s logged in from %s (replay %d)", s.name, self.peer, len(replay))
        gw.send_initial_status(s)
        gw.commit_outputs()  # journaled before any of it is written
        self.drain_out()

    def _refuse(self, reason: bytes) -> None:
        self._out.append(soup.login_rejected(reason))
        self.drain_out()
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    # --- output ------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Queue bytes for this connection; written at the end of the gateway batch."""
        out = self._out
        if not out:
            self.gateway.mark_dirty(self)
        out.append(data)

    def write_now(self, data: bytes) -> bool:
        """Write ``data`` at once, ahead of the end of the batch, if nothing is queued for
        this connection (so it cannot overtake earlier output) and it is open; False,
        having done nothing, otherwise (then :meth:`send` it). A consumer whose unsent
        output is then over ``max_outbound`` is disconnected. O(1) plus the write.
        ``exchange.core.reader`` spells this out for the one-call read's common case:
        keep the two in step."""
        t = self.transport
        if self._out or t is None or t.is_closing():
            return False
        t.write(data)
        self.last_sent = time.monotonic()
        if t.get_write_buffer_size() > self.max_outbound:
            self.disconnect(
                f"slow consumer: {t.get_write_buffer_size()} bytes not drained", abort=True
            )
        return True

    def drain_out(self) -> None:
        """Write everything queued in one call; disconnect a consumer too slow to drain."""
        out = self._out
        if not out or self.transport is None or self.transport.is_closing():
            out.clear()
            return
        self._out = []
        self.write_now(b"".join(out) if len(out) > 1 else out[0])

    def disconnect(self, why: str, level: int = logging.WARNING, abort: bool = False) -> None:
        """Close this connection only, logging why."""
        name = self.session.name if self.session is not None else "-"
        log.log(level, "disconnecting %s session %s: %s", self.peer, name, why)
        self.closing = True
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def end_of_session(self) -> None:
        """Send End of Session and close (the trading day is over)."""
        self.drain_out()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(soup.END_OF_SESSION_PACKET)
            self.transport.close()
        self.closing = True

    def tick(self, now: float) -> None:
        """Heartbeat duty, called about every 0.25 s: send one after 1 s idle; 15 s silence
        from the client closes the connection."""
        if now - self.last_recv > self.idle_timeout:
            self.disconnect("heartbeat timeout")
            return
        if self.session is not None and now - self.last_sent >= soup.HEARTBEAT_INTERVAL_S:
            self._out.append(soup.SERVER_HEARTBEAT_PACKET)
            self.drain_out()


async def serve_gateway(
    gateway: Gateway,
    host: str = "127.0.0.1",
    port: int = 0,
    max_outbound: int = 8 << 20,
    tick_s: float = 0.25,
    sndbuf: int | None = None,
    idle_timeout: float = soup.TIMEOUT_S,
) -> tuple[asyncio.Server, asyncio.Task, set]:
    """Start listening; returns ``(server, heartbeat task, live connections)``.

    ``max_outbound`` bounds each connection's user-space output buffer (bytes) before it
    counts as a slow consumer; ``sndbuf`` optionally caps the kernel send buffer too;
    ``idle_timeout`` is how long a silent client is kept (SoupBinTCP: 15 s).

    The gateway's flushes are scheduled on the running loop (one per loop iteration).
    """
    loop = asyncio.get_running_loop()
    gateway.schedule = loop.call_soon
    conns: set[SoupServerConnection] = set()

    def on_close() -> None:
        for c in list(conns):
            c.end_of_session()

    gateway.on_close.append(on_close)
    server = await loop.create_server(
        lambda: SoupServerConnection(gateway, conns, max_outbound, sndbuf, idle_timeout),
        host,
        port,
    )

    async def heartbeats() -> None:
        while True:
            await asyncio.sleep(tick_s)
            now = time.monotonic()
            for c in list(conns):
                try:
                    c.tick(now)
                except Exception:  # a heartbeat must never take the server down
                    log.exception("heartbeat failed for %s", c.peer)

    task = asyncio.create_task(heartbeats())
    return server, task, conns
