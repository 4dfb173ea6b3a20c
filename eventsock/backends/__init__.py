"""How the server nodes of a cluster reach each other.

A backend moves opaque envelopes (bytes) between nodes; it knows nothing of sessions
or rooms, and never imports the server: the server hands it a callback. The default,
:class:`MemoryBackend`, is a cluster of one. :class:`~eventsock.backends.redis.RedisBackend`
(the ``eventsock[redis]`` extra) uses Redis pub/sub.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

__all__ = ["Backend", "MemoryBackend"]

#: What a backend calls with each envelope it receives from another node.
Receiver = Callable[[bytes], None]

# Keeps the tasks of the default post() alive until they finish.
_POSTING: set[asyncio.Task[int]] = set()


class Backend(ABC):
    """The contract between a server and the nodes it shares its sessions with."""

    #: Whether other nodes may exist (a cluster of one skips publishing altogether).
    clustered: ClassVar[bool] = True

    @property
    def receiving(self) -> bool:
        """Whether envelopes for this node currently reach it (replies included)."""
        return True

    @abstractmethod
    async def start(self, node: str, receive: Receiver) -> None:
        """Start delivering envelopes for this node to ``receive``: those published to
        every node and those sent to ``node``."""

    @abstractmethod
    async def publish(self, data: bytes) -> int:
        """Send an envelope to every node, this one included.

        Returns:
            How many nodes it reached (0 when it could not be sent; the backend logs
            and counts what it loses).
        """

    def post(self, data: bytes) -> None:
        """Publish to every node without waiting for the result, in order with the
        other publications. The default schedules :meth:`publish`; backends that can
        keep the order should override it."""
        task = asyncio.get_running_loop().create_task(self.publish(data))
        _POSTING.add(task)
        task.add_done_callback(_POSTING.discard)

    @abstractmethod
    async def send(self, node: str, data: bytes) -> None:
        """Send an envelope to one node (a reply)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop receiving and release connections."""


class MemoryBackend(Backend):
    """A cluster of one: everything a server does stays in its process."""

    clustered: ClassVar[bool] = False

    async def start(self, node: str, receive: Receiver) -> None:
        """Nothing to start."""

    async def publish(self, data: bytes) -> int:
        """Nobody else to reach: only this node."""
        return 1

    def post(self, data: bytes) -> None:
        """Nobody else to reach."""

    async def send(self, node: str, data: bytes) -> None:
        """Nobody else to reach."""

    async def stop(self) -> None:
        """Nothing to stop."""
