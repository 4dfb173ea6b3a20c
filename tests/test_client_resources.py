"""What a client holds while connected and lets go of after: the shared aiohttp session,
the client object itself."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

import eventsock
from eventsock.transport import _SharedSession

from .helpers import serving

pytestmark = pytest.mark.timeout(30)


def shared_sessions() -> list[_SharedSession]:
    loop = asyncio.get_running_loop()
    shared = _SharedSession._by_loop.get(loop)
    return [] if shared is None else [shared]


async def test_clients_share_one_session_closed_with_the_last() -> None:
    server = eventsock.Server()

    @server.on("echo")
    def echo(session: eventsock.Session, value: Any) -> Any:
        return value

    async with serving(server) as url:
        first, second = eventsock.Client(), eventsock.Client()
        await first.connect(url, timeout=5)
        await second.connect(url, timeout=5)
        (shared,) = shared_sessions()
        assert shared.users == 2
        http = shared.http
        await first.disconnect()
        assert shared.users == 1
        assert not http.closed
        assert await second.call("echo", "still served") == "still served"
        await second.disconnect()
        assert shared_sessions() == []
        assert http.closed
        # a new connection gets a new session
        await first.connect(url, timeout=5)
        assert await first.call("echo", 1) == 1
        (again,) = shared_sessions()
        assert again is not shared
        await first.disconnect()
        assert shared_sessions() == []


async def test_a_failed_connection_releases_the_session() -> None:
    client = eventsock.Client(reconnection=False)
    with pytest.raises(eventsock.ConnectionFailed):
        # nothing listens on port 9 of 127.0.0.1 (discard): refused at once
        await client.connect("http://127.0.0.1:9", timeout=5)
    assert shared_sessions() == []


async def test_a_disconnected_client_is_not_kept_alive() -> None:
    server = eventsock.Server()
    async with serving(server) as url:
        clients = [eventsock.Client(reconnection=False) for _ in range(20)]
        await asyncio.gather(*(c.connect(url, timeout=5) for c in clients))
        await asyncio.gather(*(c.disconnect() for c in clients))
        refs = [weakref.ref(c) for c in clients]
        del clients
        gc.collect()
        alive = [ref for ref in refs if ref() is not None]
        assert not alive, f"{len(alive)} disconnected client(s) still referenced"
