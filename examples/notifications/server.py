"""Notifications: a server whose sessions each join a room named after their user, so
that any process can notify a user on every device they are connected with.

Run one or more of them with the same Redis and prefix, on different ports:
``python examples/notifications/server.py --port 8000 [--redis URL] [--prefix P]``;
connect with ``client.py``, and notify with ``notify.py`` from anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

import eventsock
from eventsock.backends.redis import RedisBackend

# A real application checks a signed token or looks the session up in its database.
TOKENS = {"token-ada": "ada", "token-bob": "bob"}


def user_room(user: str) -> str:
    return f"user:{user}"


# --8<-- [start:server]
def create_server(redis_url: str, prefix: str) -> eventsock.Server:
    # Every server process with the same Redis URL and prefix is one cluster.
    server = eventsock.Server(backend=RedisBackend(redis_url, prefix=prefix, connect_timeout=2.0))

    @server.on("connect")
    async def connect(session: eventsock.Session, auth: dict[str, Any]) -> None:
        user = TOKENS.get(auth.get("token", ""))
        if user is None:
            raise eventsock.ConnectionRefused("unknown token")
        session.data["user"] = user
        # One room per user: all their connections, on whichever server process.
        await session.enter_room(user_room(user))

    @server.on("whoami")
    def whoami(session: eventsock.Session) -> str:
        return session.data["user"]

    return server
    # --8<-- [end:server]


async def main(host: str, port: int, redis_url: str, prefix: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    server = create_server(redis_url, prefix)
    bound = await server.start(host, port)
    try:
        # A server that cannot reach Redis serves its own sessions only: say so.
        if not (isinstance(server.backend, RedisBackend) and server.backend.subscribed):
            print(f"cannot reach Redis at {redis_url}", file=sys.stderr)
            return 1
        print(f"listening on http://{host}:{bound}", flush=True)
        await stop.wait()
    finally:
        await server.shutdown()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="notifications server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the Redis URL")
    parser.add_argument("--prefix", default="notifications", help="the cluster's channel prefix")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.host, args.port, args.redis, args.prefix)))
