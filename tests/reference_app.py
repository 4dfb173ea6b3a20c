"""The reference app every interop test runs against, in eventsock.

The Node server (tests/node/server.js) and the python-socketio server in the interop
tests implement the same events with the same meaning; see tests/node/README.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import eventsock

from .helpers import suspend_once

SECRET = "secret"


class ReferenceServer:
    """An eventsock server running the reference app, with what it observed."""

    def __init__(self, **options: Any) -> None:
        self.server = server = eventsock.Server(**options)
        self.disconnects: asyncio.Queue[str] = asyncio.Queue()
        self.streams_closed: asyncio.Queue[int] = asyncio.Queue()
        self.handler_errors = 0
        self.port = 0

        @server.use  # connection middleware: what a connect handler could do, earlier
        def authenticate(session: eventsock.Session, auth: dict[str, Any]) -> None:
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

        @server.incoming  # event middleware: rejects one event before any handler
        def guard(session: eventsock.Session, event: str, args: tuple[Any, ...]) -> None:
            if event == "forbidden":
                raise eventsock.RemoteError("not for you", code="forbidden")

        @server.on("typed_add")
        def typed_add(session: eventsock.Session, a: int, b: int) -> int:
            return a + b

        @server.on("small", max_payload=64)
        def small(session: eventsock.Session, text: str) -> int:
            return len(text)

        class Unavailable(Exception):
            pass

        @server.on("flaky")
        def flaky(session: eventsock.Session) -> None:
            raise Unavailable

        @server.on_error
        def translate(exc: Exception, session: eventsock.Session, event: str) -> Any:
            if isinstance(exc, Unavailable):
                return eventsock.RemoteError("try again later", code="unavailable")
            return None

        @server.stream("count")
        async def count(session: eventsock.Session, n: int) -> AsyncIterator[int]:
            for i in range(n):
                yield i

        @server.stream("endless")
        async def endless(session: eventsock.Session) -> AsyncIterator[int]:
            i = 0
            try:
                while True:
                    yield i
                    i += 1
                    await suspend_once()  # lets the consumer's credit arrive
            finally:
                self.streams_closed.put_nowait(i)

        @server.stream("broken")
        async def broken(session: eventsock.Session) -> AsyncIterator[int]:
            yield 1
            raise eventsock.RemoteError("feed lost", code="feed_lost")

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
