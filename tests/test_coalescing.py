"""Write coalescing: the frames a connection writes in one turn of the loop after its
first leave in one write to the transport, in order; a close frame is never held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import eventsock
from eventsock.transport import _COALESCE_LIMIT, _Coalescer

from .helpers import Recorder, serving

pytestmark = pytest.mark.timeout(30)


class Sink(asyncio.Protocol):
    """A loopback peer that keeps every byte it reads."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.more = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.more.set()

    async def until(self, size: int) -> bytes:
        async with asyncio.timeout(5):
            while len(self.data) < size:
                self.more.clear()
                await self.more.wait()
        return bytes(self.data)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[asyncio.Transport, list[bytes], Sink]]:
    """A real loopback TCP connection: the writing side's transport, a record of the
    writes it gets, and the reading side."""
    loop = asyncio.get_running_loop()
    sink = Sink()
    server = await loop.create_server(lambda: sink, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    writes: list[bytes] = []
    real_write = transport.write

    def recording_write(data: Any) -> None:
        writes.append(bytes(data))
        real_write(data)

    transport.write = recording_write  # type: ignore[method-assign]
    try:
        yield transport, writes, sink  # type: ignore[misc]
    finally:
        transport.close()
        server.close()
        await server.wait_closed()


async def next_turn() -> None:
    """Wait until the loop has run what was scheduled before this call."""
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await asyncio.wait_for(done, 5)


async def test_a_lone_write_goes_at_once_and_later_ones_of_its_turn_together(
    pair: tuple[asyncio.Transport, list[bytes], Sink],
) -> None:
    transport, writes, sink = pair
    coalescer = _Coalescer(transport)
    coalescer.write(b"one")
    assert writes == [b"one"]  # nothing waits for a lone frame
    coalescer.write(b"two")
    coalescer.write(bytearray(b"three"))
    assert writes == [b"one"]
    assert coalescer.get_write_buffer_size() >= len(b"twothree")
    await next_turn()
    assert writes == [b"one", b"twothree"]
    assert await sink.until(11) == b"onetwothree"
    # the next turn starts afresh: its first frame goes at once again
    coalescer.write(b"four")
    assert writes[-1] == b"four"


async def test_a_close_frame_is_never_held(
    pair: tuple[asyncio.Transport, list[bytes], Sink],
) -> None:
    transport, writes, sink = pair
    coalescer = _Coalescer(transport)
    coalescer.write(b"\x82\x01a")
    coalescer.write(b"\x82\x01b")
    close = b"\x88\x02\x03\xe8"  # FIN + CLOSE, code 1000
    coalescer.write(close)
    # written with what was held, in order, before anything can close the transport
    assert writes == [b"\x82\x01a", b"\x82\x01b" + close]
    assert await sink.until(10) == b"\x82\x01a\x82\x01b" + close


async def test_held_bytes_are_bounded(
    pair: tuple[asyncio.Transport, list[bytes], Sink],
) -> None:
    transport, writes, sink = pair
    coalescer = _Coalescer(transport)
    chunk = b"x" * 4096
    count = 3 * _COALESCE_LIMIT // len(chunk)
    for _ in range(count):
        coalescer.write(chunk)
    # never more than the limit held back: the transport's flow control sees the rest
    assert coalescer.get_write_buffer_size() - transport.get_write_buffer_size() < (_COALESCE_LIMIT)
    assert len(writes) > 2
    await next_turn()
    assert await sink.until(count * len(chunk)) == chunk * count


async def test_abort_drops_what_is_held(
    pair: tuple[asyncio.Transport, list[bytes], Sink],
) -> None:
    transport, writes, _sink = pair
    coalescer = _Coalescer(transport)
    coalescer.write(b"first")
    coalescer.write(b"held")
    coalescer.abort()
    assert transport.is_closing()
    await next_turn()
    assert writes == [b"first"]  # the held frame was dropped, not written after abort


async def test_a_burst_of_events_leaves_in_few_writes_and_arrives_in_order(
    no_leaks: None,
) -> None:
    server = eventsock.Server()
    count = 200

    @server.on("burst")
    async def burst(session: eventsock.Session) -> int:
        for n in range(count):
            await session.emit("tick", n)  # room in the queue: none of these waits
        return count

    received = Recorder()
    async with serving(server) as url:
        client = eventsock.Client(reconnection=False)
        client.on("tick", received)
        await client.connect(url, timeout=5)
        (conn,) = server._connections
        coalescer = conn.link.ws._ws._writer.transport  # type: ignore[union-attr]
        assert type(coalescer) is _Coalescer
        writes: list[int] = []
        real = coalescer.transport
        real_write = real.write

        def counting_write(data: Any) -> None:
            writes.append(len(data))
            real_write(data)

        real.write = counting_write  # type: ignore[method-assign]
        assert await client.call("burst", timeout=5) == count
        calls = await received.wait(count, timeout=10)
        assert [args[0] for args in calls] == list(range(count))
        # 200 events and an ack: the first frame at once, the rest together
        assert 1 <= len(writes) <= 3, writes
        await client.disconnect()
