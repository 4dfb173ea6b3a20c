"""A tour of eventsock in one process: a server and two clients on 127.0.0.1.

Shows an event, an ack (a call that returns a value), a room broadcast and a binary
payload, then disconnects and shuts down. Run it with ``eventsock demo`` or
``python examples/demo.py``.
"""

from __future__ import annotations

import asyncio

import eventsock

# Every wait below is bounded: a broken demo fails within seconds instead of hanging.
TIMEOUT = 5.0


def create_server(left: asyncio.Future[str]) -> eventsock.Server:
    """The demo server; ``left`` receives the reason of the first disconnect."""
    server = eventsock.Server()

    @server.on("hello")
    async def hello(session: eventsock.Session, name: str) -> None:
        # A plain event: nothing is returned to the sender, but we answer with an event.
        await session.emit("welcome", f"hello, {name}!")

    @server.on("add")
    def add(session: eventsock.Session, a: int, b: int) -> int:
        # The return value is the ack: client.call("add", 2, 3) gets 5.
        return a + b

    @server.on("join")
    async def join(session: eventsock.Session, room: str) -> bool:
        await session.enter_room(room)
        return True

    @server.on("shout")
    async def shout(session: eventsock.Session, room: str, text: str) -> bool:
        # Everyone in the room except the sender.
        await server.emit("shout", text, to=room, skip=session.id)
        return True

    @server.on("echo")
    def echo(session: eventsock.Session, data: bytes) -> bytes:
        return data

    @server.on("disconnect")
    def disconnect(session: eventsock.Session, reason: str) -> None:
        if not left.done():
            left.set_result(reason)

    return server


async def main() -> None:
    loop = asyncio.get_running_loop()
    left: asyncio.Future[str] = loop.create_future()
    server = create_server(left)
    port = await server.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}"
    print(f"server listening on {url}")

    alice, bob = eventsock.Client(), eventsock.Client()
    welcome: asyncio.Future[str] = loop.create_future()
    bob_heard: asyncio.Future[str] = loop.create_future()
    alice_heard: list[str] = []

    @alice.on("welcome")
    def on_welcome(text: str) -> None:
        welcome.set_result(text)

    @alice.on("shout")
    def alice_on_shout(text: str) -> None:
        alice_heard.append(text)

    @bob.on("shout")
    def bob_on_shout(text: str) -> None:
        bob_heard.set_result(text)

    try:
        await alice.connect(url, timeout=TIMEOUT)
        await bob.connect(url, timeout=TIMEOUT)
        print(f"alice connected as {alice.sid}, bob as {bob.sid}")

        # 1. An event, answered by an event.
        await alice.emit("hello", "alice")
        print(f"event: alice got welcome: {await asyncio.wait_for(welcome, TIMEOUT)!r}")

        # 2. An ack: call() returns what the server's handler returned.
        total = await alice.call("add", 2, 3, timeout=TIMEOUT)
        print(f"ack: add(2, 3) = {total}")

        # 3. A room broadcast that skips the sender.
        await alice.call("join", "lobby", timeout=TIMEOUT)
        await bob.call("join", "lobby", timeout=TIMEOUT)
        await alice.call("shout", "lobby", "anyone here?", timeout=TIMEOUT)
        print(f"room: bob heard {await asyncio.wait_for(bob_heard, TIMEOUT)!r}")
        # The server acks the shout after broadcasting it, and alice's sync handlers run
        # in arrival order, so had she been sent the shout she would have it by now.
        print(f"room: alice heard {len(alice_heard)} shout(s) (the sender is skipped)")

        # 4. Binary payloads travel as msgpack bin values, no base64, no attachments.
        payload = bytes(range(256)) * 64
        echoed = await bob.call("echo", payload, timeout=TIMEOUT)
        print(f"binary: sent {len(payload)} bytes, got {len(echoed)} back")
        print(f"binary: equal: {echoed == payload}")

        # 5. Leaving: the server's disconnect handler gets the reason.
        await alice.disconnect()
        print(f"disconnect: the server saw {await asyncio.wait_for(left, TIMEOUT)!r}")
    finally:
        # disconnect() is safe to call twice; shutdown() closes whatever is left.
        await alice.disconnect()
        await bob.disconnect()
        await server.shutdown()
    print("done")


if __name__ == "__main__":
    asyncio.run(main())
