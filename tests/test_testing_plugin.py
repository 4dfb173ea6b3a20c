"""eventsock.testing and its pytest plugin: the helpers against a real server, and the
fixtures in small user projects run by pytester in their own processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from importlib.metadata import entry_points
from typing import Any

import pytest

import eventsock
from eventsock.testing import Recorder, TestClient, TestServer, connect, serve

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(60)


def chat_server() -> eventsock.Server:
    server = eventsock.Server()

    @server.on("connect")
    async def joined(session: eventsock.Session) -> None:
        await session.emit("welcome", session.id)

    @server.on("say")
    async def say(session: eventsock.Session, text: str) -> None:
        await server.emit("said", session.id, text, skip=session.id)

    @server.on("add")
    def add(session: eventsock.Session, a: int, b: int) -> int:
        return a + b

    @server.on("find")
    def find(session: eventsock.Session, key: str) -> None:
        raise eventsock.RemoteError(f"no {key}", code="not_found", data={"key": key})

    return server


async def test_next_event_returns_each_event_once_in_order() -> None:
    async with serve(chat_server()) as running:
        alice = await running.connect()
        bob = await running.connect()
        # the welcome arrived before anyone asked: it counts
        assert await alice.next_event("welcome") == (alice.sid,)
        for text in ("one", "two", "three"):
            await alice.emit("say", text)
        assert await bob.next_event("said") == (alice.sid, "one")
        assert await bob.next_event("said") == (alice.sid, "two")
        assert await bob.next_event("said") == (alice.sid, "three")
        assert bob.received("said") == [(alice.sid, t) for t in ("one", "two", "three")]
        assert [r.event for r in bob.events.records] == ["welcome", "said", "said", "said"]
        # the server side saw the three, from alice's session
        assert running.received("say", sid=alice.sid) == [("one",), ("two",), ("three",)]
        assert running.received("say", sid=bob.sid) == []
        assert await running.next_event("say") == ("one",)
        assert running.events.records[0].sid == alice.sid


async def test_a_missing_event_fails_within_its_timeout_saying_what_came() -> None:
    async with serve(chat_server()) as running:
        client = await running.connect()
        await client.next_event("welcome")
        begin = time.monotonic()
        with pytest.raises(AssertionError) as failed:
            await client.next_event("said", timeout=0.3)
        elapsed = time.monotonic() - begin
        assert 0.3 <= elapsed < 2
        message = str(failed.value)
        assert "the client received no 'said' event within 0.3 s" in message
        assert "(1 earlier one(s)" not in message
        assert f"it received 1 event(s): welcome('{client.sid}',)" in message
        with pytest.raises(AssertionError, match=r"1 earlier one\(s\) already returned"):
            await client.next_event("welcome", timeout=0.05)
        with pytest.raises(AssertionError, match="the server received no 'nope' event on '/x'"):
            await running.next_event("nope", namespace="/x", timeout=0.05)


async def test_assert_received_waits_for_a_match_and_consumes_nothing() -> None:
    async with serve(chat_server()) as running:
        alice, bob = await running.connect(), await running.connect()
        waiting = asyncio.ensure_future(bob.assert_received("said", alice.sid, "second"))
        await alice.emit("say", "first")
        await alice.emit("say", "second")
        assert await waiting == (alice.sid, "second")
        assert await bob.assert_received("said") == (alice.sid, "first")  # any arguments
        assert await bob.next_event("said") == (alice.sid, "first")  # nothing was taken
        with pytest.raises(AssertionError) as failed:
            await bob.assert_received("said", alice.sid, "third", timeout=0.1)
        assert "no 'said' event with arguments" in str(failed.value)
        assert "'third'" in str(failed.value)


async def test_assert_not_received() -> None:
    async with serve(chat_server()) as running:
        alice, bob = await running.connect(), await running.connect()
        await alice.emit("say", "hello")
        await bob.next_event("said")
        # the sender is skipped: it never gets its own message
        begin = time.monotonic()
        await alice.assert_not_received("said", within=0.2)
        assert time.monotonic() - begin >= 0.2
        # one already there fails at once
        begin = time.monotonic()
        with pytest.raises(AssertionError, match=r"the client received said\("):
            await bob.assert_not_received("said", within=5)
        assert time.monotonic() - begin < 1
        await bob.assert_not_received("said", alice.sid, "other", within=0)  # others only
        # one that arrives while it watches fails it when it arrives, not at the end
        begin = time.monotonic()
        with pytest.raises(AssertionError, match="which it should not have"):
            await asyncio.gather(
                bob.assert_not_received("said", alice.sid, "late", within=10),
                alice.emit("say", "late"),
            )
        assert time.monotonic() - begin < 5


async def test_acks_are_recorded() -> None:
    async with serve(chat_server()) as running:
        client = await running.connect()
        assert await client.call("add", 2, 3) == 5
        with pytest.raises(eventsock.RemoteError, match="not_found"):
            await client.call("find", "key")
        ok, failed = client.acks
        assert (ok.event, ok.args, ok.namespace, ok.result, ok.error) == (
            "add",
            (2, 3),
            "/",
            5,
            None,
        )
        assert failed.event == "find"
        assert isinstance(failed.error, eventsock.RemoteError)
        assert failed.error.data == {"key": "key"}


async def test_clients_connect_with_auth_and_namespaces_and_are_disconnected_after() -> None:
    server = chat_server()
    seen: list[Any] = []
    server.on("connect", lambda session, auth: seen.append(auth), namespace="/room")
    server.on("ping", lambda session: "pong", namespace="/room")
    async with serve(server) as running:
        client = await running.connect(auth={"user": "ann"}, namespaces=["/", "/room"])
        assert seen == [{"user": "ann"}]
        assert await client.call("ping", namespace="/room") == "pong"
        assert client.acks[0].namespace == "/room"
        assert server.session_count == 2
        assert isinstance(client, eventsock.Client) and isinstance(client, TestClient)
        assert not client.reconnection  # test clients do not reconnect unless asked
    assert not client.connected
    assert running.clients == [client]
    with pytest.raises(RuntimeError, match="not running"):
        running.url  # noqa: B018


async def test_a_server_served_again_records_each_event_once() -> None:
    server = chat_server()
    for _ in range(3):
        async with serve(server) as running, connect(running.url) as client:
            await client.emit("say", "hi")
            assert await running.next_event("say") == ("hi",)
            await client.call("add", 1, 1)  # the say arrived before this ack was sent
            assert running.received("say") == [("hi",)]


async def test_recorder() -> None:
    recorder = Recorder()
    recorder(1)
    assert await recorder.wait(1) == [(1,)]
    waiting = asyncio.ensure_future(recorder.wait(3))
    recorder(2)
    recorder(3, "x")
    assert await waiting == [(1,), (2,), (3, "x")]
    with pytest.raises(AssertionError, match=r"expected 4 call\(s\) within 0.05 s, got 3"):
        await recorder.wait(4, timeout=0.05)


def test_test_server_checks_what_it_is_given() -> None:
    with pytest.raises(TypeError, match=r"expected an eventsock\.Server"):
        TestServer(object())  # type: ignore[arg-type]
    assert TestServer.__test__ is False and TestClient.__test__ is False


def test_the_plugin_is_registered_and_eventsock_needs_no_pytest() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("eventsock") == "eventsock.testing.plugin"
    code = (
        "import sys, eventsock, eventsock.testing, eventsock.cli;"
        "assert 'pytest' not in sys.modules, 'pytest imported'"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=30)


# -- the fixtures, in user projects -------------------------------------------------------

APP = """
import eventsock

def create_server():
    server = eventsock.Server()

    @server.on("connect")
    def joined(session, auth):
        session.data["user"] = (auth or {}).get("user", "anonymous")

    @server.on("say")
    async def say(session, text):
        await server.emit("said", session.data["user"], text, skip=session.id)

    @server.on("whoami")
    def whoami(session):
        return session.data["user"]

    return server

server = create_server()
"""

TESTS = """
import pytest

pytestmark = pytest.mark.asyncio  # strict mode: pytest-asyncio's default

async def test_fixtures(eventsock_server, eventsock_client, eventsock_connect):
    assert eventsock_server.url.startswith("http://127.0.0.1:")
    assert await eventsock_client.call("whoami") == "anonymous"
    ann = await eventsock_connect(auth={"user": "ann"})
    assert await ann.call("whoami") == "ann"
    await ann.emit("say", "hello")
    assert await eventsock_client.next_event("said") == ("ann", "hello")
    await ann.assert_not_received("said")
    assert await eventsock_server.next_event("say", sid=ann.sid) == ("hello",)

async def test_missing_event(eventsock_client):
    await eventsock_client.next_event("said", timeout=0.3)

async def test_unwanted_event(eventsock_client, eventsock_connect):
    ann = await eventsock_connect(auth={"user": "ann"})
    await ann.emit("say", "oops")
    await eventsock_client.assert_not_received("said", within=20)
"""


def test_fixtures_in_a_strict_mode_project(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    pytester.makepyfile(app=APP)
    pytester.makeconftest(
        "import pytest, app\n\n@pytest.fixture\ndef eventsock_app():\n"
        "    return app.create_server()\n"
    )
    pytester.makepyfile(test_chat=TESTS)
    begin = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: the client received no 'said' event within 0.3 s;"
            " it received nothing at all",
            "*AssertionError: the client received said('ann', 'oops'), which it should not have",
        ]
    )
    # the failures point at the test's line, not inside eventsock
    result.stdout.fnmatch_lines(['*await eventsock_client.next_event("said", timeout=0.3)'])
    # the unwanted event failed when it came, not after its 20 s
    assert time.monotonic() - begin < 15


def test_the_app_named_in_the_ini_file_in_an_auto_mode_project(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\neventsock_app = app:server\neventsock_timeout = 0.5\n"
    )
    pytester.makepyfile(app=APP)
    # one module-level server, served by each test in its own event loop
    pytester.makepyfile(
        test_again="""
async def test_first(eventsock_client):
    assert await eventsock_client.call("whoami") == "anonymous"
    assert eventsock_client.timeout == 0.5

async def test_second(eventsock_client):
    assert await eventsock_client.call("whoami") == "anonymous"
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_without_an_app_the_fixture_says_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        test_nothing="async def test_it(eventsock_client):\n    pass\n",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*define a fixture named eventsock_app that returns it*"])
