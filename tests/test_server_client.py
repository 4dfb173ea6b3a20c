"""Server and client over real WebSockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import eventsock
from eventsock import Session

from .helpers import Recorder, connected, serving, suspend_once
from .raw import RawPeer, connections_done

pytestmark = pytest.mark.timeout(30)


async def test_call_returns_the_handler_value_and_args_arrive_as_sent(no_leaks: None) -> None:
    server = eventsock.Server()
    seen: list[tuple[Any, ...]] = []

    @server.on("add")
    async def add(session: Session, a: int, b: int) -> int:
        seen.append((a, b))
        return a + b

    @server.on("pair")
    def pair(session: Session, *args: Any) -> tuple[Any, ...]:
        return args

    @server.on("nothing")
    def nothing(session: Session) -> None:
        return None

    @server.on("listy")
    def listy(session: Session, items: list[int]) -> list[int]:
        return items

    async with serving(server) as url, connected(url) as client:
        assert await client.call("add", 2, 3) == 5
        assert seen == [(2, 3)]
        assert await client.call("pair", "a", b"\x00", {"k": [1, None]}) == (
            "a",
            b"\x00",
            {"k": [1, None]},
        )
        assert await client.call("nothing") is None
        # a list is one argument, never spread into several
        assert await client.call("listy", [1, 2]) == [1, 2]


async def test_event_decorator_catch_all_and_namespaces() -> None:
    server = eventsock.Server()
    catch = Recorder()

    @server.event
    def hello(session: Session, name: str) -> str:
        return f"hello {name}"

    @server.on("*")
    def anything(session: Session, event: str, *args: Any) -> str:
        catch(event, *args)
        return "caught"

    @server.on("where", namespace="/room")
    def where(session: Session) -> str:
        return session.namespace

    async with serving(server) as url:
        client = eventsock.Client()
        async with connected(url, client, namespaces=["/", "/room"]):
            assert await client.call("hello", "bob") == "hello bob"
            assert await client.call("unknown", 1, 2) == "caught"
            assert catch.calls == [("unknown", 1, 2)]
            assert await client.call("where", namespace="/room") == "/room"
            assert client.get_sid("/room") != client.sid
            assert client.namespaces == {"/", "/room"}


async def test_class_based_namespaces_on_both_sides() -> None:
    server = eventsock.Server()
    events = Recorder()

    class Chat(eventsock.Namespace):
        def on_connect(self, session: Session, auth: dict[str, Any]) -> None:
            session.data["user"] = auth["user"]

        async def on_say(self, session: Session, text: str) -> str:
            await self.emit("said", session.data["user"], text, namespace=self.namespace)
            return "ok"

    class ChatClient(eventsock.Namespace):
        def on_said(self, user: str, text: str) -> None:
            events(user, text)

    server.register(Chat("/chat"))
    async with serving(server) as url:
        client = eventsock.Client()
        client.register(ChatClient("/chat"))
        async with connected(url, client, auth={"user": "ann"}):
            assert client.namespaces == {"/chat"}
            assert await client.call("say", "hi", namespace="/chat") == "ok"
            assert await events.wait() == [("ann", "hi")]


def test_signatures_are_checked_at_registration() -> None:
    server = eventsock.Server()
    client = eventsock.Client()
    with pytest.raises(eventsock.InvalidHandler, match="the session first"):
        server.on("x", lambda: None)
    with pytest.raises(eventsock.InvalidHandler, match="keyword-only"):

        @server.on("y")
        def needs_kw(session: Session, *, flag: bool) -> None: ...

    with pytest.raises(eventsock.InvalidHandler, match="'connect'"):

        @server.on("connect")
        def too_many(session: Session, auth: Any, extra: Any) -> None: ...

    with pytest.raises(eventsock.InvalidHandler, match="'connect'"):

        @client.on("connect")
        def client_connect(extra: Any) -> None: ...

    with pytest.raises(eventsock.InvalidHandler, match="at least 2"):
        server.on("*", lambda session: None)
    with pytest.raises(eventsock.InvalidHandler, match="not callable"):
        server.on("z", 3)  # type: ignore[call-overload]
    with pytest.raises(eventsock.InvalidHandler, match="namespace"):
        server.on("z", lambda s: None, namespace="chat")
    assert issubclass(eventsock.InvalidHandler, TypeError)


async def test_wrong_argument_count_is_logged_not_called(caplog: pytest.LogCaptureFixture) -> None:
    server = eventsock.Server()
    calls = Recorder()

    @server.on("one")
    def one(session: Session, a: int) -> None:
        calls(a)

    @server.on("ping")
    def ping(session: Session) -> str:
        return "pong"

    async with serving(server) as url, connected(url) as client:
        await client.emit("one", 1, 2)
        assert await client.call("ping") == "pong"  # after the bad event was handled
        assert calls.calls == []
        assert "'one' on '/' dropped: it has 2 argument(s), its handler takes 1" in caplog.text


async def test_server_calls_the_client() -> None:
    server = eventsock.Server()
    joined = Recorder()

    @server.on("connect")
    def on_connect(session: Session) -> None:
        joined(session.id)

    async with serving(server) as url:
        client = eventsock.Client()

        @client.on("double")
        async def double(x: int) -> int:
            return x * 2

        @client.on("two")
        def two() -> tuple[int, str]:
            return 1, "b"

        async with connected(url, client):
            ((sid,),) = await joined.wait()
            assert sid == client.sid
            assert await server.call("double", 21, to=sid) == 42
            assert await server.call("two", to=sid) == (1, "b")
            session = server.get_session(sid)
            assert session is not None
            assert await session.call("double", 5, timeout=5) == 10


async def test_a_handler_may_call_back_its_own_peer() -> None:
    server = eventsock.Server()

    @server.on("relay")
    async def relay(session: Session, x: int) -> int:
        # the reader is not blocked while this handler awaits the client's ack
        return await session.call("inc", x) + 100

    async with serving(server) as url:
        client = eventsock.Client()
        client.on("inc", lambda x: x + 1)
        async with connected(url, client):
            assert await client.call("relay", 1) == 102


async def test_rooms_and_broadcasts() -> None:
    server = eventsock.Server()
    sessions: dict[str, Session] = {}

    @server.on("connect")
    async def on_connect(session: Session, auth: dict[str, Any]) -> None:
        sessions[auth["name"]] = session
        await session.enter_room("all")

    async with serving(server) as url:
        inbox = {name: Recorder() for name in "abc"}
        clients = {name: eventsock.Client() for name in "abc"}
        for name, client in clients.items():
            client.on("news", inbox[name])
            await client.connect(url, auth={"name": name}, timeout=5)
        try:
            a, b, c = (sessions[n] for n in "abc")
            assert a.rooms == {a.id, "all"}
            await b.enter_room("blue")
            await server.enter_room(c.id, "blue")
            assert server.members("blue") == {b.id, c.id}
            assert server.rooms(c.id) == {c.id, "all", "blue"}

            await server.emit("news", "to blue", to="blue")
            await server.emit("news", "all but a", skip=a.id)
            await server.enter_room(c.id, "c-room")
            await server.emit("news", "blue or a, not c", to=["blue", a.id], skip="c-room")
            await server.emit("news", "everyone but c-room", to="all", skip=["c-room"])
            await server.emit("news", "just b", to=b.id)

            await inbox["a"].wait(2)
            await inbox["b"].wait(5)
            await inbox["c"].wait(2)
            # one more round trip each, so any stray delivery would have arrived
            await server.emit("news", "end")
            for name, count in zip("abc", (3, 6, 3), strict=True):
                await inbox[name].wait(count)
            assert [x for (x,) in inbox["a"].calls] == [
                "blue or a, not c",
                "everyone but c-room",
                "end",
            ]
            assert [x for (x,) in inbox["b"].calls] == [
                "to blue",
                "all but a",
                "blue or a, not c",
                "everyone but c-room",
                "just b",
                "end",
            ]
            assert [x for (x,) in inbox["c"].calls] == ["to blue", "all but a", "end"]

            await b.leave_room("blue")
            await server.leave_room(c.id, "blue")
            assert server.members("blue") == set()
            await server.close_room("all")
            assert server.members("all") == set()
            assert a.rooms == {a.id}
        finally:
            for client in clients.values():
                await client.disconnect()


async def test_call_times_out_with_ack_timeout() -> None:
    server = eventsock.Server()
    release = asyncio.Event()

    @server.on("slow")
    async def slow(session: Session) -> str:
        await release.wait()
        return "late"

    async with serving(server) as url, connected(url) as client:
        with pytest.raises(eventsock.AckTimeout) as info:
            await client.call("slow", timeout=0.05)
        assert isinstance(info.value, TimeoutError)
        release.set()
        # The late ack is ignored; the connection carries on.
        assert await client.call("slow", timeout=5) == "late"


async def test_calls_in_flight_fail_at_once_when_the_connection_drops(no_leaks: None) -> None:
    server = eventsock.Server()
    started = asyncio.Event()

    @server.on("hang")
    async def hang(session: Session) -> None:
        started.set()
        await asyncio.Event().wait()

    @server.on("drop_me")
    async def drop_me(session: Session) -> None:
        await session.disconnect()

    async with serving(server) as url, connected(url) as client:
        pending = asyncio.ensure_future(client.call("hang", timeout=30))
        await asyncio.wait_for(started.wait(), 5)
        await client.emit("drop_me")
        with pytest.raises(eventsock.ConnectionClosed, match="server disconnect"):
            await asyncio.wait_for(pending, 5)  # far sooner than its own 30 s timeout
        with pytest.raises(eventsock.NotConnected):
            await client.call("hang")
        await client.wait()


async def test_server_side_call_fails_when_the_client_leaves() -> None:
    server = eventsock.Server()
    joined = Recorder()
    server.on("connect", lambda s: joined(s))
    async with serving(server) as url:
        client = eventsock.Client()
        asked = asyncio.Event()

        @client.on("question")
        async def question() -> None:
            asked.set()
            await asyncio.Event().wait()

        await client.connect(url, timeout=5)
        ((session,),) = await joined.wait()
        call = asyncio.ensure_future(session.call("question", timeout=30))
        await asyncio.wait_for(asked.wait(), 5)
        await client.disconnect()
        with pytest.raises(eventsock.ConnectionClosed, match="client disconnect"):
            await asyncio.wait_for(call, 5)
        assert session._conn.link.pending_acks == 0


async def test_connect_refusals() -> None:
    server = eventsock.Server()

    @server.on("connect")
    async def on_connect(session: Session, auth: dict[str, Any]) -> bool | None:
        if auth.get("mode") == "refuse":
            raise eventsock.ConnectionRefused("Not authorized", data={"code": 42})
        if auth.get("mode") == "false":
            return False
        if auth.get("mode") == "crash":
            raise RuntimeError("bug in the connect handler")
        return None

    server.on("x", lambda s: None, namespace="/other")
    async with serving(server) as url:
        client = eventsock.Client()
        with pytest.raises(eventsock.ConnectionRefused) as info:
            await client.connect(url, auth={"mode": "refuse"}, timeout=5)
        assert (info.value.message, info.value.data) == ("Not authorized", {"code": 42})
        assert not client.connected
        with pytest.raises(eventsock.ConnectionRefused, match="Connection rejected by server"):
            await client.connect(url, auth={"mode": "false"}, timeout=5)
        with pytest.raises(eventsock.ConnectionRefused, match="Internal server error"):
            await client.connect(url, auth={"mode": "crash"}, timeout=5)
        with pytest.raises(eventsock.ConnectionRefused, match="Invalid namespace"):
            await client.connect(url, namespaces=["/nowhere"], timeout=5)
        assert server.session_count == 0
        async with connected(url, client, auth={}):
            assert client.connected


async def test_invalid_namespace_leaves_other_namespaces_working() -> None:
    server = eventsock.Server()
    server.on("echo", lambda s, x: x)
    async with serving(server) as url:
        peer = await RawPeer.open_to(url)
        try:
            reply = await peer.connect("/")
            assert isinstance(reply, eventsock.packets.Connect)
            refusal = await peer.connect("/nope")
            assert refusal == eventsock.packets.ConnectError("Invalid namespace", None, "/nope")
            await peer.send_packet(eventsock.packets.Event("echo", ("still",), "/", 0))
            assert await peer.recv_packet() == eventsock.packets.Ack(0, ("still",), "/")
        finally:
            await peer.close()


async def test_emits_in_the_connect_handler_follow_the_connect_reply() -> None:
    server = eventsock.Server()

    @server.on("connect")
    async def on_connect(session: Session) -> None:
        await session.enter_room("lobby")
        await session.emit("welcome", session.id)
        await server.emit("lobby", "joined", to="lobby")
        with pytest.raises(eventsock.NotConnected, match="connect handler"):
            await session.call("nope")

    async with serving(server) as url:
        peer = await RawPeer.open_to(url)
        try:
            reply = await peer.connect("/")
            assert isinstance(reply, eventsock.packets.Connect)
            assert reply.data is not None
            sid = reply.data["sid"]
            assert await peer.recv_packet() == eventsock.packets.Event("welcome", (sid,))
            assert await peer.recv_packet() == eventsock.packets.Event("lobby", ("joined",))
        finally:
            await peer.close()


async def test_disconnect_reasons_on_both_sides() -> None:
    server = eventsock.Server()
    server_reasons: asyncio.Queue[str] = asyncio.Queue()
    server.on("disconnect", lambda s, reason: server_reasons.put_nowait(reason))
    server.on("kick", lambda s: asyncio.ensure_future(s.disconnect()))

    async with serving(server) as url:
        client = eventsock.Client()
        client_reasons: asyncio.Queue[str] = asyncio.Queue()
        client.on("disconnect", client_reasons.put_nowait)

        await client.connect(url, timeout=5)
        await client.disconnect()
        assert await asyncio.wait_for(server_reasons.get(), 5) == "client disconnect"
        assert await asyncio.wait_for(client_reasons.get(), 5) == "client disconnect"

        await client.connect(url, timeout=5)
        await client.emit("kick")
        assert await asyncio.wait_for(client_reasons.get(), 5) == "server disconnect"
        assert await asyncio.wait_for(server_reasons.get(), 5) == "server disconnect"
        await asyncio.wait_for(client.wait(), 5)  # the last namespace gone: connection closed

        await client.connect(url, timeout=5)
        await server.shutdown()
        assert await asyncio.wait_for(server_reasons.get(), 5) == "server shutting down"
        assert await asyncio.wait_for(client_reasons.get(), 5) == "transport close"
        await client.disconnect()


async def test_server_closes_a_peer_that_misses_pings(no_leaks: None) -> None:
    server = eventsock.Server(ping_interval=0.05, ping_timeout=0.05)
    reasons: asyncio.Queue[str] = asyncio.Queue()
    server.on("disconnect", lambda s, reason: reasons.put_nowait(reason))
    async with serving(server) as url:
        peer = await RawPeer.open_to(url, answer_pings=False)
        try:
            assert peer.open["pingInterval"] == 50
            assert peer.open["pingTimeout"] == 50
            await peer.connect("/")
            assert await asyncio.wait_for(reasons.get(), 5) == "ping timeout"
            await peer.wait_closed()
            assert peer.pings == 1
        finally:
            await peer.close()


async def test_client_answers_pings_and_stays_connected() -> None:
    server = eventsock.Server(ping_interval=0.02, ping_timeout=0.2)
    server.on("echo", lambda s, x: x)
    async with serving(server) as url, connected(url) as client:
        conn = next(iter(server._connections))
        pongs = 0
        original = conn._on_pong

        def count_pong() -> None:
            nonlocal pongs
            pongs += 1
            original()
            if pongs == 5:
                enough.set()

        enough = asyncio.Event()
        conn._on_pong = count_pong  # type: ignore[method-assign]
        await asyncio.wait_for(enough.wait(), 5)
        assert await client.call("echo", "alive") == "alive"


async def test_client_treats_a_silent_server_as_dead() -> None:
    # A bare aiohttp server that opens the Engine.IO session, accepts the namespace,
    # and then never pings.
    async def endpoint(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('0{"sid":"x","upgrades":[],"pingInterval":50,"pingTimeout":50}')
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                packet = eventsock.codec.decode_packet(msg.data)
                if isinstance(packet, eventsock.packets.Connect):
                    await ws.send_bytes(
                        eventsock.codec.encode_packet(
                            eventsock.packets.Connect(packet.namespace, {"sid": "abc"})
                        )
                    )
        return ws

    app = web.Application()
    app.router.add_get("/socket.io/", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        client = eventsock.Client()
        reasons: asyncio.Queue[str] = asyncio.Queue()
        client.on("disconnect", reasons.put_nowait)
        await client.connect(f"http://127.0.0.1:{port}", timeout=5)
        assert await asyncio.wait_for(reasons.get(), 5) == "ping timeout"
        await client.disconnect()
    finally:
        await runner.cleanup()


async def test_a_raising_handler_is_logged_and_the_connection_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = eventsock.Server()

    @server.on("boom")
    async def boom(session: Session) -> None:
        raise ValueError("kaboom")

    @server.on("sync_boom")
    def sync_boom(session: Session) -> None:
        raise KeyError("sync kaboom")

    server.on("echo", lambda s, x: x)
    async with serving(server) as url, connected(url) as client:
        await client.emit("boom")
        await client.emit("sync_boom")
        # the caller learns the call failed, and nothing of why
        with pytest.raises(eventsock.InternalError) as failed:
            await client.call("boom", timeout=5)
        assert failed.value.message == "internal error"
        assert failed.value.data is None
        assert await client.call("echo", "fine") == "fine"
    messages = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("kaboom" in str(r.exc_info[1]) for r in messages if r.exc_info)
    assert any("sync kaboom" in str(r.exc_info[1]) for r in messages if r.exc_info)


async def test_client_handler_that_raises_keeps_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = eventsock.Server()
    joined = Recorder()
    server.on("connect", lambda s: joined(s))
    server.on("echo", lambda s, x: x)
    async with serving(server) as url:
        client = eventsock.Client()

        @client.on("explode")
        def explode() -> None:
            raise RuntimeError("client side boom")

        async with connected(url, client):
            ((session,),) = await joined.wait()
            await session.emit("explode")
            assert await client.call("echo", 1) == 1
            assert client.connected
    assert "client side boom" in caplog.text


async def test_shutdown_leaves_no_task_behind(no_leaks: None) -> None:
    server = eventsock.Server()
    started = asyncio.Event()
    finished: list[str] = []

    @server.on("forever")
    async def forever(session: Session) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            finished.append("cancelled")

    port = await server.start("127.0.0.1", 0)
    clients = [eventsock.Client(reconnection=False) for _ in range(3)]
    for client in clients:
        await client.connect(f"http://127.0.0.1:{port}", timeout=5)
    await clients[0].emit("forever")
    await asyncio.wait_for(started.wait(), 5)
    await server.shutdown()
    assert finished == ["cancelled"]
    assert server.connection_count == 0
    assert server.session_count == 0
    assert server.task_count == 0
    for client in clients:
        await asyncio.wait_for(client.wait(), 5)
        assert not client.connected
        await client.disconnect()


async def test_mount_on_an_existing_application_with_a_custom_path() -> None:
    server = eventsock.Server(path="/rt")
    server.on("echo", lambda s, x: x)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="plain http")

    app = web.Application()
    app.router.add_get("/hello", hello)
    server.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/hello") as response:
            assert await response.text() == "plain http"
        async with connected(url, eventsock.Client(path="/rt")) as client:
            assert await client.call("echo", "mounted") == "mounted"
            reasons: asyncio.Queue[str] = asyncio.Queue()
            client.on("disconnect", reasons.put_nowait)
            # the application's own shutdown shuts the eventsock server down too
            await runner.cleanup()
            assert await asyncio.wait_for(reasons.get(), 5) == "transport close"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        ("EIO=3&transport=websocket", 400, {"code": 5, "message": "Unsupported protocol version"}),
        ("transport=websocket", 400, {"code": 5, "message": "Unsupported protocol version"}),
        ("EIO=4&transport=polling", 400, {"code": 0, "message": "Transport unknown"}),
        ("EIO=4&transport=websocket&sid=abc", 400, {"code": 1, "message": "Session ID unknown"}),
        ("EIO=4&transport=websocket", 400, {"code": 3, "message": "Bad request"}),  # no upgrade
    ],
)
async def test_http_errors_before_the_upgrade(
    query: str, status: int, body: dict[str, Any]
) -> None:
    async with (
        serving(eventsock.Server()) as url,
        aiohttp.ClientSession() as http,
        http.get(f"{url}/socket.io/?{query}") as response,
    ):
        assert response.status == status
        assert await response.json() == body


@pytest.mark.parametrize(
    ("policy", "origin", "allowed"),
    [
        (None, None, True),  # non-browser clients send no Origin
        (None, "same", True),
        (None, "http://evil.example", False),
        ("*", "http://evil.example", True),
        (["http://app.example"], "http://app.example", True),
        (["http://app.example"], "http://evil.example", False),
        (lambda origin: origin.endswith(".trusted"), "http://x.trusted", True),
        (lambda origin: origin.endswith(".trusted"), "http://x.other", False),
    ],
)
async def test_origin_allowlist(policy: Any, origin: str | None, allowed: bool) -> None:
    server = eventsock.Server(allowed_origins=policy)
    async with serving(server) as url:
        headers = {}
        if origin == "same":
            headers["Origin"] = url
        elif origin is not None:
            headers["Origin"] = origin
        client = eventsock.Client()
        if allowed:
            async with connected(url, client, headers=headers):
                assert client.connected
        else:
            with pytest.raises(eventsock.ConnectionFailed, match="HTTP 403"):
                await client.connect(url, headers=headers, timeout=5)


async def test_client_errors() -> None:
    client = eventsock.Client()
    with pytest.raises(eventsock.NotConnected):
        await client.emit("x")
    with pytest.raises(eventsock.NotConnected):
        await client.call("x")
    with pytest.raises(ValueError, match="URL"):
        await client.connect("ftp://127.0.0.1:1")
    async with serving(eventsock.Server()) as url:
        server_port = int(url.rsplit(":", 1)[1])
    # nothing listens there any more
    with pytest.raises(eventsock.ConnectionFailed):
        await client.connect(f"http://127.0.0.1:{server_port}", timeout=5)


async def test_reserved_event_names_cannot_be_emitted() -> None:
    server = eventsock.Server()
    server.on("x", lambda s: None)
    async with serving(server) as url, connected(url) as client:
        for name in ("connect", "disconnect", "connect_error"):
            with pytest.raises(ValueError, match="reserved"):
                await client.emit(name)
            with pytest.raises(ValueError, match="reserved"):
                await server.emit(name)


async def test_session_data_persists_and_emit_to_unknown_session_is_refused() -> None:
    server = eventsock.Server()

    @server.on("count")
    def count(session: Session) -> int:
        session.data["n"] = session.data.get("n", 0) + 1
        return int(session.data["n"])

    async with serving(server) as url, connected(url) as client:
        assert [await client.call("count") for _ in range(3)] == [1, 2, 3]
        with pytest.raises(eventsock.NotConnected):
            await server.call("x", to="no-such-sid")
        await server.emit("x", to="no-such-room")  # nobody there: nothing happens


async def test_ws_urls_and_query_parameters() -> None:
    server = eventsock.Server()
    server.on("q", lambda s: dict(s.query))
    async with serving(server) as url:
        ws_url = url.replace("http://", "ws://") + "/?token=abc"
        async with connected(ws_url) as client:
            query = await client.call("q")
            assert query["token"] == "abc"
            assert query["EIO"] == "4"
    await connections_done(server)


async def test_tls(no_leaks: None) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    server = eventsock.Server()
    server.on("echo", lambda s, x: x)
    port = await server.start("127.0.0.1", 0, ssl=server_ctx)
    try:
        for scheme in ("https", "wss"):
            async with connected(f"{scheme}://127.0.0.1:{port}", ssl=client_ctx) as client:
                assert await client.call("echo", b"secret bytes") == b"secret bytes"
        # an untrusted certificate is refused by default
        with pytest.raises(eventsock.ConnectionFailed):
            await eventsock.Client().connect(f"https://127.0.0.1:{port}", timeout=5)
    finally:
        await server.shutdown()


async def test_async_disconnect_handlers_finish_on_shutdown_and_disconnect() -> None:
    server = eventsock.Server()
    seen: list[str] = []
    hold = asyncio.Event()

    @server.on("disconnect")
    async def server_left(session: Session, reason: str) -> None:
        await suspend_once()  # as real cleanup code would
        seen.append(f"server: {reason}")

    async with serving(server) as url:
        client = eventsock.Client()

        @client.on("disconnect")
        async def client_left(reason: str) -> None:
            await suspend_once()
            seen.append(f"client: {reason}")

        await client.connect(url, timeout=5)
        await client.disconnect()
        assert "client: client disconnect" in seen
        await client.connect(url, timeout=5)
        hold.set()
        await server.shutdown()
        assert (
            seen.count("server: client disconnect") + seen.count("server: server shutting down")
            >= 1
        )
        assert "server: server shutting down" in seen
        await client.disconnect()
        assert "client: transport close" in seen


async def test_connect_timeout_still_applies_after_a_slow_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = eventsock.Server(connect_timeout=5)
    gate = asyncio.Event()
    entered = asyncio.Event()

    @server.on("connect")
    async def slow_refusal(session: Session) -> None:
        entered.set()
        await gate.wait()
        raise eventsock.ConnectionRefused("no")

    async with serving(server) as url:
        peer = await RawPeer.open_to(url)
        try:
            await peer.send_packet(eventsock.packets.Connect("/"))
            await asyncio.wait_for(entered.wait(), 5)
            # the timer fires while the handler still runs; the refusal then closes
            loop = asyncio.get_running_loop()
            fired = loop.create_future()
            conn = next(iter(server._connections))
            original = conn._connect_timeout

            def spy() -> None:
                original()
                fired.set_result(None)

            assert conn._connect_handle is not None
            conn._connect_handle.cancel()
            conn._connect_handle = loop.call_soon(spy)  # type: ignore[assignment]
            await asyncio.wait_for(fired, 5)
            assert server.connection_count == 1  # still deciding
            gate.set()
            refusal = await peer.recv_packet()
            assert isinstance(refusal, eventsock.packets.ConnectError)
            assert await peer.wait_closed() == 1000
        finally:
            await peer.close()
    assert "no namespace joined within connect_timeout" in caplog.text


async def test_connect_to_something_that_is_not_engine_io() -> None:
    async def endpoint(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("hello")
        await ws.receive()
        return ws

    app = web.Application()
    app.router.add_get("/socket.io/", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        client = eventsock.Client()
        with pytest.raises(eventsock.ConnectionFailed, match=r"not an Engine\.IO v4 server"):
            await client.connect(f"http://127.0.0.1:{runner.addresses[0][1]}", timeout=5)
    finally:
        await runner.cleanup()


async def test_handlers_start_in_arrival_order() -> None:
    import contextvars

    server = eventsock.Server()
    order: list[str] = []
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    done = Recorder()

    @server.on("a")
    async def a(session: Session, n: int) -> None:
        order.append(f"a{n} start (var={var.get()})")
        var.set(f"a{n}")
        await suspend_once()
        order.append(f"a{n} end (var={var.get()})")
        done(n)

    @server.on("s")
    def s(session: Session, n: int) -> None:
        order.append(f"s{n} (var={var.get()})")
        var.set(f"s{n}")
        done(n)

    async with serving(server) as url, connected(url) as client:
        for n, name in enumerate("asas"):
            await client.emit(name, n)
        await done.wait(4)
    starts = [entry for entry in order if "end" not in entry]
    assert starts == [
        "a0 start (var=unset)",
        "s1 (var=unset)",
        "a2 start (var=unset)",
        "s3 (var=unset)",
    ]
    # each handler has its own context
    assert "a0 end (var=a0)" in order
    assert "a2 end (var=a2)" in order


async def test_run_blocks_until_interrupted_and_shuts_down_cleanly() -> None:
    import re
    import signal
    import sys

    program = (
        "import logging, eventsock\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "server = eventsock.Server()\n"
        "server.on('echo', lambda s, x: x)\n"
        "server.on('disconnect', lambda s, r: print('left:', r, flush=True))\n"
        "server.run(host='127.0.0.1', port=0)\n"
        "print('run returned', flush=True)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-c",
        program,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
        match = re.search(r"serving on (http://127\.0\.0\.1:\d+)/socket\.io/", line)
        assert match, line
        client = eventsock.Client()
        reasons: asyncio.Queue[str] = asyncio.Queue()
        client.on("disconnect", reasons.put_nowait)
        await client.connect(match.group(1), timeout=5)
        assert await client.call("echo", "via run()") == "via run()"
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(reasons.get(), 5) == "transport close"
        out, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, err.decode()
        assert out.decode().splitlines() == ["left: server shutting down", "run returned"]
        await client.disconnect()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_transport_that_breaks_while_accepting_raises_nothing(no_leaks: None) -> None:
    # the accept sends several frames (the reply, what the connect handler emitted):
    # a transport that breaks on one of them must not make the next one raise
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: escaped.append(context))
    server = eventsock.Server()

    @server.on("connect")
    async def on_connect(session: Session, auth: Any) -> bool:
        await session.emit("early", 1)  # held until the session is accepted
        session._conn.link.ws.abort()  # the TCP connection drops under the accept
        return True

    try:
        async with serving(server) as url:
            client = eventsock.Client(reconnection=False)
            with pytest.raises(eventsock.ConnectionFailed):
                await client.connect(url, timeout=5)
            async with asyncio.timeout(5):
                while server._connections:
                    await suspend_once()
        gc.collect()
        assert escaped == []
    finally:
        loop.set_exception_handler(previous)
