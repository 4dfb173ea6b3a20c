"""eventsock mounted on an existing aiohttp application, next to a plain HTTP route.

Run it with ``python examples/mount_aiohttp.py --port 8000`` (``--port 0`` picks a
free port). ``GET /health`` is an ordinary aiohttp route; Socket.IO clients connect to
the same host and port (the endpoint is ``/socket.io/``). Stop it with SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

import eventsock

# aiohttp wants typed keys for values stored on the application.
EVENTSOCK = web.AppKey("eventsock", eventsock.Server)


# --8<-- [start:health]
async def health(request: web.Request) -> web.Response:
    server = request.app[EVENTSOCK]
    return web.json_response({"status": "ok", "connections": server.connection_count})
    # --8<-- [end:health]


# --8<-- [start:app]
def create_app() -> web.Application:
    server = eventsock.Server()

    @server.on("ping")
    def ping(session: eventsock.Session) -> str:
        return "pong"

    app = web.Application()
    app.router.add_get("/health", health)
    app[EVENTSOCK] = server
    # Adds GET /socket.io/ to the app; the app's shutdown also disconnects every client.
    server.attach(app)
    return app
    # --8<-- [end:app]


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    # --8<-- [start:run]
    runner = web.AppRunner(create_app())
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]  # the real port, also when port 0 was asked for
    print(f"listening on http://{host}:{bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # runs on_shutdown, which shuts the eventsock server down
    # --8<-- [end:run]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
