"""Connection middleware (server.use), error handlers (on_error) and per-event options
(max_payload, concurrency), end to end."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import eventsock
from eventsock import Session

from .helpers import Recorder, connected, serving, suspend_once

pytestmark = pytest.mark.timeout(30)


async def test_connection_middleware_runs_in_order_before_connect(no_leaks: None) -> None:
    server = eventsock.Server()
    order: list[str] = []

    @server.use
    def authenticate(session: Session, auth: dict[str, Any]) -> None:
        order.append("authenticate")
        if auth.get("token") != "good":
            raise eventsock.ConnectionRefused("bad token", data={"hint": "log in"})
        session.data["user"] = "ada"

    @server.use
    async def load_profile(session: Session, auth: dict[str, Any]) -> None:
        await suspend_once()
        order.append("load_profile")
        session.data["profile"] = {"lang": "en"}

    @server.use(namespace="/admin")
    def admins_only(session: Session, auth: dict[str, Any]) -> bool:
        order.append("admins_only")
        return auth.get("admin") is True  # False refuses

    @server.on("connect")
    def connect(session: Session, auth: dict[str, Any]) -> None:
        order.append(f"connect {session.namespace} as {session.data['user']}")

    @server.on("whoami")
    def whoami(session: Session) -> dict[str, Any]:
        return dict(session.data)

    server.on("ping", lambda session: "pong", namespace="/admin")

    async with serving(server) as url:
        refused = eventsock.Client(reconnection=False)
        with pytest.raises(eventsock.ConnectionRefused) as raised:
            await refused.connect(url, auth={"token": "bad"}, timeout=5)
        assert (raised.value.message, raised.value.data) == ("bad token", {"hint": "log in"})
        assert order == ["authenticate"]
        order.clear()
        async with connected(url, auth={"token": "good"}) as client:
            assert await client.call("whoami") == {"user": "ada", "profile": {"lang": "en"}}
        assert order == ["authenticate", "load_profile", "connect / as ada"]
        order.clear()
        not_admin = eventsock.Client(reconnection=False)
        with pytest.raises(eventsock.ConnectionRefused, match="rejected"):
            await not_admin.connect(url, auth={"token": "good"}, namespaces=["/admin"], timeout=5)
        assert order == ["authenticate", "load_profile", "admins_only"]
        async with connected(
            url, auth={"token": "good", "admin": True}, namespaces=["/admin"]
        ) as admin:
            assert await admin.call("ping", namespace="/admin") == "pong"
    assert server.session_count == 0


async def test_a_failing_middleware_refuses_without_details(
    caplog: pytest.LogCaptureFixture, no_leaks: None
) -> None:
    server = eventsock.Server()

    @server.use
    def broken(session: Session, auth: dict[str, Any]) -> None:
        raise RuntimeError("database down")

    async with serving(server) as url:
        client = eventsock.Client(reconnection=False)
        with (
            caplog.at_level(logging.ERROR, logger="eventsock"),
            pytest.raises(eventsock.ConnectionRefused) as raised,
        ):
            await client.connect(url, timeout=5)
        assert raised.value.message == "Internal server error"
        assert "database down" in caplog.text


def test_middleware_and_error_handlers_are_checked_at_registration() -> None:
    server = eventsock.Server()
    with pytest.raises(eventsock.InvalidHandler):
        server.use(lambda session: None)  # no room for auth
    with pytest.raises(eventsock.InvalidHandler, match="plain function"):

        @server.on_error
        async def async_handler(exc: Exception, session: Session, event: str) -> None: ...

    with pytest.raises(eventsock.InvalidHandler):
        server.on_error(lambda exc: None)
    with pytest.raises(eventsock.InvalidHandler, match="async handlers"):
        server.on("sync", lambda session: None, concurrency=2)
    with pytest.raises(eventsock.InvalidHandler, match="max_payload"):
        server.on("bad", lambda session: None, max_payload=0)
    with pytest.raises(eventsock.InvalidHandler, match="lifecycle"):
        server.on("connect", lambda session: None, max_payload=10)


async def test_error_handlers_see_failures_and_may_change_the_answer(no_leaks: None) -> None:
    server = eventsock.Server()
    seen: list[tuple[str, str, str]] = []

    class Unavailable(Exception):
        pass

    @server.on_error(namespace="/")
    def translate(exc: Exception, session: Session, event: str) -> Any:
        seen.append(("ns", type(exc).__name__, event))
        if isinstance(exc, Unavailable):
            return eventsock.RemoteError("try again later", code="unavailable")
        return None

    @server.on_error
    def audit(exc: Exception, session: Session, event: str) -> None:
        assert isinstance(session, Session)
        seen.append(("all", type(exc).__name__, event))
        raise RuntimeError("an error handler that fails is logged, nothing more")

    @server.on("fetch")
    async def fetch(session: Session) -> None:
        await suspend_once()
        raise Unavailable

    @server.on("crash")
    def crash(session: Session) -> None:
        raise KeyError("x")

    server.on("echo", lambda session, value: value)

    async with serving(server) as url, connected(url) as client:
        with pytest.raises(eventsock.RemoteError) as raised:
            await client.call("fetch")
        assert (raised.value.code, raised.value.message) == ("unavailable", "try again later")
        with pytest.raises(eventsock.InternalError):
            await client.call("crash")
        await client.emit("crash")  # no ack: the handlers run all the same
        assert await client.call("echo", "after") == "after"  # the emit was handled
    assert seen == [
        ("ns", "Unavailable", "fetch"),  # translate answered: audit is not asked
        ("ns", "KeyError", "crash"),
        ("all", "KeyError", "crash"),
        ("ns", "KeyError", "crash"),
        ("all", "KeyError", "crash"),
    ]


async def test_client_error_handlers(no_leaks: None) -> None:
    server = eventsock.Server()
    seen = Recorder()
    async with serving(server) as url:
        client = eventsock.Client()

        @client.on_error
        def on_error(exc: Exception, event: str) -> eventsock.RemoteError:
            seen(type(exc).__name__, event)
            return eventsock.RemoteError("refused by the client", code="client_refused")

        @client.on("question")
        def question() -> None:
            raise ValueError("no")

        await client.connect(url, timeout=5)
        with pytest.raises(eventsock.RemoteError, match="client_refused"):
            await server.call("question", to=client.sid or "", timeout=5)
        assert seen.calls == [("ValueError", "question")]
        await client.disconnect()


async def test_max_payload_per_event(no_leaks: None) -> None:
    server = eventsock.Server()
    got = Recorder()

    @server.on("note", max_payload=100)
    def note(session: Session, text: str) -> int:
        got(text)
        return len(text)

    async with serving(server) as url, connected(url) as client:
        assert await client.call("note", "short") == 5
        with pytest.raises(eventsock.RemoteError) as raised:
            await client.call("note", "x" * 200)
        assert raised.value.code == "payload_too_large"
        assert raised.value.data["limit"] == 100
        assert raised.value.data["size"] > 200
        await client.emit("note", "y" * 200)  # dropped, with a warning
        assert await client.call("note", "again") == 5
    assert got.calls == [("short",), ("again",)]


async def test_concurrency_limit_per_event(no_leaks: None) -> None:
    server = eventsock.Server()
    running = 0
    most = 0
    release = asyncio.Event()
    entered = Recorder()

    server.on("echo", lambda session, value: value)

    @server.on("work", concurrency=2)
    async def work(session: Session, n: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        entered(n)
        try:
            await release.wait()
        finally:
            running -= 1
        return n

    async with serving(server) as url, connected(url) as client:
        calls = [asyncio.ensure_future(client.call("work", n, timeout=10)) for n in range(6)]
        await entered.wait(2)
        # after a round trip every call has reached the server, and only two run
        assert await client.call("echo", "sync") == "sync"
        assert running == 2
        assert len(entered.calls) == 2
        release.set()
        assert await asyncio.gather(*calls) == list(range(6))
    assert most == 2
    # the first two started in arrival order, the others waited their turn
    assert [args[0] for args in entered.calls][:2] == [0, 1]


async def test_incoming_event_middleware_transforms_and_rejects(no_leaks: None) -> None:
    server = eventsock.Server()
    order: list[str] = []

    @server.incoming
    def trim(session: Session, event: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        order.append(f"trim {event}")
        return tuple(a.strip() if isinstance(a, str) else a for a in args)

    @server.incoming
    def guard(session: Session, event: str, args: tuple[Any, ...]) -> None:
        order.append(f"guard {event}")
        if event.startswith("admin_") and not session.data.get("admin"):
            raise eventsock.RemoteError("admins only", code="forbidden")

    @server.incoming(namespace="/other")
    def other_only(session: Session, event: str, args: tuple[Any, ...]) -> list[Any]:
        return [*args, "tagged"]

    server.on("echo", lambda session, *args: args)
    server.on("admin_reset", lambda session: "reset")
    server.on("echo", lambda session, *args: args, namespace="/other")

    async with serving(server) as url, connected(url, namespaces=["/", "/other"]) as client:
        assert await client.call("echo", "  padded  ", 3) == ("padded", 3)
        assert order == ["trim echo", "guard echo"]
        with pytest.raises(eventsock.RemoteError, match="forbidden"):
            await client.call("admin_reset")
        await client.emit("admin_reset")  # rejected, with nobody to tell
        assert await client.call("echo", " x ", namespace="/other") == ("x", "tagged")
        # a middleware that breaks is an internal error for the caller
        server._incoming.append((None, lambda session, event, args: 42))
        with pytest.raises(eventsock.InternalError):
            await client.call("echo", 1)


async def test_outgoing_event_middleware_transforms_and_rejects(no_leaks: None) -> None:
    server = eventsock.Server()
    received = Recorder()

    @server.outgoing
    def stamp(event: str, args: tuple[Any, ...], namespace: str) -> tuple[Any, ...] | None:
        if event == "secret":
            raise PermissionError("not to be sent")
        return (*args, "from server") if event == "news" else None

    server.on("connect", lambda session: None)

    async with serving(server) as url:
        client = eventsock.Client()
        client.on("news", received)
        client.on("question", lambda text: f"answer to {text}")

        @client.outgoing
        def polite(event: str, args: tuple[Any, ...], namespace: str) -> list[Any]:
            return [f"please {a}" if isinstance(a, str) else a for a in args]

        server.on("ask", lambda session, text: text)
        await client.connect(url, timeout=5)
        session = next(iter(server._sessions.values()))
        await server.emit("news", "hello")
        await session.emit("news", "to you")
        assert await client.call("ask", "help") == "please help"
        assert await session.call("question", "why", timeout=5) == "answer to why"
        assert await server.call("question", "how", to=session.id, timeout=5) == "answer to how"
        with pytest.raises(PermissionError):
            await server.emit("secret", 1)
        with pytest.raises(PermissionError):
            await session.call("secret", timeout=5)
        await received.wait(2)
        assert received.calls == [("hello", "from server"), ("to you", "from server")]
        await client.disconnect()


def test_event_middleware_is_checked_at_registration() -> None:
    server = eventsock.Server()
    with pytest.raises(eventsock.InvalidHandler, match="plain function"):

        @server.incoming
        async def slow(session: Session, event: str, args: tuple[Any, ...]) -> None: ...

    with pytest.raises(eventsock.InvalidHandler):
        server.outgoing(lambda event: None)


async def test_error_handlers_registered_later_apply_to_open_connections(
    no_leaks: None,
) -> None:
    server = eventsock.Server()

    @server.on("fail")
    def fail(session: Session) -> None:
        raise LookupError("gone")

    async with serving(server) as url, connected(url) as client:
        with pytest.raises(eventsock.InternalError):
            await client.call("fail")
        server.on_error(
            lambda exc, session, event: eventsock.RemoteError("not found", code="not_found")
        )
        with pytest.raises(eventsock.RemoteError, match="not_found"):
            await client.call("fail")
