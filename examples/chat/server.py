"""Chat: the tutorial's finished server (docs/tutorial/). Rooms, nicks checked when a
client connects and when it changes its nick, messages acknowledged to their sender,
and a browser page served next to the Socket.IO endpoint.

Run it with ``python examples/chat/server.py --port 8000`` and open
http://127.0.0.1:8000/ (build the page's script first: ``npm install && npm run build``
in examples/chat), or talk to it with ``python examples/chat/client.py URL NICK``.
The module's ``server`` also runs on its own, page aside, with several workers:
``eventsock serve server:server --workers 4 --redis redis://127.0.0.1:6379/0`` from
examples/chat.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

import eventsock

server = eventsock.Server()


async def members(room: str) -> list[str]:
    """The nicks of the sessions in ``room``, sorted, from every server process."""
    return sorted(info.data["nick"] for info in await server.fetch_sessions(room) if info.data)


# --8<-- [start:check_nick]
NICK = re.compile(r"[A-Za-z0-9_-]{1,20}")


async def check_nick(session: eventsock.Session, nick: str) -> None:
    """Raise a RemoteError unless ``nick`` is well formed and no other session has it."""
    if not NICK.fullmatch(nick):
        raise eventsock.RemoteError(
            "a nick is 1 to 20 letters, digits, '-' or '_'", code="bad_nick", data={"nick": nick}
        )
    for info in await server.fetch_sessions():
        if info.id != session.id and info.data and info.data.get("nick") == nick:
            raise eventsock.RemoteError(f"{nick} is taken", code="nick_taken", data={"nick": nick})


# --8<-- [end:check_nick]


# --8<-- [start:connect]
@server.on("connect")
async def connect(session: eventsock.Session, auth: dict[str, Any]) -> None:
    nick = auth.get("nick")
    if not isinstance(nick, str):
        raise eventsock.ConnectionRefused("a nick is required", data={"field": "nick"})
    try:
        await check_nick(session, nick)
    except eventsock.RemoteError as exc:
        raise eventsock.ConnectionRefused(exc.message, data=exc.data) from None
    session.data.update(nick=nick, room="lobby")
    await session.enter_room("lobby")
    await server.emit("notice", f"{nick} joined lobby", to="lobby", skip=session.id)
    # --8<-- [end:connect]


@server.on("disconnect")
async def disconnect(session: eventsock.Session) -> None:
    room = session.data["room"]
    await server.emit("notice", f"{session.data['nick']} left {room}", to=room)


# --8<-- [start:join]
# Shorter than a session id (20 characters): every session is in a room named after its
# id, and a client must never be able to join another one's.
ROOM = re.compile(r"[a-z0-9-]{1,16}")


@server.on("join")
async def join(session: eventsock.Session, room: str) -> list[str]:
    if not ROOM.fullmatch(room):
        raise eventsock.RemoteError(
            "a room is 1 to 16 lowercase letters, digits or '-'", code="bad_room"
        )
    nick, old = session.data["nick"], session.data["room"]
    if room != old:
        await session.leave_room(old)
        await server.emit("notice", f"{nick} left {old}", to=old)
        await session.enter_room(room)
        session.data["room"] = room
        await server.emit("notice", f"{nick} joined {room}", to=room, skip=session.id)
    return await members(room)
    # --8<-- [end:join]


@server.on("who")
async def who(session: eventsock.Session) -> list[str]:
    return await members(session.data["room"])


# --8<-- [start:say]
MAX_TEXT = 500


@server.on("say")
async def say(session: eventsock.Session, text: str) -> str:
    if not text.strip() or len(text) > MAX_TEXT:
        raise eventsock.RemoteError(f"a message is 1 to {MAX_TEXT} characters", code="bad_message")
    room = session.data["room"]
    # Everyone in the room but the sender, who learns from the answer that it went out.
    await server.emit("said", room, session.data["nick"], text, to=room, skip=session.id)
    return room


# --8<-- [end:say]


# --8<-- [start:nick]
@server.on("nick")
async def nick(session: eventsock.Session, new: str) -> str:
    await check_nick(session, new)  # its RemoteError is the caller's answer
    old, session.data["nick"] = session.data["nick"], new
    room = session.data["room"]
    await server.emit("notice", f"{old} is now known as {new}", to=room, skip=session.id)
    return new


# --8<-- [end:nick]


# --8<-- [start:app]
HERE = Path(__file__).resolve().parent


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(HERE / "index.html")


async def script(request: web.Request) -> web.FileResponse:
    bundle = HERE / "dist" / "chat.js"  # made by `npm run build`
    if not bundle.is_file():
        raise web.HTTPNotFound(text="run `npm install && npm run build` in examples/chat\n")
    return web.FileResponse(bundle)


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/chat.js", script)
    server.attach(app)  # the Socket.IO endpoint, /socket.io/, on the same port
    return app
    # --8<-- [end:app]


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    runner = web.AppRunner(create_app())
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"listening on http://{host}:{runner.addresses[0][1]}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # also disconnects every client


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="chat server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
