"""Streams: a producer's async generator iterated by the peer, with credits.

On the wire a stream is ordinary Socket.IO events with reserved names, on the
namespace it was opened on:

* ``["$stream", id, name, window, *args]`` (a call): the consumer opens stream ``id``
  (an integer it chooses, unique on its connection: even when the client side chooses
  it, odd when the server side does) of the producer's ``name``
  handler, granting ``window`` items of credit. The producer acks ``true`` once the
  stream runs, or answers an error object (``unknown_event``, ``invalid_arguments``,
  also for an id of the wrong parity or one already in use).
* ``["$item", id, item]``: the next item; never more than the credit granted.
* ``["$credit", id, n]``: the consumer grants ``n`` more items.
* ``["$end", id]`` or ``["$end", id, error]``: the producer has finished, or failed
  with an error object (as in an error answer to a call).
* ``["$cancel", id]``: the consumer stops the stream; the producer's generator is
  closed (its ``finally`` runs) and it sends nothing more for ``id``.

The consumer grants half its window again each time it has consumed half of it, so a
producer is never more than ``window`` items ahead and a slow consumer bounds the memory
on both sides. A dropped connection ends every stream on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

from .codec import encode_event
from .convert import as_result
from .exceptions import ConnectionClosed, InvalidArguments, RemoteError, UnknownEvent
from .packets import STREAM_CANCEL, STREAM_CREDIT, STREAM_END, STREAM_ITEM, STREAM_OPEN
from .remote import error_args, raise_for_error

if TYPE_CHECKING:
    from .handlers import HandlerRegistry
    from .session import Link

__all__ = ["Streams"]

logger = logging.getLogger("eventsock")

OPEN: Final = STREAM_OPEN
ITEM: Final = STREAM_ITEM
CREDIT: Final = STREAM_CREDIT
END: Final = STREAM_END
CANCEL: Final = STREAM_CANCEL

_MAX_WINDOW: Final = 1 << 20
#: The key of an upload's placeholder among a call's arguments.
UPLOAD: Final = STREAM_OPEN
#: The credit granted to an upload (items in flight from the caller).
UPLOAD_WINDOW: Final = 16
_DONE: Final = object()


class _Producer:
    __slots__ = ("credit", "task", "wake")

    def __init__(self, credit: int) -> None:
        self.credit = credit
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class _Consumer:
    __slots__ = ("consumed", "ended", "error", "items", "waiter", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.items: deque[Any] = deque()
        self.ended = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.consumed = 0

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Streams:
    """The streams of one connection, both ways."""

    def __init__(self, link: Link, *, server_side: bool) -> None:
        self._link = link
        self._producers: dict[tuple[str, int], _Producer] = {}
        self._consumers: dict[tuple[str, int], _Consumer] = {}
        # ids the client side chooses are even, the server side's odd: an id is unique
        # on the connection whichever side chose it
        self._next_id = 1 if server_side else 0

    @property
    def active(self) -> int:
        """Streams running on this connection, both ways."""
        return len(self._producers) + len(self._consumers)

    # -- the consumer side ---------------------------------------------------------------

    async def consume(
        self,
        namespace: str,
        name: str,
        args: tuple[Any, ...],
        window: int,
        timeout: float,
        item_type: Any = None,
    ) -> AsyncIterator[Any]:
        """Open stream ``name`` on the peer and yield its items (an async generator:
        leaving its ``async for`` closes it, which cancels the stream), each checked and
        converted to ``item_type`` when given (:class:`InvalidResult` if it does not
        fit)."""
        if type(window) is not int or not 1 <= window <= _MAX_WINDOW:
            raise ValueError(f"window must be an integer from 1 to {_MAX_WINDOW}")
        stream_id = self._new_id()
        key = (namespace, stream_id)
        consumer = self._consumers[key] = _Consumer(window)
        link = self._link
        try:
            await link.call(namespace, OPEN, (stream_id, name, window, *args), timeout)
            while True:
                item = await self._next(namespace, stream_id, consumer)
                if item is _DONE:
                    return
                yield item if item_type is None else as_result(item, item_type)
        finally:
            self._forget(namespace, stream_id, consumer)

    async def _next(self, namespace: str, stream_id: int, consumer: _Consumer) -> Any:
        """The consumer's next item (granting credit as it goes), or ``_DONE``."""
        while not consumer.items and not consumer.ended:
            consumer.waiter = asyncio.get_running_loop().create_future()
            try:
                await consumer.waiter
            finally:
                consumer.waiter = None
        if consumer.items:
            item = consumer.items.popleft()
            consumer.consumed += 1
            if consumer.consumed >= max(1, consumer.window // 2) and not consumer.ended:
                grant, consumer.consumed = consumer.consumed, 0
                self._link.send(encode_event(CREDIT, (stream_id, grant), namespace))
            return item
        if consumer.error is not None:
            raise consumer.error
        return _DONE

    def _forget(self, namespace: str, stream_id: int, consumer: _Consumer) -> None:
        key = (namespace, stream_id)
        if self._consumers.get(key) is consumer:
            del self._consumers[key]
        if not consumer.ended and self._link.open:
            self._link.send(encode_event(CANCEL, (stream_id,), namespace))

    def _new_id(self) -> int:
        stream_id = self._next_id
        self._next_id += 2
        return stream_id

    def _peer_id(self, stream_id: object) -> bool:
        """Whether ``stream_id`` is an id the peer may choose: an integer of the other
        side's parity, so that it can never be one of the ids this side chooses."""
        return type(stream_id) is int and stream_id % 2 != self._next_id % 2

    # -- uploads: async iterables passed as call arguments ---------------------------------

    def send_uploads(
        self, namespace: str, args: tuple[Any, ...]
    ) -> tuple[tuple[Any, ...], list[tuple[str, int]]]:
        """``args`` with each async iterable replaced by ``{"$stream": id}``, each one
        produced (as the peer grants credit) by a producer started here; returns the
        new arguments and the producers' keys, for :meth:`end_uploads`."""
        out: list[Any] = []
        keys: list[tuple[str, int]] = []
        for value in args:
            if hasattr(type(value), "__aiter__"):
                stream_id = self._new_id()
                key = (namespace, stream_id)
                producer = self._producers[key] = _Producer(0)  # the peer grants first
                producer.task = self._link.spawn(
                    self._produce(key, "upload", value, producer, None)
                )
                out.append({UPLOAD: stream_id})
                keys.append(key)
            else:
                out.append(value)
        return tuple(out), keys

    def end_uploads(self, keys: list[tuple[str, int]]) -> None:
        """The call that carried these uploads has ended: stop what still runs."""
        for key in keys:
            producer = self._producers.pop(key, None)
            if producer is not None and producer.task is not None:
                producer.task.cancel()

    def accept_uploads(
        self,
        namespace: str,
        args: tuple[Any, ...],
        positions: tuple[int, ...],
        window: int | None = None,
    ) -> tuple[Any, ...]:
        """``args`` with each ``{"$stream": id}`` at ``positions`` (the handler's
        parameters annotated ``AsyncIterator``) replaced by an async iterator of the
        peer's upload, which grants its credit when first iterated.

        A placeholder whose id the peer may not choose (this side's parity) or that is
        in use is left as it is: the handler's argument check refuses it."""
        out = list(args)
        for index in positions:
            value = args[index] if index < len(args) else None
            if (
                type(value) is dict
                and len(value) == 1
                and self._peer_id(value.get(UPLOAD))
                and (namespace, value[UPLOAD]) not in self._consumers
            ):
                out[index] = self._upload(namespace, value[UPLOAD], window or UPLOAD_WINDOW)
        return tuple(out)

    async def _upload(self, namespace: str, stream_id: int, window: int) -> AsyncIterator[Any]:
        key = (namespace, stream_id)
        if key in self._consumers:
            # the same id twice (in one call, or in a call before the first iterated):
            # replacing the first consumer would leave it waiting forever
            raise InvalidArguments(f"stream {stream_id} is already in use")
        consumer = self._consumers[key] = _Consumer(window)
        self._link.send(encode_event(CREDIT, (stream_id, window), namespace))
        try:
            while True:
                item = await self._next(namespace, stream_id, consumer)
                if item is _DONE:
                    return
                yield item
        finally:
            self._forget(namespace, stream_id, consumer)

    def _on_item(self, namespace: str, args: tuple[Any, ...]) -> None:
        if len(args) != 2 or type(args[0]) is not int:
            logger.warning("malformed %s on %r dropped", ITEM, namespace)
            return
        consumer = self._consumers.get((namespace, args[0]))
        if consumer is None or consumer.ended:
            return  # late, after a cancel: nothing waits for it
        if len(consumer.items) >= consumer.window:
            # the producer ran past the credit it was given: end the stream, say why
            logger.warning("stream %d on %r overran its window: cancelled", args[0], namespace)
            consumer.ended = True
            consumer.error = RemoteError(
                "the producer sent more than the window allows", code="flow_control"
            )
            consumer.items.clear()
            self._link.send(encode_event(CANCEL, (args[0],), namespace))
            consumer.wake()
            return
        consumer.items.append(args[1])
        consumer.wake()

    def _on_end(self, namespace: str, args: tuple[Any, ...]) -> None:
        if not 1 <= len(args) <= 2 or type(args[0]) is not int:
            logger.warning("malformed %s on %r dropped", END, namespace)
            return
        consumer = self._consumers.get((namespace, args[0]))
        if consumer is None or consumer.ended:
            return
        consumer.ended = True
        if len(args) == 2:
            try:
                raise_for_error((args[1],))
            except RemoteError as exc:
                consumer.error = exc
            else:
                consumer.error = RemoteError("the stream ended with an error")
        consumer.wake()

    # -- the producer side ---------------------------------------------------------------

    def open_requested(
        self,
        registry: HandlerRegistry,
        packet_args: tuple[Any, ...],
        namespace: str,
        ack_id: int | None,
        leading: tuple[Any, ...],
    ) -> None:
        """A peer asked to open one of ``registry``'s streams (a ``$stream`` call)."""
        link = self._link
        if (
            len(packet_args) < 3
            or type(packet_args[0]) is not int
            or type(packet_args[1]) is not str
            or type(packet_args[2]) is not int
            or not 1 <= packet_args[2] <= _MAX_WINDOW
        ):
            if ack_id is not None:
                link.send_error(namespace, ack_id, InvalidArguments("malformed stream request"))
            return
        stream_id, name, window = packet_args[0], packet_args[1], packet_args[2]
        args = packet_args[3:]
        key = (namespace, stream_id)
        handler = registry._stream_handler(namespace, name)
        error: RemoteError | None = None
        if handler is None:
            error = UnknownEvent(f"no stream {name!r} on {namespace!r}")
        elif not self._peer_id(stream_id):
            ours = ("client", "even") if self._next_id % 2 == 0 else ("server", "odd")
            error = InvalidArguments(
                f"stream id {stream_id}: the {ours[0]} side chooses the {ours[1]} ids"
            )
        elif key in self._producers:
            error = InvalidArguments(f"stream {stream_id} is already open")
        elif not handler.accepts(len(args)):
            error = InvalidArguments(
                f"stream {name!r} takes {handler.describe()} argument(s), not {len(args)}"
            )
        elif handler.params is not None:
            try:
                args = handler.convert(args)
            except InvalidArguments as exc:
                error = exc
        if error is not None:
            if ack_id is not None:
                link.send_error(namespace, ack_id, error)
            return
        assert handler is not None
        try:
            generator = handler.func(*leading, *args)
        except Exception as exc:
            link.handler_failed(exc, namespace, ack_id, name)
            return
        producer = self._producers[key] = _Producer(window)
        if ack_id is not None:
            link.send_ack(namespace, ack_id, True)  # before the first item, in order
        producer.task = link.spawn(self._produce(key, name, generator, producer, handler.encode))

    async def _produce(
        self,
        key: tuple[str, int],
        name: str,
        generator: Any,
        producer: _Producer,
        encode: Any,
    ) -> None:
        namespace, stream_id = key
        link = self._link
        try:
            try:
                async for item in generator:
                    while producer.credit <= 0:
                        producer.wake.clear()
                        await producer.wake.wait()
                    producer.credit -= 1
                    value = encode(item) if encode is not None else item
                    if not link.open:
                        return
                    await link.push_wait(encode_event(ITEM, (stream_id, value), namespace))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, RemoteError):
                    logger.debug("stream %r ended with an error: %s", name, exc)
                else:
                    logger.error("stream %r raised", name, exc_info=exc)
                if link.open:
                    (error,) = error_args(exc, debug=link.debug)
                    link.send(encode_event(END, (stream_id, error), namespace))
                return
            if link.open:
                link.send(encode_event(END, (stream_id,), namespace))
        except ConnectionClosed:
            pass
        finally:
            if self._producers.get(key) is producer:
                del self._producers[key]
            aclose = getattr(generator, "aclose", None)
            if aclose is not None:
                await aclose()

    def _on_credit(self, namespace: str, args: tuple[Any, ...]) -> None:
        if len(args) != 2 or type(args[0]) is not int or type(args[1]) is not int:
            logger.warning("malformed %s on %r dropped", CREDIT, namespace)
            return
        producer = self._producers.get((namespace, args[0]))
        if producer is not None and args[1] > 0:
            producer.credit = min(producer.credit + args[1], _MAX_WINDOW)
            producer.wake.set()

    def _on_cancel(self, namespace: str, args: tuple[Any, ...]) -> None:
        if len(args) != 1 or type(args[0]) is not int:
            logger.warning("malformed %s on %r dropped", CANCEL, namespace)
            return
        producer = self._producers.pop((namespace, args[0]), None)
        if producer is not None and producer.task is not None:
            producer.task.cancel()

    # -- both ------------------------------------------------------------------------------

    def received(self, name: str, namespace: str, args: tuple[Any, ...]) -> None:
        """A stream event other than an open arrived."""
        if name == ITEM:
            self._on_item(namespace, args)
        elif name == END:
            self._on_end(namespace, args)
        elif name == CREDIT:
            self._on_credit(namespace, args)
        elif name == CANCEL:
            self._on_cancel(namespace, args)

    def close(self, namespace: str | None, reason: str) -> None:
        """The connection (or ``namespace``) ended: end every stream on it."""
        for key in [k for k in self._consumers if namespace is None or k[0] == namespace]:
            consumer = self._consumers[key]
            if not consumer.ended:
                consumer.ended = True
                consumer.error = ConnectionClosed(reason)
                consumer.wake()
        for key in [k for k in self._producers if namespace is None or k[0] == namespace]:
            producer = self._producers.pop(key)
            if producer.task is not None:
                producer.task.cancel()
