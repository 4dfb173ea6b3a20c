"""Chat, step 3: a terminal client with commands, for the step 3 server.

Run it with ``python examples/chat/step3_client.py http://127.0.0.1:8000 ada``. A line
is a message, except the commands ``/join ROOM`` and ``/who``; Ctrl-D quits.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from terminal import lines

import eventsock


async def main(url: str, nick: str) -> None:
    client = eventsock.Client()

    # --8<-- [start:handlers]
    @client.on("said")
    def said(room: str, nick: str, text: str) -> None:
        print(f"[{room}] {nick}: {text}")

    @client.on("notice")
    def notice(text: str) -> None:
        print(f"* {text}")

    # --8<-- [end:handlers]

    async with client:
        await client.connect(url, auth={"nick": nick}, timeout=10)
        print(f"connected as {nick}")
        # --8<-- [start:commands]
        async for line in lines():
            command, _, argument = line.partition(" ")
            if command == "/join" and argument:
                nicks = await client.call("join", argument, timeout=10)
                print(f"* now in {argument}: {', '.join(nicks)}")
            elif command == "/who":
                nicks = await client.call("who", timeout=10)
                print(f"* here: {', '.join(nicks)}")
            elif line:
                await client.emit("say", line)
        # --8<-- [end:commands]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="chat client, step 3")
    parser.add_argument("url", help="the server, for example http://127.0.0.1:8000")
    parser.add_argument("nick")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    try:
        asyncio.run(main(args.url, args.nick))
    except eventsock.ConnectionFailed as exc:
        sys.exit(f"cannot reach the server: {exc}")
    except KeyboardInterrupt:
        pass
