"""Bounded outgoing queues: what waits, what is dropped, who is disconnected, and that
one slow peer never holds the others up.

A slow peer is a real client behind a FaultProxy that stops moving bytes; everything
else connects straight to the server. The kernel's socket buffers take a few MiB
before anything queues, so the tests fill them with large frames, counted and bounded,
until the connection's own queue holds frames."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import eventsock
from eventsock.packets import Connect, Event
from eventsock.session import Link

from .faults import FaultProxy
from .helpers import Recorder, serving
from .raw import RawPeer

pytestmark = pytest.mark.timeout(60)

CHUNK = 64 * 1024
# enough frames to fill loopback's socket buffers many times over
FILL_LIMIT = 2000
TIGHT = eventsock.Backpressure(max_packets=16, max_bytes=16 * CHUNK, send_timeout=0.5)


def link_of(server: eventsock.Server, session: eventsock.Session) -> Link:
    (conn,) = [c for c in server._connections if session.namespace in c.sessions]
    return conn.link


def link_for(server: eventsock.Server, sid: str) -> Link:
    for conn in server._connections:
        if any(s.id == sid for s in conn.sessions.values()):
            return conn.link
    raise AssertionError(f"no connection holds {sid}")


async def fill(link: Link, send: Any) -> int:
    """Send CHUNK-sized frames with ``send(n)`` until ``link``'s queue holds frames;
    returns how many were sent."""
    for n in range(FILL_LIMIT):
        if link._queue:
            return n
        await send(n)
    raise AssertionError(f"the queue stayed empty after {FILL_LIMIT} frames")


async def repeat(count: int, send: Any) -> None:
    for _ in range(count):
        await send()


@asynccontextmanager
async def stalled_client(
    url: str, **client_options: Any
) -> AsyncIterator[tuple[eventsock.Client, FaultProxy]]:
    async with FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = eventsock.Client(reconnection=False, **client_options)
        await client.connect(proxy.url, timeout=5)
        try:
            yield client, proxy
        finally:
            proxy.flow()
            await client.disconnect()


async def test_an_emit_to_a_full_queue_waits_for_room_and_all_arrive_in_order(
    no_leaks: None,
) -> None:
    server = eventsock.Server(backpressure=eventsock.Backpressure(max_packets=8, send_timeout=30))
    received = Recorder()
    async with serving(server) as url, stalled_client(url) as (client, proxy):
        client.on("chunk", received)
        (session,) = server._sessions.values()
        link = link_of(server, session)
        proxy.stall()
        sent = await fill(link, lambda n: session.emit("chunk", n, b"x" * CHUNK))
        for n in range(sent, sent + 7):
            await session.emit("chunk", n, b"x" * CHUNK)  # still room: returns at once
        assert len(link._queue) == 8
        blocked = asyncio.ensure_future(session.emit("chunk", sent + 7, b"x" * CHUNK))
        done, _ = await asyncio.wait([blocked], timeout=0.2)
        assert not done, "an emit to a full queue returned without waiting"
        assert len(link._queue) == 8
        proxy.flow()
        await asyncio.wait_for(blocked, 10)
        calls = await received.wait(sent + 8, timeout=20)
        assert [args[0] for args in calls] == list(range(sent + 8))
        assert server.stats.slow_consumers == 0
        assert server.stats.dropped == 0


async def test_a_peer_that_reads_nothing_for_send_timeout_is_disconnected(
    no_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    server = eventsock.Server(backpressure=TIGHT)
    reasons: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @server.on("disconnect")
    def gone(session: eventsock.Session, reason: str) -> None:
        reasons.set_result(reason)

    async with serving(server) as url, stalled_client(url) as (_client, proxy):
        (session,) = server._sessions.values()
        link = link_of(server, session)
        proxy.stall()
        await fill(link, lambda n: session.emit("chunk", b"x" * CHUNK))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(eventsock.ConnectionClosed, match="slow consumer"):
            await repeat(TIGHT.max_packets + 1, lambda: session.emit("chunk", b"x" * CHUNK))
        waited = loop.time() - started
        assert TIGHT.send_timeout * 0.9 <= waited < TIGHT.send_timeout + 5
        assert await asyncio.wait_for(reasons, 10) == "slow consumer"
        assert server.stats.slow_consumers == 1
        assert not link._queue and link._queued_bytes == 0
        assert "disconnecting a slow consumer" in caplog.text
        with pytest.raises(eventsock.NotConnected):
            await session.emit("late")


async def test_volatile_emits_to_a_full_queue_are_dropped_and_counted(no_leaks: None) -> None:
    server = eventsock.Server(backpressure=TIGHT)
    received = Recorder()
    async with serving(server) as url, stalled_client(url) as (client, proxy):
        client.on("chunk", received)
        (session,) = server._sessions.values()
        link = link_of(server, session)
        proxy.stall()
        sent = await fill(link, lambda n: session.emit("chunk", n, b"x" * CHUNK, volatile=True))
        for n in range(sent, sent + 40):
            await session.emit("chunk", n, b"x" * CHUNK, volatile=True)  # never waits
            assert len(link._queue) <= TIGHT.max_packets
            assert link._queued_bytes <= TIGHT.max_bytes
        assert link.dropped > 0
        assert server.stats.dropped == link.dropped
        assert session.connected
        proxy.flow()
        total = sent + 40
        calls = await received.wait(total - link.dropped, timeout=20)
        numbers = [args[0] for args in calls]
        assert numbers == sorted(numbers)  # what arrives, arrives in order
        assert numbers[:sent] == list(range(sent))
        # the connection carries on as before
        await session.emit("chunk", -1, b"")
        assert (await received.wait(total - link.dropped + 1, timeout=10))[-1][0] == -1
        assert server.stats.slow_consumers == 0


@pytest.mark.parametrize("volatile", [False, True])
async def test_a_broadcast_never_waits_for_a_slow_recipient(no_leaks: None, volatile: bool) -> None:
    # one stalled client and 50 that read: every broadcast returns at once, the 50 get
    # all of them, and the stalled one is disconnected (ordinary events) or has the
    # ones that do not fit dropped (volatile events), its queue never over its bound
    server = eventsock.Server(backpressure=TIGHT)
    count = 120
    async with serving(server) as url, stalled_client(url) as (_slow, proxy):
        (slow_session,) = server._sessions.values()
        slow_link = link_of(server, slow_session)
        clients = []
        recorders = []
        try:
            for _ in range(50):
                client = eventsock.Client(reconnection=False)
                recorder = Recorder()
                client.on("stroke", recorder)
                await client.connect(url, timeout=5)
                clients.append(client)
                recorders.append(recorder)
            for session in list(server._sessions.values()):
                await session.enter_room("board")
            proxy.stall()
            for n in range(count):
                # paced by the clients that read: each broadcast goes on once all of
                # them have the one before, which the stalled one must not hold up
                await server.emit("stroke", n, b"x" * CHUNK, to="board", volatile=volatile)
                await asyncio.gather(*(r.wait(n + 1, timeout=10) for r in recorders))
                assert len(slow_link._queue) <= TIGHT.max_packets
                assert slow_link._queued_bytes <= TIGHT.max_bytes
            for recorder in recorders:
                assert [args[0] for args in recorder.calls] == list(range(count))
            if volatile:
                assert slow_session.connected
                assert server.stats.dropped == slow_link.dropped > 0
                assert server.stats.slow_consumers == 0
            else:
                assert slow_link.close_reason == "slow consumer"
                assert server.stats.slow_consumers == 1
                assert server.stats.dropped == 0
        finally:
            await asyncio.gather(*(client.disconnect() for client in clients))


async def test_overflow_drop_drops_what_cannot_wait_and_keeps_the_peer(no_leaks: None) -> None:
    bounds = eventsock.Backpressure(max_packets=16, max_bytes=16 * CHUNK, overflow="drop")
    server = eventsock.Server(backpressure=bounds)
    async with serving(server) as url, stalled_client(url) as (_client, proxy):
        (session,) = server._sessions.values()
        link = link_of(server, session)
        proxy.stall()
        await fill(link, lambda n: server.emit("stroke", b"x" * CHUNK))
        for _ in range(40):
            await server.emit("stroke", b"x" * CHUNK)
        assert link.dropped > 0
        assert session.connected
        assert server.stats.slow_consumers == 0


async def test_acks_to_a_caller_that_does_not_read_are_bounded(no_leaks: None) -> None:
    # a peer that calls and calls but reads none of the answers (aiohttp stops reading
    # its socket once its own buffer is full): the answers queue up to the bound, then
    # the caller is disconnected as a slow consumer
    server = eventsock.Server(backpressure=TIGHT)
    reasons: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @server.on("get")
    def get(session: eventsock.Session) -> bytes:
        return b"x" * CHUNK

    @server.on("disconnect")
    def gone(session: eventsock.Session, reason: str) -> None:
        reasons.set_result(reason)

    async with serving(server) as url:
        peer = await RawPeer.open_to(url)
        try:
            connected = await peer.connect()
            assert isinstance(connected, Connect)
            for ack_id in range(FILL_LIMIT):
                if reasons.done():
                    break
                await peer.send_packet(Event("get", (), "/", ack_id))
            assert await asyncio.wait_for(reasons, 20) == "slow consumer"
            assert server.stats.slow_consumers == 1
        finally:
            await peer.close()


async def test_a_client_emit_to_a_server_that_reads_nothing_gives_up(no_leaks: None) -> None:
    server = eventsock.Server()
    server.on("chunk")(lambda session, data: None)
    async with serving(server) as url, stalled_client(url, backpressure=TIGHT) as (client, proxy):
        link = client._link
        assert link is not None
        proxy.stall()
        await fill(link, lambda n: client.emit("chunk", b"x" * CHUNK))
        with pytest.raises(eventsock.ConnectionClosed, match="slow consumer"):
            await repeat(TIGHT.max_packets + 1, lambda: client.emit("chunk", b"x" * CHUNK))
        assert client.stats.slow_consumers == 1
        assert link.close_reason == "slow consumer"


async def test_a_client_call_to_a_full_queue_waits_before_its_deadline_starts(
    no_leaks: None,
) -> None:
    server = eventsock.Server()
    server.on("chunk")(lambda session, data: None)
    server.on("echo")(lambda session, value: value)
    bounds = eventsock.Backpressure(max_packets=4, max_bytes=64 * CHUNK, send_timeout=30)
    async with serving(server) as url, stalled_client(url, backpressure=bounds) as (client, proxy):
        link = client._link
        assert link is not None
        proxy.stall()
        await fill(link, lambda n: client.emit("chunk", b"x" * CHUNK))
        while len(link._queue) < bounds.max_packets:
            await client.emit("chunk", b"x" * CHUNK)
        answer = asyncio.ensure_future(client.call("echo", "late", timeout=5))
        done, _ = await asyncio.wait([answer], timeout=0.2)
        assert not done
        assert link.pending_acks == 0  # waiting for room, not yet for its ack
        proxy.flow()
        assert await asyncio.wait_for(answer, 20) == "late"


async def test_log_lines_for_drops_are_not_one_per_frame(
    no_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventsock")
    server = eventsock.Server(backpressure=TIGHT)
    async with serving(server) as url, stalled_client(url) as (_client, proxy):
        (session,) = server._sessions.values()
        link = link_of(server, session)
        proxy.stall()
        await fill(link, lambda n: session.emit("c", b"x" * CHUNK, volatile=True))
        for _ in range(50):
            await session.emit("c", b"x" * CHUNK, volatile=True)
        assert link.dropped > 10
        infos = [r for r in caplog.records if r.levelno >= logging.INFO and "dropped" in r.message]
        assert len(infos) == 1
