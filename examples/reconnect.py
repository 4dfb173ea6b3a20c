"""Reconnection and connection state recovery in one process.

A server with recovery on streams numbered events to a room, and restarts in the middle
of the stream, on the same port, while it keeps emitting. The client reconnects by
itself, gets its session back (same id, same room) and receives every event exactly
once, in order. Of what it emits while offline, the ordinary event reaches the server
after the reconnection and the volatile one is dropped.
Run it with ``python examples/reconnect.py``.
"""

from __future__ import annotations

import asyncio

import eventsock

# Every wait below is bounded: a broken example fails within seconds instead of hanging.
TIMEOUT = 5.0
# The numbered events, emitted before, during and after the restart.
BEFORE, DURING, AFTER = range(0, 5), range(5, 10), range(10, 15)


def create_server(notes: list[str]) -> eventsock.Server:
    """The server; ``notes`` collects the client's ``note`` events."""
    # --8<-- [start:server]
    # Sessions that drop are kept for 60 s, with their rooms, data and missed events.
    server = eventsock.Server(recovery=eventsock.Recovery(max_disconnection=60.0))

    @server.on("subscribe")
    async def subscribe(session: eventsock.Session, room: str) -> bool:
        await session.enter_room(room)
        session.data["room"] = room
        return True

    # --8<-- [end:server]

    @server.on("note")
    def note(session: eventsock.Session, text: str) -> None:
        notes.append(text)

    return server


async def main() -> None:
    loop = asyncio.get_running_loop()
    notes: list[str] = []
    server = create_server(notes)
    # Port 0 once; the restart below binds the same port again.
    port = await server.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}"
    print(f"server listening on {url}")

    # --8<-- [start:client]
    # Short delays for the example; the defaults are 1 s, doubling up to 5 s.
    client = eventsock.Client(reconnection_delay=0.1, reconnection_delay_max=0.5)
    received: list[int] = []
    counted = {n: asyncio.Event() for n in (5, 15)}  # set once n events have arrived
    lost: asyncio.Future[str] = loop.create_future()
    back: asyncio.Future[int] = loop.create_future()

    @client.on("tick")
    def tick(n: int) -> None:
        # The recovery offset the server appends is taken off: handlers never see it.
        received.append(n)
        if len(received) in counted:
            counted[len(received)].set()

    @client.on("disconnect")
    def disconnected(reason: str) -> None:
        if not lost.done():
            lost.set_result(reason)

    @client.on("reconnect")
    def reconnected(attempts: int) -> None:
        if not back.done():
            back.set_result(attempts)

    # --8<-- [end:client]

    try:
        await client.connect(url, timeout=TIMEOUT)
        await client.call("subscribe", "feed", timeout=TIMEOUT)
        sid = client.sid
        assert sid is not None

        for n in BEFORE:
            await server.emit("tick", n, to="feed")
        await asyncio.wait_for(counted[5].wait(), TIMEOUT)
        print(f"live: received {received}")

        # --8<-- [start:restart]
        # Restart the same Server object on the same port: the sessions end with
        # "server shutting down", which is recoverable, and the replay log survives.
        await server.shutdown()
        print(f"client lost the connection: {await asyncio.wait_for(lost, TIMEOUT)}")
        for n in DURING:  # nobody is connected: these go to the replay log only
            await server.emit("tick", n, to="feed")
        await client.emit("note", "written while offline")  # kept in the client's buffer
        await client.emit("note", "volatile", volatile=True)  # dropped, and counted
        print(
            f"offline: reconnecting={client.reconnecting}, "
            f"buffered={client.buffered}, dropped={client.dropped}"
        )
        await server.start("127.0.0.1", port)
        # --8<-- [end:restart]

        await asyncio.wait_for(back, TIMEOUT)
        # The missed events are replayed before the CONNECT reply, so they are here.
        print(f"reconnected: recovered={client.recovered}, same session id={client.sid == sid}")
        print(f"replayed: received {received[len(BEFORE) :]}")

        for n in AFTER:
            await server.emit("tick", n, to="feed")
        await asyncio.wait_for(counted[15].wait(), TIMEOUT)
        # One round trip more: had anything been sent twice, it would have arrived by now,
        # and the server has handled every note the client sent before this call.
        await client.call("subscribe", "feed", timeout=TIMEOUT)
        expected = [*BEFORE, *DURING, *AFTER]
        print(f"all {len(expected)} events, each exactly once, in order: {received == expected}")
        print(f"the server got the notes {notes}")

        session = server.get_session(sid)
        assert session is not None
        print(f"server side: recovered={session.recovered}, rooms={sorted(session.rooms - {sid})}")
        print(f"server side: data={session.data}")
    finally:
        await client.disconnect()
        await server.shutdown()
    print("done")


if __name__ == "__main__":
    asyncio.run(main())
