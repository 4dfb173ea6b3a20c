"""Many timers of a few distinct delays behind one event-loop timer.

Every connection of a server arms the same few timers (the next ping, the pong it
waits for, the connect deadline), with the same few delays. asyncio keeps each
``call_later`` in a heap of Python objects, compared in Python: with thousands of
connections every push and pop costs a dozen comparisons, and cancelled handles stay
in the heap until they come due. :class:`Timers` keeps one FIFO per delay instead
(timers with the same delay come due in the order they were armed), and a single
asyncio timer for the earliest of all. Arming is an append, cancelling sets a flag;
cancelled entries are dropped when they reach the front.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

__all__ = ["Timer", "Timers"]

logger = logging.getLogger("eventsock")

# The loop runs a timer up to its clock's resolution early: count that as due.
_RESOLUTION: Final = time.get_clock_info("monotonic").resolution


class Timer:
    """One armed timer; :meth:`cancel` it like an ``asyncio.TimerHandle``."""

    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.args = ()  # drop references early: the entry may wait a while to be dropped


class Timers:
    """FIFOs of timers by delay, behind one asyncio timer, for one event loop."""

    __slots__ = ("_handle", "_loop", "_queues", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, deque[Timer]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        """Call ``callback(*args)`` in ``delay`` seconds, unless cancelled first."""
        timer = Timer(self._loop.time() + delay, callback, args)
        queue = self._queues.get(delay)
        if queue is None:
            queue = self._queues[delay] = deque()
        queue.append(timer)
        if self._handle is None or timer.when < self._when:
            self._arm(timer.when)
        return timer

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop these timers run on."""
        return self._loop

    def close(self) -> None:
        """Drop every timer (their owner has stopped)."""
        self._queues.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def __len__(self) -> int:
        """Timers waiting, cancelled ones not yet dropped included."""
        return sum(len(queue) for queue in self._queues.values())

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._when = when
        self._handle = self._loop.call_at(when, self._run)

    def _run(self) -> None:
        self._handle = None
        now = self._loop.time() + _RESOLUTION
        due: list[Timer] = []
        earliest: float | None = None
        for delay, queue in list(self._queues.items()):
            while queue:
                timer = queue[0]
                if not timer.cancelled:
                    if timer.when > now:
                        break
                    due.append(timer)
                queue.popleft()
            if not queue:
                del self._queues[delay]
            elif earliest is None or queue[0].when < earliest:
                earliest = queue[0].when
        if earliest is not None:
            self._arm(earliest)
        due.sort(key=_when)
        for timer in due:
            if timer.cancelled:  # an earlier callback of this round cancelled it
                continue
            timer.cancelled = True
            try:
                timer.callback(*timer.args)
            except Exception:
                logger.exception("timer callback %r raised", timer.callback)


def _when(timer: Timer) -> float:
    return timer.when
