"""A small RPC service: ``add`` and ``stats`` on ``/``, ``upper`` on ``/text``.

Run it with ``python examples/rpc/server.py --port 8000`` (``--port 0`` picks a free
port); it prints ``listening on http://HOST:PORT`` and serves until SIGINT or SIGTERM.
Try it with ``python examples/rpc/client.py http://127.0.0.1:8000``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import Counter
from typing import Any

import eventsock


# --8<-- [start:namespace]
class Text(eventsock.Namespace):
    """A class-based namespace: each ``on_<event>`` method handles ``<event>``."""

    def on_upper(self, session: eventsock.Session, text: str) -> str:
        return text.upper()
        # --8<-- [end:namespace]


def create_server() -> eventsock.Server:
    server = eventsock.Server()
    calls: Counter[str] = Counter()

    # --8<-- [start:connect]
    @server.on("connect")
    def connect(session: eventsock.Session, auth: dict[str, Any]) -> None:
        # Raising ConnectionRefused answers CONNECT_ERROR; the client's connect() raises it.
        user = auth.get("user")
        if not isinstance(user, str) or not user:
            raise eventsock.ConnectionRefused("a user name is required", data={"field": "user"})
        session.data["user"] = user
        # --8<-- [end:connect]

    # --8<-- [start:handlers]
    @server.on("add")
    def add(session: eventsock.Session, a: float, b: float) -> float:
        calls["add"] += 1
        return a + b  # the return value is the ack

    @server.on("stats")
    def stats(session: eventsock.Session) -> dict[str, Any]:
        calls["stats"] += 1
        return {
            "user": session.data["user"],
            "sessions": server.session_count,
            "calls": dict(calls),
        }
        # --8<-- [end:handlers]

    server.register(Text("/text"))
    return server


async def main(host: str, port: int) -> None:
    server = create_server()
    # --8<-- [start:lifecycle]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    bound = await server.start(host, port)
    print(f"listening on http://{host}:{bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.shutdown()  # disconnects every client ("server shutting down")
    # --8<-- [end:lifecycle]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
