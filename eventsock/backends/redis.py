"""A Redis pub/sub backend, and a write-only emitter for processes that are not servers.

The only module that imports ``redis`` (install the ``eventsock[redis]`` extra). Each
node subscribes to one channel shared by all nodes and one of its own for replies.
When Redis restarts or cannot be reached, the backend resubscribes with backoff while
the server keeps serving its local sessions; envelopes that could not be published
meanwhile are counted in :attr:`RedisBackend.lost` and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..backoff import Backoff
from ..cluster import EmitEnvelope, encode_envelope
from ..session import check_event_name
from . import Backend, Receiver

__all__ = ["RedisBackend", "RedisEmitter"]

logger = logging.getLogger("eventsock")

_ERRORS = (RedisError, OSError)

# Envelopes sent in one pipelined round trip at most.
BATCH = 256
# Envelopes waiting to be published at most; past that the oldest are dropped (counted).
MAX_OUTBOX = 100_000


def _channels(prefix: str) -> str:
    return f"{prefix}#all"


class RedisBackend(Backend):
    """Server nodes sharing sessions through Redis pub/sub.

    Args:
        url: the Redis URL, for example ``redis://127.0.0.1:6379/0``.
        prefix: the channel prefix; servers with the same prefix form one cluster.
        reconnect_delay: the first delay before resubscribing after a failure.
        reconnect_delay_max: the longest delay between attempts.
        connect_timeout: how long ``start`` waits for the first subscription before
            going on without it (the server then serves local sessions only, and keeps
            trying).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "eventsock",
        reconnect_delay: float = 0.1,
        reconnect_delay_max: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.connect_timeout = connect_timeout
        self._backoff = Backoff(reconnect_delay, reconnect_delay_max, 0.5)
        self._redis: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._node = ""
        self._receive: Receiver | None = None
        #: Envelopes that could not be published (Redis down): lost for other nodes.
        self.lost = 0
        self._outage_since: float | None = None
        self._lost_at_outage = 0
        self._outbox: deque[tuple[str, bytes, asyncio.Future[int] | None]] = deque()
        self._flusher: asyncio.Task[None] | None = None

    @property
    def all_channel(self) -> str:
        return _channels(self.prefix)

    def node_channel(self, node: str) -> str:
        return f"{self.prefix}#node#{node}"

    @property
    def subscribed(self) -> bool:
        """Whether this node currently receives from the cluster."""
        return self._subscribed.is_set()

    @property
    def receiving(self) -> bool:
        """Whether replies to this node's requests can reach it (it is subscribed)."""
        return self.subscribed

    async def wait_subscribed(self, timeout: float) -> bool:
        """Wait until subscribed; returns whether it is."""
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def start(self, node: str, receive: Receiver) -> None:
        """Connect and subscribe (waiting up to ``connect_timeout``)."""
        self._node = node
        self._receive = receive
        self._redis = aioredis.Redis.from_url(self.url)
        self._subscribed = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(self._listen())
        if not await self.wait_subscribed(self.connect_timeout):
            logger.warning(
                "Redis at %s not reachable yet: serving local sessions, still trying", self.url
            )

    async def _listen(self) -> None:
        assert self._redis is not None
        channels = (self.all_channel, self.node_channel(self._node))
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(*channels)
                self._subscribed.set()
                self._backoff.reset()
                self._outage_over()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message["data"])
            except _ERRORS as exc:
                self._subscribed.clear()
                self._outage_started(exc)
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except _ERRORS:
                    pass
            await asyncio.sleep(self._backoff.next())

    def _deliver(self, data: Any) -> None:
        if self._receive is not None and isinstance(data, bytes):
            try:
                self._receive(data)
            except Exception:
                logger.exception("handling a cluster envelope failed")

    def _outage_started(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._lost_at_outage = self.lost
            logger.warning("Redis connection lost (%s): retrying; local sessions unaffected", exc)

    def _outage_over(self) -> None:
        if self._outage_since is not None:
            lasted = time.monotonic() - self._outage_since
            lost = self.lost - self._lost_at_outage
            self._outage_since = None
            logger.warning(
                "Redis connection back after %.1f s; %d envelope(s) could not be "
                "published meanwhile and were lost for other nodes",
                lasted,
                lost,
            )

    # -- publishing: one ordered outbox, flushed in pipelined batches ---------------

    def _enqueue(self, channel: str, data: bytes, future: asyncio.Future[int] | None) -> None:
        outbox = self._outbox
        if len(outbox) >= MAX_OUTBOX:
            _, _, dropped = outbox.popleft()
            self.lost += 1
            if dropped is not None and not dropped.done():
                dropped.set_result(0)
            if self._outage_since is None:
                logger.warning("Redis outbox full (%d): the oldest envelope dropped", MAX_OUTBOX)
        outbox.append((channel, data, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Send what the outbox holds, in order, many envelopes per round trip."""
        outbox = self._outbox
        while outbox:
            batch = [outbox.popleft() for _ in range(min(len(outbox), BATCH))]
            counts = await self._publish_batch([(channel, data) for channel, data, _ in batch])
            for (_, _, future), count in zip(batch, counts, strict=True):
                if future is not None and not future.done():
                    future.set_result(count)

    async def _publish_batch(self, items: list[tuple[str, bytes]]) -> list[int]:
        client = self._redis
        if client is None:
            self.lost += len(items)
            return [0] * len(items)
        # Two tries: after Redis restarts, the pool's idle connection is stale and the
        # first command on it fails although Redis is back.
        for attempt in (1, 2):
            try:
                pipe = client.pipeline(transaction=False)
                for channel, data in items:
                    pipe.publish(channel, data)
                counts = [int(count) for count in await pipe.execute()]
            except _ERRORS as exc:
                if attempt == 2:
                    self._outage_started(exc)
                    self.lost += len(items)
                    return [0] * len(items)
            else:
                if self.subscribed:
                    self._outage_over()
                return counts
        raise AssertionError("unreachable")

    def post(self, data: bytes) -> None:
        """Publish to every node without waiting (in order with everything else)."""
        self._enqueue(self.all_channel, data, None)

    async def publish(self, data: bytes) -> int:
        """Publish to every node; returns how many received it (0, counted as lost,
        when Redis is unreachable)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._enqueue(self.all_channel, data, future)
        return await future

    async def send(self, node: str, data: bytes) -> None:
        """Publish to one node's own channel (without waiting)."""
        self._enqueue(self.node_channel(node), data, None)

    async def flush(self) -> None:
        """Wait until every envelope handed over so far has been sent (or lost)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def stop(self) -> None:
        """Send what is queued (for up to ``connect_timeout``), unsubscribe and close."""
        try:
            await asyncio.wait_for(self.flush(), self.connect_timeout)
        except TimeoutError:
            logger.warning("Redis backend stopped with %d envelope(s) unsent", len(self._outbox))
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        self.lost += len(self._outbox)
        self._outbox.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        self._subscribed.clear()
        client, self._redis = self._redis, None
        if client is not None:
            try:
                await client.aclose()
            except _ERRORS:
                pass


class RedisEmitter:
    """Emit to the sessions of a cluster from a process that is not a server (a
    worker, a cron job). Write-only: it publishes and receives nothing.

    Example:
        ```python
        async with RedisEmitter("redis://127.0.0.1:6379/0") as emitter:
            await emitter.emit("notice", "backup done", to="admins")
        ```
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "eventsock") -> None:
        self.url = url
        self.prefix = prefix
        self.node = f"emitter-{id(self):x}"
        self._redis: aioredis.Redis | None = None

    async def __aenter__(self) -> RedisEmitter:
        self._redis = aioredis.Redis.from_url(self.url)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def emit(
        self,
        event: str,
        *args: Any,
        to: str | list[str] | tuple[str, ...] | None = None,
        skip: str | list[str] | tuple[str, ...] = (),
        namespace: str = "/",
        volatile: bool = False,
    ) -> int:
        """Publish an event for the sessions in ``to`` (all when omitted) but not in
        ``skip``; returns how many server nodes received it.

        Raises:
            EncodeError: an argument cannot be encoded.
            redis.exceptions.RedisError: Redis could not be reached.
        """
        check_event_name(event)
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(self.url)
        envelope = EmitEnvelope(
            namespace,
            event,
            args,
            None if to is None else ((to,) if isinstance(to, str) else tuple(to)),
            (skip,) if isinstance(skip, str) else tuple(skip),
            volatile,
        )
        return int(
            await self._redis.publish(_channels(self.prefix), encode_envelope(self.node, envelope))
        )

    async def close(self) -> None:
        """Close the Redis connection."""
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()
