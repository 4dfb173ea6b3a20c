"""A cluster of two server nodes sharing their sessions through Redis, in one process.

Two servers, each with its own RedisBackend, form one cluster. A client on each node
joins the same room; node a broadcasts to the room, calls the client held by node b,
lists the room's sessions on every node and asks the other server a question; then a
RedisEmitter, as a worker process would, emits to the room.
Run it with ``python examples/cluster.py [redis-url]`` (``redis://127.0.0.1:6379/0`` by
default). Each run uses its own random channel prefix, so runs never see each other.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import eventsock
from eventsock.backends.redis import RedisBackend, RedisEmitter

# Every wait below is bounded: a broken example fails within seconds instead of hanging.
TIMEOUT = 5.0


def create_node(name: str, url: str, prefix: str) -> eventsock.Server:
    """A server node called ``name``; nodes with the same ``prefix`` form one cluster."""
    # --8<-- [start:node]
    # Redis that cannot be reached is given 2 s here (5 by default), then the server
    # starts anyway, serving its own sessions and trying again in the background.
    server = eventsock.Server(backend=RedisBackend(url, prefix=prefix, connect_timeout=2.0))

    @server.on("connect")
    def connect(session: eventsock.Session, auth: dict[str, Any]) -> None:
        session.data["name"] = auth["name"]

    @server.on("join")
    async def join(session: eventsock.Session, room: str) -> bool:
        await session.enter_room(room)
        return True

    # --8<-- [end:node]

    # --8<-- [start:cluster_on]
    # Answers the other servers' cluster_call("load") (and ignores this node's own).
    @server.cluster_on("load")
    def load() -> dict[str, Any]:
        return {"node": name, "sessions": server.session_count}

    # --8<-- [end:cluster_on]

    return server


def create_client(name: str, inbox: asyncio.Queue[str]) -> eventsock.Client:
    """A client that puts the ``news`` it gets in ``inbox`` and answers ``add`` calls."""
    client = eventsock.Client(reconnection=False)

    @client.on("news")
    def news(text: str) -> None:
        inbox.put_nowait(text)

    @client.on("add")
    def add(a: int, b: int) -> str:
        return f"{name} says {a + b}"

    return client


async def news_for(*inboxes: asyncio.Queue[str]) -> list[str]:
    """The next news item of each inbox, waiting for each at most TIMEOUT seconds."""
    return [await asyncio.wait_for(inbox.get(), TIMEOUT) for inbox in inboxes]


async def main(url: str) -> int:
    prefix = f"example-{uuid.uuid4().hex[:12]}"
    a, b = create_node("a", url, prefix), create_node("b", url, prefix)
    node_names = {a.node_id: "a", b.node_id: "b"}
    ann_inbox: asyncio.Queue[str] = asyncio.Queue()
    bob_inbox: asyncio.Queue[str] = asyncio.Queue()
    ann, bob = create_client("ann", ann_inbox), create_client("bob", bob_inbox)
    try:
        urls = []
        for node in (a, b):
            urls.append(f"http://127.0.0.1:{await node.start('127.0.0.1', 0)}")
            # A node that could not subscribe in time serves its own sessions only.
            if not (isinstance(node.backend, RedisBackend) and node.backend.subscribed):
                print(f"cannot reach Redis at {url}", file=sys.stderr)
                return 1
        print("nodes a and b started, one cluster")

        # ann is served by node a, bob by node b; both join the room "lobby"
        await ann.connect(urls[0], auth={"name": "ann"}, timeout=TIMEOUT)
        await bob.connect(urls[1], auth={"name": "bob"}, timeout=TIMEOUT)
        for client in (ann, bob):
            await client.call("join", "lobby", timeout=TIMEOUT)
        bob_sid = bob.sid
        assert bob_sid is not None

        # --8<-- [start:broadcast]
        # On node a: reaches the sessions in "lobby" on every node, bob's on b included.
        await a.emit("news", "hello from node a", to="lobby")
        # --8<-- [end:broadcast]
        ann_got, bob_got = await news_for(ann_inbox, bob_inbox)
        print(f"broadcast from node a: ann got {ann_got!r}, bob got {bob_got!r}")

        # --8<-- [start:call]
        # On node a: bob's session is held by node b, which forwards the call and its ack.
        answer = await a.call("add", 2, 3, to=bob_sid, timeout=TIMEOUT)
        # --8<-- [end:call]
        print(f"node a called bob on node b: {answer!r}")

        # --8<-- [start:fetch]
        # On node a: every node answers with its sessions in "lobby", rooms and data.
        sessions = await a.fetch_sessions("lobby", timeout=TIMEOUT)
        # --8<-- [end:fetch]
        # (data is None for a session whose data could not travel between nodes)
        names = [((info.data or {}).get("name"), node_names[info.node]) for info in sessions]
        seen = sorted(f"{name} on node {node}" for name, node in names)
        print(f"lobby, as node a sees it: {', '.join(seen)}")

        # --8<-- [start:cluster_call]
        # On node a: the answers of the other nodes (node b only here) within the timeout.
        loads = await a.cluster_call("load", timeout=TIMEOUT)
        # --8<-- [end:cluster_call]
        print(f"node a asked the other nodes for their load: {loads}")

        # --8<-- [start:emitter]
        # Anywhere, even in a process that is not a server: same URL, same prefix.
        async with RedisEmitter(url, prefix=prefix) as emitter:
            reached = await emitter.emit("news", "hello from a worker", to="lobby")
        # --8<-- [end:emitter]
        ann_got, bob_got = await news_for(ann_inbox, bob_inbox)
        print(f"the emitter reached {reached} nodes: ann got {ann_got!r}, bob got {bob_got!r}")
    finally:
        for client in (ann, bob):
            await client.disconnect()
        for node in (a, b):
            await node.shutdown()
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0")))
