"""Typed RPC: annotated handlers, dataclass results, error answers, typed calls.

A server and a client in one process: ``python examples/rpc/typed.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses

import eventsock


# --8<-- [start:types]
@dataclasses.dataclass
class NewUser:
    name: str
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class User:
    id: int
    name: str
    tags: list[str]
    # --8<-- [end:types]


# --8<-- [start:server]
def create_server() -> eventsock.Server:
    server = eventsock.Server()
    users: dict[int, User] = {}

    @server.on("create_user")
    def create_user(session: eventsock.Session, new: NewUser) -> User:
        # `new` arrived as a map and is a NewUser here, checked field by field
        user = User(len(users) + 1, new.name, new.tags)
        users[user.id] = user
        return user  # sent as a map

    @server.on("get_user")
    def get_user(session: eventsock.Session, user_id: int) -> User:
        if user_id not in users:
            raise eventsock.RemoteError(f"no user {user_id}", code="not_found", data=user_id)
        return users[user_id]

    return server
    # --8<-- [end:server]


async def main() -> None:
    server = create_server()
    port = await server.start("127.0.0.1", 0)
    try:
        async with eventsock.Client() as client:
            await client.connect(f"http://127.0.0.1:{port}")
            # --8<-- [start:calls]
            created = await client.call("create_user", {"name": "ada", "tags": ["admin"]})
            print("created:", created)  # a plain map, as any Socket.IO client sees it
            user = await client.call("get_user", created["id"], result=User)
            print("fetched:", user)  # checked and converted: a User
            try:
                await client.call("get_user", "1")  # a string where an int is expected
            except eventsock.InvalidArguments as exc:
                print("refused:", exc.message)
            try:
                await client.call("get_user", 99)
            except eventsock.RemoteError as exc:
                print("error:", exc.code, exc.message, exc.data)
            # --8<-- [end:calls]
    finally:
        await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
