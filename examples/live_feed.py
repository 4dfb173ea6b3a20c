"""A live feed as a stream: the server yields sensor readings, the client iterates
them at its own pace. One process: ``python examples/live_feed.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import eventsock


# --8<-- [start:server]
@dataclasses.dataclass
class Reading:
    sensor: str
    seq: int
    celsius: float


def create_server() -> eventsock.Server:
    server = eventsock.Server()

    @server.stream("readings")
    async def readings(session: eventsock.Session, sensor: str) -> AsyncIterator[Reading]:
        seq = 0
        try:
            while True:  # a feed without end: the client decides when it has enough
                # (a real feed awaits its source here; the client's credit paces it)
                yield Reading(sensor, seq, 20.0 + seq / 10)
                seq += 1
        finally:
            print(f"server: feed for {sensor} closed after {seq} readings")

    return server
    # --8<-- [end:server]


async def main() -> None:
    server = create_server()
    port = await server.start("127.0.0.1", 0)
    try:
        async with eventsock.Client() as client:
            await client.connect(f"http://127.0.0.1:{port}")
            # --8<-- [start:client]
            feed = client.stream("readings", "t1", window=8)  # at most 8 readings ahead
            async with contextlib.aclosing(feed):
                async for reading in feed:
                    print("client:", reading["seq"], reading["celsius"])
                    if reading["seq"] == 2:
                        break  # leaving the loop stops the server's generator
            # --8<-- [end:client]
    finally:
        await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
