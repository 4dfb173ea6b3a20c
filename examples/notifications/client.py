"""Receives a user's notifications: ``python examples/notifications/client.py URL TOKEN``.

The tokens of the example server are ``token-ada`` and ``token-bob``. With
``--count N`` the client leaves after N notifications; otherwise Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import eventsock


# --8<-- [start:client]
async def main(url: str, token: str, count: int | None) -> int:
    received = 0
    done = asyncio.Event()
    client = eventsock.Client()

    @client.on("notification")
    def notification(note: dict[str, Any]) -> None:
        nonlocal received
        print(f"{note['title']}: {note['body']}")
        received += 1
        if received == count:
            done.set()

    async with client:
        try:
            await client.connect(url, auth={"token": token}, timeout=10)
        except eventsock.ConnectionRefused as exc:
            print(f"refused: {exc.message}", file=sys.stderr)
            return 1
        print(f"connected as {await client.call('whoami', timeout=10)}")
        await done.wait()
    return 0
    # --8<-- [end:client]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="notifications client")
    parser.add_argument("url", help="a server, for example http://127.0.0.1:8000")
    parser.add_argument("token")
    parser.add_argument("--count", type=int, help="leave after this many notifications")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    try:
        sys.exit(asyncio.run(main(args.url, args.token, args.count)))
    except eventsock.ConnectionFailed as exc:
        sys.exit(f"cannot reach the server: {exc}")
    except KeyboardInterrupt:
        pass
