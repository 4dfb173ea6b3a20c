"""Chat, step 1: a server that passes every message on to everyone.

Run it with ``python examples/chat/step1_server.py --port 8000`` (``--port 0`` picks a
free port); it prints ``listening on http://HOST:PORT`` and serves until Ctrl-C or
SIGTERM. The tutorial builds it up step by step: see docs/tutorial/.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import eventsock

server = eventsock.Server()


@server.on("connect")
def connect(session: eventsock.Session, auth: dict[str, Any]) -> None:
    # What the client sent with its connection; kept for the session's lifetime.
    session.data["nick"] = auth.get("nick") or "anonymous"


@server.on("say")
async def say(session: eventsock.Session, text: str) -> None:
    # To every connected session, the sender's own included.
    await server.emit("said", session.data["nick"], text)


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    bound = await server.start(host, port)  # the real port, also when port 0 was asked for
    print(f"listening on http://{host}:{bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.shutdown()  # disconnects every client


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="chat server, step 1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
