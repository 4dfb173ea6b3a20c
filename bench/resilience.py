"""How fast eventsock notices faults: a call in flight when the connection is cut, and
a stalled connection (no bytes moving) on both sides.

    python bench/resilience.py

Runs in about a second on 127.0.0.1, through the tests' loopback fault proxy.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventsock
from tests.faults import FaultProxy

INTERVAL = 0.1
TIMEOUT = 0.1


async def main() -> None:
    server = eventsock.Server(ping_interval=INTERVAL, ping_timeout=TIMEOUT)
    started = asyncio.Event()

    @server.on("slow")
    async def slow(session: eventsock.Session) -> None:
        started.set()
        await asyncio.Event().wait()

    left: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    server.on("disconnect", lambda s, reason: left.put_nowait((reason, time.monotonic())))
    port = await server.start()
    try:
        async with FaultProxy(port) as proxy:
            client = eventsock.Client(reconnection=False)
            await client.connect(proxy.url, timeout=5)
            call = asyncio.ensure_future(client.call("slow", timeout=30))
            await asyncio.wait_for(started.wait(), 5)
            begin = time.monotonic()
            proxy.cut()
            try:
                await asyncio.wait_for(call, 5)
            except eventsock.ConnectionClosed:
                elapsed = (time.monotonic() - begin) * 1000
                print(f"call in flight failed {elapsed:.1f} ms after the cut (its timeout: 30 s)")
            await asyncio.wait_for(left.get(), 5)
            await client.disconnect()

            client = eventsock.Client(reconnection=False)
            gone: asyncio.Queue[tuple[Any, float]] = asyncio.Queue()
            client.on("disconnect", lambda reason: gone.put_nowait((reason, time.monotonic())))
            await client.connect(proxy.url, timeout=5)
            begin = time.monotonic()
            proxy.stall()
            budget = (INTERVAL + TIMEOUT) * 1000
            for side, queue in (("client", gone), ("server", left)):
                reason, at = await asyncio.wait_for(queue.get(), 5)
                print(
                    f"stall: {side} saw {reason!r} after {(at - begin) * 1000:.0f} ms "
                    f"(pingInterval + pingTimeout = {budget:.0f} ms)"
                )
            proxy.flow()
            await client.disconnect()
    finally:
        await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
