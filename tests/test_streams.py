"""Streams: an async generator on one side iterated by the other, with credits,
cancellation both ways, errors, and nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

import eventsock
from eventsock import Session

from .helpers import connected, serving, suspend_once

pytestmark = pytest.mark.timeout(30)


@dataclasses.dataclass
class Reading:
    sensor: str
    value: float


def streams_left(server: eventsock.Server) -> int:
    return sum(conn.link.streams.active for conn in server._connections)


def endless_stream(server: eventsock.Server, name: str, *, pause: bool = False) -> asyncio.Event:
    """Register stream ``name``, counting up forever (suspending between items with
    ``pause``); the event returned is set when its generator is closed."""
    closed = asyncio.Event()

    @server.stream(name)
    async def endless(session: Session) -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
                if pause:
                    await suspend_once()
        finally:
            closed.set()

    return closed


async def test_items_arrive_in_order_exactly_once(no_leaks: None) -> None:
    server = eventsock.Server()

    @server.stream("count")
    async def count(session: Session, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async with serving(server) as url, connected(url) as client:
        assert [i async for i in client.stream("count", 1000, window=8)] == list(range(1000))
        assert [i async for i in client.stream("count", 0)] == []
        assert streams_left(server) == 0
        assert client._link is not None and client._link.streams.active == 0


async def test_a_namespace_with_only_streams_exists(no_leaks: None) -> None:
    # a namespace exists by its handlers, stream handlers included, on both sides
    server = eventsock.Server()

    @server.stream("ticks", namespace="/feed")
    async def ticks(session: Session, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    client = eventsock.Client(reconnection=False)

    @client.stream_handler("local", namespace="/feed")
    async def local() -> AsyncIterator[int]:
        yield 0

    # joined by default: the client's only handler on /feed is a stream
    async with serving(server) as url, connected(url, client):
        (session,) = server._sessions.values()
        assert session.namespace == "/feed"
        got = [i async for i in client.stream("ticks", 3, namespace="/feed")]
        assert got == [0, 1, 2]


async def test_the_producer_never_runs_ahead_of_the_window(no_leaks: None) -> None:
    server = eventsock.Server()
    produced = 0

    @server.stream("fast")
    async def fast(session: Session) -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(200):
            produced += 1
            yield b"x" * 1024

    async with serving(server) as url, connected(url) as client:
        consumed = 0
        async with contextlib.aclosing(client.stream("fast", window=10)) as items:
            async for _ in items:
                consumed += 1
                # a slow consumer: wait for anything the producer could send meanwhile
                for _ in range(3):
                    await suspend_once()
                assert produced - consumed <= 10 + 1  # the window, and the one in hand
        assert consumed == 200


async def test_leaving_the_loop_closes_the_generator(no_leaks: None) -> None:
    server = eventsock.Server()
    closed = endless_stream(server, "forever")

    async with serving(server) as url, connected(url) as client:
        async with contextlib.aclosing(client.stream("forever", window=4)) as items:
            async for i in items:
                if i == 5:
                    break
        await asyncio.wait_for(closed.wait(), 5)
        # nothing is left of the stream on either side
        assert streams_left(server) == 0
        assert client._link is not None and client._link.streams.active == 0


async def test_a_plain_break_closes_it_too(no_leaks: None) -> None:
    # without aclosing, the loop's async-generator finalizer closes the dropped
    # iterator at its next turn, which cancels the stream
    server = eventsock.Server()
    closed = endless_stream(server, "forever")

    async with serving(server) as url, connected(url) as client:
        async for _ in client.stream("forever"):
            break
        await asyncio.wait_for(closed.wait(), 5)
        assert streams_left(server) == 0


async def test_a_cancelled_consumer_task_stops_the_producer(no_leaks: None) -> None:
    server = eventsock.Server()
    closed = asyncio.Event()
    started = asyncio.Event()

    @server.stream("slow")
    async def slow(session: Session) -> AsyncIterator[int]:
        try:
            yield 0
            started.set()
            await asyncio.Event().wait()
            yield 1
        finally:
            closed.set()

    async with serving(server) as url, connected(url) as client:

        async def consume() -> None:
            async for _ in client.stream("slow"):
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(closed.wait(), 5)


async def test_errors_end_the_iteration(no_leaks: None) -> None:
    server = eventsock.Server()

    @server.stream("fails")
    async def fails(session: Session, after: int) -> AsyncIterator[int]:
        for i in range(after):
            yield i
        raise eventsock.RemoteError("sensor lost", code="sensor_lost", data={"at": after})

    @server.stream("crashes")
    async def crashes(session: Session) -> AsyncIterator[int]:
        yield 1
        raise ValueError("secret")

    async with serving(server) as url, connected(url) as client:
        got: list[int] = []

        async def collect() -> None:
            async for i in client.stream("fails", 3):
                got.append(i)

        with pytest.raises(eventsock.RemoteError) as raised:
            await collect()
        assert got == [0, 1, 2]
        assert (raised.value.code, raised.value.data) == ("sensor_lost", {"at": 3})
        with pytest.raises(eventsock.InternalError, match="internal error"):
            async for _ in client.stream("crashes"):
                pass
        with pytest.raises(eventsock.UnknownEvent, match="no stream 'nope'"):
            async for _ in client.stream("nope"):
                pass
        with pytest.raises(eventsock.InvalidArguments, match="argument 'after'"):
            async for _ in client.stream("fails", "three"):
                pass
        assert streams_left(server) == 0


async def test_a_dropped_connection_ends_every_stream(no_leaks: None) -> None:
    server = eventsock.Server()
    closed = endless_stream(server, "ticks", pause=True)

    async with serving(server) as url:
        client = eventsock.Client(reconnection=False)
        await client.connect(url, timeout=5)

        async def consume() -> None:
            async for i in client.stream("ticks"):
                if i == 3:
                    for conn in list(server._connections):
                        conn.link.close("transport close", abort=True)

        with pytest.raises(eventsock.ConnectionClosed):
            await consume()
        await asyncio.wait_for(closed.wait(), 5)
        assert streams_left(server) == 0
        await client.disconnect()


async def test_streams_run_together_beside_events_and_both_ways(no_leaks: None) -> None:
    server = eventsock.Server()

    @server.stream("letters")
    async def letters(session: Session, word: str) -> AsyncIterator[str]:
        for letter in word:
            await suspend_once()
            yield letter

    server.on("echo", lambda session, value: value)

    async with serving(server) as url:
        client = eventsock.Client()

        @client.stream_handler("readings")
        async def readings(count: int) -> AsyncIterator[Reading]:
            for i in range(count):
                yield Reading("t1", i / 2)

        await client.connect(url, timeout=5)

        async def collect(word: str) -> str:
            return "".join([c async for c in client.stream("letters", word, window=2)])

        words = ["alpha", "bravo", "charlie", "delta"]
        results = await asyncio.gather(*(collect(w) for w in words), client.call("echo", 1))
        assert results == [*words, 1]
        session = next(iter(server._sessions.values()))
        assert [r async for r in session.stream("readings", 2, item=Reading)] == [
            Reading("t1", 0.0),
            Reading("t1", 0.5),
        ]
        with pytest.raises(eventsock.InvalidResult, match="does not fit int"):
            async for _ in session.stream("readings", 1, item=int):
                pass
        assert [r async for r in session.stream("readings", 3)] == [
            {"sensor": "t1", "value": 0.0},
            {"sensor": "t1", "value": 0.5},
            {"sensor": "t1", "value": 1.0},
        ]
        await client.disconnect()


def test_stream_registration_is_checked() -> None:
    server = eventsock.Server()
    with pytest.raises(eventsock.InvalidHandler, match="async generator"):

        @server.stream("not_a_generator")
        async def not_a_generator(session: Session) -> int:
            return 1

    with pytest.raises(eventsock.InvalidHandler, match="reserved for streams"):
        server.on("$item", lambda session: None)
    with pytest.raises(eventsock.InvalidHandler, match="register it as a stream"):

        @server.on("gen")
        async def gen(session: Session) -> AsyncIterator[int]:
            yield 1


async def test_stream_needs_a_connection() -> None:
    client = eventsock.Client()
    with pytest.raises(eventsock.NotConnected):
        client.stream("x")
    with pytest.raises(ValueError, match="reserved for streams"):
        await client.emit("$credit", 1, 2)


async def test_window_is_checked(no_leaks: None) -> None:
    server = eventsock.Server()

    @server.stream("one")
    async def one(session: Session) -> AsyncIterator[Any]:
        yield 1

    async with serving(server) as url, connected(url) as client:
        with pytest.raises(ValueError, match="window"):
            async for _ in client.stream("one", window=0):
                pass


async def test_uploads_a_stream_as_a_call_argument(no_leaks: None) -> None:
    server = eventsock.Server()
    produced = 0
    consumed = 0
    ahead: list[int] = []

    @server.on("upload")
    async def upload(session: Session, name: str, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        nonlocal consumed
        total = 0
        async for chunk in chunks:
            consumed += 1
            ahead.append(produced - consumed)
            total += len(chunk)
            await suspend_once()  # a slow consumer
        return {"name": name, "bytes": total}

    async def chunks(count: int) -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(count):
            produced += 1
            yield b"x" * 4096

    async with serving(server) as url, connected(url) as client:
        assert await client.call("upload", "a.bin", chunks(100)) == {
            "name": "a.bin",
            "bytes": 409_600,
        }
        assert max(ahead) <= 16  # the upload window
        assert await client.call("upload", "empty", chunks(0)) == {"name": "empty", "bytes": 0}
        assert streams_left(server) == 0
        assert client._link is not None and client._link.streams.active == 0


async def test_an_upload_the_handler_leaves_is_stopped(no_leaks: None) -> None:
    server = eventsock.Server()
    closed = asyncio.Event()

    @server.on("first")
    async def first(session: Session, items: AsyncIterator[int]) -> int:
        async for item in items:
            return item  # leaves the rest unread
        return -1

    async def endless() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    async with serving(server) as url, connected(url) as client:
        assert await client.call("first", endless()) == 0
        await asyncio.wait_for(closed.wait(), 5)  # the caller's generator was closed
        assert client._link is not None and client._link.streams.active == 0


async def test_upload_items_are_typed_and_errors_travel(no_leaks: None) -> None:
    server = eventsock.Server()

    @server.on("sum")
    async def total(session: Session, numbers: AsyncIterator[int]) -> int:
        return sum([n async for n in numbers])

    async def items(*values: Any) -> AsyncIterator[Any]:
        for value in values:
            yield value

    async def failing() -> AsyncIterator[int]:
        yield 1
        raise eventsock.RemoteError("disk gone", code="disk_gone")

    async with serving(server) as url, connected(url) as client:
        assert await client.call("sum", items(1, 2, 3)) == 6
        with pytest.raises(eventsock.InvalidArguments, match="item 1 of the stream"):
            await client.call("sum", items(1, "two", 3))
        with pytest.raises(eventsock.RemoteError, match="disk_gone"):
            await client.call("sum", failing())
        with pytest.raises(eventsock.InvalidArguments, match="expected a stream"):
            await client.call("sum", [1, 2])
        assert streams_left(server) == 0


async def test_the_server_uploads_to_a_client(no_leaks: None) -> None:
    server = eventsock.Server()
    async with serving(server) as url:
        client = eventsock.Client()

        @client.on("count")
        async def count(items: AsyncIterator[str]) -> int:
            return len([i async for i in items])

        await client.connect(url, timeout=5)

        async def words() -> AsyncIterator[str]:
            for word in ("a", "b", "c"):
                yield word

        session = next(iter(server._sessions.values()))
        assert await session.call("count", words(), timeout=5) == 3
        await client.disconnect()


async def test_the_handler_chooses_the_upload_window(no_leaks: None) -> None:
    server = eventsock.Server()
    produced = 0
    ahead: list[int] = []

    @server.on("slow_sink", window=3)
    async def slow_sink(session: Session, items: AsyncIterator[int]) -> int:
        count = 0
        async for _ in items:
            count += 1
            ahead.append(produced - count)
            for _ in range(3):
                await suspend_once()
        return count

    async def numbers() -> AsyncIterator[int]:
        nonlocal produced
        for i in range(50):
            produced += 1
            yield i

    async with serving(server) as url, connected(url) as client:
        assert await client.call("slow_sink", numbers()) == 50
    assert max(ahead) <= 3
    with pytest.raises(eventsock.InvalidHandler, match="window"):
        server.on("bad_window", lambda session, items: None, window=0)


async def test_only_stream_annotated_parameters_take_uploads(no_leaks: None) -> None:
    # a placeholder sent to a parameter that does not take streams is a plain map:
    # no stream is made for it on the handler's side
    server = eventsock.Server()
    server.on("raw", lambda session, value: value)
    async with serving(server) as url, connected(url) as client:
        assert await client.call("raw", {"$stream": 7}) == {"$stream": 7}
        assert streams_left(server) == 0
