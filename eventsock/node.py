"""The cluster side of a server: envelopes in and out, and requests that gather
replies from the other nodes. The server hands :meth:`Node.receive` to its backend."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .cluster import (
    CallEnvelope,
    EmitEnvelope,
    Envelope,
    NodeEventEnvelope,
    QueryEnvelope,
    ReplyEnvelope,
    RoomsEnvelope,
    decode_envelope,
    encode_envelope,
)
from .exceptions import ClusterUnavailable, EncodeError, ProtocolError
from .handlers import Handler

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Node"]

logger = logging.getLogger("eventsock")


class _Gather:
    """Replies to one request: done when every node that got it has answered."""

    def __init__(self) -> None:
        self.results: list[Any] = []
        self.received = 0
        self.expected: int | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def add(self, results: tuple[Any, ...]) -> None:
        self.results.extend(results)
        self.received += 1
        self._check()

    def expect(self, count: int) -> None:
        self.expected = count
        self._check()

    def _check(self) -> None:
        if self.expected is not None and self.received >= self.expected and not self.done.done():
            self.done.set_result(None)

    @property
    def complete(self) -> bool:
        return self.done.done()


class Node:
    """One server's membership in its cluster."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._ids = itertools.count()
        self._requests: dict[int, _Gather] = {}
        self.handlers: dict[str, Handler] = {}

    @property
    def clustered(self) -> bool:
        return self.server.backend.clustered

    # -- out -------------------------------------------------------------------------

    def post(self, envelope: Envelope) -> None:
        """Send an envelope to every other node, without waiting (in order).

        Raises:
            EncodeError: an argument cannot be encoded.
        """
        if self.clustered:
            self.server.backend.post(encode_envelope(self.server.node_id, envelope))

    async def request(
        self, make: Callable[[int], Envelope], timeout: float
    ) -> tuple[list[Any], bool]:
        """Publish a request and gather the other nodes' replies for up to ``timeout``
        seconds; returns what arrived and whether every node answered.

        Raises:
            ClusterUnavailable: the backend cannot deliver the request or the replies.
        """
        if not self.clustered:
            return [], True
        backend = self.server.backend
        request = next(self._ids)
        data = encode_envelope(self.server.node_id, make(request))
        if not backend.receiving:
            raise ClusterUnavailable("this node is not receiving from the cluster")
        gather = self._requests[request] = _Gather()
        try:
            reached = await backend.publish(data)
            if reached == 0:
                raise ClusterUnavailable("the request could not be published")
            gather.expect(reached - 1)  # every node but this one answers
            try:
                await asyncio.wait_for(asyncio.shield(gather.done), timeout)
            except TimeoutError:
                pass
            return gather.results, gather.complete
        finally:
            del self._requests[request]
            if not gather.done.done():
                gather.done.cancel()

    async def _reply(self, node: str, request: int, results: list[Any]) -> None:
        try:
            data = encode_envelope(self.server.node_id, ReplyEnvelope(request, tuple(results)))
        except EncodeError as exc:
            logger.warning("a cluster reply could not be encoded (%s); an empty one is sent", exc)
            data = encode_envelope(self.server.node_id, ReplyEnvelope(request, ()))
        await self.server.backend.send(node, data)

    # -- in --------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Handle an envelope from the backend (never raises)."""
        try:
            origin, envelope = decode_envelope(data)
        except ProtocolError as exc:
            logger.warning("ignored a cluster envelope: %s", exc.reason)
            return
        server = self.server
        if origin == server.node_id:
            return  # our own publication: delivered locally already
        match envelope:
            case EmitEnvelope():
                server._emit_local(
                    envelope.event,
                    envelope.args,
                    envelope.namespace,
                    envelope.to,
                    envelope.skip,
                    envelope.volatile,
                )
            case RoomsEnvelope():
                server._rooms_local(envelope.namespace, envelope.op, envelope.to, envelope.room)
            case CallEnvelope():
                server._spawn(self._answer_call(origin, envelope))
            case QueryEnvelope():
                results = server._sessions_local(envelope.namespace, envelope.room, wire=True)
                server._spawn(self._reply(origin, envelope.request, results))
            case NodeEventEnvelope():
                server._spawn(self._answer_node_event(origin, envelope))
            case ReplyEnvelope():
                gather = self._requests.get(envelope.request)
                if gather is not None:
                    gather.add(envelope.results)

    async def _answer_call(self, origin: str, envelope: CallEnvelope) -> None:
        results = await self.server._call_local(
            envelope.event, envelope.args, envelope.namespace, envelope.to, envelope.timeout
        )
        await self._reply(origin, envelope.request, results)

    async def _answer_node_event(self, origin: str, envelope: NodeEventEnvelope) -> None:
        handler = self.handlers.get(envelope.event)
        results: list[Any] = []
        if handler is None:
            logger.debug("no cluster handler for %r", envelope.event)
        elif not handler.accepts(len(envelope.args)):
            logger.error(
                "cluster event %r dropped: it has %d argument(s), its handler takes %s",
                envelope.event,
                len(envelope.args),
                handler.describe(),
            )
        else:
            try:
                result = handler.func(*envelope.args)
                if handler.is_async:
                    result = await result
            except Exception:
                logger.exception("cluster handler for %r raised", envelope.event)
            else:
                results.append(result)
        if envelope.request is not None:
            await self._reply(origin, envelope.request, results)
