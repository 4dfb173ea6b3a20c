"""Running a coroutine's first step at once, and a task only if it suspends.

Most event handlers and most WebSocket writes finish without ever waiting. Wrapping
each in an asyncio task costs a task object, two trips through the event loop and a
done callback, which is most of the time of a small handler. :func:`start` runs the
first step right away instead, in the caller's turn of the loop, and hands the
coroutine to a task only when it really suspends, much like Python 3.12's eager tasks,
which it stands in for on 3.11. (Writes do the same with aiohttp's send coroutine, in
``transport.WebSocket.write``, and continue it with :func:`resume` if it must wait.)

While that first step runs, :func:`asyncio.current_task` returns a stand-in for the
task the coroutine will continue in (:class:`FirstStep`), so ``asyncio.timeout``,
``TaskGroup`` and other code that cancels "the current task" later cancel the right one,
never the caller's.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Final

__all__ = ["FirstStep", "PENDING", "resume", "step"]

# asyncio's bookkeeping of the task each loop is running; both exist from 3.7 on, in C.
_enter_task: Callable[[asyncio.AbstractEventLoop, Any], None] = asyncio.tasks._enter_task
_leave_task: Callable[[asyncio.AbstractEventLoop, Any], None] = asyncio.tasks._leave_task


class _Pending:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PENDING"


#: What :func:`step` returns in place of a result when the coroutine suspended.
PENDING: Final = _Pending()


class FirstStep:
    """Stands for a coroutine's task while its first step runs outside any task.

    Once the coroutine suspends and gets its real task, everything is forwarded to
    that task; cancellations asked for before then are passed on to it.
    """

    __slots__ = ("_cancel_message", "_cancels", "_done", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None
        self._cancels = 0
        self._cancel_message: Any = None
        self._done = False

    def bind(self, task: asyncio.Task[Any]) -> None:
        """The coroutine suspended and now runs in ``task``.

        Cancellations asked for during the first step reach ``task`` once it has
        started waiting where the coroutine waits, as they would have reached a real
        task: the coroutine sees :class:`asyncio.CancelledError` at that ``await``.
        """
        self.task = task
        if self._cancels:
            task.get_loop().call_soon(self._pass_cancels)

    def _pass_cancels(self) -> None:
        task, count, self._cancels = self.task, self._cancels, 0
        assert task is not None
        for _ in range(count):
            task.cancel(self._cancel_message)

    def cancel(self, msg: Any = None) -> bool:
        if self.task is not None and not self._cancels:
            return self.task.cancel(msg)
        if self._done:
            return False
        self._cancels += 1
        self._cancel_message = msg
        return True

    def cancelling(self) -> int:
        return self._cancels + (self.task.cancelling() if self.task is not None else 0)

    def uncancel(self) -> int:
        if self._cancels:
            self._cancels -= 1
            return self.cancelling()
        if self.task is not None:
            return self.task.uncancel()
        return 0

    def done(self) -> bool:
        return self.task.done() if self.task is not None else self._done

    def cancelled(self) -> bool:
        return self.task.cancelled() if self.task is not None else False

    def __getattr__(self, name: str) -> Any:
        task = object.__getattribute__(self, "task")
        if task is None:
            raise AttributeError(
                f"{name!r} is not available while a handler's first step runs eagerly"
            )
        return getattr(task, name)

    def __repr__(self) -> str:
        return f"<FirstStep of {self.task!r}>" if self.task is not None else "<FirstStep>"


def step(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    context: contextvars.Context | None,
    stand_in: FirstStep,
) -> tuple[Any, Any]:
    """Run ``coro``'s first step now, in ``context`` (the current one if ``None``).

    Returns ``(result, PENDING)`` when it finished, ``(PENDING, yielded)`` when it
    suspended on ``yielded`` (continue it with :func:`resume`). Exceptions it raises
    propagate. During the step :func:`asyncio.current_task` returns ``stand_in``. A
    cancellation asked for during a step that then finishes has nothing left to
    cancel, as with an eager task whose wrapper finishes in its first step.
    """
    current = asyncio.tasks.current_task(loop)
    if current is not None:
        _leave_task(loop, current)
    _enter_task(loop, stand_in)
    try:
        yielded = coro.send(None) if context is None else context.run(coro.send, None)
    except StopIteration as stop:
        stand_in._done = True
        return stop.value, PENDING
    finally:
        _leave_task(loop, stand_in)
        if current is not None:
            _enter_task(loop, current)
    return PENDING, yielded


@types.coroutine
def resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Go on with ``coro``, whose first step suspended on ``yielded``: awaited in a task,
    it waits where the coroutine waited and then runs it to the end."""
    while True:
        try:
            yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # a cancellation (or any throw) goes on to coro
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            break
    return (yield from coro)
