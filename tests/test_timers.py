"""Shared timers (eventsock.timers.Timers): FIFOs by delay behind one asyncio timer."""

from __future__ import annotations

import asyncio
import logging

import pytest

from eventsock.timers import Timers, timers_for

pytestmark = pytest.mark.timeout(30)


async def test_timers_fire_in_time_order_across_delays() -> None:
    loop = asyncio.get_running_loop()
    timers = Timers(loop)
    fired: list[tuple[str, float]] = []
    done = asyncio.Event()
    started = loop.time()

    def note(name: str) -> None:
        fired.append((name, loop.time() - started))
        if len(fired) == 4:
            done.set()

    timers.call_later(0.12, note, "slow")
    timers.call_later(0.03, note, "fast 1")  # armed after, due before: re-arms earlier
    timers.call_later(0.03, note, "fast 2")
    timers.call_later(0.06, note, "middle")
    await asyncio.wait_for(done.wait(), 5)
    assert [name for name, _ in fired] == ["fast 1", "fast 2", "middle", "slow"]
    for (name, at), due in zip(fired, (0.03, 0.03, 0.06, 0.12), strict=True):
        assert at >= due - 0.002, (name, at)
    assert len(timers) == 0


async def test_cancelled_timers_never_fire_and_are_dropped() -> None:
    loop = asyncio.get_running_loop()
    timers = Timers(loop)
    fired: list[int] = []
    done = asyncio.Event()
    handles = [timers.call_later(0.02, fired.append, n) for n in range(100)]
    for handle in handles[::2]:
        handle.cancel()
    timers.call_later(0.03, done.set)
    await asyncio.wait_for(done.wait(), 5)
    assert fired == list(range(1, 100, 2))
    assert len(timers) == 0


async def test_a_callback_may_cancel_or_arm_others(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    timers = Timers(loop)
    fired: list[str] = []
    done = asyncio.Event()
    second = None

    def first() -> None:
        fired.append("first")
        assert second is not None
        second.cancel()  # due in the same round: must not run
        timers.call_later(0.01, last)

    def failing() -> None:
        raise RuntimeError("boom")

    def last() -> None:
        fired.append("last")
        done.set()

    timers.call_later(0.02, first)
    second = timers.call_later(0.02, fired.append, "second")
    timers.call_later(0.02, failing)
    with caplog.at_level(logging.ERROR, logger="eventsock"):
        await asyncio.wait_for(done.wait(), 5)
    assert fired == ["first", "last"]
    assert "timer callback" in caplog.text
    assert "boom" in caplog.text


async def test_close_drops_everything() -> None:
    loop = asyncio.get_running_loop()
    timers = Timers(loop)
    fired: list[int] = []
    for n in range(10):
        timers.call_later(0.01, fired.append, n)
    timers.close()
    assert len(timers) == 0
    later = loop.create_future()
    loop.call_later(0.05, later.set_result, None)
    await later
    assert fired == []


def test_the_shared_timers_never_keep_a_closed_loop_alive() -> None:
    import gc
    import weakref

    loop = asyncio.new_event_loop()
    try:
        timers = timers_for(loop)
        assert timers_for(loop) is timers  # one per loop
        timers.call_later(3600.0, print, "never")  # armed, with a far deadline
    finally:
        loop.close()
    dead = weakref.ref(loop)
    del loop, timers
    gc.collect()
    assert dead() is None


async def test_each_loop_has_its_own_timers() -> None:
    other = asyncio.new_event_loop()
    try:
        assert timers_for(other) is not timers_for(asyncio.get_running_loop())
    finally:
        other.close()


async def test_cancelled_timers_do_not_pile_up_before_they_come_due() -> None:
    # connections that open and close: each arms a long timer and cancels it soon
    timers = Timers(asyncio.get_running_loop())
    try:
        live = [timers.call_later(60.0, lambda: None) for _ in range(10)]
        for _ in range(20_000):
            timers.call_later(60.0, lambda: None).cancel()
        # the 10 live ones, and cancelled ones up to the rebuild bound only
        assert len(timers) <= 1024 + 10
        assert all(not timer.cancelled for timer in live)
    finally:
        timers.close()
