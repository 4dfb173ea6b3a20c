"""Chat: the tutorial's finished terminal client (docs/tutorial/), for server.py.

Run it with ``python examples/chat/client.py http://127.0.0.1:8000 ada``. A line is a
message; the commands are ``/join ROOM``, ``/who``, ``/nick NEW`` and ``/quit`` (or
Ctrl-D). Your own messages show once the server has confirmed them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from terminal import lines

import eventsock


async def main(url: str, nick: str) -> int:
    client = eventsock.Client()

    @client.on("said")
    def said(room: str, nick: str, text: str) -> None:
        print(f"[{room}] {nick}: {text}")

    @client.on("notice")
    def notice(text: str) -> None:
        print(f"* {text}")

    @client.on("connect_error")
    def refused(message: str) -> None:  # a reconnection refused: the client stops
        print(f"! refused: {message}")

    async with client:
        # --8<-- [start:connect]
        me = {"nick": nick}
        try:
            # A callable auth is called on every attempt: reconnections send the new nick.
            await client.connect(url, auth=lambda: dict(me), timeout=10)
        except eventsock.ConnectionRefused as exc:
            print(f"refused: {exc.message}", file=sys.stderr)
            return 1
        print(f"connected as {nick}")
        # --8<-- [end:connect]
        async for line in lines():
            command, _, argument = line.partition(" ")
            # --8<-- [start:commands]
            try:
                if command == "/quit":
                    break
                elif command == "/join" and argument:
                    nicks = await client.call("join", argument, timeout=10)
                    print(f"* now in {argument}: {', '.join(nicks)}")
                elif command == "/who":
                    print(f"* here: {', '.join(await client.call('who', timeout=10))}")
                elif command == "/nick" and argument:
                    me["nick"] = await client.call("nick", argument, timeout=10)
                    print(f"* you are now {me['nick']}")
                elif line:
                    room = await client.call("say", line, timeout=10)  # the ack
                    print(f"[{room}] {me['nick']}: {line}")
            except eventsock.RemoteError as exc:  # the server said no
                print(f"! {exc.message}")
            except (eventsock.AckTimeout, eventsock.ConnectionClosed) as exc:
                print(f"! not sent: {exc}")  # it may or may not have reached the server
            # --8<-- [end:commands]
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="chat client")
    parser.add_argument("url", help="the server, for example http://127.0.0.1:8000")
    parser.add_argument("nick")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    try:
        sys.exit(asyncio.run(main(args.url, args.nick)))
    except eventsock.ConnectionFailed as exc:
        sys.exit(f"cannot reach the server: {exc}")
    except KeyboardInterrupt:
        pass
