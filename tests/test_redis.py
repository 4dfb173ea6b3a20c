"""The Redis backend, against the real Redis server on 127.0.0.1:6379 (and, for the
fault tests, a second redis-server the test starts on its own port)."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis

import eventsock
from eventsock import Session
from eventsock.backends.redis import RedisBackend, RedisEmitter
from eventsock.cluster import EmitEnvelope, encode_envelope

from .helpers import Recorder

pytestmark = pytest.mark.timeout(60)

REDIS_URL = "redis://127.0.0.1:6379/0"


def new_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


class Node:
    """A server node with its URL and a log of what its handlers saw."""

    def __init__(self, prefix: str, url: str = REDIS_URL) -> None:
        self.server = eventsock.Server(backend=RedisBackend(url, prefix=prefix))
        self.url = ""
        self.joined: asyncio.Queue[Session] = asyncio.Queue()
        self.left: asyncio.Queue[str] = asyncio.Queue()
        server = self.server

        @server.on("connect")
        async def connect(session: Session, auth: dict[str, Any]) -> None:
            session.data["name"] = auth.get("name")
            for room in auth.get("rooms", ()):
                await session.enter_room(room)
            self.joined.put_nowait(session)

        @server.on("disconnect")
        def disconnect(session: Session, reason: str) -> None:
            self.left.put_nowait(reason)

        server.on("echo", lambda s, *args: args)

    async def start(self) -> None:
        self.url = f"http://127.0.0.1:{await self.server.start('127.0.0.1', 0)}"


class Peer:
    """An eventsock client that records every event it gets."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.client = eventsock.Client(reconnection=False)
        self.inbox = Recorder()
        self.client.on("*", lambda event, *args: self.inbox(event, *args))
        self.client.on("question", lambda x: f"{name} answers {x}")

    async def connect(self, node: Node, *rooms: str) -> str:
        await self.client.connect(
            node.url, auth={"name": self.name, "rooms": list(rooms)}, timeout=5
        )
        await asyncio.wait_for(node.joined.get(), 5)
        assert self.client.sid is not None
        return self.client.sid

    async def sync(self, node: Node) -> None:
        """A round trip to its node: what was sent to it before has arrived."""
        assert await self.client.call("echo", "sync", timeout=5) == "sync"


@asynccontextmanager
async def cluster(count: int, url: str = REDIS_URL) -> AsyncIterator[list[Node]]:
    prefix = new_prefix()
    nodes = [Node(prefix, url) for _ in range(count)]
    try:
        for node in nodes:
            await node.start()
        yield nodes
    finally:
        for node in nodes:
            await node.server.shutdown()


@asynccontextmanager
async def peers(*pairs: tuple[str, Node, tuple[str, ...]]) -> AsyncIterator[dict[str, Peer]]:
    made: dict[str, Peer] = {}
    try:
        for name, node, rooms in pairs:
            made[name] = Peer(name)
            await made[name].connect(node, *rooms)
        yield made
    finally:
        for peer in made.values():
            await peer.client.disconnect()


def events(peer: Peer, name: str) -> list[tuple[Any, ...]]:
    return [call[1:] for call in peer.inbox.calls if call[0] == name]


async def test_emit_across_nodes_to_namespace_room_sid_with_skip(no_leaks: None) -> None:
    async with (
        cluster(3) as (a, b, c),
        peers(("ann", a, ("red",)), ("bob", b, ("red",)), ("cid", c, ("blue",))) as p,
    ):
        ann_sid, bob_sid = p["ann"].client.sid, p["bob"].client.sid
        await a.server.emit("all", 1)
        await b.server.emit("red", b"\x00\xff", {"k": [1, 2.5]}, to="red")
        await c.server.emit("to-ann", "direct", to=ann_sid)
        await a.server.emit("not-bob", to="red", skip=bob_sid)
        for name, count in (("ann", 4), ("bob", 2), ("cid", 1)):
            await p[name].inbox.wait(count)
        for name, node in (("ann", a), ("bob", b), ("cid", c)):
            await p[name].sync(node)
        # events from different nodes are not ordered with each other
        assert sorted(p["ann"].inbox.calls, key=repr) == sorted(
            [("all", 1), ("red", b"\x00\xff", {"k": [1, 2.5]}), ("to-ann", "direct"), ("not-bob",)],
            key=repr,
        )
        assert sorted(p["bob"].inbox.calls, key=repr) == sorted(
            [("all", 1), ("red", b"\x00\xff", {"k": [1, 2.5]})], key=repr
        )
        assert p["cid"].inbox.calls == [("all", 1)]


async def test_room_operations_reach_sessions_on_any_node(no_leaks: None) -> None:
    async with (
        cluster(2) as (a, b),
        peers(("ann", a, ("red",)), ("bob", b, ("red",)), ("cid", b, ())) as p,
    ):
        bob_sid = p["bob"].client.sid
        assert bob_sid is not None
        # sessions in "red", on both nodes, join "green"
        await a.server.enter_room("red", "green")
        await a.server.emit("to-green", to="green")
        await p["ann"].inbox.wait(1)
        await p["bob"].inbox.wait(1)
        assert await a.server.fetch_rooms(bob_sid) == {bob_sid, "red", "green"}
        # one session on the other node leaves it
        await a.server.leave_room(bob_sid, "green")
        assert await a.server.fetch_rooms(bob_sid) == {bob_sid, "red"}
        # closing a room empties it everywhere
        await b.server.close_room("red")
        assert await a.server.fetch_sessions("red") == []
        # disconnecting the sessions in a room, across nodes
        await a.server.enter_room(bob_sid, "doomed")
        await a.server.disconnect("doomed")
        assert await asyncio.wait_for(b.left.get(), 5) == "server disconnect"
        await asyncio.wait_for(p["bob"].client.wait(), 5)
        names = sorted(info.data["name"] for info in await a.server.fetch_sessions())  # type: ignore[index]
        assert names == ["ann", "cid"]


async def test_calls_across_nodes(no_leaks: None) -> None:
    async with (
        cluster(3) as (a, b, c),
        peers(
            ("ann", a, ("team",)), ("bob", b, ("team",)), ("cid", c, ("team",)), ("dan", c, ())
        ) as p,
    ):
        bob_sid = p["bob"].client.sid
        assert bob_sid is not None
        assert await a.server.call("question", 1, to=bob_sid, timeout=5) == "bob answers 1"
        with pytest.raises(eventsock.NotConnected):
            await a.server.call("question", 1, to="nobody", timeout=5)
        answers = await a.server.call_room("question", 2, to="team", timeout=5)
        assert answers == {
            p[name].client.sid: f"{name} answers 2" for name in ("ann", "bob", "cid")
        }

        # a slow recipient is left out; the others arrive within the timeout
        gate = asyncio.Event()

        @p["cid"].client.on("question")
        async def slow(x: Any) -> str:
            await gate.wait()
            return "too late"

        begin = time.monotonic()
        answers = await b.server.call_room("question", 3, to="team", timeout=0.5)
        assert time.monotonic() - begin < 2
        assert set(answers) == {p["ann"].client.sid, p["bob"].client.sid}
        gate.set()


async def test_cluster_wide_queries_with_data(no_leaks: None) -> None:
    async with cluster(2) as (a, b), peers(("ann", a, ("red",)), ("bob", b, ("red", "blue"))) as p:
        infos = await a.server.fetch_sessions("red")
        by_name = {info.data["name"]: info for info in infos if info.data}
        assert set(by_name) == {"ann", "bob"}
        bob = by_name["bob"]
        assert bob.id == p["bob"].client.sid
        assert bob.rooms == {bob.id, "red", "blue"}
        assert bob.node == b.server.node_id
        assert by_name["ann"].node == a.server.node_id
        assert len(await b.server.fetch_sessions()) == 2
        assert await a.server.fetch_rooms("no-such-sid") == frozenset()


async def test_server_to_server_events(no_leaks: None) -> None:
    async with cluster(3) as (a, b, c):
        got = Recorder()
        for node in (b, c):
            node.server.cluster_on("ping", lambda x, n=node: (got(n.server.node_id, x), "pong")[1])

        @c.server.cluster_on("double")
        async def double(x: int) -> int:
            return x * 2

        await a.server.cluster_emit("ping", "hello")
        assert sorted(node for node, _ in await got.wait(2)) == sorted(
            [b.server.node_id, c.server.node_id]
        )
        assert sorted(await a.server.cluster_call("ping", "again", timeout=5)) == ["pong", "pong"]
        # b has no "double" handler: it answers with nothing, c with its value
        assert await a.server.cluster_call("double", 21, timeout=5) == [42]


async def test_external_emitter(no_leaks: None) -> None:
    async with cluster(2) as (a, b), peers(("ann", a, ("ops",)), ("bob", b, ())) as p:
        prefix = a.server.backend.prefix  # type: ignore[attr-defined]
        async with RedisEmitter(REDIS_URL, prefix=prefix) as emitter:
            reached = await emitter.emit("notice", "backup done", b"\x01", to="ops")
            assert reached == 2
            await emitter.emit("everyone", 1)
        await p["ann"].inbox.wait(2)
        await p["bob"].inbox.wait(1)
        assert events(p["ann"], "notice") == [("backup done", b"\x01")]
        assert events(p["bob"], "notice") == []


async def test_bad_envelopes_are_ignored_with_a_warning(
    no_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    async with cluster(2) as (a, b), peers(("bob", b, ())) as p:
        backend = a.server.backend
        assert isinstance(backend, RedisBackend)
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            await client.publish(backend.all_channel, b"\xc1 not msgpack")
            await client.publish(backend.all_channel, b"\x81\xa1v\x63")  # {"v": 99}
            envelope = encode_envelope("x", EmitEnvelope("/", "e", (), None, ()))
            await client.publish(backend.all_channel, envelope.replace(b"\xa1v\x01", b"\xa1v\x02"))
        finally:
            await client.aclose()
        await a.server.emit("after", "fine")
        await p["bob"].inbox.wait(1)
        assert p["bob"].inbox.calls == [("after", "fine")]
    assert "ignored a cluster envelope: invalid msgpack" in caplog.text
    assert "envelope version 99 is not 1" in caplog.text
    assert "envelope version 2 is not 1" in caplog.text


async def test_a_node_does_not_deliver_its_own_publication_twice(no_leaks: None) -> None:
    async with cluster(2) as (a, _b), peers(("ann", a, ("red",))) as p:
        await a.server.emit("once", to="red")
        await a.server.emit("once", to="red")
        await p["ann"].inbox.wait(2)
        await p["ann"].sync(a)
        await a.server.cluster_emit("noop")  # one more trip through Redis
        await p["ann"].sync(a)
        assert p["ann"].inbox.calls == [("once",), ("once",)]


async def test_a_node_that_leaves_vanishes_from_queries(no_leaks: None) -> None:
    async with cluster(3) as (a, _b, c), peers(("ann", a, ()), ("cid", c, ())):
        assert len(await a.server.fetch_sessions()) == 2
        await c.server.backend.stop()  # c drops out of the cluster (as a dead process does)
        begin = time.monotonic()
        infos = await a.server.fetch_sessions(timeout=2)
        assert [info.data["name"] for info in infos if info.data] == ["ann"]
        # it did not wait for c: every node that got the query answered
        assert time.monotonic() - begin < 1.0


# -- faults: Redis restarting ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (CI installs it)")
        self.proc = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # redis-server says when it accepts connections: wait for that line, bounded
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        deadline = time.monotonic() + 10
        seen = b""
        while b"Ready to accept connections" not in seen:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([stdout], [], [], max(0.0, remaining))
            if not readable:
                pytest.fail(f"redis-server not ready within 10 s: {seen[-500:]!r}")
            # os.read, not readline: a buffered reader could hold the ready line in
            # its buffer while select() sees nothing left on the pipe
            chunk = os.read(stdout.fileno(), 65536)
            if not chunk:
                pytest.fail(f"redis-server exited ({self.proc.wait()}): {seen[-500:]!r}")
            seen += chunk
        # keep reading its log so that the pipe never fills up
        self.drain = threading.Thread(target=stdout.read, daemon=True)
        self.drain.start()

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        if self.drain is not None:
            self.drain.join(10)  # the pipe ends with the process
            self.drain = None
        if proc.stdout is not None:
            proc.stdout.close()
        self.proc = None


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    redis_server = RedisProcess()
    redis_server.start()
    try:
        yield redis_server
    finally:
        redis_server.stop()


async def test_redis_restart(private_redis: RedisProcess, caplog: pytest.LogCaptureFixture) -> None:
    async with (
        cluster(2, private_redis.url) as (a, b),
        peers(("ann", a, ("red",)), ("bob", b, ("red",))) as p,
    ):
        await a.server.emit("before", to="red")
        await p["bob"].inbox.wait(1)

        backend_a = a.server.backend
        backend_b = b.server.backend
        assert isinstance(backend_a, RedisBackend)
        assert isinstance(backend_b, RedisBackend)
        bob_sid = p["bob"].client.sid
        assert bob_sid is not None
        private_redis.stop()
        # local sessions are still served
        await a.server.emit("during", to="red")
        await p["ann"].inbox.wait(2)
        assert await p["ann"].client.call("echo", "local") == "local"
        await backend_a.flush()
        assert backend_a.lost == 1  # the publication for b's sessions is lost, and counted
        # what needs the other nodes says so, instead of guessing
        with pytest.raises(eventsock.ClusterUnavailable):
            await a.server.call("question", 1, to=bob_sid, timeout=2)
        names = [i.data["name"] for i in await a.server.fetch_sessions(timeout=1) if i.data]
        assert names == ["ann"]  # this node's part only, with a warning

        private_redis.start()
        assert await backend_a.wait_subscribed(10)
        assert await backend_b.wait_subscribed(10)
        # b published nothing during the outage: its first publication must still work
        await b.server.emit("after-b", to="red")
        await p["ann"].inbox.wait(3)
        assert await b.server.call("question", 2, to=p["ann"].client.sid or "", timeout=5) == (
            "ann answers 2"
        )
        await a.server.emit("after", to="red")
        await p["bob"].inbox.wait(3)
        assert sorted(c[0] for c in p["bob"].inbox.calls) == ["after", "after-b", "before"]
        assert sorted(c[0] for c in p["ann"].inbox.calls) == [
            "after",
            "after-b",
            "before",
            "during",
        ]
        assert backend_b.lost == 0
    assert "Redis connection lost" in caplog.text
    assert "1 envelope(s) could not be published meanwhile" in caplog.text
    assert "answering for this node only" in caplog.text


async def test_cluster_call_argument_errors(no_leaks: None) -> None:
    async with cluster(2) as (a, b), peers(("ann", a, ("red",)), ("bob", b, ("red",))) as p:
        with pytest.raises(eventsock.EncodeError):
            await a.server.call_room("question", object(), to="red")
        with pytest.raises(ValueError, match="reserved"):
            await a.server.call("connect", to=p["bob"].client.sid or "")
        # nothing was sent to anyone
        await p["ann"].sync(a)
        await p["bob"].sync(b)
        assert p["ann"].inbox.calls == []
        assert p["bob"].inbox.calls == []
