"""Runs every program in examples/ for real, each in its own Python process.

Servers are started with ``--port 0`` and the test reads the port from their
``listening on`` line; nothing sleeps, every wait is bounded, and every process started
here is killed in a ``finally`` if it is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

import eventsock

from .helpers import Recorder

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Per step; the examples finish in well under a second.
TIMEOUT = 15.0
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:([0-9]+))\n")
WHITEBOARD_BUILD = "cd examples/whiteboard && npm ci && npm run build"

Process = asyncio.subprocess.Process
F = TypeVar("F", bound=Callable[..., Any])

#: The examples some test below runs, filled in by @exercises at import time.
EXERCISED: set[str] = set()


def exercises(*names: str) -> Callable[[F], F]:
    """Record that the decorated test runs the named examples (paths under examples/)."""

    def mark(test: F) -> F:
        EXERCISED.update(names)
        return test

    return mark


async def spawn(name: str, *args: str, stdin: int = asyncio.subprocess.DEVNULL) -> Process:
    # -W error: a warning (an unclosed resource, a coroutine never awaited) fails the run.
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(EXAMPLES / name),
        *args,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )


async def reap(proc: Process) -> bytes:
    """Kill ``proc`` if it still runs and drain its pipes, so nothing is left open;
    returns what was left of its stderr."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it may have just exited
            proc.kill()
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    return err or b""


async def run(name: str, *args: str) -> tuple[int, str, str]:
    """Run an example to its end; returns its exit code, stdout and stderr."""
    proc = await spawn(name, *args)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        await reap(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@asynccontextmanager
async def serving(name: str, *args: str) -> AsyncIterator[tuple[Process, str]]:
    """Start a server example on an ephemeral port; yields the process and its URL."""
    proc = await spawn(name, "--port", "0", *args)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        match = LISTENING.fullmatch(line)
        if match is None:
            err = await reap(proc)
            pytest.fail(f"{name} printed {line!r}, exit code {proc.returncode}:\n{err.decode()}")
        assert int(match[2]) > 0
        yield proc, match[1]
    finally:
        await reap(proc)


async def stop(proc: Process, signum: signal.Signals) -> None:
    """Send ``signum`` and check the server exits 0 with nothing more to say."""
    proc.send_signal(signum)
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    assert out == b""
    assert err == b""


@exercises("file_transfer.py")
async def test_file_transfer_example() -> None:
    code, out, err = await run("file_transfer.py")
    assert code == 0, err
    assert err == ""
    lines = [line for line in out.replace("\r", "\n").splitlines() if line]
    total = 10 * 65536 + 123
    assert lines[0].startswith("upload   [")
    assert f"upload   [{'#' * 20}] {total}/{total} bytes" in lines
    assert any(line.startswith("server stored 655483 bytes, sha256 ") for line in lines)
    assert f"download [{'#' * 20}] {total}/{total} bytes" in lines
    assert lines[-1] == "same file back: True"


@exercises("live_feed.py")
async def test_live_feed_example() -> None:
    code, out, err = await run("live_feed.py")
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[:3] == ["client: 0 20.0", "client: 1 20.1", "client: 2 20.2"]
    match = re.fullmatch(r"server: feed for t1 closed after (\d+) readings", lines[3])
    assert match, lines
    # three taken, and the producer never more than the window (8) ahead
    assert 3 <= int(match.group(1)) <= 3 + 8
    assert len(lines) == 4


@exercises("middleware.py")
async def test_middleware_example() -> None:
    code, out, err = await run("middleware.py")
    assert code == 0, err
    assert err == ""
    assert out.splitlines() == [
        "refused: unknown token {'login': '/login'}",
        "say: ok / ada: hello",
        "say: invalid_arguments",
        "say: payload_too_large",
        "save: unavailable",
    ]


@exercises("rpc/typed.py")
async def test_typed_rpc_example() -> None:
    code, out, err = await run("rpc/typed.py")
    assert code == 0, err
    assert err == ""
    assert out.splitlines() == [
        "created: {'id': 1, 'name': 'ada', 'tags': ['admin']}",
        "fetched: User(id=1, name='ada', tags=['admin'])",
        "refused: argument 'user_id': expected int, got str",
        "error: not_found no user 99 99",
    ]


@exercises("binary.py")
async def test_binary_example() -> None:
    code, out, err = await run("binary.py")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        r"stored pattern.bin: 16384 bytes, head b'\x00\x01\x02\x03'",
        "same digest: True",
        "stored view: 8 bytes, a bytes",
    ]


@exercises("uvloop_server.py")
async def test_uvloop_example() -> None:
    code, out, err = await run("uvloop_server.py")
    assert code == 0, err
    assert err == ""
    assert out.splitlines() == ["echoed: {'on': 'uvloop'}"]


@exercises("demo.py")
async def test_demo() -> None:
    code, out, err = await run("demo.py")
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("server listening on http://127.0.0.1:")
    assert lines[2:] == [
        "event: alice got welcome: 'hello, alice!'",
        "ack: add(2, 3) = 5",
        "room: bob heard 'anyone here?'",
        "room: alice heard 0 shout(s) (the sender is skipped)",
        "binary: sent 16384 bytes, got 16384 back",
        "binary: equal: True",
        "disconnect: the server saw 'client disconnect'",
        "done",
    ]


@exercises("rpc/server.py", "rpc/client.py")
async def test_rpc_client_against_rpc_server() -> None:
    async with serving("rpc/server.py") as (server, url):
        code, out, err = await run("rpc/client.py", url)
        assert code == 0, err
        assert err == ""
        assert out.splitlines() == [
            "refused: a user name is required {'field': 'user'}",
            "add(2, 3) = 5.0",  # a: float, b: float: the ints arrive as floats
            "add(0.5, 0.25) = 0.75",
            "upper('hello') = HELLO",
            "stats() = {'user': 'ada', 'sessions': 2, 'calls': {'add': 2, 'stats': 1}}",
        ]
        await stop(server, signal.SIGTERM)


@exercises("rpc/server.py")
async def test_rpc_server_disconnects_clients_on_sigint() -> None:
    # reconnection off: this test is about the end of the connection
    client = eventsock.Client(reconnection=False)
    async with serving("rpc/server.py") as (server, url), client:
        reasons: asyncio.Queue[str] = asyncio.Queue()

        @client.on("disconnect")
        def disconnected(reason: str) -> None:
            reasons.put_nowait(reason)

        await client.connect(
            url, auth={"user": "grace"}, namespaces=["/", "/text"], timeout=TIMEOUT
        )
        assert await client.call("upper", "é", namespace="/text", timeout=TIMEOUT) == "É"
        stats = await client.call("stats", timeout=TIMEOUT)
        assert stats == {"user": "grace", "sessions": 2, "calls": {"stats": 1}}
        await stop(server, signal.SIGINT)
        await asyncio.wait_for(client.wait(), TIMEOUT)
        assert not client.connected
        assert await asyncio.wait_for(reasons.get(), TIMEOUT) == "transport close"


@exercises("rpc/client.py")
async def test_rpc_client_reports_an_unreachable_server() -> None:
    # A port that was free a moment ago; nothing listens on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = await run("rpc/client.py", f"http://127.0.0.1:{port}")
    assert code == 1
    assert out == ""
    assert err.startswith("cannot reach the server: could not connect")


@exercises("mount_aiohttp.py")
async def test_mount_aiohttp() -> None:
    async with serving("mount_aiohttp.py") as (server, url), aiohttp.ClientSession() as http:
        # The ordinary route answers next to the eventsock endpoint.
        async with http.get(f"{url}/health") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "connections": 0}
        async with eventsock.Client(reconnection=False) as client:
            await client.connect(url, timeout=TIMEOUT)
            assert await client.call("ping", timeout=TIMEOUT) == "pong"
            async with http.get(f"{url}/health") as response:
                assert await response.json() == {"status": "ok", "connections": 1}
            # The application's shutdown also closes the eventsock connections.
            await stop(server, signal.SIGTERM)
            await asyncio.wait_for(client.wait(), TIMEOUT)
            assert not client.connected


@exercises("reconnect.py")
async def test_reconnect() -> None:
    code, out, err = await run("reconnect.py")
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("server listening on http://127.0.0.1:")
    assert lines[1:] == [
        "live: received [0, 1, 2, 3, 4]",
        "client lost the connection: transport close",
        "offline: reconnecting=True, buffered=1, dropped=1",
        "reconnected: recovered=True, same session id=True",
        "replayed: received [5, 6, 7, 8, 9]",
        "all 15 events, each exactly once, in order: True",
        "the server got the notes ['written while offline']",
        "server side: recovered=True, rooms=['feed']",
        "server side: data={'room': 'feed'}",
        "done",
    ]


@exercises("cluster.py")
async def test_cluster() -> None:
    # Redis on 127.0.0.1:6379, the example's default; it picks its own channel prefix.
    code, out, err = await run("cluster.py")
    assert code == 0, err
    assert err == ""
    assert out.splitlines() == [
        "nodes a and b started, one cluster",
        "broadcast from node a: ann got 'hello from node a', bob got 'hello from node a'",
        "node a called bob on node b: 'bob says 5'",
        "lobby, as node a sees it: ann on node a, bob on node b",
        "node a asked the other nodes for their load: [{'node': 'b', 'sessions': 1}]",
        "the emitter reached 2 nodes: ann got 'hello from a worker', bob got 'hello from a worker'",
        "done",
    ]


@exercises("cluster.py")
async def test_cluster_reports_an_unreachable_redis() -> None:
    # A port that was free a moment ago; no Redis listens on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    code, out, err = await run("cluster.py", url)
    assert code == 1
    assert out == ""
    # after the backend's own warnings, logged on the "eventsock" logger
    assert err.splitlines()[-1] == f"cannot reach Redis at {url}"


# -- the chat tutorial (examples/chat/) ---------------------------------------------


async def spawn_interactive(name: str, *args: str) -> Process:
    """Start an example that reads its standard input, which the test writes to."""
    return await spawn(name, *args, stdin=asyncio.subprocess.PIPE)


@asynccontextmanager
async def chatting(name: str, url: str, nick: str) -> AsyncIterator[Process]:
    """A terminal chat client, connected: its first line said so."""
    proc = await spawn_interactive(name, url, nick)
    try:
        await expect(proc, f"connected as {nick}")
        yield proc
    finally:
        await reap(proc)


async def expect(proc: Process, *lines: str) -> None:
    """The next lines ``proc`` prints are ``lines``, each within the timeout."""
    assert proc.stdout is not None
    for expected in lines:
        line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        if not line:
            err = await reap(proc)
            pytest.fail(f"expected {expected!r}, got the end of output:\n{err.decode()}")
        assert line == expected + "\n"


async def type_in(proc: Process, line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line.encode() + b"\n")
    await proc.stdin.drain()


async def finish(proc: Process) -> None:
    """End ``proc``'s input and check it exits 0 with nothing more to say."""
    assert proc.stdin is not None
    proc.stdin.close()
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert err == b""
    assert out == b""
    assert proc.returncode == 0


@exercises("chat/step1_server.py", "chat/step2_client.py", "chat/terminal.py")
async def test_chat_step1_server_with_step2_client() -> None:
    async with (
        serving("chat/step1_server.py") as (server, url),
        chatting("chat/step2_client.py", url, "ada") as ada,
        chatting("chat/step2_client.py", url, "bob") as bob,
    ):
        await type_in(ada, "hello bob")
        await expect(bob, "ada: hello bob")
        await expect(ada, "ada: hello bob")  # everyone, the sender included
        await type_in(bob, "")  # an empty line sends nothing
        await type_in(bob, "hi ada")
        await expect(ada, "bob: hi ada")
        await expect(bob, "bob: hi ada")
        await finish(ada)
        await finish(bob)
        await stop(server, signal.SIGINT)


@exercises("chat/step3_server.py", "chat/step3_client.py", "chat/terminal.py")
async def test_chat_step3_rooms() -> None:
    async with (
        serving("chat/step3_server.py") as (server, url),
        chatting("chat/step3_client.py", url, "ada") as ada,
    ):
        async with chatting("chat/step3_client.py", url, "bob") as bob:
            await expect(ada, "* bob joined lobby")
            await type_in(ada, "/who")
            await expect(ada, "* here: ada, bob")
            await type_in(bob, "/join kitchen")
            await expect(bob, "* now in kitchen: bob")
            await expect(ada, "* bob left lobby")
            await type_in(ada, "anyone?")
            await expect(ada, "[lobby] ada: anyone?")
            await type_in(ada, "/join kitchen")
            await expect(ada, "* now in kitchen: ada, bob")
            # bob's next line: he did not get "anyone?", which was sent before it
            await expect(bob, "* ada joined kitchen")
            await type_in(bob, "here you are")
            await expect(bob, "[kitchen] bob: here you are")
            await expect(ada, "[kitchen] bob: here you are")
            await finish(bob)
        await expect(ada, "* bob left kitchen")
        await finish(ada)
        await stop(server, signal.SIGTERM)


@exercises("chat/server.py", "chat/client.py", "chat/terminal.py")
async def test_chat_server_and_client() -> None:
    async with serving("chat/server.py") as (server, url):
        # nicks are checked when a client connects
        code, out, err = await run("chat/client.py", url, "no spaces")
        assert (code, out) == (1, "")
        assert err == "refused: a nick is 1 to 20 letters, digits, '-' or '_'\n"
        async with chatting("chat/client.py", url, "ada") as ada:
            code, out, err = await run("chat/client.py", url, "ada")
            assert (code, out, err) == (1, "", "refused: ada is taken\n")
            async with chatting("chat/client.py", url, "bob") as bob:
                await expect(ada, "* bob joined lobby")
                # the sender's own line shows when the ack arrives
                await type_in(ada, "hi bob")
                await expect(ada, "[lobby] ada: hi bob")
                await expect(bob, "[lobby] ada: hi bob")
                await type_in(ada, "x" * 501)
                await expect(ada, "! a message is 1 to 500 characters")
                # and when a client changes its nick
                await type_in(bob, "/nick ada")
                await expect(bob, "! ada is taken")
                await type_in(bob, "/nick b@d")
                await expect(bob, "! a nick is 1 to 20 letters, digits, '-' or '_'")
                await type_in(bob, "/nick robert")
                await expect(bob, "* you are now robert")
                await expect(ada, "* bob is now known as robert")
                await type_in(ada, "/who")
                await expect(ada, "* here: ada, robert")
                await type_in(bob, "/join " + "k" * 20)  # as long as a session id
                await expect(bob, "! a room is 1 to 16 lowercase letters, digits or '-'")
                await type_in(bob, "/join kitchen")
                await expect(bob, "* now in kitchen: robert")
                await expect(ada, "* robert left lobby")
                await type_in(bob, "and now?")
                await expect(bob, "[kitchen] robert: and now?")
                await type_in(bob, "/quit")
                await finish(bob)
            await type_in(ada, "bob?")
            await expect(ada, "[lobby] ada: bob?")  # ada's next line: nothing from kitchen
            await finish(ada)

        # the page, next to the endpoint
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/") as response:
                assert response.status == 200
                assert response.content_type == "text/html"
                assert '<script src="/chat.js"></script>' in await response.text()
            bundle = EXAMPLES / "chat" / "dist" / "chat.js"  # there once built with npm
            async with http.get(f"{url}/chat.js") as response:
                if bundle.is_file():
                    assert response.status == 200
                    assert await response.read() == bundle.read_bytes()
                else:
                    assert response.status == 404
                    assert "npm install && npm run build" in await response.text()
        await stop(server, signal.SIGTERM)


@exercises("chat/server.py")
async def test_chat_server_through_the_command_line() -> None:
    # The module's server alone, as `eventsock serve` runs it (deployment guide).
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "eventsock",
        "serve",
        "server:server",
        "--port",
        "0",
        cwd=EXAMPLES / "chat",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/socket\.io/ \(pid \d+", line)
        assert match, line
        url = match[1]
        ada, bob = eventsock.Client(reconnection=False), eventsock.Client(reconnection=False)
        heard = Recorder()
        bob.on("said", heard)
        async with ada, bob:
            await ada.connect(url, auth={"nick": "ada"}, timeout=TIMEOUT)
            await bob.connect(url, auth={"nick": "bob"}, timeout=TIMEOUT)
            assert await ada.call("join", "den", timeout=TIMEOUT) == ["ada"]
            assert await bob.call("join", "den", timeout=TIMEOUT) == ["ada", "bob"]
            assert await ada.call("say", "hi", timeout=TIMEOUT) == "den"
            assert (await heard.wait(1, TIMEOUT))[0] == ("den", "ada", "hi")
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        assert proc.returncode == 0, err.decode()
        assert out == b""
    finally:
        await reap(proc)


# -- notifications (examples/notifications/): Redis at 127.0.0.1:6379 ---------------


@asynccontextmanager
async def receiving(url: str, token: str, *args: str) -> AsyncIterator[Process]:
    """A notifications client, connected: its first line said so."""
    proc = await spawn("notifications/client.py", url, token, *args)
    try:
        await expect(proc, f"connected as {token.removeprefix('token-')}")
        yield proc
    finally:
        await reap(proc)


async def finished(proc: Process) -> str:
    """What ``proc`` prints until it exits, which it must do with 0 and no stderr."""
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert err == b""
    assert proc.returncode == 0
    return out.decode()


@exercises("notifications/server.py", "notifications/client.py", "notifications/notify.py")
async def test_notifications_from_an_external_process() -> None:
    prefix = ("--prefix", f"test-notifications-{uuid.uuid4().hex[:12]}")  # this run only
    async with (
        serving("notifications/server.py", *prefix) as (node_a, url_a),
        serving("notifications/server.py", *prefix) as (node_b, url_b),
        # ada on two devices, one on each server process; bob on the first
        receiving(url_a, "token-ada", "--count", "1") as ada_phone,
        receiving(url_b, "token-ada", "--count", "1") as ada_laptop,
        receiving(url_a, "token-bob", "--count", "1") as bob,
    ):
        code, out, err = await run(
            "notifications/notify.py", "ada", "build finished", "main is green", *prefix
        )
        assert (code, err) == (0, "")
        assert out == "notified ada through 2 server process(es)\n"
        assert await finished(ada_phone) == "build finished: main is green\n"
        assert await finished(ada_laptop) == "build finished: main is green\n"
        code, out, err = await run("notifications/notify.py", "bob", "review requested", *prefix)
        assert (code, out, err) == (0, "notified bob through 2 server process(es)\n", "")
        # bob's first: ada's, published before it through the same channel, never came
        assert await finished(bob) == "review requested: \n"

        code, out, err = await run("notifications/client.py", url_a, "token-eve")
        assert (code, out, err) == (1, "", "refused: unknown token\n")
        await stop(node_a, signal.SIGTERM)
        await stop(node_b, signal.SIGTERM)

    # nobody listens on another prefix: the emitter says so
    other = ("--prefix", f"test-notifications-{uuid.uuid4().hex[:12]}")
    code, out, err = await run("notifications/notify.py", "ada", "lost", *other)
    assert (code, err) == (1, "")
    assert out == f"no server is listening on prefix {other[1]!r}: nobody was notified\n"


@exercises("notifications/server.py", "notifications/notify.py")
async def test_notifications_report_an_unreachable_redis() -> None:
    # A port that was free a moment ago; no Redis listens on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    code, out, err = await run("notifications/notify.py", "ada", "hi", "--redis", url)
    assert (code, out) == (1, "")
    assert err.startswith(f"cannot reach Redis at {url}: ")
    code, out, err = await run("notifications/server.py", "--port", "0", "--redis", url)
    assert (code, out) == (1, "")
    # after the backend's own warning, logged on the "eventsock" logger
    assert err.splitlines()[-1] == f"cannot reach Redis at {url}"


@exercises("testing_app/chat.py", "testing_app/conftest.py", "testing_app/test_chat.py")
async def test_testing_app_passes_its_own_tests() -> None:
    # the example project's tests, run by pytest as its own project (its pytest.ini)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        cwd=EXAMPLES / "testing_app",
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        await reap(proc)
    assert proc.returncode == 0, out.decode() + err.decode()
    assert err == b""
    assert out.decode().splitlines()[-1].startswith("5 passed in ")


def test_every_example_is_exercised() -> None:
    found = {
        path.relative_to(EXAMPLES).as_posix()
        for path in EXAMPLES.rglob("*.py")
        if "node_modules" not in path.parts  # the whiteboard page's npm packages
    }
    assert found, "no examples found"
    assert found - EXERCISED == set(), "examples no test runs: add a test for them"
    assert EXERCISED - found == set(), "tests name examples that do not exist"


@exercises("chat_app.py")
async def test_chat_app_through_the_command_line() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "eventsock",
        "serve",
        "chat_app:server",
        "--port",
        "0",
        cwd=EXAMPLES,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/socket\.io/ \(pid \d+, node (\S+)\)", line)
        assert match, line
        url, node = match.groups()
        alice = eventsock.Client(reconnection=False)
        bob = eventsock.Client(reconnection=False)
        heard: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        bob.on("said", lambda sid, text: heard.set_result((sid, text)))
        async with alice, bob:
            await alice.connect(url, timeout=TIMEOUT)
            await bob.connect(url, timeout=TIMEOUT)
            assert await alice.call("join", "lobby", timeout=TIMEOUT) == node
            assert await bob.call("join", "lobby", timeout=TIMEOUT) == node
            await alice.emit("say", "lobby", "hi bob")
            assert await asyncio.wait_for(heard, TIMEOUT) == (alice.sid, "hi bob")
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), TIMEOUT)
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@exercises("whiteboard/server.py")
async def test_whiteboard_server(tmp_path: Path) -> None:
    # The board protocol with eventsock clients; tests/test_browser.py runs the page.
    # Small limits, to reach them: 12 points a board, 2 boards.
    bundle = tmp_path / "bundle.js"
    args = ("--max-points", "12", "--max-boards", "2", "--bundle", str(bundle))
    async with (
        serving("whiteboard/server.py", *args) as (server, url),
        aiohttp.ClientSession() as http,
    ):
        assert server.stdout is not None
        hint = (await asyncio.wait_for(server.stdout.readline(), TIMEOUT)).decode()
        assert hint == f"the page is not built (no {bundle}): {WHITEBOARD_BUILD}\n"
        async with http.get(f"{url}/?room=lobby") as response:
            assert response.status == 503
            assert WHITEBOARD_BUILD in await response.text()
        async with http.get(f"{url}/bundle.js") as response:
            assert response.status == 404
            assert WHITEBOARD_BUILD in await response.text()
        bundle.write_text("// built\n")
        async with http.get(f"{url}/?room=lobby") as response:
            assert response.status == 200
            assert '<script src="/bundle.js"></script>' in await response.text()
        async with http.get(f"{url}/bundle.js") as response:
            assert await response.text() == "// built\n"

        clients = [eventsock.Client(reconnection=False) for _ in range(5)]
        ann, bob, cat, dan, eve = clients
        heard = {event: Recorder() for event in ("joined", "left", "stroke", "cursor", "cleared")}
        for event, recorder in heard.items():
            bob.on(event, recorder)
        cat_heard = Recorder()
        cat.on("cleared", cat_heard)
        async with ann, bob, cat, dan, eve:
            for client in clients:
                await client.connect(url, timeout=TIMEOUT)

            async def call(client: eventsock.Client, *args: Any) -> Any:
                return await client.call(*args, timeout=TIMEOUT)

            async def refused(client: eventsock.Client, *args: Any) -> eventsock.RemoteError:
                with pytest.raises(eventsock.RemoteError) as info:
                    await call(client, *args)
                return info.value

            line = {"points": [[10, 10], [20.5, 20]], "colour": "#112233", "width": 4}
            assert (await refused(ann, "stroke", line)).code == "not_joined"
            assert (await refused(ann, "clear")).code == "not_joined"
            assert (await refused(ann, "join", "no spaces", "ann")).code == "invalid_room"
            assert (await refused(ann, "join", "t1", " ")).code == "invalid_name"
            assert await call(ann, "join", "t1", "ann") == {
                "you": ann.sid,
                "width": 1600,
                "height": 1000,
                "strokes": [],
                "users": [{"id": ann.sid, "name": "ann"}],
            }
            joined = await call(bob, "join", "t1", "bob")
            assert joined["users"] == [
                {"id": ann.sid, "name": "ann"},
                {"id": bob.sid, "name": "bob"},
            ]

            # a stroke: saved, numbered, and sent to the others on the board
            assert await call(ann, "stroke", line) == 1
            saved = {"id": 1, "by": ann.sid, **line, "points": [[10.0, 10.0], [20.5, 20.0]]}
            assert (await heard["stroke"].wait(1, TIMEOUT))[0] == (saved,)
            await ann.emit("cursor", 5, 6.5)
            assert (await heard["cursor"].wait(1, TIMEOUT))[0] == (ann.sid, 5.0, 6.5)

            # what does not fit is refused, with a reason, and not saved
            wrong_type = await refused(ann, "stroke", {**line, "points": "nope"})
            assert isinstance(wrong_type, eventsock.InvalidArguments)
            assert wrong_type.message.startswith("argument 'stroke'.points")
            for bad, reason in [
                ({"points": []}, "a stroke has 1 to 256 points"),
                ({"points": [[0, 0]] * 257}, "a stroke has 1 to 256 points"),
                ({"points": [[1601, 0]]}, "point [1601.0, 0.0] is outside the 1600x1000 board"),
                ({"colour": "red"}, "colour must look like #1d4ed8, not 'red'"),
                ({"width": 0}, "width must be between 1 and 64"),
            ]:
                error = await refused(ann, "stroke", {**line, **bad})
                assert (error.code, error.message) == ("invalid_stroke", reason)
            assert await call(ann, "stroke", {**line, "points": [[1, 1]] * 10}) == 2
            full = await refused(ann, "stroke", line)  # 12 points saved already
            assert full.code == "board_full"
            assert full.message == "the board holds 12 points: clear it"

            # a late joiner gets the board as it is, and who is there
            late = await call(cat, "join", "t1", "cat")
            assert [stroke["id"] for stroke in late["strokes"]] == [1, 2]
            assert late["strokes"][0] == saved
            assert [user["name"] for user in late["users"]] == ["ann", "bob", "cat"]
            assert [args[0]["name"] for args in await heard["joined"].wait(1, TIMEOUT)] == ["cat"]

            # two boards at most; an empty one is forgotten to make room
            assert (await call(dan, "join", "t2", "dan"))["strokes"] == []
            assert (await refused(eve, "join", "t3", "eve")).code == "too_many_boards"
            await call(dan, "join", "t1", "dan")  # one board at a time: t2 is empty now
            assert (await call(eve, "join", "t3", "eve"))["users"] == [
                {"id": eve.sid, "name": "eve"}
            ]

            # presence: a client that leaves is announced to the others
            ann_id = ann.sid
            await ann.disconnect()
            assert (await heard["left"].wait(1, TIMEOUT))[0] == (ann_id,)
            assert await call(bob, "clear") == 2
            assert (await cat_heard.wait(1, TIMEOUT))[0] == (bob.sid,)
            # not sent back to the one who cleared: it would have come before the ack
            assert heard["cleared"].calls == []
            assert (await call(cat, "join", "t1", "cat"))["strokes"] == []
        await stop(server, signal.SIGTERM)


@exercises("limits.py")
async def test_limits_example() -> None:
    code, out, err = await run("limits.py")
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "the four: ['done', 'done', 'done', 'done']"
    assert lines[1] == "the fifth: too_many_calls {'limit': 4}"
    match = re.fullmatch(r"(\d+) answered, (\d+) rate limited", lines[2])
    assert match, lines
    answered, limited = int(match[1]), int(match[2])
    assert answered + limited == 15 and limited >= 1  # the burst is 10, 5 of it spent
    assert lines[3].startswith("retry after ")
    assert "calls_refused=1" in lines[4]


@exercises("tls_pinning.py")
async def test_tls_pinning_example() -> None:
    code, out, err = await run("tls_pinning.py")
    assert code == 0, err
    assert err == ""
    pin, ours, ours_alone, theirs, theirs_alone = out.splitlines()
    assert re.fullmatch(r"pin: sha256/[A-Za-z0-9+/]{43}=", pin)
    assert ours == "ours: the real server"
    assert ours_alone == "ours, pin alone: the real server"
    assert theirs.startswith("theirs: refused: the certificate of 127.0.0.1 matches none")
    assert pin.removeprefix("pin: ") in theirs
    assert theirs_alone == "theirs, pin alone: refused"
