"""The command line, run in real subprocesses against real servers: ``serve`` (one
worker, several on one port sharing Redis, reloading), ``call``, ``listen``, ``demo``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import ssl
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

import eventsock
from eventsock.cli import from_json, load_server, main, parse_argument, to_json
from eventsock.testing import Recorder, TestServer
from eventsock.testing import serve as serve_app

ROOT = Path(__file__).resolve().parent.parent
# Per step: a command starts and ends in well under a second.
STEP = 20.0

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


# -- call ------------------------------------------------------------------------------


async def run(*args: str, cwd: Path = ROOT, stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run ``python -m eventsock ARGS`` to its end; returns its exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "eventsock",
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), STEP)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def free_port() -> int:
    """A port that was free a moment ago; nothing listens on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rpc_server() -> eventsock.Server:
    server = eventsock.Server()

    @server.use
    def check(session: eventsock.Session, auth: Any) -> None:
        if auth and auth.get("token") != "good":
            raise eventsock.ConnectionRefused("bad token", data={"token": auth.get("token")})
        session.data["auth"] = auth

    @server.on("add")
    def add(session: eventsock.Session, a: int, b: int) -> int:
        return a + b

    @server.on("echo")
    def echo(session: eventsock.Session, *values: Any) -> Any:
        return values if len(values) != 1 else values[0]

    @server.on("info")
    def info(session: eventsock.Session) -> dict[str, Any]:
        return {"auth": session.data["auth"], "header": session.headers.get("X-Test")}

    @server.on("find")
    def find(session: eventsock.Session, key: str) -> None:
        raise eventsock.RemoteError(f"no {key}", code="not_found", data={"key": key})

    @server.on("hang")
    async def hang(session: eventsock.Session) -> None:
        await asyncio.Event().wait()  # cancelled when the connection ends

    @server.on("where", namespace="/admin")
    def where(session: eventsock.Session) -> str:
        return session.namespace

    return server


@pytest.fixture
def eventsock_app() -> eventsock.Server:
    return rpc_server()


async def test_call_prints_the_ack_as_json(eventsock_server: TestServer) -> None:
    url = eventsock_server.url
    assert await run("call", url, "add", "2", "3") == (0, "5\n", "")
    code, out, err = await run("call", url, "echo", '{"a": [1, 2.5, null, true]}', "s:plain")
    assert (code, err) == (0, "")
    assert json.loads(out) == [{"a": [1, 2.5, None, True]}, "plain"]
    code, out, _ = await run("call", url, "echo", '"é"', "--pretty")
    assert (code, out) == (0, '"é"\n')
    # no ack arguments at all: null
    assert await run("call", url, "hang", "--no-ack") == (0, "", "")
    assert await eventsock_server.next_event("hang") == ()
    # another namespace
    assert await run("call", url, "where", "-n", "/admin") == (0, '"/admin"\n', "")
    # with auth and a header
    code, out, err = await run(
        "call", url, "info", "--auth", '{"token": "good"}', "-H", "X-Test: yes"
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == {"auth": {"token": "good"}, "header": "yes"}


async def test_call_shows_bytes_readably_and_takes_them_back(
    eventsock_server: TestServer, tmp_path: Path
) -> None:
    url = eventsock_server.url
    code, out, err = await run("call", url, "echo", "hex:00ff")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"$bytes": "00ff", "len": 2}
    code, out, _ = await run("call", url, "echo", "b64:aGkK")
    assert json.loads(out) == {"$bytes": "68690a", "len": 3, "text": "hi\n"}
    # what it prints is what it takes, nested too
    code, out, _ = await run("call", url, "echo", '[{"$bytes": "00", "len": 1}, "x"]')
    assert json.loads(out) == [{"$bytes": "00", "len": 1}, "x"]
    assert await eventsock_server.next_event("echo") == (b"\x00\xff",)
    assert await eventsock_server.next_event("echo") == (b"hi\n",)
    assert await eventsock_server.next_event("echo") == ([b"\x00", "x"],)
    # a file's bytes, and standard input's
    blob = bytes(range(256))
    (tmp_path / "blob.bin").write_bytes(blob)
    code, out, _ = await run("call", url, "echo", f"@{tmp_path / 'blob.bin'}")
    assert json.loads(out) == {"$bytes": blob.hex(), "len": 256}
    code, out, _ = await run("call", url, "echo", "@-", stdin=b"from stdin")
    assert json.loads(out) == {"$bytes": b"from stdin".hex(), "len": 10, "text": "from stdin"}


async def test_call_exit_codes(eventsock_server: TestServer) -> None:
    url = eventsock_server.url
    # 1: an error answer, printed as the ack it is
    code, out, err = await run("call", url, "find", '"key"')
    assert (code, err) == (1, "")
    assert json.loads(out) == {
        "$error": {"code": "not_found", "message": "no key", "data": {"key": "key"}}
    }
    code, out, _ = await run("call", url, "nope")
    assert code == 1
    assert json.loads(out)["$error"]["code"] == "unknown_event"
    # 2: usage
    code, out, err = await run("call", url, "echo", "plain")
    assert (code, out) == (2, "")
    assert "'plain' is not JSON (for a string, quote it: '\"plain\"', or write s:plain)" in err
    code, _, err = await run("call", url, "echo", '{"$bytes": "zz"}')
    assert code == 2
    assert "argument 1: $bytes is not hex" in err
    code, _, err = await run("call", url, "add", "--auth", "[1]")
    assert code == 2
    assert "must be a JSON object" in err
    code, _, err = await run("call", "ftp://127.0.0.1", "add")
    assert code == 2
    assert "URL must be http(s):// or ws(s)://" in err
    # 3: no server, or the server refused
    code, out, err = await run("call", f"http://127.0.0.1:{free_port()}", "add", "1", "2")
    assert (code, out) == (3, "")
    assert err.startswith("eventsock: cannot connect to http://127.0.0.1:")
    code, out, err = await run("call", url, "add", "--auth", '{"token": "bad"}')
    assert (code, out) == (3, "")
    assert err == 'eventsock: the server refused the connection: bad token {"token": "bad"}\n'
    # 4: no answer in time
    code, out, err = await run("call", url, "hang", "--timeout", "0.3")
    assert (code, out) == (4, "")
    assert "no ack for 'hang' on '/' within 0.3 s" in err


async def test_call_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    pin = str(eventsock.Pin.of(cert.cert_chain_pems[0].bytes()))
    other = str(eventsock.Pin.of(trustme.CA().issue_cert("127.0.0.1").cert_chain_pems[0].bytes()))
    async with serve_app(rpc_server(), ssl=context) as running:
        url = running.url
        assert url.startswith("https://")
        assert await run("call", url, "add", "1", "2", "--ca", str(tmp_path / "ca.pem")) == (
            0,
            "3\n",
            "",
        )
        code, out, err = await run("call", url, "add", "1", "2")  # an unknown CA
        assert (code, out) == (3, "")
        assert "certificate verify failed" in err
        assert (await run("call", url, "add", "1", "2", "--insecure"))[:2] == (0, "3\n")
        assert (await run("call", url, "add", "1", "2", "--insecure", "--pin", pin))[0] == 0
        code, _, err = await run("call", url, "add", "1", "2", "--insecure", "--pin", other)
        assert code == 3
        assert "pin" in err
        code, _, err = await run("call", url, "add", "--pin", "nope")
        assert code == 2
        assert "not a pin" in err
        code, _, err = await run("call", url, "add", "--insecure", "--ca", str(tmp_path / "ca.pem"))
        assert code == 2
        assert "contradict" in err


def test_json_conversions() -> None:
    assert to_json({1: b"\xff", "k": (None, 1.5)}) == {
        "1": {"$bytes": "ff", "len": 1},
        "k": [None, 1.5],
    }
    assert to_json(b"") == {"$bytes": "", "len": 0}
    assert to_json(b"a\x00") == {"$bytes": "6100", "len": 2}  # not printable: no text
    assert from_json({"$bytes": "6869", "text": "hi"}) == b"hi"
    assert from_json({"$bytes": "00", "other": 1}) == {"$bytes": "00", "other": 1}
    with pytest.raises(ValueError, match="holds 1 bytes, not len=2"):
        from_json({"$bytes": "00", "len": 2})
    with pytest.raises(ValueError, match="text differ"):
        from_json({"$bytes": "00", "text": "x"})
    assert parse_argument("-1") == -1
    assert parse_argument("s:") == ""
    assert parse_argument("hex:") == b""
    with pytest.raises(ValueError, match="not base64"):
        parse_argument("b64:!!")
    with pytest.raises(ValueError, match="cannot read"):
        parse_argument("@/no/such/file")


def test_help_for_everything(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ([], ["serve"], ["call"], ["listen"], ["demo"]):
        assert main([*command, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"Usage: eventsock {' '.join(command)}".rstrip())
    assert main(["--help"]) == 0
    assert "Exit codes: 0 success" in capsys.readouterr().out
    assert main(["nope"]) == 2
    assert "No such command 'nope'" in capsys.readouterr().err
    assert main(["serve", "tests.cluster_app:server", "--reload", "--workers", "2"]) == 2
    assert "--reload runs one worker" in capsys.readouterr().err


# -- listen ----------------------------------------------------------------------------


@asynccontextmanager
async def listening(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "eventsock",
        "listen",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.communicate(), STEP)


async def line_of(stream: asyncio.StreamReader | None) -> str:
    assert stream is not None
    return (await asyncio.wait_for(stream.readline(), STEP)).decode()


async def line_with(stream: asyncio.StreamReader | None, text: str) -> str:
    """The next line that contains ``text`` (other lines, such as log lines, skipped)."""
    for _ in range(100):
        line = await line_of(stream)
        if text in line or not line:
            return line
    raise AssertionError(f"no line with {text!r} in 100")


def joined(server: eventsock.Server, *namespaces: str) -> list[asyncio.Future[str]]:
    """Futures that get the session id of the first client to join each namespace."""
    loop = asyncio.get_running_loop()
    futures = []
    for namespace in namespaces:
        future: asyncio.Future[str] = loop.create_future()
        futures.append(future)
        server.on("connect", resolver(future), namespace=namespace)
    return futures


def resolver(future: asyncio.Future[str]) -> Callable[[eventsock.Session], None]:
    def connect(session: eventsock.Session) -> None:
        if not future.done():
            future.set_result(session.id)

    return connect


async def test_listen_prints_events_until_interrupted() -> None:
    server = eventsock.Server()
    root, chat = joined(server, "/", "/chat")
    async with (
        serve_app(server) as running,
        listening(running.url, "-n", "/", "-n", "/chat", "-e", "news", "-e", "alert") as proc,
    ):
        await asyncio.wait_for(asyncio.gather(root, chat), STEP)
        assert "connected to" in await line_of(proc.stderr)
        await server.emit("news", 1, b"\x00\x01")
        await server.emit("other", "filtered out")
        await server.emit("alert", {"level": "high"}, namespace="/chat")
        await server.emit("news", namespace="/chat")
        lines = [json.loads(await line_of(proc.stdout)) for _ in range(3)]
        assert lines == [
            {"namespace": "/", "event": "news", "args": [1, {"$bytes": "0001", "len": 2}]},
            {"namespace": "/chat", "event": "alert", "args": [{"level": "high"}]},
            {"namespace": "/chat", "event": "news", "args": []},
        ]
        # a call from the server is printed, and answered as unknown to the listener
        with pytest.raises(eventsock.UnknownEvent):
            await server.call("news", "asked", to=root.result(), timeout=STEP)
        assert json.loads(await line_of(proc.stdout))["args"] == ["asked"]
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), STEP)
        assert proc.returncode == 0, err.decode()
        assert out == b""  # everything was printed as it came


async def test_listen_count_and_exit_codes() -> None:
    server = eventsock.Server()
    connects: asyncio.Queue[str] = asyncio.Queue()
    server.on("connect", lambda session: connects.put_nowait(session.id))
    async with serve_app(server) as running:
        async with listening(running.url, "--count", "2", "--no-reconnect") as proc:
            sid = await asyncio.wait_for(connects.get(), STEP)
            for n in range(3):
                await server.emit("tick", n, to=sid)
            out, err = await asyncio.wait_for(proc.communicate(), STEP)
            assert proc.returncode == 0, err.decode()
            assert [json.loads(line)["args"] for line in out.decode().splitlines()] == [[0], [1]]
        # the connection lost for good: 3
        async with listening(running.url, "--no-reconnect") as proc:
            sid = await asyncio.wait_for(connects.get(), STEP)
            assert "connected to" in await line_of(proc.stderr)
            await server.disconnect(sid)
            _, err = await asyncio.wait_for(proc.communicate(), STEP)
            assert proc.returncode == 3
            assert "lost for good (server disconnect)" in err.decode()
        # a namespace refused: 3
        code, out, err = await run("listen", running.url, "-n", "/missing")
        assert (code, out) == (3, "")
        assert "refused the connection" in err
    # no server: 3
    code, out, err = await run("listen", f"http://127.0.0.1:{free_port()}")
    assert (code, out) == (3, "")
    assert "cannot connect" in err
    assert (await run("listen", "http://127.0.0.1:1", "-n", "nope"))[0] == 2


async def test_listen_reconnects() -> None:
    server = eventsock.Server()
    connects: asyncio.Queue[str] = asyncio.Queue()
    server.on("connect", lambda session: connects.put_nowait(session.id))
    port = await server.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}"
    try:
        async with listening(url) as proc:
            await asyncio.wait_for(connects.get(), STEP)
            await server.shutdown()  # the transport closes: the listener retries
            assert "disconnected (transport close)" in await line_with(proc.stderr, "disconnected")
            await server.start("127.0.0.1", port)
            sid = await asyncio.wait_for(connects.get(), STEP)
            await server.emit("back", to=sid)
            assert json.loads(await line_of(proc.stdout))["event"] == "back"
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), STEP)
            assert proc.returncode == 0, err.decode()
            assert "reconnected after 1 attempt(s)" in err.decode()
    finally:
        await server.shutdown()


# -- serve --reload --------------------------------------------------------------------

RELOAD_APP = """
import eventsock

server = eventsock.Server()

@server.on("version")
def version(session):
    return {version!r}
"""


async def start_reloading(folder: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "eventsock",
        "serve",
        "reload_app:server",
        "--port",
        "0",
        "--reload",
        cwd=folder,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def end(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (so that a parent stops its workers), then SIGKILL if it lingers."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STEP)
        except TimeoutError:
            proc.kill()
    await asyncio.wait_for(proc.communicate(), STEP)


async def version(url: str) -> Any:
    async with eventsock.Client(reconnection=False) as client:
        await client.connect(url, timeout=STEP)
        return await client.call("version", timeout=STEP)


async def test_serve_reload_restarts_on_a_change(tmp_path: Path) -> None:
    app = tmp_path / "reload_app.py"
    app.write_text(RELOAD_APP.format(version=1))
    proc = await start_reloading(tmp_path)
    try:
        assert "watching 1 .py file(s) under" in await line_of(proc.stderr)
        first = SERVING.search(await line_of(proc.stdout))
        assert first
        url = first.group(2)
        assert await version(url) == 1
        app.write_text(RELOAD_APP.format(version="two"))
        assert "reload_app.py changed; restarting" in await line_with(proc.stderr, "changed")
        second = SERVING.search(await line_of(proc.stdout))
        assert second
        assert second.group(2) == url  # the same port
        assert second.group(3) != first.group(3)  # a new process
        assert await version(url) == "two"
        # a broken app: the server exits, and comes back once the file is fixed
        app.write_text("server = 42\n")
        assert "changed; restarting" in await line_with(proc.stderr, "changed")
        assert "not an eventsock.Server" in await line_with(proc.stderr, "eventsock:")
        assert "the server exited (1); waiting for a change" in await line_with(
            proc.stderr, "exited"
        )
        app.write_text(RELOAD_APP.format(version=3))
        assert "changed; restarting" in await line_with(proc.stderr, "changed")
        assert SERVING.search(await line_of(proc.stdout))
        assert await version(url) == 3
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), STEP)
        assert proc.returncode == 0
    finally:
        await end(proc)


async def test_a_killed_reloading_parent_takes_its_worker_along(tmp_path: Path) -> None:
    (tmp_path / "reload_app.py").write_text(RELOAD_APP.format(version=1))
    proc = await start_reloading(tmp_path)
    try:
        serving = SERVING.search(await line_of(proc.stdout))
        assert serving
        async with eventsock.Client(reconnection=False) as client:
            await client.connect(serving.group(2), timeout=STEP)
            proc.kill()  # no SIGTERM to pass on: the worker learns it from the kernel
            await asyncio.wait_for(client.wait(), STEP)  # the worker went away
    finally:
        await end(proc)


# -- demo ------------------------------------------------------------------------------


async def test_demo_command() -> None:
    code, out, err = await run("demo")
    assert (code, err) == (0, "")
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
