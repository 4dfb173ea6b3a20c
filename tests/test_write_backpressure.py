"""Writes that must wait for the peer to read: frames queue behind the one waiting for
the transport to drain, and all arrive, in order, once the peer reads again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import eventsock
from eventsock.connection import Connection

from .faults import FaultProxy
from .helpers import Recorder, serving

pytestmark = pytest.mark.timeout(60)

CHUNK = 64 * 1024
# far more than the kernel's socket buffers and asyncio's write buffer take at once
COUNT = 400
# room for all of them in the outgoing queue (the bounds are tested in test_backpressure)
ROOMY = eventsock.Backpressure(max_packets=2 * COUNT, max_bytes=2 * COUNT * CHUNK)


def only_connection(server: eventsock.Server) -> Connection:
    (conn,) = server._connections
    return conn


async def test_server_frames_wait_for_a_stalled_peer_and_arrive_in_order(
    no_leaks: None,
) -> None:
    server = eventsock.Server(backpressure=ROOMY)

    @server.on("echo")
    def echo(session: eventsock.Session, value: Any) -> Any:
        return value

    received = Recorder()
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = eventsock.Client(reconnection=False, backpressure=ROOMY)
        client.on("chunk", received)
        await client.connect(proxy.url, timeout=5)
        session = next(iter(server._sessions.values()))
        link = only_connection(server).link
        proxy.stall()
        for n in range(COUNT):
            await session.emit("chunk", n, bytes([n % 256]) * CHUNK)  # never waits
        # the transport could not take it all: one write waits to drain, the rest queue
        assert link._sending
        assert link._queue
        proxy.flow()
        calls = await received.wait(COUNT, timeout=30)
        assert [args[0] for args in calls] == list(range(COUNT))
        assert all(args[1] == bytes([n % 256]) * CHUNK for n, args in enumerate(calls))
        # the link is idle again: no writer task left, nothing queued
        assert not link._sending
        assert not link._queue
        assert await client.call("echo", "after", timeout=5) == "after"
        await client.disconnect()


async def test_client_frames_wait_for_a_stalled_server_and_arrive_in_order(
    no_leaks: None,
) -> None:
    server = eventsock.Server(backpressure=ROOMY)
    received = Recorder()

    @server.on("chunk")
    def chunk(session: eventsock.Session, n: int, data: bytes) -> None:
        received(n, data)

    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = eventsock.Client(reconnection=False, backpressure=ROOMY)
        await client.connect(proxy.url, timeout=5)
        link = client._link
        assert link is not None
        proxy.stall()
        for n in range(COUNT):
            await client.emit("chunk", n, bytes([n % 256]) * CHUNK)
        assert link._sending
        assert link._queue
        # a call made meanwhile goes out behind them and is answered after them
        answer = asyncio.ensure_future(client.call("chunk", COUNT, b"last", timeout=30))
        proxy.flow()
        calls = await received.wait(COUNT + 1, timeout=30)
        assert [args[0] for args in calls] == list(range(COUNT + 1))
        assert await answer is None
        assert not link._sending
        assert not link._queue
        await client.disconnect()


async def test_a_peer_that_never_reads_again_ends_with_nothing_left(
    no_leaks: None,
) -> None:
    # the connection is dropped while writes wait: the waiting writer ends, the queue is
    # dropped, and the session's disconnect handler runs
    server = eventsock.Server(backpressure=ROOMY)
    reasons: asyncio.Queue[str] = asyncio.Queue()

    @server.on("disconnect")
    def gone(session: eventsock.Session, reason: str) -> None:
        reasons.put_nowait(reason)

    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = eventsock.Client(reconnection=False, backpressure=ROOMY)
        await client.connect(proxy.url, timeout=5)
        session = next(iter(server._sessions.values()))
        link = only_connection(server).link
        proxy.stall()
        for n in range(COUNT):
            await session.emit("chunk", n, b"x" * CHUNK)
        assert link._sending
        proxy.cut()
        assert await asyncio.wait_for(reasons.get(), 10) == "transport error"
        assert not server._connections
        await client.disconnect()
