"""A server and a client on uvloop, in one process.

uvloop is optional (``pip install "eventsock[uvloop]"``); eventsock runs the same on it
as on asyncio's own loop. Run it with ``python examples/uvloop_server.py``.
"""

from __future__ import annotations

import asyncio

import uvloop

import eventsock


# --8<-- [start:main]
async def main() -> None:
    server = eventsock.Server()

    @server.on("echo")
    def echo(session: eventsock.Session, value: object) -> object:
        return value

    port = await server.start("127.0.0.1", 0)
    try:
        async with eventsock.Client() as client:
            await client.connect(f"http://127.0.0.1:{port}")
            answer = await client.call("echo", {"on": type(asyncio.get_running_loop()).__module__})
            print("echoed:", answer)
    finally:
        await server.shutdown()


if __name__ == "__main__":
    uvloop.run(main())  # or, for a standalone server: uvloop.run(server.serve(host, port))
    # --8<-- [end:main]
