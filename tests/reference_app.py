"""The reference app every interop test runs against, in eventsock.

The Node server (tests/node/server.js) and the python-socketio server in the interop
tests implement the same events with the same meaning; see tests/node/README.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

import eventsock

SECRET = "secret"


class ReferenceServer:
    """An eventsock server running the reference app, with what it observed."""

    def __init__(self, **options: Any) -> None:
        self.server = server = eventsock.Server(**options)
        self.disconnects: asyncio.Queue[str] = asyncio.Queue()
        self.handler_errors = 0
        self.port = 0

        @server.on("connect")
        def connect(session: eventsock.Session, auth: dict[str, Any]) -> None:
            if not isinstance(auth, dict) or auth.get("token") != SECRET:
                raise eventsock.ConnectionRefused("Not authorized", data={"code": 42})

        @server.on("disconnect")
        def disconnect(session: eventsock.Session, reason: str) -> None:
            self.disconnects.put_nowait(reason)

        @server.on("echo")
        def echo(session: eventsock.Session, *args: Any) -> tuple[Any, ...]:
            return args

        @server.on("join")
        async def join(session: eventsock.Session, room: str) -> bool:
            await session.enter_room(room)
            return True

        @server.on("shout")
        async def shout(session: eventsock.Session, room: str, msg: Any) -> bool:
            await server.emit("shout", msg, to=room, skip=session.id)
            return True

        @server.on("please_call")
        async def please_call(session: eventsock.Session, x: Any) -> Any:
            return await session.call("question", x, timeout=5)

        @server.on("provoke")
        async def provoke(session: eventsock.Session) -> bool:
            await session.emit("explode")
            return True

        @server.on("kick_me")
        async def kick_me(session: eventsock.Session) -> None:
            await session.disconnect()

        @server.on("find")
        def find(session: eventsock.Session, user_id: int) -> dict[str, Any]:
            if user_id != 1:
                raise eventsock.RemoteError(
                    f"no user {user_id}", code="not_found", data={"id": user_id}
                )
            return {"id": 1, "name": "alice"}

        @server.on("boom")
        def boom(session: eventsock.Session, *args: Any) -> None:
            self.handler_errors += 1
            raise RuntimeError("boom (raised on purpose by the reference app)")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ReferenceServer:
        self.port = await self.server.start("127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.server.shutdown()
