"""``eventsock serve``: one worker, and several workers on one port sharing Redis."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import eventsock
from eventsock.cli import load_server

from .helpers import Recorder

pytestmark = pytest.mark.timeout(60)

SERVING = re.compile(r"serving (\S+) on (http://[\d.]+:\d+)/socket\.io/ \(pid (\d+), node (\S+)\)")


@asynccontextmanager
async def serve(*options: str, workers: int = 1) -> AsyncIterator[tuple[str, list[str]]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "eventsock",
        "serve",
        "tests.cluster_app:server",
        "--port",
        "0",
        "--workers",
        str(workers),
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        urls, nodes = set(), []
        for _ in range(workers):
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            match = SERVING.search(line)
            assert match, line
            urls.add(match.group(2))
            nodes.append(match.group(4))
        assert len(urls) == 1  # every worker on the same port
        if workers > 1:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert f"{workers} workers on port" in line
        yield urls.pop(), nodes
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_one_worker_serves_and_stops_on_sigterm() -> None:
    async with serve() as (url, nodes), eventsock.Client(reconnection=False) as client:
        await client.connect(url, timeout=5)
        assert await client.call("whoami") == nodes[0]


async def test_two_workers_share_one_port_and_their_rooms() -> None:
    prefix = f"test-cli-{uuid.uuid4().hex[:8]}"
    clients: list[eventsock.Client] = []
    inboxes: list[Recorder] = []
    seen: dict[str, int] = {}
    reasons: asyncio.Queue[str] = asyncio.Queue()
    try:
        options = ("--redis", "redis://127.0.0.1:6379/0", "--prefix", prefix)
        async with serve(*options, workers=2) as (url, nodes):
            # the kernel spreads connections over the workers: connect until both served
            for _ in range(40):
                client = eventsock.Client(reconnection=False)
                inbox = Recorder()
                client.on("news", inbox)
                client.on("disconnect", reasons.put_nowait)
                clients.append(client)
                inboxes.append(inbox)
                await client.connect(url, timeout=5)
                node = await client.call("whoami")
                seen[node] = seen.get(node, 0) + 1
                assert await client.call("join", "everyone") is True
                if len(seen) == 2 and len(clients) >= 4:
                    break
            assert set(seen) == set(nodes), f"connections reached only {seen}"
            # one worker broadcasts to a room spanning both
            assert await clients[0].call("broadcast", "everyone", "hello all") is True
            for inbox in inboxes:
                assert await inbox.wait(1) == [("hello all",)]
        # leaving the block sent SIGTERM: every worker shut down cleanly
        for _ in clients:
            assert await asyncio.wait_for(reasons.get(), 10) == "transport close"
    finally:
        for client in clients:
            await client.disconnect()


def test_load_server_errors() -> None:
    assert isinstance(load_server("tests.cluster_app:server"), eventsock.Server)
    with pytest.raises(SystemExit, match="module:attribute"):
        load_server("tests.cluster_app")
    with pytest.raises(SystemExit, match="cannot import"):
        load_server("no_such_module_here:server")
    with pytest.raises(SystemExit, match="no attribute"):
        load_server("tests.cluster_app:nothing")
    with pytest.raises(SystemExit, match=r"not an eventsock\.Server"):
        load_server("tests.cluster_app:whoami")


async def test_a_killed_node_vanishes_from_cluster_queries() -> None:
    import time

    from eventsock.backends.redis import RedisBackend

    prefix = f"test-kill-{uuid.uuid4().hex[:8]}"
    local = eventsock.Server(backend=RedisBackend("redis://127.0.0.1:6379/0", prefix=prefix))
    await local.start("127.0.0.1", 0)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eventsock",
        "serve",
        "tests.cluster_app:server",
        "--port",
        "0",
        "--redis",
        "redis://127.0.0.1:6379/0",
        "--prefix",
        prefix,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    client = eventsock.Client(reconnection=False)
    try:
        assert proc.stdout is not None
        match = SERVING.search((await asyncio.wait_for(proc.stdout.readline(), 20)).decode())
        assert match
        await client.connect(match.group(2), timeout=5)
        assert await client.call("join", "room") is True
        infos = await local.fetch_sessions("room", timeout=5)
        assert [info.node for info in infos] == [match.group(4)]

        proc.kill()  # no shutdown, no goodbye: the process is gone
        await proc.wait()
        begin = time.monotonic()
        assert await local.fetch_sessions("room", timeout=2) == []
        assert time.monotonic() - begin < 2.5  # bounded by the query timeout at worst
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await client.disconnect()
        await local.shutdown()
