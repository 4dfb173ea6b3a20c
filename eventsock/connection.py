"""The server's side of one connection: its namespace sessions, heartbeat, connect
handshake (with recovery), dispatch, and the :class:`Session` handlers receive."""

from __future__ import annotations

import asyncio
import inspect
import logging
from base64 import urlsafe_b64encode
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from os import urandom
from typing import TYPE_CHECKING, Any

from .codec import PING_FRAME, encode_open
from .convert import as_result
from .exceptions import ConnectionClosed, ConnectionRefused, NotConnected
from .handlers import Handler
from .packets import Ack, Close, Connect, Disconnect, Event, Open, Pong
from .protocol import ServerProtocol
from .recovery import RECOVERABLE_REASONS, StoredSession
from .session import Link, check_event_name
from .timers import Timer, timers_for
from .transport import HandshakeRequest, WebSocket

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Connection", "Session", "SessionInfo"]

logger = logging.getLogger("eventsock")


def new_id() -> str:
    # 15 random bytes make the 20-character url-safe ids both Socket.IO stacks use
    # (secrets.token_urlsafe(15), without its four calls and the padding it strips).
    return urlsafe_b64encode(urandom(15)).decode()


def as_rooms(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return list(value)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as a cluster-wide query reports it (a snapshot)."""

    id: str
    namespace: str
    rooms: frozenset[str]
    #: a copy of its ``data`` (``None`` if it could not travel between nodes)
    data: dict[str, Any] | None
    #: the id of the server node holding it
    node: str


class Session:
    """One client's connection to one namespace; the first argument of every server
    handler.

    Attributes:
        id: the Socket.IO session id (also the name of the session's own room).
        namespace: the namespace this session is connected to.
        data: free per-connection state for the application.
        headers: the HTTP headers of the request that opened the connection.
        query: the query parameters of that request.
        recovered: whether this session was restored by connection state recovery
            (same id, rooms and data as before a short disconnection).
        pid: the private id the client presents to recover, when recovery is on.
    """

    __slots__ = (
        "_buffer",
        "_conn",
        "_replay_from",
        "_server",
        "_start",
        "connected",
        "data",
        "id",
        "namespace",
        "pid",
        "recovered",
    )

    def __init__(self, server: Server, conn: Connection, namespace: str, sid: str) -> None:
        self.id = sid
        self.namespace = namespace
        self.data: dict[str, Any] = {}
        self.connected = False
        self._server = server
        self._conn = conn
        # Frames for this session while its connect handler runs; sent after the reply.
        self._buffer: list[bytes] | None = []
        self.pid: str | None = None
        self.recovered = False
        # replay-log positions: where a recovery replay starts, and where this session
        # began receiving events live
        self._replay_from = 0
        self._start = 0

    @property
    def headers(self) -> Mapping[str, str]:
        """The HTTP headers of the request that opened the connection."""
        return self._conn.handshake.headers

    @property
    def query(self) -> Mapping[str, str]:
        """The query parameters of the request that opened the connection."""
        return self._conn.handshake.query

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this session is in, its own room (its id) included."""
        return self._server._rooms_for(self.namespace).rooms_of(self.id)

    def _deliver(self, frame: bytes, volatile: bool = False) -> None:
        """Send a frame that may not wait (a broadcast): a full queue drops it when
        ``volatile`` and disconnects the slow consumer otherwise (see Backpressure)."""
        if self._buffer is not None:
            self._buffer.append(frame)
        elif self.connected:
            try:
                self._conn.link.push(frame, volatile=volatile)
            except ConnectionClosed:
                pass  # the connection is ending; its disconnect handling is under way

    async def emit(self, event: str, *args: Any, volatile: bool = False) -> None:
        """Send an event to this client.

        When the client reads slower than it is sent to and its queue is full (see
        :class:`~eventsock.Backpressure`), this waits for room, up to the
        ``send_timeout``; then the client is disconnected ("slow consumer"). A
        ``volatile`` event never waits: it is dropped for a client whose queue is full.
        With recovery on, the event is kept for replay unless it is ``volatile``.

        Raises:
            NotConnected: the session has ended.
            ConnectionClosed: the client was disconnected as a slow consumer.
            EncodeError: an argument cannot be encoded.
        """
        check_event_name(event)
        if not self.connected and self._buffer is None:
            raise NotConnected(f"session {self.id} is not connected")
        if self._server._outgoing:
            args = self._server._apply_outgoing(event, args, self.namespace)
        frame = self._server._encode_event(event, args, self.namespace, (self.id,), (), volatile)
        if self._buffer is not None or volatile:
            self._deliver(frame, volatile)
            return
        try:
            await self._conn.link.push_wait(frame)
        except ConnectionClosed:
            if self._conn.link.close_reason == "slow consumer":
                raise
            # the connection is ending; its disconnect handling is under way

    async def call(self, event: str, *args: Any, timeout: float = 60.0, result: Any = None) -> Any:
        """Send an event to this client and return its acknowledgement.

        One ack argument is returned as is, several as a tuple, none as ``None``; with
        ``result`` (a type), the answer is checked and converted to it.

        Raises:
            AckTimeout: no ack arrived within ``timeout`` seconds.
            NotConnected: the session is not connected (or still in its connect handler).
            ConnectionClosed: the connection ended before the ack arrived.
            RemoteError: the client answered with an error (its subclass by code).
            InvalidResult: ``result`` was given and the answer does not fit it.
        """
        check_event_name(event)
        if not self.connected:
            raise NotConnected(
                f"session {self.id} is not connected"
                + (
                    " yet: call() cannot be used in the connect handler"
                    if self._buffer is not None
                    else ""
                )
            )
        if self._server._outgoing:
            args = self._server._apply_outgoing(event, args, self.namespace)
        answer = await self._conn.link.call(self.namespace, event, args, timeout)
        return answer if result is None else as_result(answer, result)

    def stream(
        self,
        name: str,
        *args: Any,
        window: int = 16,
        timeout: float = 60.0,
        item: Any = None,
    ) -> AsyncIterator[Any]:
        """Iterate this client's stream ``name`` (registered with ``client.stream``);
        the same as :meth:`Client.stream`, the other way.

        Raises:
            NotConnected: the session is not connected.
        """
        if not self.connected:
            raise NotConnected(f"session {self.id} is not connected")
        if self._server._outgoing:
            args = self._server._apply_outgoing(name, args, self.namespace)
        return self._conn.link.streams.consume(self.namespace, name, args, window, timeout, item)

    async def enter_room(self, room: str) -> None:
        """Put this session in ``room``."""
        self._server._rooms_for(self.namespace).enter(self.id, room)

    async def leave_room(self, room: str) -> None:
        """Take this session out of ``room``."""
        self._server._rooms_for(self.namespace).leave(self.id, room)

    async def disconnect(self) -> None:
        """Disconnect this client from the namespace (it receives DISCONNECT)."""
        self._conn.disconnect_session(self, "server disconnect")

    def __repr__(self) -> str:
        return f"<Session {self.id} on {self.namespace!r}>"


class Connection:
    """One Engine.IO connection on the server: heartbeat, namespaces, dispatch."""

    def __init__(self, server: Server, ws: WebSocket, handshake: HandshakeRequest) -> None:
        self.server = server
        self.handshake = handshake
        self.eio_sid = new_id()
        self.protocol = ServerProtocol(max_payload=server.max_payload)
        self.link = Link(
            ws,
            self.protocol,
            tasks=server._tasks,
            debug=server.debug,
            limits=server._limits,
            stats=server.stats,
        )
        self.link.error_hook = self._on_handler_error
        self.sessions: dict[str, Session] = {}
        # on the loop's shared timers: one asyncio timer for every connection's
        self._timers = timers_for(asyncio.get_running_loop())
        self._ping_handle: Timer | None = None
        self._pong_handle: Timer | None = None
        self._connect_handle: Timer | None = None
        self._connect_expired = False

    async def run(self) -> None:
        """Serve the connection until it ends (awaited by the endpoint's task)."""
        server = self.server
        # the task serving it is what shutdown waits for: no extra object per connection
        task = asyncio.current_task()
        assert task is not None
        server._connections[self] = task
        reason = "transport error"
        try:
            self.link.send(
                encode_open(
                    Open(
                        self.eio_sid, server.ping_interval, server.ping_timeout, server.max_payload
                    )
                )
            )
            self._ping_handle = self._timers.call_later(server.ping_interval, self._send_ping)
            self._connect_handle = self._timers.call_later(
                server.connect_timeout, self._connect_timeout
            )
            reason = await self.link.run(self._on_frame)
        finally:
            for handle in (self._ping_handle, self._pong_handle, self._connect_handle):
                if handle is not None:
                    handle.cancel()
            for session in list(self.sessions.values()):
                self._end_session(session, reason)
            del server._connections[self]

    def _on_handler_error(self, exc: Exception, namespace: str, event: str) -> Exception | None:
        return self.server._handle_error(exc, namespace, event, self.sessions.get(namespace))

    # -- heartbeat -------------------------------------------------------------------

    def _send_ping(self) -> None:
        self._ping_handle = None
        if not self.link.open:
            return
        self.link.send(PING_FRAME)
        self._pong_handle = self._timers.call_later(self.server.ping_timeout, self._ping_timeout)

    def _on_pong(self) -> None:
        if self._pong_handle is None:
            return  # an unsolicited pong changes nothing
        self._pong_handle.cancel()
        self._pong_handle = None
        self._ping_handle = self._timers.call_later(self.server.ping_interval, self._send_ping)

    def _ping_timeout(self) -> None:
        logger.info("closing connection %s: no pong within ping_timeout", self.eio_sid)
        self.link.close("ping timeout", abort=True)

    def _connect_timeout(self) -> None:
        self._connect_handle = None
        self._connect_expired = True
        # A namespace whose connect handler still runs decides: see _refuse.
        if not self.protocol.connected and not self.protocol.pending:
            logger.warning(
                "closing connection %s: no namespace joined within connect_timeout", self.eio_sid
            )
            self.link.close("transport close", message="connect timeout")

    # -- packets ---------------------------------------------------------------------

    def _on_frame(self, frame: str | bytes) -> None:
        item = self.protocol.receive(frame)
        if item is None:
            return
        match item:
            case Event():
                self.link.dispatch_event(
                    self.server, item, self.sessions[item.namespace], size=len(frame)
                )
            case Ack():
                self.link.resolve_ack(item)
            case Pong():
                self._on_pong()
            case Connect():
                self._on_connect(item)
            case Disconnect():
                session = self.sessions.get(item.namespace)
                if session is not None:
                    self._end_session(session, "client disconnect")
            case Close():
                self.link.close("transport close")

    def _on_connect(self, packet: Connect) -> None:
        namespace = packet.namespace
        server = self.server
        if (
            namespace != "/"
            and namespace not in server._handlers
            and (namespace not in server._streams)
        ):
            # "/" always exists, as in Socket.IO; other namespaces exist by their handlers.
            self.link.send(self.protocol.refuse(namespace, "Invalid namespace"))
            return
        joined = len(self.protocol.connected) + len(self.protocol.pending)  # this one too
        if joined > server.max_namespaces:
            logger.warning(
                "connection %s refused namespace %r: max_namespaces (%d) reached",
                self.eio_sid,
                namespace,
                server.max_namespaces,
            )
            self.link.send(self.protocol.refuse(namespace, "Too many namespaces"))
            return
        auth = dict(packet.data) if packet.data is not None else {}
        session = self._new_session(namespace, auth)
        handler = server._lifecycle_handler(namespace, "connect")
        recovery = server.recovery
        if session.recovered and recovery is not None and recovery.skip_connect_handler:
            self._accept(session)
            return
        middleware = server._middleware_for(namespace) if server._middleware else None
        if middleware:
            self.link.spawn(self._run_connect(handler, session, auth, middleware))
        elif handler is None:
            self._accept(session)
        elif handler.is_async:
            self.link.spawn(self._run_connect(handler, session, auth))
        else:
            try:
                result = handler.func(*((session, auth) if handler.max_args != 0 else (session,)))
            except Exception as exc:
                self._refuse(session, exc)
            else:
                self._accept_or_refuse(session, result)

    def _new_session(self, namespace: str, auth: dict[str, Any]) -> Session:
        """A fresh session, or the one ``auth``'s ``pid`` and ``offset`` recover.

        ``pid`` and ``offset`` are taken out of ``auth`` either way."""
        server = self.server
        pid, offset = auth.pop("pid", None), auth.pop("offset", None)
        log, store = server._log, server._store
        stored = None
        after: int | None = None
        if log is not None and store is not None and type(pid) is str:
            stored = store.take(pid, namespace, server._clock())
            if stored is not None:
                after = log.position(offset if type(offset) is str else log.offset(stored.start))
                if after is None:
                    logger.info("session %s not recovered: events it missed are gone", stored.sid)
                    stored = None
        rooms = server._rooms_for(namespace)
        if stored is not None and after is not None:
            session = Session(server, self, namespace, stored.sid)
            session.data = stored.data
            session.pid = stored.pid
            session.recovered = True
            session._replay_from = after
            for room in stored.rooms:
                rooms.enter(session.id, room)
        else:
            session = Session(server, self, namespace, new_id())
            if log is not None:
                session.pid = new_id()
        if log is not None:
            # From here on, events for this session reach its buffer through its rooms;
            # a recovery replays what came before.
            session._start = log.mark
        self.sessions[namespace] = session
        server._sessions[session.id] = session
        rooms.enter(session.id, session.id)
        return session

    async def _run_connect(
        self,
        handler: Handler | None,
        session: Session,
        auth: dict[str, Any],
        middleware: list[Handler] | None = None,
    ) -> None:
        """The connection middleware in order, then the connect handler; the first
        refusal (or exception) refuses the client."""
        try:
            result: Any = None
            for step in middleware or ():
                result = step.func(session, auth)
                if inspect.isawaitable(result):
                    result = await result
                if result is False:
                    break
            if result is not False and handler is not None:
                result = handler.func(*((session, auth) if handler.max_args != 0 else (session,)))
                if inspect.isawaitable(result):
                    result = await result
        except Exception as exc:
            self._refuse(session, exc)
        else:
            self._accept_or_refuse(session, result)

    def _accept_or_refuse(self, session: Session, result: Any) -> None:
        if result is False:
            self._refuse(session, ConnectionRefused("Connection rejected by server"))
        else:
            self._accept(session)

    def _still_wanted(self, session: Session) -> bool:
        """Whether the CONNECT that made ``session`` is still the one waiting: the client
        may have left the namespace (and come back, with another session) while the
        session's connect handler ran."""
        return (
            session.namespace in self.protocol.pending
            and self.sessions.get(session.namespace) is session
            and self.link.open
        )

    def _accept(self, session: Session) -> None:
        namespace = session.namespace
        if not self._still_wanted(session):
            self._forget(session)  # the client left while its connect handler ran
            return
        if self._connect_handle is not None:
            self._connect_handle.cancel()
            self._connect_handle = None
        log = self.server._log
        out: list[str | bytes] = []
        if session.recovered and log is not None:
            # the missed events go first, as socket.io sends them: before the reply
            out.extend(log.replay(namespace, session._replay_from, session._start, session.rooms))
        extra = None if session.pid is None else {"pid": session.pid}
        out.append(self.protocol.accept(namespace, session.id, extra))
        buffered, session._buffer = session._buffer, None
        out.extend(buffered or ())
        session.connected = True
        for frame in out:
            if not self.link.open:
                break  # the transport broke on the way: the reader ends this session too
            self.link.send(frame)

    def _refuse(self, session: Session, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefused):
            message, data = exc.message, exc.data
        else:
            logger.error("connect handler on %r raised", session.namespace, exc_info=exc)
            message, data = "Internal server error", None
        wanted = self._still_wanted(session)
        self._forget(session)
        if wanted:
            self.link.send(self.protocol.refuse(session.namespace, message, data))
        if self._connect_expired:
            self._connect_timeout()

    def _forget(self, session: Session) -> None:
        session._buffer = None
        if self.sessions.get(session.namespace) is session:
            del self.sessions[session.namespace]
        self.server._sessions.pop(session.id, None)
        self.server._rooms_for(session.namespace).leave_all(session.id)

    def disconnect_session(self, session: Session, reason: str) -> None:
        if not session.connected:
            return
        if self.link.open and session.namespace in self.protocol.connected:
            self.link.send(self.protocol.disconnect(session.namespace))
        self._end_session(session, reason)

    def _end_session(self, session: Session, reason: str) -> None:
        was_connected = session.connected
        session.connected = False
        store = self.server._store
        if (
            was_connected
            and store is not None
            and session.pid is not None
            and reason in RECOVERABLE_REASONS
        ):
            store.keep(
                StoredSession(
                    session.id,
                    session.pid,
                    session.namespace,
                    session.rooms - {session.id},
                    session.data,
                    session._start,
                ),
                self.server._clock(),
            )
        self._forget(session)
        self.link.fail_acks(session.namespace, reason)
        if not was_connected:
            return
        handler = self.server._lifecycle_handler(session.namespace, "disconnect")
        if handler is None:
            return
        args = (session, reason) if handler.max_args != 0 else (session,)
        self.link.dispatch(
            handler,
            args,
            session.namespace,
            None,
            "disconnect",
            tasks=self.server._cleanup,
        )
