"""Chat, step 2: a terminal client for the step 1 server.

Run it with ``python examples/chat/step2_client.py http://127.0.0.1:8000 ada``: each
line you type is sent, every message is printed as it arrives, and the end of input
(Ctrl-D) quits.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from terminal import lines

import eventsock


async def main(url: str, nick: str) -> None:
    client = eventsock.Client()

    @client.on("said")
    def said(nick: str, text: str) -> None:
        print(f"{nick}: {text}")

    async with client:  # disconnects at the end of the block
        await client.connect(url, auth={"nick": nick}, timeout=10)
        print(f"connected as {nick}")
        async for line in lines():
            if line:
                await client.emit("say", line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="chat client, step 2")
    parser.add_argument("url", help="the server, for example http://127.0.0.1:8000")
    parser.add_argument("nick")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each line shows at once, even in a pipe
    try:
        asyncio.run(main(args.url, args.nick))
    except eventsock.ConnectionFailed as exc:
        sys.exit(f"cannot reach the server: {exc}")
    except KeyboardInterrupt:
        pass
