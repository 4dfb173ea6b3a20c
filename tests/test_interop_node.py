"""Interop tests between eventsock and the official Node socket.io 4.8 packages.

Part A runs the Node client (tests/node/client.js) against the eventsock reference
server; part B runs the eventsock client against the Node server (tests/node/server.js).
Both Node scripts use the msgpack parser over WebSocket only; their CLI contract is in
tests/node/README.md.

Everything synchronises on subprocess output lines, futures and queues, always with a
timeout; nothing sleeps. Node and tests/node/node_modules are required: when they are
missing the tests fail (CI installs them with ``npm ci``), they are never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import eventsock

from .reference_app import ReferenceServer

pytestmark = pytest.mark.timeout(60)

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_PACKAGES = ("socket.io", "socket.io-client", "socket.io-msgpack-parser")

#: Seconds to wait for one expected line, future or queue item.
STEP_TIMEOUT = 10.0
#: Seconds a whole client.js run may take (its own watchdog fires at 15 s).
CLIENT_RUN_TIMEOUT = 20.0
#: Stream limit for the subprocess pipes (JSON lines are small, but be generous).
LINE_LIMIT = 4 * 1024 * 1024

ECHO_ARGS: tuple[Any, ...] = ("hi", bytes(range(256)), {"nested": [1, 2.5, None, True]})
BIG_LENGTH = 2 * 1024 * 1024
SECRET = {"token": "secret"}


def big_payload() -> bytes:
    """2 MiB where byte i is i % 251 (the same buffer client.js builds)."""
    pattern = bytes(range(251))
    return (pattern * (BIG_LENGTH // len(pattern) + 1))[:BIG_LENGTH]


def node_executable() -> str:
    """The node binary; fails (not skips) the test when Node or the packages are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not on PATH: the Node interop tests need Node 20 "
            "(install it, then run `npm ci` in tests/node)"
        )
    missing = [p for p in NODE_PACKAGES if not (NODE_DIR / "node_modules" / p).is_dir()]
    if missing:
        pytest.fail(
            f"missing Node packages {missing} in {NODE_DIR / 'node_modules'}: "
            f"run `npm ci` in {NODE_DIR}"
        )
    return node


def parse_line(raw: bytes) -> dict[str, Any]:
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    try:
        value = json.loads(text)
    except ValueError:
        return {"unparsable": text}
    return value if isinstance(value, dict) else {"unparsable": text}


async def finish_process(proc: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    """Wait for ``proc`` to exit, killing it if it does not within ``grace`` seconds."""
    if proc.returncode is None:
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


# ---------------------------------------------------------------------------------------
# The Node server (server.js), for part B
# ---------------------------------------------------------------------------------------


class NodeServer:
    """server.js as a subprocess: its port, and its stdout JSON lines in a queue."""

    def __init__(self, *options: str) -> None:
        self.options = options
        self.port = 0
        self.lines: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self.stderr = b""
        self._proc: asyncio.subprocess.Process | None = None
        self._pumps: list[asyncio.Task[None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> NodeServer:
        node = node_executable()
        self._proc = proc = await asyncio.create_subprocess_exec(
            node,
            "server.js",
            *self.options,
            cwd=NODE_DIR,
            stdin=asyncio.subprocess.PIPE,  # kept open: server.js exits when it closes
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        try:
            assert proc.stdout is not None and proc.stderr is not None
            self._pumps = [
                asyncio.create_task(self._pump_stdout(proc.stdout)),
                asyncio.create_task(self._pump_stderr(proc.stderr)),
            ]
            first = await self.next_line()
            assert first.get("event") == "listening" and isinstance(first.get("port"), int), (
                f"server.js did not start: first line {first}"
            )
            self.port = first["port"]
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        await self._stop()
        if exc_type is None:
            assert self._proc is not None
            assert self._proc.returncode == 0 and not self.stderr, (
                f"server.js exited with {self._proc.returncode}, "
                f"stderr: {self.stderr.decode(errors='replace')}"
            )

    async def _pump_stdout(self, stream: asyncio.StreamReader) -> None:
        try:
            while raw := await stream.readline():
                self.lines.put_nowait(parse_line(raw))
        finally:
            self.lines.put_nowait(None)

    async def _pump_stderr(self, stream: asyncio.StreamReader) -> None:
        self.stderr = await stream.read()

    async def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()  # server.js shuts down when its stdin ends
            with contextlib.suppress(ConnectionError):
                await proc.stdin.wait_closed()
        await finish_process(proc)
        if self._pumps:
            await asyncio.wait(self._pumps, timeout=STEP_TIMEOUT)
            for task in self._pumps:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*self._pumps, return_exceptions=True)

    async def next_line(self, timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(self.lines.get(), timeout)
        except TimeoutError:
            pytest.fail(f"server.js printed nothing in {timeout} s; lines so far: {self.seen}")
        if line is None:
            self.lines.put_nowait(None)  # keep the end marker for later readers
            await asyncio.wait(self._pumps, timeout=STEP_TIMEOUT)
            pytest.fail(
                f"server.js stdout ended (exit {self._proc and self._proc.returncode}); "
                f"lines so far: {self.seen}; stderr: {self.stderr.decode(errors='replace')}"
            )
        self.seen.append(line)
        assert "unparsable" not in line, f"server.js printed a non-JSON line: {line}"
        return line

    async def expect(self, event: str, timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
        """The next ``{"event": event, ...}`` line, skipping lines of other events."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = await self.next_line(timeout)
                    if line.get("event") == event:
                        return line
        except TimeoutError:
            pytest.fail(f"no {event!r} line from server.js in {timeout} s; seen: {self.seen}")

    def pending(self) -> list[dict[str, Any]]:
        """The lines printed so far and not read yet (without waiting)."""
        lines = []
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is None:
                self.lines.put_nowait(None)
                break
            self.seen.append(line)
            lines.append(line)
        return lines


@pytest.fixture
async def node_server() -> AsyncIterator[NodeServer]:
    """server.js with its default ping settings."""
    async with NodeServer() as server:
        yield server


# ---------------------------------------------------------------------------------------
# The Node client (client.js), for part A
# ---------------------------------------------------------------------------------------


@dataclass
class ClientRun:
    scenario: str
    returncode: int | None
    steps: list[dict[str, Any]]
    stderr: str

    def ok_steps(self) -> list[dict[str, Any]]:
        """The steps before ``done``, after checking the run succeeded."""
        report = f"client.js {self.scenario}: exit {self.returncode}, steps {self.steps}"
        if self.stderr:
            report += f", stderr: {self.stderr}"
        assert self.returncode == 0, report
        assert self.steps and self.steps[-1] == {"step": "done", "ok": True}, report
        assert not self.stderr, report
        steps = self.steps[:-1]
        assert all(s.get("step") not in ("error", "done", None) for s in steps), report
        return steps


async def run_node_client(url: str, scenario: str, *options: str) -> ClientRun:
    """Run ``node client.js <url> <scenario> [options]`` to the end; return its lines."""
    node = node_executable()
    proc = await asyncio.create_subprocess_exec(
        node,
        "client.js",
        url,
        scenario,
        *options,
        cwd=NODE_DIR,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=LINE_LIMIT,
    )
    try:
        try:
            out, err = await asyncio.wait_for(proc.communicate(), CLIENT_RUN_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"client.js {scenario} did not finish within {CLIENT_RUN_TIMEOUT} s")
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await finish_process(proc)
    steps = [parse_line(raw) for raw in out.splitlines() if raw.strip()]
    return ClientRun(scenario, proc.returncode, steps, err.decode("utf-8", "replace"))


async def next_reason(server: ReferenceServer, timeout: float = STEP_TIMEOUT) -> str:
    try:
        return await asyncio.wait_for(server.disconnects.get(), timeout)
    except TimeoutError:
        pytest.fail(f"the eventsock server saw no disconnect within {timeout} s")


# =======================================================================================
# A. Node client (client.js) -> eventsock reference server
# =======================================================================================


async def test_node_client_auth(reference_server: ReferenceServer, no_leaks: None) -> None:
    run = await run_node_client(reference_server.url, "auth")
    steps = run.ok_steps()
    assert len(steps) == 2, steps
    connected, refused = steps
    assert connected["step"] == "connected", steps
    assert isinstance(connected["id"], str) and connected["id"], steps
    assert refused == {
        "step": "connect_error",
        "message": "Not authorized",
        "data": {"code": 42},
    }
    # The good socket disconnected cleanly before the bad one tried.
    assert await next_reason(reference_server) == "client disconnect"


async def test_node_client_echo(reference_server: ReferenceServer, no_leaks: None) -> None:
    run = await run_node_client(reference_server.url, "echo")
    assert run.ok_steps() == [
        {
            "step": "ack",
            "args": ["hi", {"$bytes": bytes(range(256)).hex()}, {"nested": [1, 2.5, None, True]}],
        }
    ]


async def test_node_client_server_call(reference_server: ReferenceServer, no_leaks: None) -> None:
    run = await run_node_client(reference_server.url, "server_call")
    assert run.ok_steps() == [{"step": "ack", "args": [42]}]


async def test_node_client_room(reference_server: ReferenceServer, no_leaks: None) -> None:
    run = await run_node_client(reference_server.url, "room")
    assert run.ok_steps() == [
        {"step": "b_got", "args": ["hello"]},
        {"step": "a_got", "count": 0},
    ]


async def test_node_client_boom(reference_server: ReferenceServer, no_leaks: None) -> None:
    run = await run_node_client(reference_server.url, "boom")
    assert run.ok_steps() == [{"step": "ack", "args": [1]}]
    assert reference_server.handler_errors == 1
    # The raising handler did not drop the connection: the client left on its own.
    assert await next_reason(reference_server) == "client disconnect"


async def test_node_client_sees_error_answers(
    reference_server: ReferenceServer, no_leaks: None
) -> None:
    run = await run_node_client(reference_server.url, "errors")
    assert run.ok_steps() == [
        {
            "step": "results",
            "results": [
                {"event": "find", "ok": {"id": 1, "name": "alice"}},
                {"event": "find", "code": "not_found", "message": "no user 7", "data": {"id": 7}},
                {
                    "event": "no_such_event",
                    "code": "unknown_event",
                    "message": "no handler for 'no_such_event' on '/'",
                    "data": None,
                },
                {
                    "event": "boom",
                    "code": "internal_error",
                    "message": "internal error",
                    "data": None,
                },
                {
                    "event": "find",
                    "code": "invalid_arguments",
                    "message": "'find' takes 1 argument(s), not 0",
                    "data": {"expected": "1", "received": 0},
                },
                {"event": "typed_add", "ok": 3},
                {
                    "event": "typed_add",
                    "code": "invalid_arguments",
                    "message": "argument 'a': expected int, got str",
                    "data": {
                        "argument": "a",
                        "path": "",
                        "expected": "int",
                        "reason": "expected int, got str",
                    },
                },
                {
                    "event": "small",
                    "code": "payload_too_large",
                    "message": "'small' takes messages of at most 64 bytes",
                    "data": {"limit": 64, "size": run.steps[0]["results"][7]["data"]["size"]},
                },
                {
                    "event": "flaky",
                    "code": "unavailable",
                    "message": "try again later",
                    "data": None,
                },
                {"event": "forbidden", "code": "forbidden", "message": "not for you", "data": None},
            ],
        }
    ]
    assert run.steps[0]["results"][7]["data"]["size"] > 100
    assert reference_server.handler_errors == 1


async def test_node_client_iterates_streams(
    reference_server: ReferenceServer, no_leaks: None
) -> None:
    run = await run_node_client(reference_server.url, "streams")
    assert run.ok_steps() == [
        {
            "step": "streams",
            "counted": 100,
            "inOrder": True,
            "early": [0, 1, 2],
            "beforeError": [1],
            "error": {"code": "feed_lost", "message": "feed lost"},
            "unknown": "unknown_event",
            "after": ["after"],
        }
    ]
    # leaving the loop early cancelled the server's generator, within its window
    made = await asyncio.wait_for(reference_server.streams_closed.get(), 5)
    assert 3 <= made <= 3 + 4


async def test_node_client_client_disconnect(
    reference_server: ReferenceServer, no_leaks: None
) -> None:
    run = await run_node_client(reference_server.url, "client_disconnect")
    steps = run.ok_steps()
    assert len(steps) == 2, steps
    assert steps[0]["step"] == "connected" and isinstance(steps[0]["id"], str), steps
    assert steps[1] == {"step": "disconnected", "reason": "io client disconnect"}
    assert await next_reason(reference_server) == "client disconnect"


async def test_node_client_server_disconnect(
    reference_server: ReferenceServer, no_leaks: None
) -> None:
    run = await run_node_client(reference_server.url, "server_disconnect")
    assert run.ok_steps() == [{"step": "disconnected", "reason": "io server disconnect"}]
    assert await next_reason(reference_server) == "server disconnect"


async def test_node_client_idle(no_leaks: None) -> None:
    async with ReferenceServer(
        ping_interval=0.2, ping_timeout=0.2, max_payload=10_000_000
    ) as server:
        run = await run_node_client(server.url, "idle", "--idle-ms", "1500")
        assert run.ok_steps() == [
            {"step": "ack", "args": ["still here"]},
            {"step": "idle", "disconnects": 0},
        ]
        # The only disconnect the server saw is the client leaving at the end (no ping
        # timeout while idle).
        assert await next_reason(server) == "client disconnect"


async def test_node_client_big(reference_server: ReferenceServer, no_leaks: None) -> None:
    run = await run_node_client(reference_server.url, "big")
    assert run.ok_steps() == [{"step": "big", "length": BIG_LENGTH, "equal": True}]


# =======================================================================================
# B. eventsock client -> Node server (server.js)
# =======================================================================================


async def test_eventsock_client_auth_accepted(node_server: NodeServer, no_leaks: None) -> None:
    async with eventsock.Client() as client:
        await client.connect(node_server.url, auth={"token": "secret"}, timeout=STEP_TIMEOUT)
        assert client.connected
        assert isinstance(client.sid, str) and len(client.sid) == 20, client.sid
        connected = await node_server.expect("connect")
        assert connected == {
            "event": "connect",
            "sid": client.sid,
            "auth": {"token": "secret"},
            "recovered": False,
        }
    assert not client.connected
    assert (await node_server.expect("disconnect"))["reason"] == "client namespace disconnect"


async def test_eventsock_client_auth_refused(node_server: NodeServer, no_leaks: None) -> None:
    client = eventsock.Client()
    try:
        with pytest.raises(eventsock.ConnectionRefused) as refused:
            await client.connect(node_server.url, auth={"token": "bad"}, timeout=STEP_TIMEOUT)
        assert refused.value.message == "Not authorized"
        assert refused.value.data == {"code": 42}
        assert not client.connected
        assert client.sid is None
    finally:
        await client.disconnect()
    # The refused client never showed up as connected on the Node side.
    assert [line for line in node_server.pending() if line.get("event") == "connect"] == []


async def test_eventsock_client_echo(node_server: NodeServer, no_leaks: None) -> None:
    async with eventsock.Client() as client:
        await client.connect(node_server.url, auth=SECRET, timeout=STEP_TIMEOUT)
        result = await client.call("echo", *ECHO_ARGS, timeout=STEP_TIMEOUT)
    assert result == ECHO_ARGS
    assert isinstance(result, tuple) and len(result) == 3
    text, data, nested = result
    assert type(text) is str
    assert type(data) is bytes  # not bytearray, memoryview, ExtType...
    assert type(nested) is dict and type(nested["nested"]) is list
    one, two_and_half, none, true = nested["nested"]
    assert type(one) is int and type(two_and_half) is float
    assert none is None and true is True


async def test_eventsock_client_answers_server_call(
    node_server: NodeServer, no_leaks: None
) -> None:
    client = eventsock.Client()

    @client.on("question")
    def question(x: int) -> int:
        return x * 2

    async with client:
        await client.connect(node_server.url, auth=SECRET, timeout=STEP_TIMEOUT)
        assert await client.call("please_call", 21, timeout=STEP_TIMEOUT) == 42


async def test_eventsock_client_room_broadcast(node_server: NodeServer, no_leaks: None) -> None:
    loop = asyncio.get_running_loop()
    a_shouts: list[Any] = []
    b_got: asyncio.Future[Any] = loop.create_future()
    a, b = eventsock.Client(), eventsock.Client()

    @a.on("shout")
    def a_shout(msg: Any) -> None:
        a_shouts.append(msg)

    @b.on("shout")
    def b_shout(msg: Any) -> None:
        if not b_got.done():
            b_got.set_result(msg)

    async with a, b:
        await a.connect(node_server.url, auth=SECRET, timeout=STEP_TIMEOUT)
        await b.connect(node_server.url, auth=SECRET, timeout=STEP_TIMEOUT)
        assert a.sid != b.sid
        assert await a.call("join", "r1", timeout=STEP_TIMEOUT) is True
        assert await b.call("join", "r1", timeout=STEP_TIMEOUT) is True
        assert await a.call("shout", "r1", "hello", timeout=STEP_TIMEOUT) is True
        assert await asyncio.wait_for(b_got, STEP_TIMEOUT) == "hello"
        # One more round trip on A: a shout to A would have arrived before this ack.
        assert await a.call("echo", "sync", timeout=STEP_TIMEOUT) == "sync"
        assert a_shouts == []


async def test_eventsock_client_raising_handler_keeps_connection(
    node_server: NodeServer, no_leaks: None
) -> None:
    client = eventsock.Client()
    exploded = asyncio.get_running_loop().create_future()

    @client.on("explode")
    def explode() -> None:
        if not exploded.done():
            exploded.set_result(True)
        raise RuntimeError("explode (raised on purpose by the test)")

    async with client:
        await client.connect(node_server.url, auth=SECRET, timeout=STEP_TIMEOUT)
        assert await client.call("provoke", timeout=STEP_TIMEOUT) is True
        await asyncio.wait_for(exploded, STEP_TIMEOUT)
        assert await client.call("echo", 1, timeout=STEP_TIMEOUT) == 1
        assert client.connected
    # The first disconnect Node saw is the client leaving at the end.
    line = await node_server.expect("disconnect")
    assert line == {"event": "disconnect", "reason": "client namespace disconnect"}


async def test_eventsock_client_disconnect_reason_on_node(
    node_server: NodeServer, no_leaks: None
) -> None:
    client = eventsock.Client()
    reasons: list[str] = []

    @client.on("disconnect")
    def on_disconnect(reason: str) -> None:
        reasons.append(reason)

    await client.connect(node_server.url, auth=SECRET, timeout=STEP_TIMEOUT)
    try:
        await node_server.expect("connect")
        await client.disconnect()
        assert not client.connected
    finally:
        await client.disconnect()
    line = await node_server.expect("disconnect")
    assert line == {"event": "disconnect", "reason": "client namespace disconnect"}
    assert reasons == ["client disconnect"]


async def test_eventsock_client_kicked_by_node(node_server: NodeServer, no_leaks: None) -> None:
    client = eventsock.Client()
    disconnected: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @client.on("disconnect")
    def on_disconnect(reason: str) -> None:
        if not disconnected.done():
            disconnected.set_result(reason)

    await client.connect(node_server.url, auth=SECRET, timeout=STEP_TIMEOUT)
    try:
        await client.emit("kick_me")
        assert await asyncio.wait_for(disconnected, STEP_TIMEOUT) == "server disconnect"
        # The namespace was the only one: the client closes the connection itself.
        await asyncio.wait_for(client.wait(), STEP_TIMEOUT)
        assert not client.connected
    finally:
        await client.disconnect()
    line = await node_server.expect("disconnect")
    assert line == {"event": "disconnect", "reason": "server namespace disconnect"}


async def test_eventsock_client_idle_with_fast_pings(no_leaks: None) -> None:
    async with NodeServer("--ping-interval", "200", "--ping-timeout", "200") as node:
        client = eventsock.Client()
        reasons: list[str] = []

        @client.on("disconnect")
        def on_disconnect(reason: str) -> None:
            reasons.append(reason)

        async with client:
            await client.connect(node.url, auth=SECRET, timeout=STEP_TIMEOUT)
            # The subject of the test: the connection survives 1.5 s of idleness over
            # ~7 ping rounds, so c.wait() must still be pending when this times out.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.wait(), 1.5)
            assert client.connected
            assert await client.call("echo", "still here", timeout=STEP_TIMEOUT) == "still here"
            assert reasons == []
            assert [line for line in node.pending() if line.get("event") == "disconnect"] == []
        line = await node.expect("disconnect")
        assert line == {"event": "disconnect", "reason": "client namespace disconnect"}


async def test_eventsock_client_big_binary(node_server: NodeServer, no_leaks: None) -> None:
    payload = big_payload()
    assert len(payload) == BIG_LENGTH and payload[251] == 0 and payload[250] == 250
    async with eventsock.Client() as client:
        await client.connect(node_server.url, auth=SECRET, timeout=STEP_TIMEOUT)
        echoed = await client.call("echo", payload, timeout=STEP_TIMEOUT)
    assert type(echoed) is bytes
    assert len(echoed) == BIG_LENGTH
    assert echoed == payload
