"""The eventsock client: connect to an eventsock or Socket.IO server, emit, call, and
answer the server's events and calls with handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .codec import PONG_FRAME, encode_packet
from .exceptions import (
    ConnectionClosed,
    ConnectionFailed,
    ConnectionRefused,
    NotConnected,
    ProtocolError,
)
from .handlers import HandlerRegistry
from .packets import Ack, Close, Connect, ConnectError, Disconnect, Event, Open, Ping
from .protocol import ClientProtocol
from .session import Link, check_event_name, settle
from .transport import Closed
from .transport import connect as open_websocket

__all__ = ["Client"]

logger = logging.getLogger("eventsock")

# Seconds disconnect() gives the disconnect handlers to finish.
DISCONNECT_GRACE = 10.0


class Client(HandlerRegistry):
    """An eventsock client.

    Handlers receive the event's arguments (no session argument); a handler's return
    value acknowledges a call from the server.

    Args:
        path: the server's endpoint path (Socket.IO's default is ``/socket.io/``).
        max_payload: the largest frame accepted from the server, in bytes.

    Example:
        ```python
        async with eventsock.Client() as client:
            await client.connect("http://127.0.0.1:8000")
            print(await client.call("add", 1, 2))
        ```
    """

    _role: ClassVar[str] = "client"
    _event_leading: ClassVar[int] = 0
    _lifecycle: ClassVar[dict[str, tuple[int, int]]] = {"connect": (0, 0), "disconnect": (0, 1)}

    def __init__(self, *, path: str = "/socket.io/", max_payload: int = 16 * 1024 * 1024) -> None:
        super().__init__()
        self.path = path
        self.max_payload = max_payload
        self._link: Link | None = None
        self._protocol: ClientProtocol | None = None
        self._reader: asyncio.Task[None] | None = None
        self._sids: dict[str, str] = {}
        self._pending: dict[str, asyncio.Future[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cleanup: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self._opened: Open | None = None

    # -- connecting ------------------------------------------------------------------

    def _engine_url(self, url: str) -> str:
        parts = urlsplit(url)
        scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
        if scheme is None or not parts.netloc:
            raise ValueError(f"URL must be http(s):// or ws(s):// with a host, not {url!r}")
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("EIO", "transport")]
        query += [("EIO", "4"), ("transport", "websocket")]
        path = "/" + self.path.strip("/") + "/"
        return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))

    async def connect(
        self,
        url: str,
        *,
        auth: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        namespaces: Iterable[str] | None = None,
        ssl: Any = None,
        timeout: float = 20.0,
    ) -> None:
        """Open the connection and join namespaces; returns once all are connected.

        Args:
            url: ``http(s)://host:port`` or ``ws(s)://host:port``.
            auth: the auth payload sent with each namespace's CONNECT.
            headers: extra HTTP headers for the WebSocket request.
            namespaces: the namespaces to join; by default those with handlers
                registered, or ``["/"]`` when there are none.
            ssl: an ``ssl.SSLContext``, or ``False`` to skip certificate checks.
            timeout: seconds for the whole connection, namespaces included.

        Raises:
            ConnectionFailed: the WebSocket could not be opened, or the server did not
                answer in time.
            ConnectionRefused: the server refused a namespace (CONNECT_ERROR).
        """
        if self._link is not None and self._link.open:
            raise RuntimeError("this client is already connected")
        if self._reader is not None:
            await asyncio.shield(self._reader)  # the previous connection's last rites
        if auth is not None and not isinstance(auth, dict):
            raise TypeError("auth must be a dict")
        wanted = list(
            dict.fromkeys(namespaces if namespaces is not None else sorted(self._handlers))
        )
        if not wanted:
            wanted = ["/"]
        ws = await open_websocket(
            self._engine_url(url),
            headers=headers,
            ssl=ssl,
            timeout=timeout,
            max_payload=self.max_payload,
        )
        protocol = ClientProtocol(max_payload=self.max_payload)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                first = await ws.receive()
            if type(first) is Closed:
                raise ConnectionFailed(
                    f"the server closed the connection before opening it ({first.error})"
                )
            opened = protocol.receive(first)[0]  # type: ignore[arg-type]
            assert isinstance(opened, Open)
        except ProtocolError as exc:
            await ws.close()
            raise ConnectionFailed(f"{url} is not an Engine.IO v4 server: {exc.reason}") from exc
        except TimeoutError:
            await ws.close()
            raise ConnectionFailed(
                f"no Engine.IO open packet from {url} within {timeout} s"
            ) from None
        except BaseException:
            await ws.close()
            raise
        self._opened = opened
        self._protocol = protocol
        self._sids = {}
        link = self._link = Link(ws, protocol, tasks=self._tasks)
        self._reset_watchdog()
        self._reader = loop.create_task(self._read(link))
        self._pending = {ns: loop.create_future() for ns in wanted}
        for namespace in wanted:
            link.send(protocol.connect(namespace, auth))
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.gather(*self._pending.values())
        except ConnectionRefused:
            await self.disconnect()
            raise
        except TimeoutError:
            await self.disconnect()
            raise ConnectionFailed(f"no CONNECT reply from {url} within {timeout} s") from None
        except ConnectionClosed as exc:
            await self.disconnect()
            raise ConnectionFailed(
                f"the connection to {url} ended while connecting: {exc.reason}"
            ) from exc
        except BaseException:
            await self.disconnect()
            raise
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # mark retrieved: only the first failure is raised
            self._pending = {}

    def _reset_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        opened, link = self._opened, self._link
        if opened is None or link is None:
            return
        self._watchdog = asyncio.get_running_loop().call_later(
            opened.ping_interval + opened.ping_timeout, self._ping_timeout, link
        )

    def _ping_timeout(self, link: Link) -> None:
        logger.info("no ping from the server within pingInterval + pingTimeout")
        link.close("ping timeout")

    async def _read(self, link: Link) -> None:
        reason = await link.run(self._on_frame)
        assert self._link is link  # connect() waits for this task before replacing it
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionClosed(reason))
        for namespace in list(self._sids):
            self._namespace_ended(namespace, reason)

    # -- receiving -------------------------------------------------------------------

    def _on_frame(self, frame: str | bytes) -> None:
        link, protocol = self._link, self._protocol
        assert link is not None and protocol is not None
        for item in protocol.receive(frame):
            match item:
                case Event():
                    link.dispatch_event(self, item)
                case Ack():
                    link.resolve_ack(item)
                case Ping():
                    link.send(PONG_FRAME)
                    self._reset_watchdog()
                case Connect(namespace=namespace, data={"sid": str(sid)}):
                    self._on_connected(link, namespace, sid)
                case ConnectError():
                    future = self._pending.get(item.namespace)
                    if future is not None and not future.done():
                        future.set_exception(ConnectionRefused(item.message, data=item.data))
                case Disconnect():
                    self._namespace_ended(item.namespace, "server disconnect")
                    link.fail_acks(item.namespace, "server disconnect")
                    if not protocol.connected and not protocol.connecting:
                        link.close("server disconnect")
                case Close():
                    link.close("transport close")

    def _on_connected(self, link: Link, namespace: str, sid: str) -> None:
        self._sids[namespace] = sid
        future = self._pending.get(namespace)
        if future is not None and not future.done():
            future.set_result(sid)
        handler = self._lifecycle_handler(namespace, "connect")
        if handler is not None:
            link.dispatch(handler, (), namespace, None, f"'connect' on {namespace!r}")

    def _namespace_ended(self, namespace: str, reason: str) -> None:
        if self._sids.pop(namespace, None) is None:
            return
        handler = self._lifecycle_handler(namespace, "disconnect")
        if handler is None or self._link is None:
            return
        args = (reason,) if handler.max_args != 0 else ()
        self._link.dispatch(
            handler,
            args,
            namespace,
            None,
            f"'disconnect' on {namespace!r}",
            tasks=self._cleanup,
        )

    # -- sending ---------------------------------------------------------------------

    def _require(self, namespace: str) -> Link:
        link = self._link
        if link is None or not link.open or namespace not in self._sids:
            raise NotConnected(f"the client is not connected to namespace {namespace!r}")
        return link

    async def emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        """Send an event to the server.

        Raises:
            NotConnected: ``namespace`` is not connected.
            EncodeError: an argument cannot be encoded.
            ValueError: ``event`` is a reserved name.
        """
        check_event_name(event)
        self._require(namespace).send(encode_packet(Event(event, args, namespace)))

    async def call(
        self, event: str, *args: Any, namespace: str = "/", timeout: float = 60.0
    ) -> Any:
        """Send an event and return the server's acknowledgement.

        One ack argument is returned as is, several as a tuple, none as ``None``.

        Raises:
            AckTimeout: no ack within ``timeout`` seconds (also a ``TimeoutError``).
            ConnectionClosed: the connection or namespace ended first; the event may
                or may not have been handled.
            NotConnected: ``namespace`` is not connected.
        """
        check_event_name(event)
        return await self._require(namespace).call(namespace, event, args, timeout)

    # -- state and lifecycle ---------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether at least one namespace is connected."""
        return self._link is not None and self._link.open and bool(self._sids)

    @property
    def sid(self) -> str | None:
        """The session id on namespace ``/``, or ``None``."""
        return self._sids.get("/")

    def get_sid(self, namespace: str = "/") -> str | None:
        """The session id on ``namespace``, or ``None`` when not connected to it."""
        return self._sids.get(namespace)

    @property
    def namespaces(self) -> frozenset[str]:
        """The connected namespaces."""
        return frozenset(self._sids)

    async def disconnect(self) -> None:
        """Leave every namespace (DISCONNECT, flushed), close the WebSocket, cancel the
        event handlers still running and give disconnect handlers up to 10 s to finish.
        Safe to call more than once."""
        link, protocol = self._link, self._protocol
        if link is not None and protocol is not None and link.open:
            for namespace in sorted(protocol.connected):
                link.send(protocol.disconnect(namespace))
            link.close("client disconnect")
        if self._reader is not None:
            await asyncio.shield(self._reader)
        await settle(self._tasks, self._cleanup, DISCONNECT_GRACE)

    async def wait(self) -> None:
        """Wait until the connection ends."""
        if self._reader is not None:
            await asyncio.shield(self._reader)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()
