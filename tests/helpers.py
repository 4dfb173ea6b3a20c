"""The suite's helpers: thin wrappers over :mod:`eventsock.testing`, kept with the
signatures the test files use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import eventsock
from eventsock.testing import Recorder, TestClient, serve

__all__ = ["Recorder", "connected", "serving", "suspend_once"]


@asynccontextmanager
async def serving(server: eventsock.Server) -> AsyncIterator[str]:
    """Run ``server`` on an ephemeral port; yields its URL; shuts it down after."""
    async with serve(server) as running:
        yield running.url


@asynccontextmanager
async def connected(
    url: str, client: eventsock.Client | None = None, **kwargs: Any
) -> AsyncIterator[eventsock.Client]:
    """Connect ``client`` (a new TestClient with the Client's defaults: it reconnects,
    and calls wait up to 60 s) within 5 s; disconnects it after."""
    client = client or TestClient(timeout=60.0)
    await client.connect(url, timeout=5, **kwargs)
    try:
        yield client
    finally:
        await client.disconnect()


async def suspend_once() -> None:
    """Yield to the event loop once through a real future, as handler code that awaits
    I/O would (no timer involved)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    loop.call_soon(future.set_result, None)
    await future
