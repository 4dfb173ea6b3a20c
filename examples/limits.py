"""Limits in action: a server with a rate limit, a cap on calls in flight and a small
outgoing queue, and what a client sees when it goes past them.

    python examples/limits.py
"""

from __future__ import annotations

import asyncio

import eventsock

# --8<-- [start:server]
server = eventsock.Server(
    # each client: 20 events a second on average, in bursts of up to 10
    rate_limit=eventsock.RateLimit(rate=20, burst=10),
    # each client: at most 4 of its calls handled at once
    max_incoming_calls=4,
    # each client: at most 64 frames (1 MiB) waiting to be sent to it; an emit to a
    # client that stays that far behind for 5 s disconnects it ("slow consumer")
    backpressure=eventsock.Backpressure(max_packets=64, max_bytes=1 << 20, send_timeout=5),
)


@server.on("echo")
def echo(session: eventsock.Session, value: object) -> object:
    return value


@server.on("slow")
async def slow(session: eventsock.Session) -> str:
    await asyncio.sleep(0.2)  # stands for a database call that takes a while
    return "done"


# --8<-- [end:server]


async def main() -> None:
    port = await server.start("127.0.0.1", 0)
    async with eventsock.Client(reconnection=False) as client:
        await client.connect(f"http://127.0.0.1:{port}")

        # --8<-- [start:client]
        # five slow calls at once: four are handled, the fifth is refused at once
        *four, fifth = await asyncio.gather(
            *(client.call("slow") for _ in range(5)), return_exceptions=True
        )
        print("the four:", four)
        assert isinstance(fifth, eventsock.TooManyCalls)
        print("the fifth:", fifth.code, fifth.data)

        # a burst over the rate limit: the calls past it are answered with an error
        answers = await asyncio.gather(
            *(client.call("echo", n) for n in range(15)), return_exceptions=True
        )
        limited = [a for a in answers if isinstance(a, eventsock.RateLimited)]
        print(f"{len(answers) - len(limited)} answered, {len(limited)} rate limited")
        if limited:
            print("retry after", limited[0].data["retry_after"], "s or more")
        # --8<-- [end:client]
    print("server stats:", server.stats)
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
