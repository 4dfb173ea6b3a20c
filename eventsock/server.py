"""The eventsock server: attach to an aiohttp application, accept namespace
connections, dispatch events to handlers, emit, call and broadcast."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, overload
from urllib.parse import urlsplit

from .backends import Backend, MemoryBackend
from .cluster import (
    CallEnvelope,
    EmitEnvelope,
    Envelope,
    NodeEventEnvelope,
    QueryEnvelope,
    RoomOp,
    RoomsEnvelope,
)
from .codec import encode_event, pack_map
from .connection import Connection, Session, SessionInfo, as_rooms, new_id
from .convert import as_result
from .exceptions import (
    AckTimeout,
    ClusterUnavailable,
    ConnectionClosed,
    EncodeError,
    InvalidHandler,
    NotConnected,
    RemoteError,
)
from .handlers import F, Handler, HandlerRegistry, make_handler
from .limits import Backpressure, LinkLimits, RateLimit, Stats
from .node import Node
from .recovery import Recovery, ReplayLog, SessionStore
from .remote import error_args, raise_for_error
from .rooms import Rooms
from .session import ack_args, ack_result, check_event_name, settle
from .transport import (
    CLOSE_GOING_AWAY,
    HandshakeRequest,
    Site,
    WebSocket,
    mount,
    new_application,
)

if TYPE_CHECKING:
    from ssl import SSLContext

    from aiohttp import web

__all__ = ["Server", "Session", "SessionInfo"]

logger = logging.getLogger("eventsock")

OriginPolicy = str | Iterable[str] | Callable[[str], bool] | None


# Seconds shutdown waits for connections to flush and close.
SHUTDOWN_GRACE = 10.0


class Server(HandlerRegistry):
    """An eventsock server.

    Args:
        path: the URL path of the endpoint (Socket.IO's default is ``/socket.io/``).
        ping_interval: seconds between the server's pings.
        ping_timeout: seconds a client has to answer a ping before it is dropped.
        max_payload: the largest frame accepted, in bytes; a larger one closes that
            connection.
        connect_timeout: seconds a new connection has to join a namespace.
        allowed_origins: browser ``Origin`` values allowed to connect: ``None`` for
            same-origin only (requests without an ``Origin`` header, as non-browser
            clients send, are allowed), ``"*"`` for any, a list, or a callable taking
            the origin and returning whether it is allowed.
        backend: how this server shares sessions, rooms and events with other server
            processes (:class:`~eventsock.backends.redis.RedisBackend`); by default
            a cluster of one.
        recovery: connection state recovery options (:class:`Recovery`); off by
            default. With it on, events without an ack carry an offset as their last
            argument, which eventsock and socket.io clients understand.
        max_connections: the most connections served at once; a WebSocket request
            beyond it is refused with HTTP 503 ("Too many connections"). No limit by
            default.
        max_namespaces: the most namespaces one connection may join; a CONNECT beyond
            it is answered with CONNECT_ERROR "Too many namespaces".
        backpressure: the bound of each connection's outgoing queue, and what happens
            to a client that reads too slowly (:class:`~eventsock.Backpressure`).
        max_pending_calls: calls the server may have waiting for one connection's acks;
            ``call()`` beyond it raises :class:`~eventsock.LimitExceeded`.
        max_incoming_calls: calls of one connection whose handlers may run at once; a
            call beyond it is answered with :class:`~eventsock.TooManyCalls`.
        rate_limit: a token bucket for each connection's incoming events
            (:class:`~eventsock.RateLimit`); none by default.
        debug: whether a handler's unexpected exception is described to the caller
            (its type, message and traceback in the ``internal_error`` answer); off by
            default, when the caller learns only that the call failed. For development.

    Example:
        ```python
        server = eventsock.Server()

        @server.on("add")
        async def add(session, a, b):
            return a + b

        server.run(port=8000)
        ```
    """

    _role: ClassVar[str] = "server"
    _event_leading: ClassVar[int] = 1
    _lifecycle: ClassVar[dict[str, tuple[int, int]]] = {"connect": (1, 1), "disconnect": (1, 1)}

    def __init__(
        self,
        *,
        path: str = "/socket.io/",
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_payload: int = 1_000_000,
        connect_timeout: float = 45.0,
        allowed_origins: OriginPolicy = None,
        recovery: Recovery | None = None,
        backend: Backend | None = None,
        debug: bool = False,
        max_connections: int | None = None,
        max_namespaces: int = 64,
        backpressure: Backpressure | None = None,
        max_pending_calls: int = 1024,
        max_incoming_calls: int = 256,
        rate_limit: RateLimit | None = None,
    ) -> None:
        super().__init__()
        self._limits = LinkLimits(
            backpressure if backpressure is not None else Backpressure(),
            max_pending_calls,
            max_incoming_calls,
            rate_limit,
        )
        #: What the limits did: drops, slow consumers, rate-limited events.
        self.stats = Stats()
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be None (no limit) or at least 1")
        if max_namespaces < 1:
            raise ValueError("max_namespaces must be at least 1")
        self.max_connections = max_connections
        self.max_namespaces = max_namespaces
        if ping_interval <= 0 or ping_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("ping_interval, ping_timeout and connect_timeout must be positive")
        if max_payload < 64:
            raise ValueError("max_payload must be at least 64 bytes")
        self.path = path
        self.ping_interval = float(ping_interval)
        self.ping_timeout = float(ping_timeout)
        self.max_payload = int(max_payload)
        self.connect_timeout = float(connect_timeout)
        self._origin_allowed = self._origin_policy(allowed_origins)
        self.recovery = recovery
        self.debug = debug
        self._log = ReplayLog(recovery) if recovery is not None else None
        self._store = SessionStore(recovery) if recovery is not None else None
        self._clock: Callable[[], float] = time.monotonic
        self._connections: dict[Connection, asyncio.Task[Any]] = {}
        self._middleware: list[tuple[str | None, Handler]] = []
        self._sessions: dict[str, Session] = {}
        self._rooms: dict[str, Rooms] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cleanup: set[asyncio.Task[Any]] = set()
        self._site: Site | None = None
        self._closing = False
        self.backend: Backend = backend if backend is not None else MemoryBackend()
        #: This server's id in its cluster.
        self.node_id = new_id()
        self._node = Node(self)
        self._backend_started = False

    # -- mounting and running --------------------------------------------------------

    def stream(self, name: str, *, namespace: str = "/") -> Callable[[F], F]:
        """Register a stream, as a decorator: an async generator whose items a client
        iterates with ``client.stream(name, ...)``:

        ```python
        @server.stream("tail")
        async def tail(session, path: str):
            async for line in follow(path):
                yield line
        ```

        Items are any msgpack values (dataclasses and models become maps). The client
        grants credits, so the generator runs at most ``window`` items ahead of it; it
        is closed (its ``finally`` runs) when the client stops iterating or the
        connection ends, and an exception it raises ends the client's iteration with
        the matching error.
        """
        return self.stream_handler(name, namespace=namespace)

    def use(
        self, middleware: F | None = None, *, namespace: str | None = None
    ) -> F | Callable[[F], F]:
        """Register connection middleware: ``middleware(session, auth)``, sync or async,
        runs when a client joins ``namespace`` (every namespace without one), before
        the ``connect`` handler, in the order registered.

        It may refuse the client by raising :class:`~eventsock.ConnectionRefused`
        (its message and data reach the client as CONNECT_ERROR) or returning
        ``False``, and may put what it learnt in ``session.data`` for the handlers.
        Any other exception refuses the client too ("Internal server error") and is
        logged. A session restored by recovery skips it, as it skips the ``connect``
        handler, when ``Recovery(skip_connect_handler=True)``.

        Raises:
            InvalidHandler: it cannot take ``(session, auth)``.
        """

        def decorate(func: F) -> F:
            if namespace is not None and not namespace.startswith("/"):
                raise InvalidHandler(f"namespace must start with '/', not {namespace!r}")
            checked = make_handler(func, leading=2, what="connection middleware")
            if checked.min_args > 0:
                raise InvalidHandler(
                    f"connection middleware: {func!r} requires more than (session, auth)"
                )
            self._middleware.append((namespace, checked))
            return func

        if middleware is not None:
            return decorate(middleware)
        return decorate

    def _middleware_for(self, namespace: str) -> list[Handler]:
        return [m for ns, m in self._middleware if ns is None or ns == namespace]

    def attach(self, app: web.Application) -> None:
        """Serve the endpoint from an existing aiohttp application at ``path``.

        The application's shutdown also shuts this server down.
        """
        mount(
            app,
            self.path,
            check=self._check_request,
            serve=self._serve_connection,
            on_startup=self._start_backend,
            on_shutdown=self._stop,
            max_payload=self.max_payload,
        )

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl: SSLContext | None = None,
        reuse_port: bool = False,
    ) -> int:
        """Start a standalone server inside the running loop; returns the bound port.

        Use port 0 for an ephemeral port, and an ``ssl.SSLContext`` to serve TLS
        (``wss://``). ``reuse_port`` lets several worker processes listen on the same
        port. Stop it with :meth:`shutdown`.
        """
        if self._site is not None:
            raise RuntimeError("this server is already started")
        app = new_application()
        self.attach(app)
        self._closing = False
        self._site = Site(app)  # its startup starts the backend
        try:
            return await self._site.start(host, port, ssl, reuse_port=reuse_port)
        except BaseException:
            self._site = None
            raise

    async def serve(
        self, host: str = "127.0.0.1", port: int = 8000, *, ssl: SSLContext | None = None
    ) -> None:
        """Run a standalone server until the task is cancelled, then shut down."""
        bound = await self.start(host, port, ssl=ssl)
        scheme = "https" if ssl is not None else "http"
        logger.info("eventsock serving on %s://%s:%d%s", scheme, host, bound, self.path)
        try:
            await asyncio.Event().wait()
        finally:
            await self.shutdown()

    def run(
        self, host: str = "127.0.0.1", port: int = 8000, *, ssl: SSLContext | None = None
    ) -> None:
        """Run a standalone server in a new event loop until interrupted (Ctrl-C)."""
        try:
            asyncio.run(self.serve(host, port, ssl=ssl))
        except KeyboardInterrupt:
            pass

    async def shutdown(self) -> None:
        """Disconnect every session (reason "server shutting down"), cancel the event
        handlers still running, give disconnect handlers up to 10 s to finish, and stop
        the standalone site if there is one."""
        await self._stop()
        if self._site is not None:
            site, self._site = self._site, None
            await site.stop()

    async def _start_backend(self) -> None:
        if not self._backend_started:
            self._backend_started = True
            await self.backend.start(self.node_id, self._node.receive)

    async def _stop(self) -> None:
        await self._close_connections()
        if self._backend_started:
            self._backend_started = False
            await self.backend.stop()

    async def _close_connections(self) -> None:
        self._closing = True
        for conn in list(self._connections):
            conn.link.close("server shutting down", code=CLOSE_GOING_AWAY)
        current = asyncio.current_task()
        waiting = [task for task in self._connections.values() if task is not current]
        if waiting:
            _, stuck = await asyncio.wait(waiting, timeout=SHUTDOWN_GRACE)
            if stuck:
                logger.warning(
                    "%d connection(s) did not close within %s s", len(stuck), SHUTDOWN_GRACE
                )
        await settle(self._tasks, self._cleanup, SHUTDOWN_GRACE)

    # -- the HTTP side ---------------------------------------------------------------

    @staticmethod
    def _origin_policy(policy: OriginPolicy) -> Callable[[str, str], bool]:
        if policy is None:
            return lambda origin, host: urlsplit(origin).netloc.lower() == host.lower()
        if policy == "*":
            return lambda origin, host: True
        if callable(policy):
            check = policy
            return lambda origin, host: bool(check(origin))
        if isinstance(policy, str):
            allowed = {policy.rstrip("/")}
        else:
            allowed = {item.rstrip("/") for item in policy}
        return lambda origin, host: origin.rstrip("/") in allowed

    def _check_request(self, request: HandshakeRequest) -> tuple[int, dict[str, Any]] | None:
        if request.query.get("EIO") != "4":
            return 400, {"code": 5, "message": "Unsupported protocol version"}
        if request.query.get("transport") != "websocket":
            return 400, {"code": 0, "message": "Transport unknown"}
        if "sid" in request.query:
            return 400, {"code": 1, "message": "Session ID unknown"}
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin, request.host):
            logger.info("refused a connection from origin %r", origin)
            return 403, {"code": 4, "message": "Forbidden"}
        if not request.is_upgrade:
            return 400, {"code": 3, "message": "Bad request"}
        if self._closing:
            return 503, {"code": 3, "message": "Server shutting down"}
        if self.max_connections is not None and len(self._connections) >= self.max_connections:
            logger.warning(
                "refused a connection: max_connections (%d) reached", self.max_connections
            )
            return 503, {"code": 3, "message": "Too many connections"}
        return None

    def _serve_connection(self, request: HandshakeRequest, ws: WebSocket) -> Awaitable[None]:
        # the connection's own run() is what the endpoint awaits: one frame less per
        # connection for as long as it lives
        return Connection(self, ws, request).run()

    # -- state -----------------------------------------------------------------------

    def _rooms_for(self, namespace: str) -> Rooms:
        rooms = self._rooms.get(namespace)
        if rooms is None:
            rooms = self._rooms[namespace] = Rooms()
        return rooms

    def _session(self, sid: str, namespace: str) -> Session:
        session = self._sessions.get(sid)
        if session is None or session.namespace != namespace or not session.connected:
            raise NotConnected(f"no session {sid!r} is connected to {namespace!r}")
        return session

    def get_session(self, sid: str) -> Session | None:
        """The session with id ``sid``, or ``None``."""
        return self._sessions.get(sid)

    # -- sending ---------------------------------------------------------------------

    async def emit(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        skip: str | Iterable[str] | None = None,
        namespace: str = "/",
        volatile: bool = False,
    ) -> None:
        """Send an event to the sessions in ``to`` (session ids or rooms; all the
        namespace's sessions when omitted) except those in ``skip``, on every node of
        the cluster.

        The packet is encoded once for every recipient (once per node). With recovery
        on, it is kept for replay to sessions that are briefly disconnected, unless
        ``volatile``.

        Raises:
            ValueError: ``event`` is a reserved name.
            EncodeError: an argument cannot be encoded.
        """
        check_event_name(event)
        if self._outgoing:
            args = self._apply_outgoing(event, args, namespace)
        targets = as_rooms(to)
        skipped = tuple(as_rooms(skip) or ())
        self._emit_local(event, args, namespace, targets, skipped, volatile)
        if self._node.clustered and not self._held_here(targets, namespace):
            self._node.post(
                EmitEnvelope(
                    namespace,
                    event,
                    args,
                    None if targets is None else tuple(targets),
                    skipped,
                    volatile,
                )
            )

    def _held_here(self, targets: list[str] | None, namespace: str) -> bool:
        """Whether ``targets`` is one session id of this node (nothing to publish)."""
        if targets is None or len(targets) != 1:
            return False
        session = self._sessions.get(targets[0])
        return session is not None and session.namespace == namespace

    def _emit_local(
        self,
        event: str,
        args: tuple[Any, ...],
        namespace: str,
        to: Iterable[str] | None,
        skip: Iterable[str],
        volatile: bool,
    ) -> None:
        frame = self._encode_event(event, args, namespace, to, skip, volatile)
        rooms = self._rooms.get(namespace)
        if rooms is None:
            return
        sessions = self._sessions
        for sid in rooms.resolve(to, skip):
            session = sessions.get(sid)
            if session is not None:
                session._deliver(frame, volatile)

    def _encode_event(
        self,
        event: str,
        args: tuple[Any, ...],
        namespace: str,
        to: Iterable[str] | None,
        skip: Iterable[str],
        volatile: bool,
    ) -> bytes:
        """Encode an EVENT without ack; with recovery, add its offset and log it."""
        log = self._log
        if log is None:
            return encode_event(event, args, namespace)
        if volatile:
            # Not logged, but it carries the latest offset, so that every event of a
            # recovering server ends with an offset and clients can always strip it.
            return encode_event(event, (*args, log.offset(log.mark)), namespace)
        seq, offset = log.next_offset()
        frame = encode_event(event, (*args, offset), namespace)
        log.append(
            seq,
            namespace,
            frame,
            None if to is None else frozenset(to),
            frozenset(skip),
            self._clock(),
        )
        return frame

    async def call(
        self,
        event: str,
        *args: Any,
        to: str,
        namespace: str = "/",
        timeout: float = 60.0,
        result: Any = None,
    ) -> Any:
        """Send an event to one session, on any node, and return its acknowledgement
        (checked and converted to ``result``, a type, when given).

        Raises:
            NotConnected: no session ``to`` is connected to ``namespace``.
            AckTimeout: no ack arrived within ``timeout`` seconds.
            ConnectionClosed: the connection ended before the ack arrived.
            RemoteError: the client answered with an error (its subclass by code).
            InvalidResult: ``result`` was given and the answer does not fit it.
        """
        check_event_name(event)
        session = self._sessions.get(to)
        if session is not None and session.namespace == namespace and session.connected:
            return await session.call(event, *args, timeout=timeout, result=result)
        if self._outgoing:
            args = self._apply_outgoing(event, args, namespace)
        results, complete = await self._node.request(
            lambda request: CallEnvelope(request, namespace, (to,), event, args, timeout),
            timeout,
        )
        for sid, ok, value in results:
            if sid == to:
                if ok:
                    raise_for_error(tuple(value))
                    answer = ack_result(tuple(value))
                    return answer if result is None else as_result(answer, result)
                if value == "timeout":
                    raise AckTimeout(f"no ack for {event!r} from {to} within {timeout} s")
                raise ConnectionClosed(value)
        if complete:
            raise NotConnected(f"no session {to!r} is connected to {namespace!r}")
        raise AckTimeout(f"no ack for {event!r} from {to} within {timeout} s")

    async def call_room(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        namespace: str = "/",
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Call every session in ``to`` (rooms or ids; the whole namespace when
        omitted) on every node, and return the acks that arrived within ``timeout``,
        by session id. Sessions that did not answer in time are left out; one that
        answered with an error has the :class:`~eventsock.RemoteError` ``call()``
        would have raised as its value.
        """
        check_event_name(event)
        if self._outgoing:
            args = self._apply_outgoing(event, args, namespace)
        targets = as_rooms(to)
        encode_event(event, args, namespace)  # an EncodeError before anything starts
        local = asyncio.ensure_future(self._call_local(event, args, namespace, targets, timeout))
        remote, _ = await self._cluster_request(
            lambda request: CallEnvelope(
                request,
                namespace,
                None if targets is None else tuple(targets),
                event,
                args,
                timeout,
            ),
            timeout,
        )
        answers: dict[str, Any] = {}
        for sid, ok, value in [*await local, *remote]:
            if ok:
                try:
                    raise_for_error(tuple(value))
                except RemoteError as exc:
                    answers[sid] = exc  # an error answer, as the exception call() raises
                else:
                    answers[sid] = ack_result(tuple(value))
        return answers

    async def _call_local(
        self,
        event: str,
        args: tuple[Any, ...],
        namespace: str,
        to: Iterable[str] | None,
        timeout: float,
    ) -> list[Any]:
        """Call this node's sessions in ``to``; ``[sid, ok, ack args or reason]`` each."""
        rooms = self._rooms.get(namespace)
        sessions = [
            session
            for sid in (rooms.resolve(to, ()) if rooms is not None else ())
            if (session := self._sessions.get(sid)) is not None and session.connected
        ]

        async def one(session: Session) -> list[Any]:
            try:
                link = session._conn.link
                return [
                    session.id,
                    True,
                    list(ack_args(await link.call(session.namespace, event, args, timeout))),
                ]
            except RemoteError as exc:
                return [session.id, True, list(error_args(exc))]  # travels as it came
            except AckTimeout:
                return [session.id, False, "timeout"]
            except ConnectionClosed as exc:
                return [session.id, False, exc.reason]

        return list(await asyncio.gather(*(one(s) for s in sessions)))

    # -- rooms -----------------------------------------------------------------------

    async def enter_room(self, to: str | Iterable[str], room: str, *, namespace: str = "/") -> None:
        """Put the sessions in ``to`` (a session id, a room, or a list), on every node,
        in ``room``."""
        await self._rooms_op(namespace, "enter", as_rooms(to), room)

    async def leave_room(self, to: str | Iterable[str], room: str, *, namespace: str = "/") -> None:
        """Take the sessions in ``to``, on every node, out of ``room``."""
        await self._rooms_op(namespace, "leave", as_rooms(to), room)

    async def close_room(self, room: str, *, namespace: str = "/") -> None:
        """Take every session, on every node, out of ``room``."""
        await self._rooms_op(namespace, "close", None, room)

    async def disconnect(self, to: str | Iterable[str], *, namespace: str = "/") -> None:
        """Disconnect the sessions in ``to`` (a session id, a room, or a list), on every
        node, from ``namespace`` (reason "server disconnect")."""
        await self._rooms_op(namespace, "disconnect", as_rooms(to), None)

    async def _rooms_op(
        self, namespace: str, op: RoomOp, to: list[str] | None, room: str | None
    ) -> None:
        self._rooms_local(namespace, op, to, room)
        if self._node.clustered and not (op != "close" and self._held_here(to, namespace)):
            self._node.post(RoomsEnvelope(namespace, op, None if to is None else tuple(to), room))

    def _rooms_local(
        self, namespace: str, op: RoomOp, to: Iterable[str] | None, room: str | None
    ) -> None:
        rooms = self._rooms.get(namespace)
        if rooms is None:
            return
        if op == "close":
            if room is not None:
                rooms.close(room)
            return
        for sid in rooms.resolve(to, ()):
            if op == "disconnect":
                session = self._sessions.get(sid)
                if session is not None:
                    session._conn.disconnect_session(session, "server disconnect")
            elif room is not None:
                (rooms.enter if op == "enter" else rooms.leave)(sid, room)

    def rooms(self, sid: str, *, namespace: str = "/") -> frozenset[str]:
        """The rooms session ``sid`` of this node is in (its own room included); see
        :meth:`fetch_rooms` for any node."""
        return self._rooms_for(namespace).rooms_of(sid)

    def members(self, room: str, *, namespace: str = "/") -> frozenset[str]:
        """The ids of this node's sessions in ``room``; see :meth:`fetch_sessions` for
        every node."""
        return self._rooms_for(namespace).members(room)

    # -- cluster-wide queries --------------------------------------------------------

    async def fetch_sessions(
        self, room: str | None = None, *, namespace: str = "/", timeout: float = 2.0
    ) -> list[SessionInfo]:
        """The sessions in ``room`` (all of the namespace's when omitted) on every node
        that answers within ``timeout``, with their rooms and data."""
        remote, _ = await self._cluster_request(
            lambda request: QueryEnvelope(request, namespace, room), timeout
        )
        found = self._sessions_local(namespace, room, wire=False)
        return [
            SessionInfo(
                item["sid"], namespace, frozenset(item["rooms"]), item["data"], item["node"]
            )
            for item in [*found, *remote]
            if isinstance(item, dict)
        ]

    async def fetch_rooms(
        self, sid: str, *, namespace: str = "/", timeout: float = 2.0
    ) -> frozenset[str]:
        """The rooms of session ``sid`` on whichever node holds it (empty if none)."""
        session = self._sessions.get(sid)
        if session is not None and session.namespace == namespace:
            return session.rooms
        for info in await self.fetch_sessions(sid, namespace=namespace, timeout=timeout):
            if info.id == sid:
                return info.rooms
        return frozenset()

    def _sessions_local(self, namespace: str, room: str | None, *, wire: bool) -> list[Any]:
        rooms = self._rooms.get(namespace)
        if rooms is None:
            return []
        found = []
        for sid in rooms.resolve(None if room is None else (room,), ()):
            session = self._sessions.get(sid)
            if session is None or not session.connected:
                continue
            data: dict[str, Any] | None = dict(session.data)
            if wire:
                try:
                    pack_map(data)  # type: ignore[arg-type]
                except EncodeError:
                    logger.warning("session %s: data not msgpack-encodable, sent as nil", sid)
                    data = None
            found.append(
                {
                    "sid": sid,
                    "rooms": sorted(rooms.rooms_of(sid)),
                    "data": data,
                    "node": self.node_id,
                }
            )
        return found

    # -- events between servers ------------------------------------------------------

    @overload
    def cluster_on(self, event: str, handler: F) -> F: ...

    @overload
    def cluster_on(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def cluster_on(self, event: str, handler: F | None = None) -> F | Callable[[F], F]:
        """Register a handler for an event sent by another server node with
        :meth:`cluster_emit` or :meth:`cluster_call` (its return value answers a call).

        Raises:
            InvalidHandler: the handler's signature is wrong.
        """

        def decorate(func: F) -> F:
            self._node.handlers[event] = make_handler(
                func, leading=0, what=f"cluster handler {event!r}"
            )
            return func

        return decorate(handler) if handler is not None else decorate

    async def cluster_emit(self, event: str, *args: Any) -> None:
        """Send an event to every other server node."""
        self._node.post(NodeEventEnvelope(None, event, args))

    async def cluster_call(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]:
        """Send an event to every other server node and return the answers that arrived
        within ``timeout``."""
        results, _ = await self._cluster_request(
            lambda request: NodeEventEnvelope(request, event, args), timeout
        )
        return results

    async def _cluster_request(
        self, make: Callable[[int], Envelope], timeout: float
    ) -> tuple[list[Any], bool]:
        """A request whose answer may be partial: with the cluster unreachable, what
        this node knows alone, and a warning."""
        try:
            return await self._node.request(make, timeout)
        except ClusterUnavailable as exc:
            logger.warning("cluster unreachable (%s): answering for this node only", exc)
            return [], False

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def connection_count(self) -> int:
        """How many WebSocket connections are open."""
        return len(self._connections)

    @property
    def session_count(self) -> int:
        """How many namespace sessions exist (connected or in their connect handler)."""
        return len(self._sessions)

    @property
    def task_count(self) -> int:
        """How many handler tasks (disconnect handlers included) are running."""
        return len(self._tasks) + len(self._cleanup)
