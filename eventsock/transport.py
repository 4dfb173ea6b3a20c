"""The only module that touches aiohttp.

It turns aiohttp's WebSockets into :class:`WebSocket` (frames are ``str`` or ``bytes``,
the end is a :class:`Closed` value), mounts the server's endpoint on an
``aiohttp.web.Application``, opens client WebSockets, and runs a standalone site.
aiohttp's errors are translated here, and only here, with the cause chained.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl as ssl_module
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from . import frames
from .eager import resume
from .exceptions import ConnectionClosed, ConnectionFailed
from .frames import (
    FrameError,
    FrameParser,
    Handshake,
    HandshakeError,
    close_payload,
    encode_frame,
)
from .pinning import PinVerificationError

__all__ = [
    "Closed",
    "HandshakeRequest",
    "Site",
    "WebSocket",
    "connect",
    "mount",
    "new_application",
]

# RFC 6455 close codes used by eventsock.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009


@dataclass(frozen=True, slots=True)
class Closed:
    """The end of a WebSocket: its close code and, if it broke, what broke it."""

    code: int | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """What the server sees of the HTTP request that opens a connection."""

    query: Mapping[str, str]
    headers: Mapping[str, str]
    host: str
    remote: str | None
    is_upgrade: bool


class WebSocket:
    """One open WebSocket, server or client side, with aiohttp kept out of sight."""

    __slots__ = ("_ws",)

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        writer = getattr(ws, "_writer", None)  # aiohttp's frame writer, both sides
        transport = getattr(writer, "transport", None)
        if transport is not None and type(transport) is not _Coalescer:
            writer.transport = _Coalescer(transport)  # type: ignore[union-attr]

    async def receive(self) -> str | bytes | Closed:
        """The next data frame, or :class:`Closed` once the WebSocket has ended."""
        ws = self._ws
        while True:
            try:
                msg = await ws.receive()
            except Exception as exc:  # a broken transport surfaces here in odd types
                return Closed(ws.close_code, f"{type(exc).__name__}: {exc}")
            kind = msg.type
            if kind is aiohttp.WSMsgType.BINARY:
                return msg.data  # type: ignore[no-any-return]
            if kind is aiohttp.WSMsgType.TEXT:
                return msg.data  # type: ignore[no-any-return]
            if kind is aiohttp.WSMsgType.ERROR:
                error = msg.data
                code = getattr(error, "code", None)
                if code == CLOSE_TOO_BIG or "size exceeds" in str(error).lower():
                    return Closed(CLOSE_TOO_BIG, f"frame exceeds max_payload ({error})")
                return Closed(ws.close_code, f"{type(error).__name__}: {error}")
            if kind in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                return Closed(ws.close_code if ws.close_code is not None else msg.data)
            # PING and PONG are answered by aiohttp itself; nothing else reaches us.

    def write(self, frame: str | bytes) -> Awaitable[None] | None:
        """Write one frame now, from the caller's turn of the loop.

        Returns ``None`` when the frame went to the transport without waiting (nearly
        always), or an awaitable that finishes the write when the transport first
        has to drain; nothing else may be written before it is done.

        Raises:
            ConnectionClosed: the WebSocket is closed or broke.
        """
        ws = self._ws
        coro = ws.send_bytes(frame) if type(frame) is bytes else ws.send_str(frame)  # type: ignore[arg-type]
        try:
            yielded = coro.send(None)  # aiohttp writes, then waits only to drain
        except StopIteration:
            return None
        except _SEND_ERRORS as exc:
            raise ConnectionClosed(f"transport error: {exc}") from exc
        return _finish_write(coro, yielded)

    async def send(self, frame: str | bytes) -> None:
        """Send one frame, waiting for the transport to drain if it must.

        Raises:
            ConnectionClosed: the WebSocket is closed or broke while sending.
        """
        rest = self.write(frame)
        if rest is not None:
            await rest

    async def close(
        self, code: int = CLOSE_NORMAL, reason: str = "", *, timeout: float = 5.0
    ) -> None:
        """Close the WebSocket (and the client's HTTP session); never raises.

        The closing handshake gets ``timeout`` seconds; a peer that does not answer in
        time (a dead network path) has its TCP connection dropped, which is what
        aiohttp does when its close is cancelled.
        """
        try:
            await asyncio.wait_for(
                self._ws.close(code=code, message=reason.encode()[:120]), timeout
            )
        except Exception:  # noqa: S110 - closing a broken socket has nothing left to report
            pass
        finally:
            # aiohttp closes its transport gracefully, which waits to flush what is
            # still buffered: forever, for a peer that reads nothing. A peer that
            # answered the close has read everything, so only such a peer's is dropped.
            self._abort_if_stuck()

    def _transport(self) -> asyncio.Transport | None:
        writer = getattr(self._ws, "_writer", None)  # aiohttp's frame writer, both sides
        return getattr(writer, "transport", None)

    def _abort_if_stuck(self) -> None:
        transport = self._transport()
        if transport is None:
            return
        try:
            stuck = transport.get_write_buffer_size() > 0
        except AttributeError:
            # asyncio's TLS transport, once closed twice, has let go of its protocol
            # and buffers (and its abort() does nothing): nothing is left to drop.
            return
        if stuck:
            transport.abort()

    def abort(self) -> None:
        """Drop the TCP connection at once, unsent data and all; never raises. A write
        waiting for the transport to drain then fails with :class:`ConnectionClosed`."""
        transport = self._transport()
        if transport is not None:
            transport.abort()

    @property
    def closed(self) -> bool:
        """Whether the WebSocket has closed."""
        return self._ws.closed


_SEND_ERRORS = (ConnectionError, RuntimeError, aiohttp.ClientError)

# What the coalescer holds back before it writes at once (the transport's own flow
# control then sees the bytes): asyncio's default high-water mark.
_COALESCE_LIMIT: Final = 64 * 1024
_CLOSE_FRAME: Final = 0x88  # FIN and the CLOSE opcode: the first byte of a close frame


class _Coalescer:
    """Stands in for the asyncio transport under the frame writers (aiohttp's on the
    server, eventsock's own on the client), so that the frames written in one turn of
    the loop leave in one ``send()``.

    asyncio's transport calls ``send()`` for every write it gets while its buffer is
    empty: one system call per frame, the largest single cost of a small message
    (more than decoding and dispatching it). The first frame of a turn is written at
    once, as before, so a lone message waits for nothing; the frames that follow it in
    the same turn (acks of a batch of calls read together, a broadcast, pipelined
    calls) are held and written together when the loop comes round again, or at once
    when they reach 64 KiB. A close frame is never held: aiohttp may close the
    transport right after writing it. Order is kept: every frame of the connection,
    control frames included, goes through here.
    """

    __slots__ = ("_corked", "_loop", "_parts", "_size", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        self._parts: list[bytes | bytearray] = []
        self._size = 0
        self._corked = False

    def write(self, data: bytes | bytearray) -> None:
        if not self._corked:
            self.transport.write(data)
            self._corked = True
            self._loop.call_soon(self._uncork)
            return
        self._parts.append(data)
        self._size += len(data)
        if self._size >= _COALESCE_LIMIT or (data and data[0] == _CLOSE_FRAME):
            self._flush()

    def _uncork(self) -> None:
        self._corked = False
        if self._parts:
            self._flush()

    def _flush(self) -> None:
        parts = self._parts
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self._size = 0
        self.transport.write(data)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + self._size

    def abort(self) -> None:
        self._parts.clear()
        self._size = 0
        self.transport.abort()

    def __getattr__(self, name: str) -> Any:  # the rest of the transport's interface
        return getattr(self.transport, name)


async def _finish_write(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    try:
        await resume(coro, yielded)
    except _SEND_ERRORS as exc:
        raise ConnectionClosed(f"transport error: {exc}") from exc


# asyncio's selector transports read into a new 256 KiB buffer for every recv(), and
# glibc serves a block that size with mmap and munmap until its mmap threshold has
# risen (measured on this project's machine: 19.8 us for a 100-byte send and recv,
# against 3.2 us once the threshold is up), more than handling a small event costs.
# Messages of a few hundred KiB to a few MiB pay the same way, in page faults on fresh
# mappings. glibc raises the threshold by itself to the size of an mmap-ed block that
# is freed (mallopt(3), "M_MMAP_THRESHOLD"), as happens sooner or later in any process
# that handles large messages; freeing one 4 MiB block when eventsock is imported does
# it before the first read, instead of by chance. Blocks above 4 MiB still come from
# mmap, and a threshold set explicitly (MALLOC_MMAP_THRESHOLD_) is left alone: glibc
# then adjusts nothing. Other allocators are not affected.
_MMAP_THRESHOLD_BLOCK: Final = 4 << 20
_block = bytearray(_MMAP_THRESHOLD_BLOCK)
del _block


def mount(
    app: web.Application,
    path: str,
    *,
    check: Callable[[HandshakeRequest], tuple[int, dict[str, Any]] | None],
    serve: Callable[[HandshakeRequest, WebSocket], Awaitable[None]],
    on_startup: Callable[[], Awaitable[None]],
    on_shutdown: Callable[[], Awaitable[None]],
    max_payload: int,
) -> None:
    """Add the Engine.IO endpoint at ``path`` (with and without a trailing slash).

    ``check`` refuses a request with an HTTP status and a JSON body before the upgrade;
    ``serve`` runs the connection until it ends.
    """

    async def endpoint(request: web.Request) -> web.StreamResponse:
        handshake = HandshakeRequest(
            query=request.query,  # read-only views, not copies: idle connections stay small
            headers=request.headers,
            host=request.host,
            remote=request.remote,
            is_upgrade=request.headers.get("Upgrade", "").lower() == "websocket",
        )
        refusal = check(handshake)
        if refusal is not None:
            status, body = refusal
            return web.json_response(body, status=status)
        ws = web.WebSocketResponse(
            max_msg_size=max_payload, compress=False, autoping=True, autoclose=True
        )
        try:
            await ws.prepare(request)
        except (web.HTTPException, ConnectionError) as exc:
            return web.json_response({"code": 3, "message": f"Bad request: {exc}"}, status=400)
        await serve(handshake, WebSocket(ws))
        return ws

    async def startup(_app: web.Application) -> None:
        await on_startup()

    async def shutdown(_app: web.Application) -> None:
        await on_shutdown()

    base = "/" + path.strip("/")
    app.router.add_get(base + "/", endpoint)
    app.router.add_get(base, endpoint)
    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)


async def connect(
    url: str,
    *,
    headers: Mapping[str, str] | None,
    ssl: Any,
    timeout: float | None,
    max_payload: int,
) -> WebSocket:
    """Open a client WebSocket to ``url`` (within ``timeout`` seconds, unless ``None``:
    the caller bounds it then).

    The client side is eventsock's own (:mod:`eventsock.frames` over an asyncio
    protocol), not aiohttp's: an aiohttp client WebSocket costs its request, response,
    connector and reader machinery, some 60% of the client's CPU time to set up a
    connection; this one is a request written at once and a response head checked.

    Raises:
        ConnectionFailed: the connection, the TLS handshake or the HTTP upgrade failed,
            or did not finish within ``timeout`` seconds.
        CertificatePinMismatch: ``ssl`` is a pinned context (``pinning.pinned_context``)
            and the server's certificate matched none of its pins.
    """
    loop = asyncio.get_running_loop()
    try:
        parts = urlsplit(url)
        secure = parts.scheme == "wss"
        host = parts.hostname
        if parts.scheme not in ("ws", "wss") or not host:
            raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
        default_port = 443 if secure else 80
        port = parts.port or default_port
        named = f"[{host}]" if ":" in host else host
        authority = named if port == default_port else f"{named}:{port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        handshake = Handshake(authority, target, headers.items() if headers else ())
        context = _client_context(ssl) if secure else None
    except ValueError as exc:
        raise ConnectionFailed(f"could not connect to {url}: {exc}") from exc
    protocol = _ClientConnection(handshake, max_payload, loop)
    try:
        opening = _open(loop, protocol, host, port, context)
        await (opening if timeout is None else asyncio.wait_for(opening, timeout))
    except BaseException as exc:
        protocol.abort()
        if isinstance(exc, TimeoutError):
            raise ConnectionFailed(f"could not connect to {url} within {timeout} s") from exc
        if isinstance(exc, HandshakeError):
            if exc.status:
                raise ConnectionFailed(
                    f"{url} refused the WebSocket upgrade: HTTP {exc.status} {exc.reason}"
                ) from exc
            raise ConnectionFailed(f"could not connect to {url}: {exc}") from exc
        if isinstance(exc, PinVerificationError):
            raise exc.mismatch from exc
        if isinstance(exc, (OSError, ValueError, EOFError)):  # ssl.SSLError is an OSError
            raise ConnectionFailed(f"could not connect to {url}: {exc}") from exc
        raise
    return ClientWebSocket(protocol)


async def _open(
    loop: asyncio.AbstractEventLoop,
    protocol: _ClientConnection,
    host: str,
    port: int,
    context: ssl_module.SSLContext | None,
) -> None:
    await loop.create_connection(
        lambda: protocol, host, port, ssl=context, server_hostname=host if context else None
    )
    await protocol.opened


@functools.cache
def _default_context(verify: bool) -> ssl_module.SSLContext:
    """One TLS context per kind (made once: loading the CA store costs milliseconds)."""
    context = ssl_module.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl_module.CERT_NONE
    return context


def _client_context(option: Any) -> ssl_module.SSLContext:
    if isinstance(option, ssl_module.SSLContext):
        return option
    if option is None or option is True:
        return _default_context(True)
    if option is False:
        return _default_context(False)
    raise ValueError(f"ssl must be an ssl.SSLContext, True, False or None, not {option!r}")


# aiohttp's masker is compiled; eventsock.frames has a pure one for when it is not there
try:
    from aiohttp._websocket.helpers import websocket_mask as _websocket_mask
except ImportError:  # pragma: no cover - another aiohttp layout
    pass
else:
    frames.mask_payload = _websocket_mask


class _ClientConnection(asyncio.Protocol):
    """The client WebSocket's connection: the opening handshake, then frames in and
    out; what arrives waits in a deque for :meth:`ClientWebSocket.receive`."""

    def __init__(
        self, handshake: Handshake, max_payload: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.loop = loop
        self.handshake: Handshake | None = handshake
        self.parser = FrameParser(max_payload)
        self.transport: asyncio.Transport | None = None
        self.out: _Coalescer | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.frames: deque[str | bytes] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.end: Closed | None = None  # how it ended, once it has
        self.ended: asyncio.Future[None] = loop.create_future()
        self.close_sent = False
        self.paused = False
        self.drained: asyncio.Future[None] | None = None

    # -- asyncio's side --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio's
        # No Nagle, set here as aiohttp sets it rather than left to the loop: with calls
        # in flight, small frames would wait for the peer's delayed ACKs (40 ms).
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self.handshake is not None
        self.transport.write(self.handshake.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        if self.handshake is not None:
            try:
                rest = self.handshake.receive(data)
            except HandshakeError as exc:
                if not self.opened.done():
                    self.opened.set_exception(exc)
                self.abort()
                return
            if rest is None:
                return
            self.handshake = None
            assert self.transport is not None
            self.out = _Coalescer(self.transport)
            self.opened.set_result(None)
            if not rest:
                return
            data = rest
        if self.end is not None:
            return
        try:
            received = self.parser.feed(data)
        except FrameError as exc:
            error = exc.reason
            if exc.code == CLOSE_TOO_BIG:
                error = f"frame exceeds max_payload ({exc.reason})"
            self._finish(Closed(exc.code, error), reply=exc.code)
            return
        frames_in = self.frames
        for opcode, payload in received:
            if opcode == frames.BINARY or opcode == frames.TEXT:
                frames_in.append(payload)  # type: ignore[arg-type]
            elif opcode == frames.PING:
                self.send_frame(frames.PONG, payload)  # type: ignore[arg-type]
            elif opcode == frames.CLOSE:
                code: int | None = payload[0]  # type: ignore[index]
                self._finish(Closed(code), reply=code if code is not None else CLOSE_NORMAL)
                break
            # an unsolicited PONG changes nothing
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # asyncio closes the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(
                exc or ConnectionResetError("the server closed the connection during the upgrade")
            )
        if self.end is None:
            self.end = Closed(None) if exc is None else Closed(1006, f"{type(exc).__name__}: {exc}")
        if not self.ended.done():
            self.ended.set_result(None)
        self.paused = False
        self._wake()
        self._wake_drain(exc)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_drain(None)

    # -- eventsock's side ------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes) -> None:
        if self.close_sent or self.out is None or self.out.is_closing():
            raise ConnectionError("Cannot write to closing transport")
        self.out.write(encode_frame(opcode, payload))
        if opcode == frames.CLOSE:
            self.close_sent = True

    def _finish(self, end: Closed, *, reply: int | None) -> None:
        """The WebSocket ended (``end``): answer with a close frame (``reply``'s code)
        unless one went already, and drop the TCP connection once it is written."""
        if self.end is None:
            self.end = end
        if not self.close_sent and reply is not None:
            with contextlib.suppress(ConnectionError):
                self.send_frame(frames.CLOSE, close_payload(reply))
        if not self.ended.done():
            self.ended.set_result(None)
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            self.waiter = None
            waiter.set_result(None)

    def _wake_drain(self, exc: Exception | None) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            if exc is None:
                drained.set_result(None)
            else:
                drained.set_exception(ConnectionResetError(str(exc)))

    async def drain(self) -> None:
        if self.paused and self.end is None:
            if self.drained is None:
                self.drained = self.loop.create_future()
            await self.drained
        if self.end is not None and self.end.error is not None:
            raise ConnectionResetError(self.end.error)

    def abort(self) -> None:
        if self.out is not None:
            self.out.abort()
        elif self.transport is not None:
            self.transport.abort()


async def _drained(connection: _ClientConnection) -> None:
    try:
        await connection.drain()
    except _SEND_ERRORS as exc:
        raise ConnectionClosed(f"transport error: {exc}") from exc


class ClientWebSocket(WebSocket):
    """The client's WebSocket: eventsock's own framing on an asyncio transport."""

    __slots__ = ("_connection",)

    def __init__(self, connection: _ClientConnection) -> None:
        self._connection = connection

    async def receive(self) -> str | bytes | Closed:
        connection = self._connection
        frames_in = connection.frames
        while True:
            if frames_in:
                return frames_in.popleft()
            if connection.end is not None:
                return connection.end
            waiter = connection.waiter = connection.loop.create_future()
            await waiter

    def write(self, frame: str | bytes) -> Awaitable[None] | None:
        connection = self._connection
        try:
            if type(frame) is bytes:
                connection.send_frame(frames.BINARY, frame)
            else:
                connection.send_frame(frames.TEXT, frame.encode())  # type: ignore[union-attr]
        except _SEND_ERRORS as exc:
            raise ConnectionClosed(f"transport error: {exc}") from exc
        if connection.paused:
            return _drained(connection)
        return None

    async def close(
        self, code: int = CLOSE_NORMAL, reason: str = "", *, timeout: float = 5.0
    ) -> None:
        connection = self._connection
        try:
            if connection.end is None and not connection.close_sent:
                with contextlib.suppress(ConnectionError):
                    connection.send_frame(frames.CLOSE, close_payload(code, reason))
            if not connection.ended.done():
                await asyncio.wait_for(asyncio.shield(connection.ended), timeout)
        except Exception:  # noqa: S110 - closing a broken socket has nothing left to report
            pass
        finally:
            transport = connection.transport
            if transport is not None:
                if connection.end is None:
                    connection.end = Closed(code)
                transport.close()
            self._abort_if_stuck()

    def _transport(self) -> Any:
        return self._connection.out or self._connection.transport

    @property
    def closed(self) -> bool:
        connection = self._connection
        return connection.end is not None or connection.close_sent


def new_application() -> web.Application:
    """An empty aiohttp application for a standalone server."""
    return web.Application()


class Site:
    """A standalone aiohttp server for one application, started and stopped from a loop."""

    def __init__(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        self.port: int | None = None

    async def start(
        self, host: str, port: int, ssl_context: Any = None, *, reuse_port: bool = False
    ) -> int:
        """Bind and start serving (TLS with an ``ssl.SSLContext``); returns the bound
        port (useful with port 0). ``reuse_port`` lets several processes listen on one
        port (``SO_REUSEPORT``: the kernel spreads the connections among them)."""
        await self._runner.setup()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(1024)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            await self._runner.cleanup()
            raise
        site = web.SockSite(self._runner, sock, ssl_context=ssl_context)
        await site.start()
        self.port = int(sock.getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Run the application's shutdown and cleanup, then close the socket."""
        await self._runner.cleanup()
