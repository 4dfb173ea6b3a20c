"""Limits: connections at once, namespaces, calls in flight both ways, the rate of
incoming events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import eventsock
from eventsock.limits import TokenBucket

from .helpers import Recorder, connected, serving, suspend_once

pytestmark = pytest.mark.timeout(30)


async def test_max_connections_refuses_the_one_too_many(no_leaks: None) -> None:
    server = eventsock.Server(max_connections=2)
    server.on("echo", lambda session, value: value)
    async with serving(server) as url, connected(url) as first, connected(url) as second:
        third = eventsock.Client(reconnection=False)
        with pytest.raises(eventsock.ConnectionFailed, match="HTTP 503"):
            await third.connect(url, timeout=5)
        # the two served carry on
        assert await first.call("echo", 1) == 1
        assert await second.call("echo", 2) == 2
        await second.disconnect()
        # a slot is free again once a connection has ended
        async with connected(url) as again:
            assert await again.call("echo", 3) == 3


async def test_max_namespaces_per_connection(no_leaks: None) -> None:
    server = eventsock.Server(max_namespaces=2)
    for namespace in ("/a", "/b", "/c"):
        server.on("echo", lambda session, value: value, namespace=namespace)
    async with serving(server) as url:
        client = eventsock.Client(reconnection=False)
        with pytest.raises(eventsock.ConnectionRefused, match="Too many namespaces"):
            await client.connect(url, namespaces=["/a", "/b", "/c"], timeout=5)
        async with connected(url, namespaces=["/a", "/b"]) as fine:
            assert await fine.call("echo", "x", namespace="/b") == "x"


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        eventsock.Server(max_connections=0)
    with pytest.raises(ValueError, match="max_namespaces"):
        eventsock.Server(max_namespaces=0)


async def test_max_pending_calls_refuses_a_call_beyond_it_at_once(no_leaks: None) -> None:
    server = eventsock.Server()
    release = asyncio.Event()

    @server.on("hold")
    async def hold(session: eventsock.Session) -> str:
        await release.wait()
        return "done"

    async with serving(server) as url:
        client = eventsock.Client(reconnection=False, max_pending_calls=2)
        async with connected(url, client):
            held = [asyncio.ensure_future(client.call("hold", timeout=10)) for _ in range(2)]
            await wait_until(lambda: client._link is not None and client._link.pending_acks == 2)
            with pytest.raises(eventsock.LimitExceeded, match="2 calls already wait"):
                await client.call("hold", timeout=10)
            release.set()
            assert await asyncio.gather(*held) == ["done", "done"]
            assert await client.call("hold", timeout=10) == "done"  # room again


async def test_server_max_pending_calls_to_one_session(no_leaks: None) -> None:
    server = eventsock.Server(max_pending_calls=1)
    release = asyncio.Event()
    client = eventsock.Client(reconnection=False)

    @client.on("hold")
    async def hold() -> str:
        await release.wait()
        return "done"

    async with serving(server) as url, connected(url, client):
        (session,) = server._sessions.values()
        first = asyncio.ensure_future(session.call("hold", timeout=10))
        await wait_until(lambda: session._conn.link.pending_acks == 1)
        with pytest.raises(eventsock.LimitExceeded):
            await session.call("hold", timeout=10)
        release.set()
        assert await first == "done"


async def test_max_incoming_calls_answers_the_one_too_many(no_leaks: None) -> None:
    server = eventsock.Server(max_incoming_calls=2)
    release = asyncio.Event()
    started = Recorder()

    @server.on("hold")
    async def hold(session: eventsock.Session) -> str:
        started()
        await release.wait()
        return "done"

    @server.on("quick")
    def quick(session: eventsock.Session) -> str:
        return "quick"

    async with serving(server) as url, connected(url) as client:
        held = [asyncio.ensure_future(client.call("hold", timeout=10)) for _ in range(2)]
        await started.wait(2)
        with pytest.raises(eventsock.TooManyCalls) as refused:
            await client.call("hold", timeout=10)
        assert refused.value.data == {"limit": 2}
        # a sync handler answers before the next frame is read: it is never refused
        assert await client.call("quick", timeout=10) == "quick"
        assert server.stats.calls_refused == 1
        release.set()
        assert await asyncio.gather(*held) == ["done", "done"]
        assert await client.call("quick", timeout=10) == "quick"
        release.clear()
        # the count went back down: two may be held again
        again = [asyncio.ensure_future(client.call("hold", timeout=10)) for _ in range(2)]
        await started.wait(4)
        release.set()
        assert await asyncio.gather(*again) == ["done", "done"]


async def test_client_max_incoming_calls(no_leaks: None) -> None:
    server = eventsock.Server()
    release = asyncio.Event()
    client = eventsock.Client(reconnection=False, max_incoming_calls=1)
    started = Recorder()

    @client.on("hold")
    async def hold() -> str:
        started()
        await release.wait()
        return "done"

    async with serving(server) as url, connected(url, client):
        (session,) = server._sessions.values()
        first = asyncio.ensure_future(session.call("hold", timeout=10))
        await started.wait(1)
        with pytest.raises(eventsock.TooManyCalls):
            await session.call("hold", timeout=10)
        assert client.stats.calls_refused == 1
        release.set()
        assert await first == "done"


async def test_rate_limit_answers_calls_drops_events_and_then_disconnects(
    no_leaks: None,
) -> None:
    # a bucket of 5 that refills once a minute: nothing refills during the test
    server = eventsock.Server(rate_limit=eventsock.RateLimit(rate=1 / 60, burst=5))
    handled = Recorder()
    reasons: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server.on("echo", lambda session, value: value)
    server.on("note", lambda session, value: handled(value))

    @server.on("disconnect")
    def gone(session: eventsock.Session, reason: str) -> None:
        reasons.set_result(reason)

    async with serving(server) as url:
        client = eventsock.Client(reconnection=False)
        await client.connect(url, timeout=5)
        try:
            for n in range(4):
                assert await client.call("echo", n, timeout=5) == n
            await client.emit("note", "fifth")  # the last token
            await handled.wait(1)
            with pytest.raises(eventsock.RateLimited) as limited:
                await client.call("echo", "over", timeout=5)
            assert 0 < limited.value.data["retry_after"] <= 60 * 2
            await client.emit("note", "dropped")
            # a peer that goes on, a whole further burst over the limit, is dropped
            for _ in range(10):
                if reasons.done():
                    break
                await client.emit("note", "flood")
            assert await asyncio.wait_for(reasons, 5) == "rate limit exceeded"
            assert handled.calls == [("fifth",)]
            assert server.stats.rate_limited >= 5  # (6 if a token crept back meanwhile)
            assert server.stats.rate_limit_disconnects == 1
        finally:
            await client.disconnect()


async def test_rate_limit_refills_over_time(no_leaks: None) -> None:
    # 1,000 a second in bursts of 2: the third call in a row is refused, and one a
    # little later (a future's wait, bounded) goes through
    server = eventsock.Server(rate_limit=eventsock.RateLimit(rate=1000, burst=2))
    server.on("echo", lambda session, value: value)
    async with serving(server) as url, connected(url) as client:
        results = await asyncio.gather(
            *(client.call("echo", n, timeout=5) for n in range(3)), return_exceptions=True
        )
        assert results[:2] == [0, 1]
        assert isinstance(results[2], eventsock.RateLimited)
        retry = results[2].data["retry_after"]
        assert retry <= 0.002
        loop = asyncio.get_running_loop()
        gate = loop.create_future()
        loop.call_later(0.01, gate.set_result, None)  # ten tokens' worth of time
        await gate
        assert await client.call("echo", "again", timeout=5) == "again"


def test_token_bucket_arithmetic() -> None:
    bucket = TokenBucket(eventsock.RateLimit(rate=2, burst=3), now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after() == pytest.approx(1.0)  # a debt of one: 1 s at 2/s
    assert not bucket.take(0.25)  # half a token back, still in debt
    assert bucket.take(2.0)  # refilled, capped at the burst
    assert bucket.tokens <= 3
    for _ in range(10):
        bucket.take(2.0)
    assert bucket.exhausted and bucket.tokens == -3


@pytest.mark.parametrize(
    "make",
    [
        lambda: eventsock.RateLimit(rate=0, burst=1),
        lambda: eventsock.RateLimit(rate=float("inf"), burst=1),
        lambda: eventsock.RateLimit(rate=1, burst=0),
        lambda: eventsock.Backpressure(max_packets=0),
        lambda: eventsock.Backpressure(max_bytes=0),
        lambda: eventsock.Backpressure(send_timeout=0),
        lambda: eventsock.Backpressure(overflow="block"),  # type: ignore[arg-type]
        lambda: eventsock.Server(max_pending_calls=0),
        lambda: eventsock.Client(max_incoming_calls=0),
    ],
)
def test_limit_values_are_checked(make: Any) -> None:
    with pytest.raises(ValueError, match="must"):
        make()


async def wait_until(condition: Any, timeout: float = 5.0) -> None:
    """Until ``condition()`` holds, yielding through futures (bounded in time)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await suspend_once()
