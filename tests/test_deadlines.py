"""Call deadlines behind one timer per connection (eventsock.session.Deadlines)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import eventsock
from eventsock.session import Deadlines

pytestmark = pytest.mark.timeout(30)


def pending(loop: asyncio.AbstractEventLoop, count: int) -> list[asyncio.Future[Any]]:
    return [loop.create_future() for _ in range(count)]


async def test_calls_expire_at_their_own_deadline_whatever_the_order() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    slow, fast, answered = pending(loop, 3)
    started = loop.time()
    deadlines.add(slow, 0.3, "slow", "/")
    deadlines.add(fast, 0.05, "fast", "/")  # earlier than the timer armed for slow
    deadlines.add(answered, 0.05, "answered", "/")
    answered.set_result(())
    with pytest.raises(eventsock.AckTimeout, match=r"no ack for 'fast' on '/' within 0.05 s"):
        await asyncio.wait_for(fast, 5)
    assert loop.time() - started >= 0.05
    assert not slow.done()
    with pytest.raises(eventsock.AckTimeout, match="'slow'"):
        await asyncio.wait_for(slow, 5)
    assert loop.time() - started >= 0.3
    assert answered.result() == ()  # an answered call is never failed afterwards
    assert len(deadlines) == 0  # and nothing is kept once all have ended


async def test_answered_calls_do_not_pile_up_behind_a_slow_one() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    (stuck,) = pending(loop, 1)
    deadlines.add(stuck, 60.0, "stuck", "/")
    longest = 0
    for _ in range(20_000):
        (future,) = pending(loop, 1)
        deadlines.add(future, 60.0, "quick", "/")
        future.set_result(())
        longest = max(longest, len(deadlines))
    # bounded by the rebuild rule (4 x in flight + 1024), not by the calls made
    assert longest <= 1024 + 1
    assert not stuck.done()
    deadlines.clear()
    assert len(deadlines) == 0


async def test_in_order_answers_keep_the_queue_as_short_as_the_calls_in_flight() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    window: list[asyncio.Future[Any]] = []
    longest = 0
    for _ in range(5_000):
        (future,) = pending(loop, 1)
        deadlines.add(future, 30.0, "pipelined", "/")
        window.append(future)
        if len(window) == 64:
            window.pop(0).set_result(())
        longest = max(longest, len(deadlines))
    assert longest <= 65
    deadlines.clear()


async def test_a_call_times_out_through_a_server_that_never_answers(no_leaks: None) -> None:
    from .helpers import connected, serving

    server = eventsock.Server()
    release = asyncio.Event()

    @server.on("hang")
    async def hang(session: eventsock.Session) -> None:
        await release.wait()

    @server.on("echo")
    def echo(session: eventsock.Session, value: Any) -> Any:
        return value

    async with serving(server) as url, connected(url) as client:
        call = asyncio.ensure_future(client.call("hang", timeout=0.2))
        # other calls, with other timeouts, come and go meanwhile
        for n in range(50):
            assert await client.call("echo", n, timeout=5) == n
        with pytest.raises(eventsock.AckTimeout, match="'hang'"):
            await call
        release.set()
