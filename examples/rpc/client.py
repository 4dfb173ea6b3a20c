"""Calls the service in server.py: ``python examples/rpc/client.py [URL]``.

The URL defaults to http://127.0.0.1:8000. Exits 0 when every call succeeded.
"""

from __future__ import annotations

import asyncio
import sys

import eventsock


async def main(url: str) -> None:
    # --8<-- [start:refused]
    # Without a user name the server refuses the connection.
    try:
        async with eventsock.Client() as anonymous:
            await anonymous.connect(url, timeout=5)
    except eventsock.ConnectionRefused as exc:
        print(f"refused: {exc.message} {exc.data}")
    # --8<-- [end:refused]

    # --8<-- [start:calls]
    async with eventsock.Client() as client:
        # One WebSocket, two namespaces; the auth payload is sent with each CONNECT.
        await client.connect(url, auth={"user": "ada"}, namespaces=["/", "/text"], timeout=5)
        print("add(2, 3) =", await client.call("add", 2, 3, timeout=5))
        print("add(0.5, 0.25) =", await client.call("add", 0.5, 0.25, timeout=5))
        print("upper('hello') =", await client.call("upper", "hello", namespace="/text", timeout=5))
        print("stats() =", await client.call("stats", timeout=5))
    # --8<-- [end:calls]


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"))
    except eventsock.ConnectionFailed as exc:
        sys.exit(f"cannot reach the server: {exc}")
