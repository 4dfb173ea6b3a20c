"""What a client holds while connected and lets go of after: its TCP connection, the
client object itself."""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref
from typing import Any

import pytest
import uvloop
from aiohttp import web

import eventsock
from eventsock.transport import ClientWebSocket

from .helpers import serving

pytestmark = pytest.mark.timeout(30)


async def test_disconnect_closes_the_tcp_connection() -> None:
    server = eventsock.Server()

    @server.on("echo")
    def echo(session: eventsock.Session, value: Any) -> Any:
        return value

    async with serving(server) as url:
        first, second = eventsock.Client(), eventsock.Client()
        await first.connect(url, timeout=5)
        await second.connect(url, timeout=5)
        assert first._link is not None
        ws = first._link.ws
        assert isinstance(ws, ClientWebSocket)
        connection = ws._connection
        await first.disconnect()
        # the closing handshake finished and the TCP connection is gone
        await asyncio.wait_for(asyncio.shield(connection.ended), 5)
        assert connection.transport is not None and connection.transport.is_closing()
        assert ws.closed
        assert await second.call("echo", "still served") == "still served"
        await second.disconnect()


async def test_a_refused_upgrade_fails_with_the_status_and_leaves_nothing_open(
    no_leaks: None,
) -> None:
    app = web.Application()  # no Engine.IO endpoint: every path is a 404
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        client = eventsock.Client(reconnection=False)
        with pytest.raises(eventsock.ConnectionFailed, match="HTTP 404"):
            await client.connect(f"http://127.0.0.1:{port}", timeout=5)
        assert not client.connected
    finally:
        await runner.cleanup()


async def test_a_refused_tcp_connection_fails_at_once() -> None:
    client = eventsock.Client(reconnection=False)
    with pytest.raises(eventsock.ConnectionFailed, match="could not connect"):
        # nothing listens on port 9 of 127.0.0.1 (discard): refused at once
        await client.connect("http://127.0.0.1:9", timeout=5)


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


async def _client_socket_has_no_nagle() -> None:
    server = eventsock.Server()
    async with serving(server) as url:
        client = eventsock.Client(reconnection=False)
        await client.connect(url, timeout=5)
        assert client._link is not None
        ws = client._link.ws
        assert isinstance(ws, ClientWebSocket)
        assert ws._connection.transport is not None
        sock = ws._connection.transport.get_extra_info("socket")
        # small frames must not wait for the peer's delayed ACK with calls in flight
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        await client.disconnect()


async def test_the_client_socket_has_no_nagle() -> None:
    await _client_socket_has_no_nagle()


def test_the_client_socket_has_no_nagle_under_uvloop() -> None:
    # uvloop's transports hand out a socket of their own kind
    uvloop.run(asyncio.wait_for(_client_socket_has_no_nagle(), 20))
