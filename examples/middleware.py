"""Middleware and error handling: authentication at connect, event middleware both
ways, an error handler, and per-event limits. One process:
``python examples/middleware.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import eventsock

TOKENS = {"t-ada": "ada"}


# --8<-- [start:server]
def create_server() -> eventsock.Server:
    server = eventsock.Server()

    @server.use  # before every connect handler, in the order registered
    def authenticate(session: eventsock.Session, auth: dict[str, Any]) -> None:
        user = TOKENS.get(auth.get("token", ""))
        if user is None:
            raise eventsock.ConnectionRefused("unknown token", data={"login": "/login"})
        session.data["user"] = user  # for every handler of this session

    @server.incoming  # every event that arrives, before its handler
    def no_empty_messages(
        session: eventsock.Session, event: str, args: tuple[Any, ...]
    ) -> tuple[Any, ...] | None:
        if event == "say" and not str(args[0]).strip():
            raise eventsock.InvalidArguments("say something")
        return None  # pass the arguments on unchanged

    @server.outgoing  # every event this server sends
    def stamp(event: str, args: tuple[Any, ...], namespace: str) -> tuple[Any, ...]:
        return (*args, round(time.time()))

    class StoreDown(Exception):
        pass

    @server.on_error  # whenever a handler raises
    def unavailable(exc: Exception, session: eventsock.Session, event: str) -> Any:
        if isinstance(exc, StoreDown):
            return eventsock.RemoteError("try again later", code="unavailable")
        return None  # the usual answer: internal_error

    @server.on("say", max_payload=1_000)  # larger messages are refused unread
    async def say(session: eventsock.Session, text: str) -> str:
        await session.emit("said", f"{session.data['user']}: {text}")
        return "ok"

    @server.on("save", concurrency=2)  # at most two saves at once
    async def save(session: eventsock.Session, text: str) -> None:
        raise StoreDown

    return server
    # --8<-- [end:server]


async def main() -> None:
    server = create_server()
    port = await server.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}"
    try:
        # --8<-- [start:client]
        try:
            async with eventsock.Client() as stranger:
                await stranger.connect(url, auth={"token": "nope"})
        except eventsock.ConnectionRefused as exc:
            print("refused:", exc.message, exc.data)

        async with eventsock.Client() as client:
            heard: asyncio.Queue[str] = asyncio.Queue()
            client.on("said", lambda line, stamp: heard.put_nowait(line))
            await client.connect(url, auth={"token": "t-ada"})
            print("say:", await client.call("say", "hello"), "/", await heard.get())
            for text, event in (("   ", "say"), ("x" * 2_000, "say"), ("draft", "save")):
                try:
                    await client.call(event, text)
                except eventsock.RemoteError as exc:
                    print(f"{event}: {exc.code}")
        # --8<-- [end:client]
    finally:
        await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
