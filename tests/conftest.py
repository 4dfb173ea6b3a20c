from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from .reference_app import ReferenceServer


@pytest.fixture
async def reference_server() -> AsyncIterator[ReferenceServer]:
    """The reference app on an ephemeral port, with a 10 MB max_payload."""
    async with ReferenceServer(max_payload=10_000_000) as running:
        yield running


@pytest.fixture
async def no_leaks() -> AsyncIterator[None]:
    """Fails the test if it leaves asyncio tasks behind."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    if leftover:
        await asyncio.wait(leftover, timeout=2)
        leftover = [t for t in leftover if not t.done()]
    assert not leftover, f"tasks left behind: {leftover}"
