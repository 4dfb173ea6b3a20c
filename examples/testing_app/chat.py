"""A small chat server, the application that test_chat.py tests."""

from __future__ import annotations

from typing import Any

import eventsock


def create_server() -> eventsock.Server:
    """A new server: one for each test, so that no state leaks between them."""
    server = eventsock.Server()

    @server.use
    def login(session: eventsock.Session, auth: dict[str, Any] | None) -> None:
        user = (auth or {}).get("user")
        if not isinstance(user, str) or not user:
            raise eventsock.ConnectionRefused("a user name is required", data={"field": "user"})
        session.data["user"] = user

    @server.on("join")
    async def join(session: eventsock.Session, room: str) -> list[str]:
        await session.enter_room(room)
        await server.emit("joined", session.data["user"], to=room, skip=session.id)
        return sorted(server.get_session(sid).data["user"] for sid in server.members(room))

    @server.on("say")
    async def say(session: eventsock.Session, room: str, text: str) -> None:
        if room not in session.rooms:
            raise eventsock.RemoteError(f"not in {room}", code="not_a_member")
        await server.emit("said", session.data["user"], text, to=room, skip=session.id)

    return server
