from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import eventsock


@asynccontextmanager
async def serving(server: eventsock.Server) -> AsyncIterator[str]:
    """Run ``server`` on an ephemeral port; yields its URL; shuts it down after."""
    port = await server.start("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.shutdown()


@asynccontextmanager
async def connected(
    url: str, client: eventsock.Client | None = None, **kwargs: Any
) -> AsyncIterator[eventsock.Client]:
    client = client or eventsock.Client()
    await client.connect(url, timeout=5, **kwargs)
    try:
        yield client
    finally:
        await client.disconnect()


class Recorder:
    """Collects calls to a handler and lets a test await the n-th one."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)
        for count, future in self._waiters:
            if len(self.calls) >= count and not future.done():
                future.set_result(None)

    async def wait(self, count: int = 1, timeout: float = 5.0) -> list[tuple[Any, ...]]:
        if len(self.calls) < count:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((count, future))
            await asyncio.wait_for(future, timeout)
        return self.calls


async def suspend_once() -> None:
    """Yield to the event loop once through a real future, as handler code that awaits
    I/O would (no timer involved)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    loop.call_soon(future.set_result, None)
    await future
