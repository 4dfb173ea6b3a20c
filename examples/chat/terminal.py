"""The lines typed on standard input, as an async iterator, for the chat clients.

Reading standard input blocks, so a thread reads it and hands each line to the event
loop; the loop meanwhile goes on receiving messages. The thread is a daemon: it does
not keep the program alive once the client is done.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator


# --8<-- [start:lines]
async def lines() -> AsyncIterator[str]:
    """Each line of standard input, without its line break, until the end of input."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def hand_over(line: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        except RuntimeError:  # the loop is closed: the client has finished
            return False
        return True

    def read() -> None:
        for line in sys.stdin:
            if not hand_over(line.rstrip("\r\n")):
                return
        hand_over(None)  # end of input (Ctrl-D)

    threading.Thread(target=read, daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


# --8<-- [end:lines]
