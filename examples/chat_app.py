"""A chat server as a module, for the command line.

Run it with one process, or with several sharing Redis:

    eventsock serve chat_app:server --port 8000
    eventsock serve chat_app:server --port 8000 --workers 4 --redis redis://127.0.0.1:6379/0

(from this folder, or with it on PYTHONPATH)."""

from __future__ import annotations

import eventsock

# --8<-- [start:server]
server = eventsock.Server()


@server.on("join")
async def join(session: eventsock.Session, room: str) -> str:
    await session.enter_room(room)
    return server.node_id  # which worker answered


@server.on("say")
async def say(session: eventsock.Session, room: str, text: str) -> None:
    # reaches the room's members on every worker when the server runs with --redis
    await server.emit("said", session.id, text, to=room, skip=session.id)


# --8<-- [end:server]
