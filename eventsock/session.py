"""The asyncio side of one connection, shared by the server and the client.

A :class:`Link` owns one :class:`~eventsock.transport.WebSocket` and drives a Sans-I/O
protocol object: one reader (the task that calls :meth:`Link.run`), frames written at
once when the transport takes them (a writer task only while a write waits for the
transport to drain, with later frames queued behind it), the futures of calls awaiting
their acks, and the tasks of async handlers that suspend.

Ordering: handlers start in the order their events arrived on the connection, and
every handler runs at once, before the next frame is read: a plain (sync) handler to
its end, an ``async`` handler up to its first suspension (an eager task on Python
3.12+, the eager first step of :mod:`eventsock.eager` on 3.11). Handlers that await
may finish out of order. A handler never blocks the reader, so it may ``call()`` back
the same peer.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from .codec import encode_ack, encode_event
from .eager import PENDING, FirstStep, resume, step
from .exceptions import (
    AckTimeout,
    ConnectionClosed,
    InternalError,
    InvalidArguments,
    LimitExceeded,
    ProtocolError,
    RateLimited,
    RemoteError,
    TooManyCalls,
    UnknownEvent,
)
from .handlers import Handler, HandlerRegistry
from .limits import LinkLimits, Stats, TokenBucket
from .packets import RESERVED_EVENTS, STREAM_EVENTS, STREAM_OPEN, Ack, Event
from .protocol import ClientProtocol, ServerProtocol
from .remote import error_args, is_error_object, raise_for_error
from .streams import Streams
from .transport import CLOSE_NORMAL, CLOSE_POLICY, CLOSE_PROTOCOL_ERROR, Closed, WebSocket

__all__ = ["Link", "ack_args", "ack_result", "check_event_name", "run_detached", "settle"]

logger = logging.getLogger("eventsock")

DEFAULT_LIMITS: Final = LinkLimits()

# Seconds a closing handshake may take before the TCP connection is dropped.
CLOSE_TIMEOUT = 5.0
# The same, when the peer is known to be unresponsive (no pong, no ping).
ABORT_TIMEOUT = 0.01


def check_event_name(event: str) -> None:
    """Refuse to emit names the Socket.IO peers reserve.

    Raises:
        ValueError: ``event`` is reserved or not a string.
    """
    if type(event) is not str:
        raise ValueError(f"event name must be a string, not {type(event).__name__}")
    if event in RESERVED_EVENTS:
        raise ValueError(f"{event!r} is a reserved event name")
    if event in STREAM_EVENTS:
        raise ValueError(f"{event!r} is reserved for streams")


def ack_args(result: Any) -> tuple[Any, ...]:
    """A handler's return value as ack arguments: ``None`` → none, a tuple → several."""
    if result is None:
        return ()
    if type(result) is tuple:
        return result
    return (result,)


def ack_result(args: tuple[Any, ...]) -> Any:
    """Ack arguments as ``call()`` returns them: none → ``None``, one → it, more → a tuple."""
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return args


class Link:
    """One connection: reader loop, writer task, pending acks, handler tasks."""

    def __init__(
        self,
        ws: WebSocket,
        protocol: ServerProtocol | ClientProtocol,
        *,
        tasks: set[asyncio.Task[Any]],
        debug: bool = False,
        limits: LinkLimits = DEFAULT_LIMITS,
        stats: Stats | None = None,
    ) -> None:
        self.ws = ws
        self.protocol = protocol
        self.close_reason: str | None = None
        self._loop = asyncio.get_running_loop()
        # Frames waiting behind a write that waits for the transport to drain, and
        # their size; bounded by limits.backpressure for everything but control frames.
        self._queue: deque[str | bytes] = deque()
        self._queued_bytes = 0
        self._room: asyncio.Future[None] | None = None  # senders waiting for room
        self._limits = limits
        self._stats = stats if stats is not None else Stats()
        self._bucket = (
            TokenBucket(limits.rate_limit, self._loop.time())
            if limits.rate_limit is not None
            else None
        )
        self._serving = 0  # the peer's calls whose handlers are still running
        #: Frames dropped for this peer because its queue was full.
        self.dropped = 0
        # The writer task exists only while there is something to write: an idle
        # connection holds no task and no event, which keeps it small.
        self._writer: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[None] | None = None  # done once the socket is closed
        self._ws_closed = False
        self._closing = False
        self._close_code = CLOSE_NORMAL
        self._close_message = ""
        self._abort = False
        self._sending = False  # the writer task is finishing a write that had to wait
        self._acks: dict[tuple[str, int], asyncio.Future[tuple[Any, ...]]] = {}
        self._streams: Streams | None = None  # made with the first stream
        self._deadlines: Deadlines | None = None  # one timer for its calls, made at the first
        # Handler tasks live in the owner's set, so shutdown can cancel what remains.
        self._tasks = tasks
        #: Whether error answers carry an unexpected exception's details.
        self.debug = debug
        #: Called with (exception, namespace, event) when a handler raises; returns the
        #: error to answer with instead, or None (the owner's error handlers).
        self.error_hook: Callable[[Exception, str, str], Exception | None] | None = None

    # -- writing ---------------------------------------------------------------------

    @property
    def open(self) -> bool:
        """Whether frames can still be sent."""
        return not self._closing

    def send(self, frame: str | bytes) -> None:
        """Send one frame, or queue it behind the frames waiting to be sent; never blocks.

        When nothing waits, the frame is written to the transport at once, from the
        caller's turn of the loop; only a write that has to wait for the transport to
        drain goes on in a writer task, and later frames queue behind it. A transport
        that broke closes the connection (reason "transport error").

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        if self._closing:
            raise ConnectionClosed(self.close_reason or "connection closed")
        if self._sending or self._queue:
            self._queue.append(frame)
            self._queued_bytes += len(frame)
            if not self._sending:
                self._start_writer()
            return
        try:
            rest = self.ws.write(frame)
        except ConnectionClosed as exc:
            self.close("transport error", message=exc.reason)
            return
        if rest is not None:
            self._sending = True
            self._writer = self._loop.create_task(self._write(rest))

    def _start_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = self._loop.create_task(self._write())

    async def _write(self, rest: Awaitable[None] | None = None) -> None:
        """Finish the write in progress (``rest``), then send what is queued, in order;
        close the socket if the connection closes."""
        try:
            if rest is not None:
                try:
                    await rest
                finally:
                    self._sending = False
            queue = self._queue
            if queue and not self._sending:
                self._sending = True
                try:
                    ws = self.ws
                    while queue:
                        frame = queue.popleft()
                        self._queued_bytes -= len(frame)
                        if self._room is not None:
                            self._wake_senders()
                        more = ws.write(frame)
                        if more is not None:
                            await more
                finally:
                    self._sending = False
        except ConnectionClosed as exc:
            self.close("transport error", message=exc.reason)
        finally:
            if self._closing:
                self._queue.clear()
                self._queued_bytes = 0
                await self._close_ws()

    # -- the bounded queue -----------------------------------------------------------

    def _fits(self, size: int) -> bool:
        """Whether a frame of ``size`` bytes may be sent or queued now."""
        queue = self._queue
        if not queue:
            return True  # written now, or the only one behind the write in progress
        bounds = self._limits.backpressure
        return len(queue) < bounds.max_packets and self._queued_bytes + size <= bounds.max_bytes

    def push(self, frame: str | bytes, *, volatile: bool = False) -> bool:
        """Send a frame that may not wait for room (a broadcast, an ack, a stream item);
        returns whether it was sent or queued.

        A full queue drops a ``volatile`` frame (or any, with ``overflow="drop"``);
        otherwise the peer is disconnected as a slow consumer.

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        if self._queue and not self._fits(len(frame)):
            if self._closing:
                raise ConnectionClosed(self.close_reason or "connection closed")
            if volatile or self._limits.backpressure.overflow == "drop":
                self._drop(frame)
            else:
                self.slow_consumer()
            return False
        self.send(frame)
        return True

    async def push_wait(self, frame: str | bytes, *, volatile: bool = False) -> None:
        """Send a frame, waiting up to ``send_timeout`` for room in a full queue (a
        ``volatile`` one is dropped instead); a peer that makes no room in that time
        is disconnected as a slow consumer.

        Raises:
            ConnectionClosed: the connection closed, or was closed as a slow consumer.
        """
        if not self._fits(len(frame)) and not self._closing:
            if volatile:
                self._drop(frame)
                return
            await self.wait_for_room(len(frame))
        self.send(frame)

    async def wait_for_room(self, size: int) -> None:
        """Wait until a frame of ``size`` bytes fits in the queue, up to the
        ``send_timeout``; then disconnect the peer as a slow consumer.

        Raises:
            ConnectionClosed: the connection closed, or was closed as a slow consumer.
        """
        deadline = self._loop.time() + self._limits.backpressure.send_timeout
        while not self._fits(size):
            if self._closing:
                raise ConnectionClosed(self.close_reason or "connection closed")
            room = self._room
            if room is None:
                room = self._room = self._loop.create_future()
            remaining = deadline - self._loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(asyncio.shield(room), remaining)
            except TimeoutError:
                self.slow_consumer()
                raise ConnectionClosed("slow consumer") from None
        if self._closing:
            raise ConnectionClosed(self.close_reason or "connection closed")

    def _wake_senders(self) -> None:
        """Wake the senders waiting for room once the queue is half empty (or closing)."""
        bounds = self._limits.backpressure
        queue = self._queue
        if (
            self._closing
            or not queue
            or (2 * len(queue) <= bounds.max_packets and 2 * self._queued_bytes <= bounds.max_bytes)
        ):
            room, self._room = self._room, None
            if room is not None and not room.done():
                room.set_result(None)

    def _drop(self, frame: str | bytes) -> None:
        self.dropped += 1
        self._stats.dropped += 1
        logger.log(
            logging.INFO if self.dropped == 1 else logging.DEBUG,
            "a frame of %d bytes dropped for a slow peer: %d frames (%d bytes) wait"
            " (%d dropped for it so far)",
            len(frame),
            len(self._queue),
            self._queued_bytes,
            self.dropped,
        )

    def slow_consumer(self) -> None:
        """Disconnect the peer for not reading what is sent to it ("slow consumer")."""
        if self._closing:
            return
        self._stats.slow_consumers += 1
        logger.warning(
            "disconnecting a slow consumer: %d frames (%d bytes) wait to be sent",
            len(self._queue),
            self._queued_bytes,
        )
        self.close("slow consumer", code=CLOSE_POLICY, message="slow consumer", abort=True)

    async def _close_ws(self) -> None:
        if self._ws_closed:
            return
        self._ws_closed = True
        try:
            await self.ws.close(
                self._close_code,
                self._close_message,
                timeout=ABORT_TIMEOUT if self._abort else CLOSE_TIMEOUT,
            )
        finally:
            if self._closed is not None and not self._closed.done():
                self._closed.set_result(None)

    def close(
        self, reason: str, *, code: int = CLOSE_NORMAL, message: str = "", abort: bool = False
    ) -> None:
        """Flush what is queued, then close the WebSocket. The first reason given wins.

        With ``abort`` (the peer is unresponsive), nothing more is sent: the writer
        stops where it is and the connection is dropped after a token close attempt.
        """
        if self.close_reason is None:
            self.close_reason = reason
        if not self._closing:
            self._closing = True
            self._close_code = code
            self._close_message = message
            self._closed = self._loop.create_future()
            if self._room is not None:
                self._wake_senders()
        if abort and not self._abort:
            self._abort = True
            self._queue.clear()
            self._queued_bytes = 0
            stuck = self._writer
            if self._sending:
                # stuck sending to a peer that reads nothing: dropping the connection
                # ends the write (and the writer task, with nothing left to send)
                self.ws.abort()
            self._writer = self._loop.create_task(self._close_after(stuck))
            return
        if not self._sending:
            self._start_writer()

    async def _close_after(self, writer: asyncio.Task[None] | None) -> None:
        if writer is not None:
            await asyncio.wait([writer])
        await self._close_ws()

    async def run(self, on_frame: Callable[[str | bytes], None]) -> str:
        """Read frames until the WebSocket ends; returns the disconnect reason.

        ``on_frame`` handles each frame; a :class:`ProtocolError` it raises closes this
        connection with code 1002 and reason "transport error", after logging why.
        """
        ws = self.ws
        try:
            while True:
                frame = await ws.receive()
                if type(frame) is Closed:
                    if frame.error is not None:
                        if self.close_reason is None:
                            logger.warning("connection broke: %s", frame.error)
                        self.close("transport error")
                    else:
                        self.close("transport close")
                    break
                if self._closing:
                    continue  # draining until the peer answers our close
                try:
                    on_frame(frame)  # type: ignore[arg-type]
                except ProtocolError as exc:
                    logger.warning("closing connection: %s", exc.reason)
                    self.close("transport error", code=CLOSE_PROTOCOL_ERROR, message=exc.reason)
        finally:
            self.close("transport close")
            assert self._closed is not None
            await asyncio.shield(self._closed)
            self.fail_acks(None, self.close_reason or "connection closed")
            if self._deadlines is not None:
                self._deadlines.clear()
        return self.close_reason or "transport close"

    # -- streams ---------------------------------------------------------------------

    @property
    def streams(self) -> Streams:
        """This connection's streams, both ways."""
        if self._streams is None:
            self._streams = Streams(self, server_side=isinstance(self.protocol, ServerProtocol))
        return self._streams

    # -- acks ------------------------------------------------------------------------

    async def call(self, namespace: str, event: str, args: tuple[Any, ...], timeout: float) -> Any:
        """Send an EVENT that asks for an ack and wait for it.

        Raises:
            AckTimeout: no ack within ``timeout`` seconds.
            ConnectionClosed: the connection or namespace ended first (or the peer was
                disconnected as a slow consumer while the call waited for room).
            LimitExceeded: ``max_pending_calls`` calls already wait for their acks.
            RemoteError: the peer answered with an error (its subclass by code).
        """
        limit = self._limits.max_pending_calls
        if len(self._acks) >= limit:
            raise LimitExceeded(f"{limit} calls already wait for their acks on this connection")
        uploads: list[tuple[str, int]] | None = None
        for value in args:
            kind = type(value)
            # an upload: a stream as an argument (the plain types skip hasattr, which
            # formats and discards an AttributeError for every argument it misses)
            if kind not in _PLAIN and hasattr(kind, "__aiter__"):
                args, uploads = self.streams.send_uploads(namespace, args)
                break
        ack_id = self.protocol.next_ack_id(namespace)
        try:
            frame = encode_event(event, args, namespace, ack_id)
            if not self._fits(len(frame)):
                await self.wait_for_room(len(frame))  # before the ack's deadline starts
        except BaseException:
            if uploads:
                self.streams.end_uploads(uploads)
            raise
        future: asyncio.Future[tuple[Any, ...]] = self._loop.create_future()
        key = (namespace, ack_id)
        self._acks[key] = future  # before sending: the ack may come back at once
        deadlines = self._deadlines
        if deadlines is None:
            deadlines = self._deadlines = Deadlines(self._loop)
        deadlines.add(future, timeout, event, namespace)
        try:
            self.send(frame)
            answer = await future
        finally:
            self._acks.pop(key, None)
            if not future.done():
                # the send raised, or the caller was cancelled: the deadline must find
                # the future done, or it would fail it with an error nobody retrieves
                future.cancel()
            if uploads:
                self.streams.end_uploads(uploads)
        raise_for_error(answer)
        return ack_result(answer)

    def resolve_ack(self, packet: Ack) -> None:
        """Deliver an ACK to its call; an unknown or late id is ignored."""
        future = self._acks.pop((packet.namespace, packet.id), None)
        if future is not None and not future.done():
            future.set_result(packet.args)

    def fail_acks(self, namespace: str | None, reason: str) -> None:
        """Fail the calls waiting on ``namespace`` (all when ``None``) at once, and end
        its streams."""
        if self._streams is not None:
            self._streams.close(namespace, reason)
        for key in [k for k in self._acks if namespace is None or k[0] == namespace]:
            future = self._acks.pop(key)
            if not future.done():
                future.set_exception(ConnectionClosed(reason))

    @property
    def pending_acks(self) -> int:
        """How many calls are waiting for an ack on this connection."""
        return len(self._acks)

    # -- handlers --------------------------------------------------------------------

    def dispatch_event(
        self, registry: HandlerRegistry, packet: Event, *leading: Any, size: int = 0
    ) -> None:
        """Find the handler for an EVENT (or the catch-all) and run it with ``leading``
        arguments (the session, on the server) before the event's own.

        An event with no handler, or whose arguments do not fit the handler's
        signature, is logged and dropped; when it asked for an ack, the caller is
        answered with an ``unknown_event`` or ``invalid_arguments`` error."""
        if self._bucket is not None and not self._admit(packet):
            return
        if packet.name in STREAM_EVENTS:  # stream control, not an application event
            if packet.name == STREAM_OPEN:
                self.streams.open_requested(
                    registry, packet.args, packet.namespace, packet.id, leading
                )
            else:
                self.streams.received(packet.name, packet.namespace, packet.args)
            return
        if registry._incoming:
            # event middleware first: it may transform the arguments or reject the event
            try:
                args = registry._apply_incoming(packet.namespace, packet.name, packet.args, leading)
            except Exception as exc:
                self.handler_failed(exc, packet.namespace, packet.id, packet.name)
                return
            if args is not packet.args:
                packet = Event(packet.name, args, packet.namespace, packet.id)
        handler, catch_all = registry.lookup(packet.namespace, packet.name)
        if handler is None:
            logger.debug("no handler for event %r on %r", packet.name, packet.namespace)
            if packet.id is not None:
                self.send_error(
                    packet.namespace,
                    packet.id,
                    UnknownEvent(f"no handler for {packet.name!r} on {packet.namespace!r}"),
                )
            return
        if not handler.accepts(len(packet.args)):
            # answered when a call: the caller learns of it, so only INFO then
            logger.log(
                logging.INFO if packet.id is not None else logging.WARNING,
                "event %s dropped: it has %d argument(s), its handler takes %s",
                f"{packet.name!r} on {packet.namespace!r}",
                len(packet.args),
                handler.describe(),
            )
            if packet.id is not None:
                self.send_error(
                    packet.namespace,
                    packet.id,
                    InvalidArguments(
                        f"{packet.name!r} takes {handler.describe()} argument(s),"
                        f" not {len(packet.args)}",
                        data={"expected": handler.describe(), "received": len(packet.args)},
                    ),
                )
            return
        if handler.max_payload is not None and size > handler.max_payload:
            logger.log(
                logging.INFO if packet.id is not None else logging.WARNING,
                "event %s dropped: a message of %d bytes, its limit is %d",
                f"{packet.name!r} on {packet.namespace!r}",
                size,
                handler.max_payload,
            )
            if packet.id is not None:
                self.send_error(
                    packet.namespace,
                    packet.id,
                    RemoteError(
                        f"{packet.name!r} takes messages of at most {handler.max_payload} bytes",
                        code="payload_too_large",
                        data={"limit": handler.max_payload, "size": size},
                    ),
                )
            return
        event_args = packet.args
        if handler.uploads:  # parameters annotated AsyncIterator[...] take streams
            event_args = self.streams.accept_uploads(
                packet.namespace, event_args, handler.uploads, handler.window
            )
        if handler.params is not None:  # a typed handler: check and convert first
            try:
                event_args = handler.convert(event_args)
            except InvalidArguments as exc:
                logger.log(
                    logging.INFO if packet.id is not None else logging.WARNING,
                    "event %s dropped: %s",
                    f"{packet.name!r} on {packet.namespace!r}",
                    exc.message,
                )
                if packet.id is not None:
                    self.send_error(packet.namespace, packet.id, exc)
                return
        if catch_all:
            args = (*leading, packet.name, *event_args)
        else:
            args = (*leading, *event_args) if leading else event_args
        if (
            packet.id is not None
            and handler.is_async  # a sync handler answers before the next frame is read
            and self._serving >= self._limits.max_incoming_calls
        ):
            self._stats.calls_refused += 1
            logger.info(
                "call %s refused: %d calls of this peer are being handled already",
                f"{packet.name!r} on {packet.namespace!r}",
                self._serving,
            )
            self.send_error(
                packet.namespace,
                packet.id,
                TooManyCalls(
                    f"{self._serving} calls are being handled already; retry when one ends",
                    data={"limit": self._limits.max_incoming_calls},
                ),
            )
            return
        self.dispatch(handler, args, packet.namespace, packet.id, packet.name)

    def _admit(self, packet: Event) -> bool:
        """Whether the rate limit lets ``packet`` through; answers or drops it if not."""
        bucket = self._bucket
        assert bucket is not None
        if packet.name in _UNMETERED or bucket.take(self._loop.time()):
            return True
        self._stats.rate_limited += 1
        if bucket.exhausted:
            self._stats.rate_limit_disconnects += 1
            logger.warning("disconnecting a peer that ignores the rate limit")
            self.close("rate limit exceeded", code=CLOSE_POLICY, message="rate limit exceeded")
            return False
        retry_after = round(bucket.retry_after(), 3)
        if packet.id is not None:
            self.send_error(
                packet.namespace,
                packet.id,
                RateLimited(
                    f"over the rate limit; retry in {retry_after} s",
                    data={"retry_after": retry_after},
                ),
            )
        else:
            logger.log(
                logging.INFO if self._stats.rate_limited == 1 else logging.DEBUG,
                "event %r on %r dropped: over the rate limit",
                packet.name,
                packet.namespace,
            )
        return False

    def dispatch(
        self,
        handler: Handler,
        args: tuple[Any, ...],
        namespace: str,
        ack_id: int | None,
        label: str,
        *,
        tasks: set[asyncio.Task[Any]] | None = None,
    ) -> None:
        """Run a handler for an event; its return value becomes the ack when asked,
        and what it raises an error answer (see :meth:`handler_failed`).

        Every handler starts at once, in its own copy of the context. An async handler
        that suspends goes on as a task kept in ``tasks`` (the owner's handler tasks by
        default); one that never waits finishes here, with no task at all.
        """
        context = contextvars.copy_context()
        if not handler.is_async:
            context.run(self._run_sync, handler, args, namespace, ack_id, label)
            return
        if handler.concurrency is not None:
            handler = _limited(handler)
        if _eager_task_factory is not None:
            # Python 3.12+: a real eager task runs the handler now, up to its first
            # suspension; one that never suspends costs no loop turn at all.
            task = _eager_task_factory(
                self._loop, self._run_async(handler, args, namespace, ack_id, label)
            )
            if not task.done():
                group = self._tasks if tasks is None else tasks
                group.add(task)
                task.add_done_callback(group.discard)
                if ack_id is not None:
                    self._serve(task)
            return
        # Python 3.11: the first step runs here, with a stand-in for the task it would
        # have had; a task is made only if the handler suspends.
        stand_in = FirstStep()
        try:
            coro = handler.func(*args)
            result, yielded = step(self._loop, coro, context, stand_in)
        except asyncio.CancelledError:
            return  # the handler cancelled itself: no ack, as for a cancelled task
        except Exception as exc:
            self.handler_failed(exc, namespace, ack_id, label)
            return
        if yielded is PENDING:
            self._reply(handler.encode, result, namespace, ack_id, label)
            return
        task = self._loop.create_task(
            self._finish_async(coro, yielded, namespace, ack_id, label, handler.encode),
            context=context,
        )
        stand_in.bind(task)
        group = self._tasks if tasks is None else tasks
        group.add(task)
        task.add_done_callback(group.discard)
        if ack_id is not None:
            self._serve(task)

    def _serve(self, task: asyncio.Task[Any]) -> None:
        """Count a handler task that will answer a call, until it ends."""
        self._serving += 1
        task.add_done_callback(self._served)

    def _served(self, _task: asyncio.Task[Any]) -> None:
        self._serving -= 1

    def _run_sync(
        self,
        handler: Handler,
        args: tuple[Any, ...],
        namespace: str,
        ack_id: int | None,
        label: str,
    ) -> None:
        try:
            result = handler.func(*args)
        except Exception as exc:
            self.handler_failed(exc, namespace, ack_id, label)
            return
        self._reply(handler.encode, result, namespace, ack_id, label)

    async def _run_async(
        self,
        handler: Handler,
        args: tuple[Any, ...],
        namespace: str,
        ack_id: int | None,
        label: str,
    ) -> None:
        try:
            result = await handler.func(*args)
        except Exception as exc:
            self.handler_failed(exc, namespace, ack_id, label)
            return
        self._reply(handler.encode, result, namespace, ack_id, label)

    async def _finish_async(
        self,
        coro: Coroutine[Any, Any, Any],
        yielded: Any,
        namespace: str,
        ack_id: int | None,
        label: str,
        encode: Callable[[Any], Any] | None,
    ) -> None:
        try:
            result = await resume(coro, yielded)
        except Exception as exc:
            self.handler_failed(exc, namespace, ack_id, label)
            return
        self._reply(encode, result, namespace, ack_id, label)

    def _reply(
        self,
        encode: Callable[[Any], Any] | None,
        result: Any,
        namespace: str,
        ack_id: int | None,
        label: str,
    ) -> None:
        """A handler returned ``result``: encode it (typed results) and ack it if asked."""
        if encode is not None:
            try:
                result = encode(result)
            except Exception as exc:
                self.handler_failed(exc, namespace, ack_id, label)
                return
        if ack_id is not None:
            self.send_ack(namespace, ack_id, result)

    def handler_failed(
        self, exc: Exception, namespace: str, ack_id: int | None, label: str
    ) -> None:
        """A handler raised ``exc``: log it and, if its event asked for an ack, answer
        the caller with the error (a :class:`RemoteError` as it is, anything else as
        an ``internal_error`` that tells nothing of it unless :attr:`debug`)."""
        answer: Exception = exc
        if self.error_hook is not None:
            replacement = self.error_hook(exc, namespace, label)
            if replacement is not None:
                answer = replacement
        if isinstance(exc, RemoteError):
            logger.debug("handler for %r answered with an error: %s", label, exc)
            if ack_id is None:
                logger.info("handler for %r raised %s, but no ack was asked", label, exc)
        elif answer is not exc:
            # an error handler of the application's took it in hand: no alarm
            logger.info(
                "handler for %r raised %r; an error handler answered %s",
                label,
                exc,
                answer,
                exc_info=exc if logger.isEnabledFor(logging.DEBUG) else None,
            )
        else:
            logger.error("handler for %r raised", label, exc_info=exc)
        if ack_id is not None:
            self.send_error(namespace, ack_id, answer)

    def _ack_frame(self, namespace: str, ack_id: int, args: tuple[Any, ...]) -> bytes | None:
        if self._closing or namespace not in self.protocol.connected:
            logger.debug("ack %d on %r dropped: the namespace is gone", ack_id, namespace)
            return None
        try:
            return encode_ack(ack_id, args, namespace)
        except TypeError:
            logger.exception("cannot encode the ack of a handler on %r", namespace)
            return encode_ack(
                ack_id,
                error_args(InternalError("the handler's result cannot be encoded")),
                namespace,
            )

    def send_ack(self, namespace: str, ack_id: int, result: Any) -> None:
        """Answer a call with a handler's return value; dropped with a debug line if
        the connection is gone."""
        args = ack_args(result)
        if len(args) == 1 and is_error_object(args[0]):
            logger.error(
                "a handler on %r returned a value shaped like an error object; the caller"
                " gets an internal_error instead (raise eventsock.RemoteError to answer"
                " with an error)",
                namespace,
            )
            args = error_args(InternalError("the handler's result is reserved"))
        frame = self._ack_frame(namespace, ack_id, args)
        if frame is not None:
            self.push(frame)

    def send_error(self, namespace: str, ack_id: int, exc: Exception) -> None:
        """Answer a call with an error object (see :mod:`eventsock.remote`)."""
        frame = self._ack_frame(namespace, ack_id, error_args(exc, debug=self.debug))
        if frame is not None:
            self.push(frame)

    def spawn(
        self,
        coro: Coroutine[Any, Any, Any],
        *,
        tasks: set[asyncio.Task[Any]] | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        """Start a task that the owner tracks (in ``tasks``) until it ends."""
        task = self._loop.create_task(coro, context=context)
        group = self._tasks if tasks is None else tasks
        group.add(task)
        task.add_done_callback(group.discard)
        return task


class Deadlines:
    """The deadlines of one connection's calls, behind a single timer.

    Calls made with the same timeout expire in the order they were made, so each
    timeout value keeps a FIFO of ``(deadline, future, event, namespace)``, and one
    timer waits for the earliest deadline of all. An answered call stays in its FIFO
    until it reaches the front (answered calls there are dropped as they are met) or
    until the FIFO grows to four times the calls in flight at its last rebuild (at
    least 1,024), when it is rebuilt; so a connection's memory follows its calls in
    flight, and a call costs an append instead of a timer of its own.
    """

    __slots__ = ("_limits", "_loop", "_queues", "_timer", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, deque[_Deadline]] = {}
        self._limits: dict[float, int] = {}  # the length at which a FIFO is rebuilt
        self._timer: asyncio.TimerHandle | None = None
        self._when = 0.0

    def add(self, future: asyncio.Future[Any], timeout: float, event: str, namespace: str) -> None:
        """Fail ``future`` with :class:`AckTimeout` if not done within ``timeout`` s."""
        deadline = self._loop.time() + timeout
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = deque()
        else:
            # forget the answered calls at the front, then keep the rest short
            while queue and queue[0][1].done():
                queue.popleft()
            if len(queue) >= self._limits.get(timeout, _REBUILD_AT):
                # at most once per 3/4 of its length in new calls: O(1) per call
                live = [entry for entry in queue if not entry[1].done()]
                queue.clear()
                queue.extend(live)
                self._limits[timeout] = max(_REBUILD_AT, 4 * len(live))
        queue.append((deadline, future, event, namespace))
        if self._timer is None or deadline < self._when:
            self._arm(deadline)

    def clear(self) -> None:
        """Forget every deadline (the connection has ended)."""
        self._queues.clear()
        self._limits.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._when = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._timer = None
        # the loop runs a timer up to its clock's resolution early: count that as due
        now = self._loop.time() + _RESOLUTION
        earliest: float | None = None
        for timeout, queue in list(self._queues.items()):
            while queue:
                deadline, future, event, namespace = queue[0]
                if not future.done():
                    if deadline > now:
                        break
                    future.set_exception(
                        AckTimeout(f"no ack for {event!r} on {namespace!r} within {timeout} s")
                    )
                queue.popleft()
            if not queue:
                del self._queues[timeout]
                self._limits.pop(timeout, None)
            elif earliest is None or queue[0][0] < earliest:
                earliest = queue[0][0]
        if earliest is not None:
            self._arm(earliest)

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())


_Deadline = tuple[float, "asyncio.Future[Any]", str, str]
_RESOLUTION: Final = time.get_clock_info("monotonic").resolution
# A FIFO shorter than this is never rebuilt.
_REBUILD_AT: Final = 1024

# the argument types that are never uploads
_PLAIN: Final = frozenset({dict, list, tuple, str, bytes, int, float, bool, type(None)})


# The handlers with a concurrency limit, made to wait their turn: (limited, semaphores
# by loop), by the id of the registered handler (kept alive by the entry itself).
_LIMITED: dict[int, tuple[Handler, Handler]] = {}


def _limited(handler: Handler) -> Handler:
    """``handler`` with at most ``handler.concurrency`` calls running at once, per loop;
    a call that finds a free slot still starts at once."""
    entry = _LIMITED.get(id(handler))
    if entry is not None and entry[0] is handler:
        return entry[1]
    assert handler.concurrency is not None
    limit, func = handler.concurrency, handler.func
    semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
        weakref.WeakKeyDictionary()
    )

    async def limited(*args: Any) -> Any:
        loop = asyncio.get_running_loop()
        semaphore = semaphores.get(loop)
        if semaphore is None:
            semaphore = semaphores[loop] = asyncio.Semaphore(limit)
        async with semaphore:
            return await func(*args)

    wrapped = dataclasses.replace(handler, func=limited, concurrency=None)
    _LIMITED[id(handler)] = (handler, wrapped)
    return wrapped


# asyncio.eager_task_factory (Python 3.12+) starts a task's first step at once.
_eager_task_factory: Callable[..., asyncio.Task[None]] | None = getattr(
    asyncio, "eager_task_factory", None
)


# Stream flow control is not metered by the rate limit: credits and cancels answer
# what this side sends, and an item or end is paced by the credits this side grants.
_UNMETERED: Final = STREAM_EVENTS - {STREAM_OPEN}

# What _call and _call_async return for a handler that raised (and was logged).
_FAILED: Final = object()


def _call(handler: Handler, args: tuple[Any, ...], label: str) -> Any:
    try:
        return handler.func(*args)
    except Exception:
        logger.exception("handler for %r raised", label)
        return _FAILED


async def _call_async(handler: Handler, args: tuple[Any, ...], label: str) -> Any:
    try:
        return await handler.func(*args)
    except Exception:
        logger.exception("handler for %r raised", label)
        return _FAILED


def run_detached(
    handler: Handler, args: tuple[Any, ...], label: str, tasks: set[asyncio.Task[Any]]
) -> None:
    """Run a lifecycle handler that belongs to no connection (reconnection events):
    inline when sync, as a task kept in ``tasks`` when async; errors are logged."""
    if not handler.is_async:
        _call(handler, args, label)
        return
    task = asyncio.get_running_loop().create_task(_call_async(handler, args, label))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def settle(
    tasks: set[asyncio.Task[Any]], cleanup: set[asyncio.Task[Any]], grace: float
) -> None:
    """Cancel the handler ``tasks`` still running, and give the ``cleanup`` tasks
    (disconnect handlers) up to ``grace`` seconds to finish before cancelling them too.
    The task calling this is spared."""
    current = asyncio.current_task()
    handlers = [task for task in tasks if task is not current]
    for task in handlers:
        task.cancel()
    if handlers:
        await asyncio.gather(*handlers, return_exceptions=True)
    finishing = [task for task in cleanup if task is not current]
    if finishing:
        _, late = await asyncio.wait(finishing, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            logger.warning("%d disconnect handler(s) cancelled after %s s", len(late), grace)
            await asyncio.gather(*late, return_exceptions=True)
