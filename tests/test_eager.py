"""The eager first step of handlers and writes (eventsock.eager), alone and through a
server: what a handler sees of "its task" must behave as a real task would."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any

import pytest

import eventsock
from eventsock import Session
from eventsock.eager import PENDING, FirstStep, resume, step

from .helpers import connected, serving, suspend_once

pytestmark = pytest.mark.timeout(30)


async def go_on(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    # resume() is awaited from a coroutine, as eventsock does (3.12+ tasks take
    # native coroutines only)
    return await resume(coro, yielded)


async def test_a_coroutine_that_never_waits_finishes_in_the_step() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    loop = asyncio.get_running_loop()
    assert step(loop, add(2, 3), None, FirstStep()) == (5, PENDING)
    # the caller's task is current again afterwards
    assert asyncio.current_task() is not None
    assert not isinstance(asyncio.current_task(), FirstStep)


async def test_a_suspended_coroutine_goes_on_where_it_waited() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    trace: list[str] = []

    async def waits() -> int:
        trace.append("first step")
        value = await future
        trace.append("resumed")
        await suspend_once()
        return value * 2

    coro = waits()
    result, yielded = step(loop, coro, None, FirstStep())
    assert result is PENDING
    assert yielded is future
    task = loop.create_task(go_on(coro, yielded))
    await suspend_once()
    assert trace == ["first step"]
    future.set_result(21)
    assert await asyncio.wait_for(task, 5) == 42
    assert trace == ["first step", "resumed"]


async def test_current_task_is_a_stand_in_then_the_real_task() -> None:
    loop = asyncio.get_running_loop()
    caller = asyncio.current_task()
    seen: list[Any] = []

    async def body() -> None:
        seen.append(asyncio.current_task())
        await suspend_once()
        seen.append(asyncio.current_task())

    stand_in = FirstStep()
    coro = body()
    _, yielded = step(loop, coro, None, stand_in)
    assert seen == [stand_in]
    assert seen[0] is not caller
    assert not stand_in.done()
    assert stand_in.cancelling() == 0
    with pytest.raises(AttributeError, match="first step runs eagerly"):
        stand_in.get_name()
    task = loop.create_task(go_on(coro, yielded), name="continued")
    stand_in.bind(task)
    assert stand_in.get_name() == "continued"  # forwarded once bound
    await asyncio.wait_for(task, 5)
    assert seen[1] is task
    assert stand_in.done()
    assert asyncio.current_task() is caller


async def test_a_timeout_entered_in_the_first_step_cancels_the_right_task() -> None:
    loop = asyncio.get_running_loop()
    outcome: list[str] = []

    async def body() -> str:
        try:
            async with asyncio.timeout(0.05):
                await asyncio.Event().wait()
        except TimeoutError:
            outcome.append("timed out")
        return "done"

    stand_in = FirstStep()
    coro = body()
    _, yielded = step(loop, coro, None, stand_in)
    task = loop.create_task(go_on(coro, yielded))
    stand_in.bind(task)
    # the caller (this test's task) is never the one cancelled
    assert await asyncio.wait_for(task, 5) == "done"
    assert outcome == ["timed out"]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_task_group_opened_in_the_first_step_works() -> None:
    loop = asyncio.get_running_loop()

    async def child(n: int) -> int:
        await suspend_once()
        return n

    async def body() -> list[int]:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(child(n)) for n in range(3)]
        return [t.result() for t in tasks]

    stand_in = FirstStep()
    coro = body()
    _, yielded = step(loop, coro, None, stand_in)
    task = loop.create_task(go_on(coro, yielded))
    stand_in.bind(task)
    assert await asyncio.wait_for(task, 5) == [0, 1, 2]


async def test_cancelling_the_continued_task_reaches_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    cleaned = asyncio.Event()

    async def body() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    coro = body()
    _, yielded = step(loop, coro, None, FirstStep())
    task = loop.create_task(go_on(coro, yielded))
    await suspend_once()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()


async def test_a_cancellation_asked_in_the_first_step() -> None:
    loop = asyncio.get_running_loop()

    async def cancels_then_returns() -> str:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        return "finished before any wait"

    # nothing is left to cancel: the step ran to its end
    stand_in = FirstStep()
    assert step(loop, cancels_then_returns(), None, stand_in) == (
        "finished before any wait",
        PENDING,
    )
    assert stand_in.done()
    assert not stand_in.cancel()

    async def cancels_then_waits() -> str:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        try:
            await suspend_once()
        except asyncio.CancelledError:
            return "cancelled at its first wait"
        return "not cancelled"

    stand_in = FirstStep()
    coro = cancels_then_waits()
    _, yielded = step(loop, coro, None, stand_in)
    task = loop.create_task(go_on(coro, yielded))
    stand_in.bind(task)
    assert await asyncio.wait_for(task, 5) == "cancelled at its first wait"


async def test_the_first_step_runs_in_the_given_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")
    context = contextvars.copy_context()

    async def sets() -> str:
        var.set("inner")
        return var.get()

    loop = asyncio.get_running_loop()
    assert step(loop, sets(), context, FirstStep()) == ("inner", PENDING)
    assert var.get() == "outer"
    assert context[var] == "inner"


async def test_handlers_that_wait_cancel_or_fail_after_the_first_step(
    caplog: pytest.LogCaptureFixture, no_leaks: None
) -> None:
    server = eventsock.Server()
    cancelled = asyncio.Event()

    @server.on("bounded")
    async def bounded(session: Session, seconds: float) -> str:
        # entered before the handler's first suspension
        try:
            async with asyncio.timeout(seconds):
                await asyncio.Event().wait()
        except TimeoutError:
            return "timed out"
        return "not reached"

    @server.on("group")
    async def group(session: Session, n: int) -> list[int]:
        async def child(i: int) -> int:
            await suspend_once()
            return i * i

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(child(i)) for i in range(n)]
        return [t.result() for t in tasks]

    @server.on("fails_later")
    async def fails_later(session: Session) -> str:
        await suspend_once()
        raise ValueError("after a wait")

    @server.on("cancels_itself")
    async def cancels_itself(session: Session) -> str:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        await suspend_once()  # the cancellation lands here
        return "never sent"

    @server.on("forever")
    async def forever(session: Session) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    @server.on("echo")
    async def echo(session: Session, value: Any) -> Any:
        return value

    async with serving(server) as url, connected(url) as client:
        assert await client.call("bounded", 0.05) == "timed out"
        assert await client.call("group", 4) == [0, 1, 4, 9]
        with caplog.at_level(logging.ERROR, logger="eventsock"):
            with pytest.raises(eventsock.InternalError, match="internal error"):
                await client.call("fails_later", timeout=5)
            with pytest.raises(eventsock.AckTimeout):
                await client.call("cancels_itself", timeout=0.2)
        assert "handler for 'fails_later' raised" in caplog.text
        assert "cancels_itself" not in caplog.text  # a cancellation is not an error
        await client.emit("forever")
        # the connection's reader was never the task cancelled: it still serves
        assert await client.call("echo", "still here") == "still here"
    # the shutdown cancelled the handler still waiting, and its finally ran
    assert cancelled.is_set()
