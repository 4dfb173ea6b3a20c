"""A small app for the command-line tests: ``eventsock serve tests.cluster_app:server``."""

from __future__ import annotations

from typing import Any

import eventsock

server = eventsock.Server()


@server.on("whoami")
def whoami(session: eventsock.Session) -> str:
    return server.node_id


@server.on("join")
async def join(session: eventsock.Session, room: str) -> bool:
    await session.enter_room(room)
    return True


@server.on("broadcast")
async def broadcast(session: eventsock.Session, room: str, message: Any) -> bool:
    await server.emit("news", message, to=room)
    return True
