"""Reconnection, offline buffering and connection state recovery, against real
sockets with faults injected by a loopback proxy (tests/faults.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import eventsock
from eventsock import Recovery, Session

from .faults import FaultProxy
from .helpers import Recorder, serving

pytestmark = pytest.mark.timeout(30)

FAST = {"reconnection_delay": 0.01, "reconnection_delay_max": 0.05, "randomization_factor": 0}


def fast_client(**options: Any) -> eventsock.Client:
    return eventsock.Client(**{**FAST, **options})


class Lifecycle:
    """Records a client's lifecycle events, each in a queue."""

    def __init__(self, client: eventsock.Client, namespace: str = "/") -> None:
        self.events: dict[str, asyncio.Queue[tuple[Any, ...]]] = {}
        for name in (
            "connect",
            "disconnect",
            "reconnect_attempt",
            "reconnect",
            "reconnect_failed",
            "connect_error",
        ):
            queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
            self.events[name] = queue
            client.on(name, lambda *args, q=queue: q.put_nowait(args), namespace=namespace)

    async def next(self, name: str, timeout: float = 5.0) -> tuple[Any, ...]:
        return await asyncio.wait_for(self.events[name].get(), timeout)

    def count(self, name: str) -> int:
        return self.events[name].qsize()


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[eventsock.Server, str]]:
    server = eventsock.Server()
    server.on("echo", lambda s, x: x)
    async with serving(server) as url:
        yield server, url


async def test_reconnects_after_a_cut_and_rejoins_every_namespace(no_leaks: None) -> None:
    server = eventsock.Server()
    server.on("echo", lambda s, x: x)
    server.on("where", lambda s: s.namespace, namespace="/chat")
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = fast_client()
        root, chat = Lifecycle(client, "/"), Lifecycle(client, "/chat")
        await client.connect(proxy.url, namespaces=["/", "/chat"], timeout=5)
        await root.next("connect")
        await chat.next("connect")
        first_sid = client.sid
        assert proxy.cut() == 1
        assert (await root.next("disconnect"))[0] in ("transport close", "transport error")
        assert await root.next("reconnect_attempt") == (1,)
        assert await root.next("reconnect") == (1,)
        await root.next("connect")
        await chat.next("connect")
        assert client.connected
        assert client.namespaces == {"/", "/chat"}
        assert client.sid != first_sid  # no recovery on this server: a new session
        assert not client.recovered
        assert await client.call("echo", "back") == "back"
        assert await client.call("where", namespace="/chat") == "/chat"
        await client.disconnect()


async def test_no_reconnection_after_own_disconnect_or_server_disconnect(no_leaks: None) -> None:
    server = eventsock.Server()
    server.on("kick", lambda s: asyncio.ensure_future(s.disconnect()))
    async with serving(server) as url:
        client = fast_client()
        events = Lifecycle(client)
        await client.connect(url, timeout=5)
        await client.disconnect()
        assert await events.next("disconnect") == ("client disconnect",)
        await client.connect(url, timeout=5)
        await client.emit("kick")
        assert await events.next("disconnect") == ("server disconnect",)
        await asyncio.wait_for(client.wait(), 5)
        assert not client.reconnecting
        assert events.count("reconnect_attempt") == 0
        await client.disconnect()


async def test_no_reconnection_after_a_connect_error(no_leaks: None) -> None:
    server = eventsock.Server()
    allowed = [True]

    @server.on("connect")
    def on_connect(session: Session) -> None:
        if not allowed[0]:
            raise eventsock.ConnectionRefused("go away", data={"why": "banned"})

    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = fast_client()
        events = Lifecycle(client)
        await client.connect(proxy.url, timeout=5)
        allowed[0] = False
        proxy.cut()
        assert await events.next("reconnect_attempt") == (1,)
        assert await events.next("connect_error") == ("go away", {"why": "banned"})
        await asyncio.wait_for(client.wait(), 5)
        assert not client.reconnecting
        assert events.count("reconnect_attempt") == 0
        await client.disconnect()


async def test_gives_up_after_the_configured_attempts(no_leaks: None) -> None:
    server = eventsock.Server()
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = fast_client(reconnection_attempts=3)
        events = Lifecycle(client)
        await client.connect(proxy.url, timeout=5)
        proxy.refuse = True
        proxy.cut()
        for n in (1, 2, 3):
            assert await events.next("reconnect_attempt") == (n,)
        assert await events.next("reconnect_failed") == ()
        await asyncio.wait_for(client.wait(), 5)
        assert not client.reconnecting
        with pytest.raises(eventsock.NotConnected):
            await client.emit("x")
        await client.disconnect()


async def test_connect_retry_waits_for_the_server(no_leaks: None) -> None:
    server = eventsock.Server()
    server.on("echo", lambda s, x: x)
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        proxy.refuse = True
        with pytest.raises(eventsock.ConnectionFailed):
            await fast_client().connect(proxy.url, timeout=5)  # no retry: fails at once

        client = fast_client()
        events = Lifecycle(client)
        connecting = asyncio.ensure_future(client.connect(proxy.url, timeout=5, retry=True))
        assert await events.next("reconnect_attempt") == (1,)
        assert await events.next("reconnect_attempt") == (2,)
        proxy.refuse = False
        await asyncio.wait_for(connecting, 5)
        assert await client.call("echo", "finally") == "finally"
        await client.disconnect()

        client = fast_client(reconnection_attempts=2)
        proxy.refuse = True
        with pytest.raises(eventsock.ConnectionFailed):
            await client.connect(proxy.url, timeout=5, retry=True)
        await client.disconnect()


async def test_auth_and_headers_are_evaluated_on_every_attempt(no_leaks: None) -> None:
    server = eventsock.Server()
    seen: list[tuple[str, str]] = []

    @server.on("connect")
    def on_connect(session: Session, auth: dict[str, Any]) -> None:
        seen.append((auth["token"], session.headers["X-Attempt"]))

    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        tokens = iter(f"token{i}" for i in range(100))
        attempts = iter(range(100))

        async def fresh_token() -> dict[str, Any]:
            return {"token": next(tokens)}

        client = fast_client()
        events = Lifecycle(client)
        await client.connect(
            proxy.url,
            auth=fresh_token,
            headers=lambda: {"X-Attempt": str(next(attempts))},
            timeout=5,
        )
        proxy.cut()
        await events.next("reconnect")
        await client.disconnect()
    assert seen == [("token0", "0"), ("token1", "1")]


async def test_emit_while_reconnecting_is_buffered_and_flushed_before_connect(
    no_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    server = eventsock.Server()
    received = Recorder()
    server.on("note", lambda s, text: received(text))
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = fast_client(buffer_size=3)
        events = Lifecycle(client)

        @client.on("connect")
        async def hello() -> None:
            await client.emit("note", "from the connect handler")

        await client.connect(proxy.url, timeout=5)
        await received.wait(1)
        proxy.refuse = True
        proxy.cut()
        await events.next("reconnect_attempt")
        assert client.reconnecting
        for i in range(4):
            await client.emit("note", f"offline {i}")  # buffer of 3: "offline 0" dropped
        await client.emit("note", "volatile", volatile=True)  # dropped, never buffered
        assert client.buffered == 3
        assert client.dropped == 2
        assert "oldest buffered event dropped" in caplog.text
        proxy.refuse = False
        await events.next("reconnect")
        texts = [text for (text,) in await received.wait(5)]
        assert texts == [
            "from the connect handler",
            "offline 1",
            "offline 2",
            "offline 3",
            "from the connect handler",
        ]
        assert client.buffered == 0
        await client.disconnect()


async def test_a_full_buffer_can_raise(no_leaks: None) -> None:
    server = eventsock.Server()
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = fast_client(buffer_size=1, buffer_overflow="raise")
        events = Lifecycle(client)
        await client.connect(proxy.url, timeout=5)
        proxy.refuse = True
        proxy.cut()
        await events.next("reconnect_attempt")
        await client.emit("x", 1)
        with pytest.raises(eventsock.SendBufferFull):
            await client.emit("x", 2)
        await client.disconnect()
        assert client.buffered == 0
        assert client.dropped == 1  # what was buffered when it gave up is counted


async def test_call_while_reconnecting_waits_within_its_timeout(no_leaks: None) -> None:
    server = eventsock.Server()
    server.on("echo", lambda s, x: x)
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = fast_client()
        events = Lifecycle(client)
        await client.connect(proxy.url, timeout=5)
        proxy.refuse = True
        proxy.cut()
        await events.next("reconnect_attempt")
        with pytest.raises(eventsock.AckTimeout, match="did not reconnect"):
            await client.call("echo", "too late", timeout=0.05)
        waiting = asyncio.ensure_future(client.call("echo", "waited", timeout=5))
        await events.next("reconnect_attempt")
        assert not waiting.done()
        proxy.refuse = False
        assert await asyncio.wait_for(waiting, 5) == "waited"
        await client.disconnect()


async def test_calls_in_flight_fail_fast_and_nothing_remains_after_giving_up(
    no_leaks: None,
) -> None:
    server = eventsock.Server()
    started = asyncio.Event()

    @server.on("slow")
    async def slow(session: Session) -> None:
        started.set()
        await asyncio.Event().wait()

    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = fast_client(reconnection_attempts=2)
        events = Lifecycle(client)
        await client.connect(proxy.url, timeout=5)
        calls = [asyncio.ensure_future(client.call("slow", timeout=30)) for _ in range(3)]
        await asyncio.wait_for(started.wait(), 5)
        proxy.refuse = True
        begin = time.monotonic()
        proxy.cut()
        for call in calls:
            with pytest.raises(eventsock.ConnectionClosed):
                await asyncio.wait_for(call, 5)
        elapsed = time.monotonic() - begin
        assert elapsed < 1.0, f"calls took {elapsed:.3f} s to fail; their timeout is 30 s"
        await client.emit("queued while offline")
        await events.next("reconnect_failed")
        await asyncio.wait_for(client.wait(), 5)
        link = client._link
        assert link is not None
        assert link.pending_acks == 0
        assert client.buffered == 0
        assert client.dropped == 1
        assert not client._tasks
        assert not client._cleanup
        await client.disconnect()


async def test_stalled_connection_is_detected_on_both_sides() -> None:
    server = eventsock.Server(ping_interval=0.1, ping_timeout=0.1)
    server_reasons: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    server.on("disconnect", lambda s, reason: server_reasons.put_nowait((reason, time.monotonic())))
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = eventsock.Client(reconnection=False)
        client_reasons: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
        client.on(
            "disconnect", lambda reason: client_reasons.put_nowait((reason, time.monotonic()))
        )
        await client.connect(proxy.url, timeout=5)
        begin = time.monotonic()
        proxy.stall()
        reason, at = await asyncio.wait_for(client_reasons.get(), 5)
        assert reason == "ping timeout"
        assert at - begin < 0.2 + 0.15  # pingInterval + pingTimeout, plus scheduling slack
        reason, at = await asyncio.wait_for(server_reasons.get(), 5)
        assert reason == "ping timeout"
        assert at - begin < 0.2 + 0.15
        proxy.flow()
        await client.disconnect()


# -- connection state recovery -----------------------------------------------------------


def recovery_server(**options: Any) -> eventsock.Server:
    server = eventsock.Server(recovery=Recovery(**options))

    @server.on("subscribe")
    async def subscribe(session: Session, room: str) -> bool:
        await session.enter_room(room)
        session.data["subscribed"] = room
        return True

    return server


async def test_server_restart_during_a_stream_loses_nothing(no_leaks: None) -> None:
    server = recovery_server(max_disconnection=30)
    port = await server.start("127.0.0.1", 0)
    try:
        async with FaultProxy(port) as proxy:
            client = fast_client()
            events = Lifecycle(client)
            received: list[int] = []
            got = {n: asyncio.Event() for n in (1, 300, 1000)}

            @client.on("seq")
            def on_seq(n: int) -> None:  # exactly one argument: the offset is not passed
                received.append(n)
                if len(received) in got:
                    got[len(received)].set()

            await client.connect(proxy.url, timeout=5)
            assert await client.call("subscribe", "feed") is True
            sid = client.sid
            for n in range(300):
                await server.emit("seq", n, to="feed")
            await asyncio.wait_for(got[300].wait(), 10)

            # restart: every session ends with "server shutting down" (recoverable)
            await server.shutdown()
            proxy.target_port = await server.start("127.0.0.1", 0)
            for n in range(300, 600):  # emitted while the client is away
                await server.emit("seq", n, to="feed")
            await events.next("reconnect", timeout=10)
            for n in range(600, 1000):  # live again
                await server.emit("seq", n, to="feed")
            await asyncio.wait_for(got[1000].wait(), 10)

            assert received == list(range(1000))  # each exactly once, in order
            assert client.sid == sid
            assert client.recovered
            assert server.rooms(sid) == {sid, "feed"}
            session = server.get_session(sid)
            assert session is not None
            assert session.recovered
            assert session.data == {"subscribed": "feed"}
            # nothing was replayed twice: one more round trip, and the count holds
            assert await client.call("subscribe", "feed") is True
            assert len(received) == 1000
            await client.disconnect()
    finally:
        await server.shutdown()


async def test_a_cut_longer_than_the_window_gives_a_fresh_session(no_leaks: None) -> None:
    server = recovery_server(max_disconnection=5)
    now = [1000.0]
    server._clock = lambda: now[0]
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = fast_client()
        events = Lifecycle(client)
        ticks = Recorder()
        client.on("tick", ticks)
        await client.connect(proxy.url, timeout=5)
        await client.call("subscribe", "feed")
        await server.emit("tick", 1, to="feed")
        await ticks.wait(1)
        old_sid = client.sid
        proxy.refuse = True
        proxy.cut()
        await events.next("reconnect_attempt")
        await server.emit("tick", 2, to="feed")  # missed, and beyond recovery soon
        now[0] += 6  # the window passes (a clock the test controls: no waiting)
        proxy.refuse = False
        await events.next("reconnect")
        assert not client.recovered
        assert client.sid != old_sid
        session = server.get_session(client.sid or "")
        assert session is not None
        assert not session.recovered
        assert session.data == {}
        assert server.rooms(session.id) == {session.id}
        assert ticks.calls == [(1,)]
        await client.disconnect()


async def test_recovery_without_any_offset_yet(no_leaks: None) -> None:
    # The client received no event before the drop: it presents only its pid, and the
    # server replays from the start of the session (socket.io cannot: pitfall 9).
    server = recovery_server()
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = fast_client()
        events = Lifecycle(client)
        ticks = Recorder()
        client.on("tick", ticks)
        await client.connect(proxy.url, timeout=5)
        sid = client.sid
        assert sid is not None
        proxy.refuse = True
        proxy.cut()
        await events.next("reconnect_attempt")
        await server.emit("tick", "while away", to=sid)
        proxy.refuse = False
        await events.next("reconnect")
        assert client.recovered
        assert client.sid == sid
        assert await ticks.wait(1) == [("while away",)]
        await client.disconnect()


async def test_replayed_events_come_before_the_connect_handler(no_leaks: None) -> None:
    server = recovery_server()
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        client = fast_client()
        events = Lifecycle(client)
        order: list[str] = []
        client.on("tick", lambda x: order.append(f"tick {x}"))
        client.on("connect", lambda: order.append("connect"))
        await client.connect(proxy.url, timeout=5)
        await client.call("subscribe", "feed")
        await server.emit("tick", 0, to="feed")
        proxy.refuse = True
        proxy.cut()
        await events.next("reconnect_attempt")
        await server.emit("tick", 1, to="feed")
        await server.emit("tick", 2, to="feed", volatile=True)  # not kept: not replayed
        await server.emit("tick", 3)
        proxy.refuse = False
        await events.next("reconnect")
        await client.call("subscribe", "feed")  # a round trip: all frames have arrived
        assert order == ["connect", "tick 0", "tick 1", "tick 3", "connect"]
        await client.disconnect()


async def test_calls_and_volatile_events_carry_no_stray_arguments(no_leaks: None) -> None:
    server = recovery_server()
    joined = Recorder()
    server.on("connect", lambda s: joined(s))
    async with serving(server) as url:
        client = fast_client()
        seen = Recorder()
        client.on("one", lambda a: seen("one", a))
        client.on("two", lambda a, b: seen("two", a, b))
        client.on("ask", lambda q: f"answer to {q}")
        await client.connect(url, timeout=5)
        ((session,),) = await joined.wait()
        await session.emit("one", "a string last")
        await session.emit("two", 1, "volatile string", volatile=True)
        assert await session.call("ask", "q") == "answer to q"
        assert await seen.wait(2) == [("one", "a string last"), ("two", 1, "volatile string")]
        await client.disconnect()


async def test_recovery_is_logged_off_for_unknown_pids(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "eventsock")
    server = recovery_server()
    async with serving(server) as url:
        client = fast_client()
        await client.connect(url, timeout=5)
        # a made-up pid: a fresh session, no error
        client._pids["/"] = "not-a-real-pid"
        client._offsets["/"] = "nope"
        await client.disconnect()
        await client.connect(url, timeout=5)
        assert not client.recovered
        await client.disconnect()


async def test_a_failing_auth_callable_does_not_end_reconnection(
    no_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    server = eventsock.Server()
    server.on("echo", lambda s, x: x)
    async with serving(server) as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        calls = [0]

        def flaky_auth() -> dict[str, Any]:
            calls[0] += 1
            if calls[0] == 2:
                raise RuntimeError("token service down")
            return {"n": calls[0]}

        client = fast_client()
        events = Lifecycle(client)
        await client.connect(proxy.url, auth=flaky_auth, timeout=5)
        proxy.cut()
        assert await events.next("reconnect") == (2,)  # attempt 1 raised, attempt 2 worked
        assert await client.call("echo", "ok") == "ok"
        await client.disconnect()
    assert "token service down" in caplog.text
