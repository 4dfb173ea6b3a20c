"""Many timers of a few distinct delays behind one event-loop timer.

Every connection of a server arms the same few timers (the next ping, the pong it
waits for, the connect deadline), with the same few delays. asyncio keeps each
``call_later`` in a heap of Python objects, compared in Python: with thousands of
connections every push and pop costs a dozen comparisons, and cancelled handles stay
in the heap until they come due. :class:`Timers` keeps one FIFO per delay instead
(timers with the same delay come due in the order they were armed), and a single
asyncio timer for the earliest of all. Arming is an append, cancelling sets a flag;
cancelled entries are dropped when they reach the front, or when their FIFO has grown
to four times the live timers it held at its last rebuild (at least 1,024), so memory
follows the timers armed, not the churn.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Final

__all__ = ["Timer", "Timers", "timers_for"]

logger = logging.getLogger("eventsock")

# A FIFO shorter than this is never rebuilt.
_REBUILD_AT: Final = 1024
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
        # drop references at once: the entry waits in its FIFO until it comes due
        self.callback = _nothing
        self.args = ()


class Timers:
    """FIFOs of timers by delay, behind one asyncio timer, for one event loop.

    Use :func:`timers_for` to get the one shared by everything on a loop. It holds its
    loop weakly and keeps no handle of the asyncio timer it arms (a superseded timer
    finds it has nothing to do), so a closed loop is never kept alive by it.
    """

    __slots__ = ("__weakref__", "_armed", "_generation", "_limits", "_loop", "_queues", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._loop: Callable[[], asyncio.AbstractEventLoop | None] = weakref.ref(loop)
        except TypeError:  # a loop type without weak references
            self._loop = lambda: loop
        self._queues: dict[float, deque[Timer]] = {}
        self._limits: dict[float, int] = {}  # the length at which a FIFO is rebuilt
        self._armed = False
        self._generation = 0  # of the asyncio timer that counts
        self._when = 0.0

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        """Call ``callback(*args)`` in ``delay`` seconds, unless cancelled first."""
        loop = self._loop()
        assert loop is not None
        timer = Timer(loop.time() + delay, callback, args)
        queue = self._queues.get(delay)
        if queue is None:
            queue = self._queues[delay] = deque()
        else:
            while queue and queue[0].cancelled:  # cancelled ones at the front go now
                queue.popleft()
            if len(queue) >= self._limits.get(delay, _REBUILD_AT):
                # cancelled timers would otherwise stay until they come due: with many
                # connections opening and closing, that is the churn of a whole delay.
                # Rebuilt at most once per 3/4 of its length in new timers: O(1) each.
                live = [entry for entry in queue if not entry.cancelled]
                queue.clear()
                queue.extend(live)
                self._limits[delay] = max(_REBUILD_AT, 4 * len(live))
        queue.append(timer)
        if not self._armed or timer.when < self._when:
            self._arm(loop, timer.when)
        return timer

    def close(self) -> None:
        """Drop every timer."""
        self._queues.clear()
        self._limits.clear()
        self._armed = False
        self._generation += 1

    def __len__(self) -> int:
        """Timers waiting, cancelled ones not yet dropped included."""
        return sum(len(queue) for queue in self._queues.values())

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._armed = True
        self._when = when
        self._generation += 1
        loop.call_at(when, self._run, self._generation)

    def _run(self, generation: int) -> None:
        loop = self._loop()
        if generation != self._generation or loop is None:
            return  # superseded by an earlier one, or closed
        self._armed = False
        now = loop.time() + _RESOLUTION
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
                self._limits.pop(delay, None)
            elif earliest is None or queue[0].when < earliest:
                earliest = queue[0].when
        if earliest is not None:
            self._arm(loop, earliest)
        due.sort(key=_when)
        for timer in due:
            if timer.cancelled:  # an earlier callback of this round cancelled it
                continue
            timer.cancelled = True
            try:
                timer.callback(*timer.args)
            except Exception:
                logger.exception("timer callback %r raised", timer.callback)


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Timers] = weakref.WeakKeyDictionary()


def timers_for(loop: asyncio.AbstractEventLoop) -> Timers:
    """The timers shared by everything eventsock runs on ``loop``."""
    timers = _shared.get(loop)
    if timers is None:
        timers = Timers(loop)
        try:
            _shared[loop] = timers
        except TypeError:  # a loop that cannot be weakly referenced: unshared
            pass
    return timers


def _nothing(*args: Any) -> None:
    pass


def _when(timer: Timer) -> float:
    return timer.when
