"""The eventsock client: connect to an eventsock or Socket.IO server, emit, call, and
answer the server's events and calls with handlers; reconnect after a drop, buffer
what is emitted meanwhile, and recover the session when the server supports it."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .backoff import Backoff
from .codec import PONG_FRAME, encode_event
from .convert import as_result
from .exceptions import (
    AckTimeout,
    CertificatePinMismatch,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionRefused,
    NotConnected,
    ProtocolError,
    SendBufferFull,
)
from .handlers import HandlerRegistry
from .limits import Backpressure, LinkLimits, Stats
from .packets import Ack, Close, Connect, ConnectError, Disconnect, Event, Open, Ping
from .pinning import PinSource, pinned_context, pins_from
from .protocol import ClientProtocol
from .session import DEFAULT_LIMITS, Link, check_event_name, run_detached, settle
from .timers import Timer, timers_for
from .transport import Closed
from .transport import connect as open_websocket

if TYPE_CHECKING:
    from ssl import SSLContext

__all__ = ["Client"]

logger = logging.getLogger("eventsock")

#: An auth payload, or a sync or async callable returning it, called on every attempt.
AuthSource = (
    dict[str, Any]
    | None
    | Callable[[], dict[str, Any] | None]
    | Callable[[], Awaitable[dict[str, Any] | None]]
)
#: Extra HTTP headers, or a sync or async callable returning them.
HeadersSource = (
    Mapping[str, str]
    | None
    | Callable[[], Mapping[str, str] | None]
    | Callable[[], Awaitable[Mapping[str, str] | None]]
)

# Seconds disconnect() gives the disconnect handlers to finish.
DISCONNECT_GRACE: Final = 10.0

# What an offset looks like: socket.io's (yeast ids such as "Q8LX0jH" or "Q8LX0jH.0")
# and eventsock's (hex). socket.io sends volatile events without one, so a trailing
# string that could not be an offset is never taken for one.
_OFFSET_SHAPE: Final = re.compile(r"[0-9A-Za-z_-]{1,32}(?:\.[0-9]+)?")

#: Reasons after which the client reconnects (when ``reconnection`` is on).
RECONNECT_REASONS: Final = frozenset(
    {"transport close", "transport error", "ping timeout", "slow consumer"}
)


async def _resolve(source: Any) -> Any:
    """The value of an ``auth`` or ``headers`` source for this attempt."""
    if callable(source):
        value = source()
        if inspect.isawaitable(value):
            value = await value
        return value
    return source


@functools.lru_cache(maxsize=64)
def _engine_url(url: str, path_option: str) -> str:
    """The Engine.IO WebSocket URL for a server URL (cached: clients connect to few)."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"URL must be http(s):// or ws(s):// with a host, not {url!r}")
    path = "/" + path_option.strip("/") + "/"
    query = "EIO=4&transport=websocket"
    if parts.query:
        kept = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("EIO", "transport")]
        query = urlencode([*kept, ("EIO", "4"), ("transport", "websocket")])
    return urlunsplit((scheme, parts.netloc, path, query, ""))


class Client(HandlerRegistry):
    """An eventsock client.

    Handlers receive the event's arguments (no session argument); a handler's return
    value acknowledges a call from the server. Lifecycle handlers: ``connect()`` and
    ``disconnect(reason)`` per namespace; ``reconnect_attempt(n)``, ``reconnect(n)``,
    ``reconnect_failed()`` and ``connect_error(message, data)`` (a namespace refused
    while reconnecting) for the connection.

    Args:
        path: the server's endpoint path (Socket.IO's default is ``/socket.io/``).
        max_payload: the largest frame accepted from the server, in bytes.
        reconnection: reconnect after the transport drops or the server stops pinging.
        reconnection_attempts: how many attempts before giving up (``None``: no limit).
        reconnection_delay: the first delay between attempts, in seconds.
        reconnection_delay_max: the longest delay between attempts.
        randomization_factor: the jitter of each delay, as a fraction of it.
        buffer_size: how many events ``emit()`` keeps per namespace while reconnecting.
        buffer_overflow: what ``emit()`` does when that buffer is full: ``"drop_oldest"``
            drops the oldest buffered event (counted in :attr:`dropped`, logged), and
            ``"raise"`` raises :class:`~eventsock.SendBufferFull`.
        debug: whether a client handler's unexpected exception is described to the
            server that called it (type, message, traceback); off by default.
        backpressure: the bound of the outgoing queue while the server reads slower
            than the client sends (:class:`~eventsock.Backpressure`): ``emit()`` and
            ``call()`` wait for room up to its ``send_timeout``.
        max_pending_calls: calls that may wait for their acks at once; ``call()``
            beyond it raises :class:`~eventsock.LimitExceeded`.
        max_incoming_calls: the server's calls whose handlers may run at once; one
            beyond it is answered with :class:`~eventsock.TooManyCalls`.

    Example:
        ```python
        async with eventsock.Client() as client:
            await client.connect("http://127.0.0.1:8000")
            print(await client.call("add", 1, 2))
        ```
    """

    _role: ClassVar[str] = "client"
    _event_leading: ClassVar[int] = 0
    _error_leading: ClassVar[int] = 0
    _lifecycle: ClassVar[dict[str, tuple[int, int]]] = {
        "connect": (0, 0),
        "disconnect": (0, 1),
        "connect_error": (0, 2),
        "reconnect_attempt": (0, 1),
        "reconnect": (0, 1),
        "reconnect_failed": (0, 0),
    }

    def __init__(
        self,
        *,
        path: str = "/socket.io/",
        max_payload: int = 16 * 1024 * 1024,
        reconnection: bool = True,
        reconnection_attempts: int | None = None,
        reconnection_delay: float = 1.0,
        reconnection_delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        buffer_size: int = 1000,
        buffer_overflow: Literal["drop_oldest", "raise"] = "drop_oldest",
        debug: bool = False,
        backpressure: Backpressure | None = None,
        max_pending_calls: int = 1024,
        max_incoming_calls: int = 256,
    ) -> None:
        super().__init__()
        limits = LinkLimits(
            backpressure if backpressure is not None else Backpressure(),
            max_pending_calls,
            max_incoming_calls,
        )
        # one object for every client with the default limits: two fewer per client
        self._limits = DEFAULT_LIMITS if limits == DEFAULT_LIMITS else limits
        #: What the limits did on this client's connections (see :class:`Stats`).
        self.stats = Stats()
        if reconnection_attempts is not None and reconnection_attempts < 0:
            raise ValueError("reconnection_attempts must be None (no limit) or >= 0")
        if buffer_size < 0:
            raise ValueError("buffer_size must be >= 0")
        if buffer_overflow not in ("drop_oldest", "raise"):
            raise ValueError('buffer_overflow must be "drop_oldest" or "raise"')
        self.path = path
        self.max_payload = max_payload
        self.reconnection = reconnection
        self.reconnection_attempts = reconnection_attempts
        self.backoff = Backoff(reconnection_delay, reconnection_delay_max, randomization_factor)
        self.buffer_size = buffer_size
        self.buffer_overflow = buffer_overflow
        self.debug = debug
        #: Events dropped instead of sent: volatile emits while disconnected, buffer
        #: overflow, and what was still buffered when reconnection gave up.
        self.dropped = 0
        # what connect() was asked, reused by every reconnection attempt
        self._url = ""
        self._engine = ""  # the Engine.IO URL made from _url
        self._auth: Any = None
        self._headers: Any = None
        self._ssl: SSLContext | bool | None = None
        self._timeout = 20.0
        self._active: list[str] = []  # the namespaces to be in
        # the current connection
        self._link: Link | None = None
        self._protocol: ClientProtocol | None = None
        self._reader: asyncio.Task[None] | None = None
        self._established: Link | None = None
        self._opened: Open | None = None
        self._watchdog: Timer | None = None
        self._pending: dict[str, asyncio.Future[str]] = {}
        self._sids: dict[str, str] = {}
        # recovery, per namespace
        self._pids: dict[str, str] = {}
        self._offsets: dict[str, str] = {}
        self._recovered: dict[str, bool] = {}
        # reconnection
        self._reconnector: asyncio.Task[None] | None = None
        self._buffers: dict[str, deque[bytes]] = {}
        self._closing = False
        # made when someone waits: most clients never do, and each is two objects more
        self._finished = True  # disconnected for good (or never connected)
        self._done: asyncio.Event | None = None  # set while _finished, for wait()
        self._changed: asyncio.Event | None = None  # set (and dropped) on every change
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cleanup: set[asyncio.Task[Any]] = set()

    # -- connecting ------------------------------------------------------------------

    def _engine_url(self, url: str) -> str:
        return _engine_url(url, self.path)

    async def connect(
        self,
        url: str,
        *,
        auth: AuthSource = None,
        headers: HeadersSource = None,
        namespaces: Iterable[str] | None = None,
        ssl: SSLContext | bool | None = None,
        pin: PinSource = None,
        timeout: float = 20.0,
        retry: bool = False,
    ) -> None:
        """Open the connection and join namespaces; returns once all are connected.

        Args:
            url: ``http(s)://host:port`` or ``ws(s)://host:port``.
            auth: the auth payload sent with each namespace's CONNECT, or a sync or
                async callable returning it, called on every attempt (to refresh a
                token, for example).
            headers: extra HTTP headers for the WebSocket request, or a callable
                returning them, called on every attempt.
            namespaces: the namespaces to join; by default those with handlers
                registered, or ``["/"]`` when there are none.
            ssl: an ``ssl.SSLContext``, or ``False`` to skip certificate checks.
            pin: the server certificate's pin (:class:`~eventsock.Pin`, or its text:
                ``"sha256/<base64>"`` for its public key, 64 hex digits for the whole
                certificate), or several (any one may match). Checked during the TLS
                handshake, on top of ``ssl``'s verification; with ``ssl=False`` the
                pins are the only check (to trust a self-signed certificate).
            timeout: seconds for each attempt, namespaces included.
            retry: if the first attempt fails to connect, retry on the reconnection
                schedule (``reconnection_attempts`` bounds it).

        Raises:
            ConnectionFailed: the WebSocket could not be opened, or the server did not
                answer in time (after the retries, with ``retry``).
            ConnectionRefused: the server refused a namespace (CONNECT_ERROR).
            CertificatePinMismatch: the server's certificate matched none of the pins
                (a ``ConnectionFailed``); nothing was sent to it but the TLS handshake.
            ValueError: a malformed ``url`` or pin, or a pin with a URL without TLS.
        """
        if self.connected or self.reconnecting:
            raise RuntimeError("this client is already connected")
        if self._reader is not None:
            await asyncio.shield(self._reader)  # the previous connection's last rites
        engine = self._engine_url(url)  # checks the URL before anything else
        pins = pins_from(pin)
        if pins:
            if not engine.startswith("wss:"):
                raise ValueError(f"pin needs an https:// or wss:// URL, not {url!r}")
            ssl = pinned_context(ssl, pins)  # the user's context is wrapped, not changed
        wanted = list(
            dict.fromkeys(namespaces if namespaces is not None else sorted(self._namespaces()))
        )
        self._url, self._engine, self._auth, self._headers = url, engine, auth, headers
        self._ssl, self._timeout = ssl, timeout
        self._active = wanted or ["/"]
        self._pids.clear()
        self._offsets.clear()
        self._recovered.clear()
        self._closing = False
        self._finished = False
        if self._done is not None:
            self._done.clear()
        self.backoff.reset()
        attempt = 0
        try:
            while True:
                try:
                    await self._attempt()
                except ConnectionFailed as exc:
                    limit = self.reconnection_attempts
                    if not retry or (limit is not None and attempt >= limit):
                        raise
                    if isinstance(exc, CertificatePinMismatch):
                        logger.warning("connection attempt %d refused: %s", attempt + 1, exc)
                else:
                    self.backoff.reset()
                    return
                attempt += 1
                delay = self.backoff.next()
                logger.info("connection failed; attempt %d in %.2f s", attempt, delay)
                await asyncio.sleep(delay)
                self._fire("reconnect_attempt", attempt)
        except BaseException:
            self._finish()
            raise

    async def _attempt(self) -> None:
        """One connection attempt: open the WebSocket, join every active namespace,
        all within one ``timeout``."""
        url, timeout = self._url, self._timeout
        auth = await _resolve(self._auth)
        if auth is not None and not isinstance(auth, dict):
            raise TypeError("auth must be a dict (or a callable returning one)")
        headers = await _resolve(self._headers)
        loop = asyncio.get_running_loop()
        phase = "upgrade"
        try:
            async with asyncio.timeout(timeout):  # one timer for the whole attempt
                ws = await open_websocket(
                    self._engine,
                    headers=headers,
                    ssl=self._ssl,
                    timeout=None,
                    max_payload=self.max_payload,
                )
                phase = "open"
                protocol = ClientProtocol(max_payload=self.max_payload)
                link = Link(
                    ws,
                    protocol,
                    tasks=self._tasks,
                    debug=self.debug,
                    limits=self._limits,
                    stats=self.stats,
                )
                link.error_hook = self._handle_error
                # The CONNECTs go out at once, before the server's open packet is read:
                # an Engine.IO server sends its open packet as soon as the WebSocket is
                # up, before it reads anything, so this changes nothing for it and
                # saves the client a turn of the loop and the wait for that packet
                # (socket.io-client waits for it; socket.io, python-socketio and
                # eventsock servers are tested with both).
                pending = {ns: loop.create_future() for ns in self._active}
                for namespace in self._active:
                    link.send(protocol.connect(namespace, self._connect_auth(namespace, auth)))
                try:
                    first = await ws.receive()
                    if type(first) is Closed:
                        raise ConnectionFailed(
                            f"the server closed the connection before opening it ({first.error})"
                        )
                    opened = protocol.receive(first)[0]  # type: ignore[arg-type]
                    assert isinstance(opened, Open)
                except ProtocolError as exc:
                    await ws.close()
                    raise ConnectionFailed(
                        f"{url} is not an Engine.IO v4 server: {exc.reason}"
                    ) from exc
                except BaseException:
                    await ws.close()
                    raise
                phase = "namespaces"
                self._opened = opened
                self._protocol = protocol
                self._sids = {}
                self._link = link
                self._reset_watchdog()
                self._reader = loop.create_task(self._read(link))
                self._pending = pending
                try:
                    if len(self._pending) == 1:
                        for future in self._pending.values():
                            await future
                    else:
                        await asyncio.gather(*self._pending.values())
                except BaseException:
                    link.close("client disconnect")
                    await asyncio.shield(self._reader)
                    raise
                finally:
                    for future in self._pending.values():
                        if not future.done():
                            future.cancel()
                        elif not future.cancelled():
                            future.exception()  # mark retrieved: only the first failure is raised
                    self._pending = {}
        except TimeoutError:
            if phase == "upgrade":
                raise ConnectionFailed(f"could not connect to {url} within {timeout} s") from None
            if phase == "open":
                raise ConnectionFailed(
                    f"no Engine.IO open packet from {url} within {timeout} s"
                ) from None
            raise ConnectionFailed(f"no CONNECT reply from {url} within {timeout} s") from None
        except ConnectionClosed as exc:
            if phase != "namespaces" or isinstance(exc, ConnectionRefused):
                raise
            raise ConnectionFailed(
                f"the connection to {url} ended while connecting: {exc.reason}"
            ) from exc
        self._established = link

    def _connect_auth(self, namespace: str, auth: dict[str, Any] | None) -> dict[str, Any] | None:
        """The CONNECT payload: the user's auth, with ``pid`` and ``offset`` added to
        ask for recovery when the server gave this namespace a ``pid``."""
        pid = self._pids.get(namespace)
        if pid is None:
            return auth
        recovery = {"pid": pid}
        offset = self._offsets.get(namespace)
        if offset is not None:
            recovery["offset"] = offset
        return {**recovery, **(auth or {})}  # the user's keys win, as in socket.io

    def _reset_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        opened, link = self._opened, self._link
        if opened is None or link is None:
            return
        self._watchdog = timers_for(asyncio.get_running_loop()).call_later(
            opened.ping_interval + opened.ping_timeout, self._ping_timeout, link
        )

    def _ping_timeout(self, link: Link) -> None:
        logger.info("no ping from the server within pingInterval + pingTimeout")
        link.close("ping timeout", abort=True)

    async def _read(self, link: Link) -> None:
        reason = await link.run(self._on_frame)
        assert self._link is link  # _attempt waits for this task before replacing it
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionClosed(reason))
        for namespace in list(self._sids):
            self._namespace_ended(namespace, reason)
        if link is not self._established:
            return  # a failed attempt: the code that made it decides what follows
        self._established = None
        if self._will_reconnect(reason):
            logger.info("connection lost (%s); reconnecting", reason)
            self._reconnector = asyncio.get_running_loop().create_task(self._reconnect())
        else:
            self._finish()

    def _will_reconnect(self, reason: str | None) -> bool:
        return (
            self.reconnection
            and not self._closing
            and reason in RECONNECT_REASONS
            and bool(self._active)
        )

    async def _reconnect(self) -> None:
        attempt = 0
        try:
            while True:
                limit = self.reconnection_attempts
                if limit is not None and attempt >= limit:
                    logger.warning("reconnection failed after %d attempt(s)", attempt)
                    self._fire("reconnect_failed")
                    return
                attempt += 1
                await asyncio.sleep(self.backoff.next())
                self._fire("reconnect_attempt", attempt)
                try:
                    await self._attempt()
                except ConnectionRefused as exc:
                    logger.warning("reconnection refused: %s", exc.message)
                    self._fire("connect_error", exc.message, exc.data)
                    return
                except CertificatePinMismatch as exc:
                    logger.warning("reconnection attempt %d refused: %s", attempt, exc)
                    continue
                except ConnectionFailed as exc:
                    logger.info("reconnection attempt %d failed: %s", attempt, exc)
                    continue
                except Exception:
                    # an auth or headers callable that failed: try again on schedule
                    logger.exception("reconnection attempt %d raised", attempt)
                    continue
                self.backoff.reset()
                self._fire("reconnect", attempt)
                return
        finally:
            self._reconnector = None
            if self._established is None:
                self._finish()
            self._notify()

    def _finish(self) -> None:
        """The client is disconnected for good: drop what waits to be sent."""
        lost = sum(len(buffer) for buffer in self._buffers.values())
        if lost:
            self.dropped += lost
            logger.warning("%d buffered event(s) dropped: the client is disconnected", lost)
        self._buffers.clear()
        self._finished = True
        if self._done is not None:
            self._done.set()
        self._notify()

    def _notify(self) -> None:
        """Wake the calls waiting for a namespace to (re)connect."""
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def _fire(self, event: str, *args: Any) -> None:
        """Run a connection-level lifecycle handler, on every namespace that has one."""
        for namespace in list(self._handlers):
            handler = self._lifecycle_handler(namespace, event)
            if handler is not None:
                run_detached(
                    handler,
                    args[: handler.max_args] if handler.max_args is not None else args,
                    event,
                    self._cleanup,
                )

    # -- receiving -------------------------------------------------------------------

    def _on_frame(self, frame: str | bytes) -> None:
        link, protocol = self._link, self._protocol
        assert link is not None
        assert protocol is not None
        items = protocol.receive(frame)
        if len(items) == 1 and type(items[0]) is Ack:  # the answer to a call: the usual case
            link.resolve_ack(items[0])
            return
        joined: list[str] = []
        for item in items:
            match item:
                case Event():
                    link.dispatch_event(self, self._strip_offset(item), size=len(frame))
                case Ack():
                    link.resolve_ack(item)
                case Ping():
                    link.send(PONG_FRAME)
                    self._reset_watchdog()
                case Connect(namespace=namespace, data={"sid": str(sid)}):
                    self._on_connected(namespace, sid, item.data)
                    joined.append(namespace)
                case ConnectError():
                    future = self._pending.get(item.namespace)
                    if future is not None and not future.done():
                        future.set_exception(ConnectionRefused(item.message, data=item.data))
                case Disconnect():
                    # the server left this namespace: no reconnection for it
                    if item.namespace in self._active:
                        self._active.remove(item.namespace)
                    self._buffers.pop(item.namespace, None)
                    self._namespace_ended(item.namespace, "server disconnect")
                    link.fail_acks(item.namespace, "server disconnect")
                    if not protocol.connected and not protocol.connecting:
                        link.close("server disconnect")
                case Close():
                    link.close("transport close")
        # After the CONNECT reply and the events replayed with it: send what was
        # buffered while offline, then run the connect handlers, as socket.io does.
        for namespace in joined:
            for buffered in self._buffers.pop(namespace, ()):
                link.send(buffered)
            future = self._pending.get(namespace)
            if future is not None and not future.done():
                future.set_result(self._sids[namespace])
            handler = self._lifecycle_handler(namespace, "connect")
            if handler is not None:
                link.dispatch(handler, (), namespace, None, "connect")
        if joined:
            self._notify()

    def _on_connected(self, namespace: str, sid: str, data: dict[str, Any] | None) -> None:
        self._sids[namespace] = sid
        pid = data.get("pid") if data is not None else None
        if type(pid) is str:
            self._recovered[namespace] = self._pids.get(namespace) == pid
            self._pids[namespace] = pid
        else:
            self._recovered[namespace] = False
            self._pids.pop(namespace, None)
        if not self._recovered[namespace]:
            self._offsets.pop(namespace, None)  # a new session: old offsets mean nothing

    def _strip_offset(self, event: Event) -> Event:
        """Take the recovery offset off an event of a recovering server (its last
        argument, a string, on every event without an ack) and remember it."""
        if event.id is not None or event.namespace not in self._pids:
            return event
        args = event.args
        if not args or type(args[-1]) is not str or not _OFFSET_SHAPE.fullmatch(args[-1]):
            return event
        self._offsets[event.namespace] = args[-1]
        return Event(event.name, args[:-1], event.namespace)

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
            "disconnect",
            tasks=self._cleanup,
        )

    # -- sending ---------------------------------------------------------------------

    def _live(self, namespace: str) -> Link | None:
        """The link to send on, or ``None`` while ``namespace`` waits to reconnect.

        Raises:
            NotConnected: ``namespace`` is neither connected nor reconnecting.
        """
        link = self._link
        if link is not None and link.open and namespace in self._sids:
            return link
        if namespace in self._active and (
            self.reconnecting
            or (
                link is not None
                and link is self._established
                and self._will_reconnect(link.close_reason)
            )
        ):
            return None
        raise NotConnected(f"the client is not connected to namespace {namespace!r}")

    async def emit(
        self, event: str, *args: Any, namespace: str = "/", volatile: bool = False
    ) -> None:
        """Send an event to the server.

        While the client reconnects, the event waits in a bounded buffer and is sent
        after the namespace reconnects, before its ``connect`` handler runs; a
        ``volatile`` event is dropped instead (and counted in :attr:`dropped`). When
        the server reads slower than the client sends and the outgoing queue is full,
        this waits for room (see ``backpressure``); a ``volatile`` event is dropped.

        Raises:
            NotConnected: ``namespace`` is not connected and not reconnecting.
            ConnectionClosed: the server read nothing for the ``send_timeout``.
            SendBufferFull: the buffer is full and ``buffer_overflow`` is ``"raise"``.
            EncodeError: an argument cannot be encoded.
            ValueError: ``event`` is a reserved name.
        """
        check_event_name(event)
        link = self._live(namespace)
        if self._outgoing:
            args = self._apply_outgoing(event, args, namespace)
        frame = encode_event(event, args, namespace)
        if link is not None:
            await link.push_wait(frame, volatile=volatile)
            return
        if volatile:
            self.dropped += 1
            logger.debug("volatile event %r dropped while reconnecting", event)
            return
        buffer = self._buffers.setdefault(namespace, deque())
        if len(buffer) >= self.buffer_size:
            if self.buffer_overflow == "raise":
                raise SendBufferFull(
                    f"{len(buffer)} events already wait for {namespace!r} to reconnect"
                )
            if not buffer:
                self.dropped += 1
                logger.warning("event %r dropped: buffer_size is 0", event)
                return
            buffer.popleft()
            self.dropped += 1
            logger.warning("send buffer of %r full: the oldest buffered event dropped", namespace)
        buffer.append(frame)

    async def call(
        self,
        event: str,
        *args: Any,
        namespace: str = "/",
        timeout: float = 60.0,
        result: Any = None,
    ) -> Any:
        """Send an event and return the server's acknowledgement.

        One ack argument is returned as is, several as a tuple, none as ``None``.
        While the client reconnects, the call waits for the namespace to be back,
        within the same ``timeout``.

        Raises:
            AckTimeout: no ack within ``timeout`` seconds (also a ``TimeoutError``).
            ConnectionClosed: the connection or namespace ended first; the event may
                or may not have been handled by the server.
            NotConnected: ``namespace`` is not connected and not reconnecting, or
                reconnection gave up while the call waited.
            RemoteError: the server answered with an error (its subclass by code).
            InvalidResult: ``result`` was given and the answer does not fit it.

        With ``result`` (a type, as for a typed handler's parameter: a dataclass,
        ``list[int]``, a pydantic model, ...), the answer is checked and converted to it.
        """
        check_event_name(event)
        if self._outgoing:
            args = self._apply_outgoing(event, args, namespace)
        link = self._link
        if link is not None and link.open and namespace in self._sids:
            answer = await link.call(namespace, event, args, timeout)  # connected: the usual case
            return answer if result is None else as_result(answer, result)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        link = self._live(namespace)
        while link is None:
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            try:
                async with asyncio.timeout_at(deadline):
                    await changed.wait()
            except TimeoutError:
                raise AckTimeout(
                    f"{namespace!r} did not reconnect within {timeout} s to call {event!r}"
                ) from None
            link = self._live(namespace)
        answer = await link.call(namespace, event, args, max(0.0, deadline - loop.time()))
        return answer if result is None else as_result(answer, result)

    def stream(
        self,
        name: str,
        *args: Any,
        namespace: str = "/",
        window: int = 16,
        timeout: float = 60.0,
        item: Any = None,
    ) -> AsyncIterator[Any]:
        """Iterate the server's stream ``name`` (registered with ``server.stream``):
        ``async for item in client.stream("tail", "app.log"): ...``; with ``item`` (a
        type), each item is checked and converted to it, as ``call(result=...)`` does.

        The server runs ahead by at most ``window`` items. Leaving the ``async for``
        (or closing the iterator, or cancelling its task) stops the server's generator;
        ``contextlib.aclosing`` makes that happen at once. The opening waits up to
        ``timeout`` seconds for the server to start the stream.

        Raises (while iterating):
            UnknownEvent: the server has no such stream.
            InvalidArguments: the arguments do not fit its parameters.
            RemoteError: the stream ended with an error (its subclass by code).
            ConnectionClosed: the connection or namespace ended first.
            NotConnected: ``namespace`` is not connected (now, not later).
        """
        link = self._link
        if link is None or not link.open or namespace not in self._sids:
            raise NotConnected(f"the client is not connected to namespace {namespace!r}")
        if self._outgoing:
            args = self._apply_outgoing(name, args, namespace)
        return link.streams.consume(namespace, name, args, window, timeout, item)

    # -- state and lifecycle ---------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether at least one namespace is connected."""
        return self._link is not None and self._link.open and bool(self._sids)

    @property
    def reconnecting(self) -> bool:
        """Whether the client is between a lost connection and its reconnection."""
        return self._reconnector is not None

    @property
    def sid(self) -> str | None:
        """The session id on namespace ``/``, or ``None``."""
        return self._sids.get("/")

    def get_sid(self, namespace: str = "/") -> str | None:
        """The session id on ``namespace``, or ``None`` when not connected to it."""
        return self._sids.get(namespace)

    @property
    def recovered(self) -> bool:
        """Whether the last (re)connection of ``/`` recovered its session."""
        return self._recovered.get("/", False)

    def is_recovered(self, namespace: str = "/") -> bool:
        """Whether the last (re)connection of ``namespace`` recovered its session:
        same session id, and the events missed meanwhile replayed."""
        return self._recovered.get(namespace, False)

    @property
    def namespaces(self) -> frozenset[str]:
        """The connected namespaces."""
        return frozenset(self._sids)

    @property
    def buffered(self) -> int:
        """How many emitted events wait for a reconnection."""
        return sum(len(buffer) for buffer in self._buffers.values())

    async def disconnect(self) -> None:
        """Leave every namespace (DISCONNECT, flushed), close the WebSocket, stop any
        reconnection, cancel the event handlers still running and give disconnect
        handlers up to 10 s to finish. Safe to call more than once."""
        self._closing = True
        reconnector = self._reconnector
        if reconnector is not None and reconnector is not asyncio.current_task():
            reconnector.cancel()
            await asyncio.gather(reconnector, return_exceptions=True)
        link, protocol = self._link, self._protocol
        if link is not None and protocol is not None and link.open:
            for namespace in sorted(protocol.connected):
                link.send(protocol.disconnect(namespace))
            link.close("client disconnect")
        if self._reader is not None and self._reader is not asyncio.current_task():
            await asyncio.shield(self._reader)
        self._finish()
        await settle(self._tasks, self._cleanup, DISCONNECT_GRACE)

    async def wait(self) -> None:
        """Wait until the client is disconnected for good: its own ``disconnect()``,
        a server disconnect, or a drop it does not (or no longer) reconnect after."""
        if self._done is None:
            self._done = asyncio.Event()
            if self._finished:
                self._done.set()
        await self._done.wait()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()
