"""Chat, step 3: rooms. Everyone starts in ``lobby``; ``join`` moves to another room.

Run it with ``python examples/chat/step3_server.py --port 8000`` and talk to it with
``python examples/chat/step3_client.py http://127.0.0.1:8000 ada``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import eventsock

server = eventsock.Server()


# --8<-- [start:members]
async def members(room: str) -> list[str]:
    """The nicks of the sessions in ``room``, sorted."""
    # fetch_sessions asks every server process (there is one for now), with their data.
    return sorted(info.data["nick"] for info in await server.fetch_sessions(room) if info.data)


# --8<-- [end:members]


# --8<-- [start:connect]
@server.on("connect")
async def connect(session: eventsock.Session, auth: dict[str, Any]) -> None:
    nick = session.data["nick"] = auth.get("nick") or "anonymous"
    session.data["room"] = "lobby"
    await session.enter_room("lobby")
    await server.emit("notice", f"{nick} joined lobby", to="lobby", skip=session.id)


@server.on("disconnect")
async def disconnect(session: eventsock.Session) -> None:
    # The session has already left its rooms; tell the others in its last one.
    room = session.data["room"]
    await server.emit("notice", f"{session.data['nick']} left {room}", to=room)


# --8<-- [end:connect]


# --8<-- [start:join]
@server.on("join")
async def join(session: eventsock.Session, room: str) -> list[str]:
    # Any name for now; step 4 refuses names that could be another session's id.
    nick, old = session.data["nick"], session.data["room"]
    if room != old:
        await session.leave_room(old)
        await server.emit("notice", f"{nick} left {old}", to=old)
        await session.enter_room(room)
        session.data["room"] = room
        await server.emit("notice", f"{nick} joined {room}", to=room, skip=session.id)
    return await members(room)  # the answer: who is there


@server.on("who")
async def who(session: eventsock.Session) -> list[str]:
    return await members(session.data["room"])


@server.on("say")
async def say(session: eventsock.Session, text: str) -> None:
    room = session.data["room"]
    await server.emit("said", room, session.data["nick"], text, to=room)


# --8<-- [end:join]


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    bound = await server.start(host, port)
    print(f"listening on http://{host}:{bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="chat server, step 3")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
