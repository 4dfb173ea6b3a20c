"""Interop between eventsock and python-socketio (msgpack parser, WebSocket only).

A. python-socketio's ``AsyncClient`` against the eventsock reference server.
B. eventsock's ``Client`` against the same reference app written with python-socketio's
   ``AsyncServer`` (aiohttp mode), on an ephemeral port.

The disconnect reasons python-socketio 5.18 reports are pinned here, on both sides:

* python-socketio client, its own ``disconnect()``: ``"client disconnect"``
  (``sio.reason.CLIENT_DISCONNECT``); kicked by the server (namespace DISCONNECT):
  ``"server disconnect"`` (``sio.reason.SERVER_DISCONNECT``).
* python-socketio server, the client sent DISCONNECT: ``"client disconnect"``
  (``sio.reason.CLIENT_DISCONNECT``); ``sio.disconnect(sid)``: ``"server disconnect"``
  (``sio.reason.SERVER_DISCONNECT``).

python-socketio's client ``disconnect()`` queues DISCONNECT and the Engine.IO close,
then closes the WebSocket, racing its own write loop: on Python 3.11 the frames usually
never leave and servers report ``"transport close"``; on 3.12 they often do and servers
report ``"client disconnect"``. The tests accept either; eventsock's
``"client disconnect"`` for python-socketio's actual DISCONNECT packet is checked
separately.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio
import socketio.exceptions
import socketio.packet
from aiohttp import web

import eventsock

from .reference_app import SECRET, ReferenceServer

pytestmark = pytest.mark.timeout(60)

AUTH = {"token": SECRET}
WAIT = 5.0  # seconds allowed for any single expected observation
ECHO_ARGS = ("hi", bytes(range(256)), {"nested": [1, 2.5, None, True]})
BIG = bytes(i % 251 for i in range(2 * 1024 * 1024))


def assert_echo_types(result: Any) -> None:
    """The echo of ECHO_ARGS came back equal, with the same Python types."""
    assert isinstance(result, tuple)
    assert result == ECHO_ARGS
    text, blob, obj = result
    assert type(text) is str
    assert type(blob) is bytes
    assert type(obj) is dict
    nested = obj["nested"]
    assert type(nested) is list
    assert type(nested[0]) is int
    assert type(nested[1]) is float
    assert nested[2] is None
    assert nested[3] is True


async def get(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), WAIT)


async def resolved(future: asyncio.Future[Any]) -> Any:
    return await asyncio.wait_for(asyncio.shield(future), WAIT)


# ======================================================================================
# A. python-socketio AsyncClient -> eventsock reference server
# ======================================================================================


class PyClient:
    """A python-socketio AsyncClient with futures/queues fed by its handlers."""

    def __init__(self) -> None:
        self.sio = sio = socketio.AsyncClient(
            serializer="msgpack", reconnection=False, handle_sigint=False
        )
        loop = asyncio.get_running_loop()
        self.connect_errors: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.disconnected: asyncio.Future[str] = loop.create_future()
        self.shouts: asyncio.Queue[Any] = asyncio.Queue()

        async def connect_error(*data: Any) -> None:
            self.connect_errors.put_nowait(data)

        async def disconnect(reason: str) -> None:
            if not self.disconnected.done():
                self.disconnected.set_result(reason)

        async def question(x: Any) -> Any:
            return x * 2

        async def shout(msg: Any) -> None:
            self.shouts.put_nowait(msg)

        for handler in (connect_error, disconnect, question, shout):
            sio.on(handler.__name__, handler)

    async def connect(self, url: str, auth: Any = AUTH) -> None:
        await self.sio.connect(url, transports=["websocket"], auth=auth, wait_timeout=WAIT)

    async def close(self) -> None:
        # disconnect() is harmless when already disconnected (it only resets state and
        # closes the aiohttp session); then wait for Engine.IO's read loop to end.
        await self.sio.disconnect()
        await asyncio.wait_for(self.sio.eio.wait(), WAIT)


@pytest.fixture
async def ref(no_leaks: None, reference_server: ReferenceServer) -> ReferenceServer:
    """The eventsock reference server, with the leak check torn down last."""
    return reference_server


@pytest.fixture
async def py_clients() -> AsyncIterator[Callable[[], PyClient]]:
    made: list[PyClient] = []

    def make() -> PyClient:
        client = PyClient()
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.close()


async def test_pysio_client_auth_accepted_and_refused(
    ref: ReferenceServer, py_clients: Callable[[], PyClient]
) -> None:
    good = py_clients()
    await good.connect(ref.url)
    assert good.sio.connected
    assert isinstance(good.sio.get_sid(), str) and good.sio.get_sid()
    assert await good.sio.call("echo", "ok", timeout=WAIT) == "ok"

    bad = py_clients()
    with pytest.raises(socketio.exceptions.ConnectionError) as excinfo:
        await bad.connect(ref.url, auth={"token": "wrong"})
    assert "/" in str(excinfo.value)
    # python-socketio hands the CONNECT_ERROR payload (a dict) to connect_error as is.
    assert await get(bad.connect_errors) == ({"message": "Not authorized", "data": {"code": 42}},)
    assert not bad.sio.connected
    assert good.sio.connected


async def test_pysio_client_echo_preserves_types(
    ref: ReferenceServer, py_clients: Callable[[], PyClient]
) -> None:
    client = py_clients()
    await client.connect(ref.url)
    # python-socketio sends several arguments as a tuple in `data`.
    result = await client.sio.call("echo", ECHO_ARGS, timeout=WAIT)
    assert_echo_types(result)
    assert await client.sio.call("echo", (), timeout=WAIT) is None
    assert await client.sio.call("echo", b"", timeout=WAIT) == b""


async def test_pysio_client_answers_server_call(
    ref: ReferenceServer, py_clients: Callable[[], PyClient]
) -> None:
    client = py_clients()
    await client.connect(ref.url)
    assert await client.sio.call("please_call", 21, timeout=WAIT) == 42
    assert await client.sio.call("please_call", "ab", timeout=WAIT) == "abab"


async def test_pysio_client_room_broadcast_skips_sender(
    ref: ReferenceServer, py_clients: Callable[[], PyClient]
) -> None:
    a, b = py_clients(), py_clients()
    await a.connect(ref.url)
    await b.connect(ref.url)
    assert await a.sio.call("join", "r1", timeout=WAIT) is True
    assert await b.sio.call("join", "r1", timeout=WAIT) is True
    assert await a.sio.call("shout", ("r1", "hello"), timeout=WAIT) is True
    assert await get(b.shouts) == "hello"
    # A round trip on A after the shout: anything sent to A would have arrived first.
    assert await a.sio.call("echo", "sync", timeout=WAIT) == "sync"
    assert a.shouts.empty()
    assert b.shouts.empty()


async def test_pysio_client_raising_server_handler_keeps_connection(
    ref: ReferenceServer, py_clients: Callable[[], PyClient]
) -> None:
    client = py_clients()
    await client.connect(ref.url)
    await client.sio.emit("boom", "x")
    assert await client.sio.call("echo", 1, timeout=WAIT) == 1
    assert ref.handler_errors == 1
    assert client.sio.connected
    assert not client.disconnected.done()
    assert ref.disconnects.empty()


async def test_pysio_client_gets_error_answers_as_plain_values(
    ref: ReferenceServer, py_clients: Callable[[], PyClient]
) -> None:
    # a plain Socket.IO client sees the error object as the ack's value, and a
    # successful ack exactly as the handler returned it
    client = py_clients()
    await client.connect(ref.url)
    assert await client.sio.call("find", 1, timeout=WAIT) == {"id": 1, "name": "alice"}
    assert await client.sio.call("find", 7, timeout=WAIT) == {
        "$error": {"code": "not_found", "message": "no user 7", "data": {"id": 7}}
    }
    assert await client.sio.call("boom", timeout=WAIT) == {
        "$error": {"code": "internal_error", "message": "internal error"}
    }
    assert await client.sio.call("nothing_here", timeout=WAIT) == {
        "$error": {"code": "unknown_event", "message": "no handler for 'nothing_here' on '/'"}
    }


async def test_pysio_client_disconnect(
    ref: ReferenceServer, py_clients: Callable[[], PyClient]
) -> None:
    client = py_clients()
    await client.connect(ref.url)
    assert await client.sio.call("echo", "x", timeout=WAIT) == "x"
    await client.sio.disconnect()
    assert await resolved(client.disconnected) == client.sio.reason.CLIENT_DISCONNECT
    assert client.sio.reason.CLIENT_DISCONNECT == "client disconnect"
    assert not client.sio.connected
    # Over WebSocket, python-socketio 5.18.1 (python-engineio 4.15.1) queues DISCONNECT and
    # the Engine.IO close packet and closes the WebSocket, racing its own write loop: the
    # server sees the DISCONNECT or only the transport close (see the module docstring).
    assert await get(ref.disconnects) in ("transport close", "client disconnect")


async def test_pysio_client_namespace_disconnect_packet(
    ref: ReferenceServer, py_clients: Callable[[], PyClient]
) -> None:
    """python-socketio's own DISCONNECT packet (msgpack, with ``data: nil``) is a client
    disconnect for eventsock. python-socketio only sends it when flushed before the close,
    so it is sent here with python-socketio's packet class through its send queue."""
    client = py_clients()
    await client.connect(ref.url)
    assert await client.sio.call("echo", "x", timeout=WAIT) == "x"
    pkt = client.sio.packet_class(socketio.packet.DISCONNECT, namespace="/")
    assert pkt.data is None
    await client.sio._send_packet(pkt)
    assert await get(ref.disconnects) == "client disconnect"
    await client.sio.disconnect()
    assert ref.disconnects.empty()


async def test_pysio_client_kicked_by_server(
    ref: ReferenceServer, py_clients: Callable[[], PyClient]
) -> None:
    client = py_clients()
    await client.connect(ref.url)
    await client.sio.emit("kick_me")
    assert await resolved(client.disconnected) == client.sio.reason.SERVER_DISCONNECT
    assert client.sio.reason.SERVER_DISCONNECT == "server disconnect"
    assert await get(ref.disconnects) == "server disconnect"
    # python-socketio closes its Engine.IO connection once its last namespace is gone.
    await asyncio.wait_for(client.sio.eio.wait(), WAIT)
    assert not client.sio.connected
    assert ref.disconnects.empty()


async def test_pysio_client_idle_heartbeat(
    no_leaks: None, py_clients: Callable[[], PyClient]
) -> None:
    async with ReferenceServer(
        ping_interval=0.2, ping_timeout=0.2, max_payload=10_000_000
    ) as server:
        client = py_clients()
        try:
            await client.connect(server.url)
            assert client.sio.eio.ping_interval == pytest.approx(0.2)
            assert client.sio.eio.ping_timeout == pytest.approx(0.2)
            # Idleness is the subject: ~7 ping cycles with nothing else going on.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(client.disconnected), 1.5)
            assert client.sio.connected
            assert server.disconnects.empty()
            assert await client.sio.call("echo", "still here", timeout=WAIT) == "still here"
        finally:
            await client.close()
        # python-socketio's disconnect() races its own writer: see
        # test_pysio_client_disconnect.
        assert await get(server.disconnects) in ("transport close", "client disconnect")


async def test_pysio_client_big_binary_echo(
    ref: ReferenceServer, py_clients: Callable[[], PyClient]
) -> None:
    client = py_clients()
    await client.connect(ref.url)
    result = await client.sio.call("echo", BIG, timeout=20)
    assert type(result) is bytes
    assert len(result) == 2 * 1024 * 1024
    assert result == BIG


# ======================================================================================
# B. eventsock Client -> python-socketio AsyncServer (aiohttp)
# ======================================================================================


class PySioReferenceServer:
    """The reference app in python-socketio, served by aiohttp on an ephemeral port."""

    def __init__(self, *, ping_interval: float = 25, ping_timeout: float = 20) -> None:
        self.sio = sio = socketio.AsyncServer(
            async_mode="aiohttp",
            serializer="msgpack",
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_http_buffer_size=10_000_000,
        )
        self.app = web.Application()
        sio.attach(self.app)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.disconnects: asyncio.Queue[str] = asyncio.Queue()
        self.auths: list[Any] = []
        self.handler_errors = 0

        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
            self.auths.append(auth)
            if not isinstance(auth, dict) or auth.get("token") != SECRET:
                raise socketio.exceptions.ConnectionRefusedError("Not authorized", {"code": 42})

        async def disconnect(sid: str, reason: str) -> None:
            self.disconnects.put_nowait(reason)

        async def echo(sid: str, *args: Any) -> tuple[Any, ...]:
            return args

        async def join(sid: str, room: str) -> bool:
            await sio.enter_room(sid, room)
            return True

        async def shout(sid: str, room: str, msg: Any) -> bool:
            await sio.emit("shout", msg, to=room, skip_sid=sid)
            return True

        async def please_call(sid: str, x: Any) -> Any:
            return await sio.call("question", x, to=sid, timeout=5)

        async def provoke(sid: str) -> bool:
            await sio.emit("explode", to=sid)
            return True

        async def kick_me(sid: str) -> None:
            await sio.disconnect(sid)

        async def boom(sid: str, *args: Any) -> None:
            self.handler_errors += 1
            raise RuntimeError("boom (raised on purpose by the reference app)")

        for handler in (
            connect,
            disconnect,
            echo,
            join,
            shout,
            please_call,
            provoke,
            kick_me,
            boom,
        ):
            sio.on(handler.__name__, handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> PySioReferenceServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
            self.runner = web.AppRunner(self.app, shutdown_timeout=2.0)
            await self.runner.setup()
            await web.SockSite(self.runner, sock).start()
        except BaseException:
            if self.runner is not None:
                await self.runner.cleanup()
            sock.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        eio = self.sio.eio
        if eio.sockets:  # a test left a connection open: close it before aiohttp waits on it
            await eio.disconnect()
        await self.sio.shutdown()
        assert self.runner is not None
        await self.runner.cleanup()
        # python-engineio schedules each ping as a task that sleeps ping_interval first and
        # is not stopped by shutdown(); those sleepers are the only tasks it leaves behind.
        sleepers = [
            task
            for task in asyncio.all_tasks()
            if not task.done()
            and getattr(task.get_coro(), "__qualname__", "") == "AsyncSocket._send_ping"
        ]
        for task in sleepers:
            task.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)


@pytest.fixture
async def py_server(no_leaks: None) -> AsyncIterator[PySioReferenceServer]:
    async with PySioReferenceServer() as running:
        yield running


class EsClient:
    """An eventsock Client with futures/queues fed by its handlers."""

    def __init__(self) -> None:
        self.client = client = eventsock.Client()
        loop = asyncio.get_running_loop()
        self.disconnected: asyncio.Future[str] = loop.create_future()
        self.shouts: asyncio.Queue[Any] = asyncio.Queue()
        self.explosions: asyncio.Queue[None] = asyncio.Queue()

        @client.on("disconnect")
        def disconnect(reason: str) -> None:
            if not self.disconnected.done():
                self.disconnected.set_result(reason)

        @client.on("question")
        def question(x: Any) -> Any:
            return x * 2

        @client.on("shout")
        def shout(msg: Any) -> None:
            self.shouts.put_nowait(msg)

        @client.on("explode")
        def explode() -> None:
            self.explosions.put_nowait(None)
            raise RuntimeError("explode (raised on purpose by the test client)")

    async def connect(self, url: str, auth: dict[str, Any] | None = AUTH) -> None:
        await self.client.connect(url, auth=auth, timeout=WAIT)


@pytest.fixture
async def es_clients() -> AsyncIterator[Callable[[], EsClient]]:
    made: list[EsClient] = []

    def make() -> EsClient:
        client = EsClient()
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await asyncio.wait_for(client.client.disconnect(), WAIT)


async def test_eventsock_client_auth_accepted_and_refused(
    py_server: PySioReferenceServer, es_clients: Callable[[], EsClient]
) -> None:
    good = es_clients()
    await good.connect(py_server.url)
    assert good.client.connected
    sid = good.client.sid
    assert isinstance(sid, str) and sid
    assert sid in py_server.sio.manager.rooms["/"]
    assert await good.client.call("echo", "ok", timeout=WAIT) == "ok"
    assert py_server.auths == [AUTH]

    bad = es_clients()
    with pytest.raises(eventsock.ConnectionRefused) as excinfo:
        await bad.connect(py_server.url, auth={"token": "wrong"})
    # python-socketio sends CONNECT_ERROR {"message": "Not authorized", "data": {"code": 42}}
    assert excinfo.value.message == "Not authorized"
    assert excinfo.value.data == {"code": 42}
    assert not bad.client.connected
    assert good.client.connected
    assert py_server.disconnects.empty()


async def test_eventsock_client_echo_preserves_types(
    py_server: PySioReferenceServer, es_clients: Callable[[], EsClient]
) -> None:
    c = es_clients()
    await c.connect(py_server.url)
    assert_echo_types(await c.client.call("echo", *ECHO_ARGS, timeout=WAIT))
    assert await c.client.call("echo", timeout=WAIT) is None
    assert await c.client.call("echo", b"", timeout=WAIT) == b""


async def test_eventsock_client_answers_server_call(
    py_server: PySioReferenceServer, es_clients: Callable[[], EsClient]
) -> None:
    c = es_clients()
    await c.connect(py_server.url)
    assert await c.client.call("please_call", 21, timeout=WAIT) == 42
    assert await c.client.call("please_call", "ab", timeout=WAIT) == "abab"


async def test_eventsock_client_room_broadcast_skips_sender(
    py_server: PySioReferenceServer, es_clients: Callable[[], EsClient]
) -> None:
    a, b = es_clients(), es_clients()
    await a.connect(py_server.url)
    await b.connect(py_server.url)
    assert await a.client.call("join", "r1", timeout=WAIT) is True
    assert await b.client.call("join", "r1", timeout=WAIT) is True
    assert await a.client.call("shout", "r1", "hello", timeout=WAIT) is True
    assert await get(b.shouts) == "hello"
    # A round trip on A after the shout: anything sent to A would have arrived first.
    assert await a.client.call("echo", "sync", timeout=WAIT) == "sync"
    assert a.shouts.empty()
    assert b.shouts.empty()


async def test_eventsock_client_raising_handler_keeps_connection(
    py_server: PySioReferenceServer, es_clients: Callable[[], EsClient]
) -> None:
    c = es_clients()
    await c.connect(py_server.url)
    assert await c.client.call("provoke", timeout=WAIT) is True
    await get(c.explosions)
    assert await c.client.call("echo", 1, timeout=WAIT) == 1
    assert c.client.connected
    assert not c.disconnected.done()
    assert py_server.disconnects.empty()


async def test_eventsock_client_disconnect(
    py_server: PySioReferenceServer, es_clients: Callable[[], EsClient]
) -> None:
    c = es_clients()
    await c.connect(py_server.url)
    assert await c.client.call("echo", "x", timeout=WAIT) == "x"
    await c.client.disconnect()
    assert await get(py_server.disconnects) == py_server.sio.reason.CLIENT_DISCONNECT
    assert py_server.sio.reason.CLIENT_DISCONNECT == "client disconnect"
    assert await resolved(c.disconnected) == "client disconnect"
    assert not c.client.connected


async def test_eventsock_client_kicked_by_server(
    py_server: PySioReferenceServer, es_clients: Callable[[], EsClient]
) -> None:
    c = es_clients()
    await c.connect(py_server.url)
    await c.client.emit("kick_me")
    # python-socketio sends DISCONNECT with `data: nil`; eventsock must accept it.
    assert await resolved(c.disconnected) == "server disconnect"
    await asyncio.wait_for(c.client.wait(), WAIT)
    assert not c.client.connected
    assert await get(py_server.disconnects) == py_server.sio.reason.SERVER_DISCONNECT
    assert py_server.sio.reason.SERVER_DISCONNECT == "server disconnect"


async def test_eventsock_client_idle_heartbeat(
    no_leaks: None, es_clients: Callable[[], EsClient]
) -> None:
    # python-engineio advertises whole seconds only, so 1 s / 1 s is the fastest setting.
    async with PySioReferenceServer(ping_interval=1, ping_timeout=1) as server:
        c = es_clients()
        try:
            await c.connect(server.url)
            # Idleness is the subject: three ping cycles with nothing else going on.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(c.client.wait(), 3.5)
            assert c.client.connected
            assert not c.disconnected.done()
            assert server.disconnects.empty()
            assert await c.client.call("echo", "still here", timeout=WAIT) == "still here"
        finally:
            await c.client.disconnect()
        assert await get(server.disconnects) == "client disconnect"


async def test_eventsock_client_big_binary_echo(
    py_server: PySioReferenceServer, es_clients: Callable[[], EsClient]
) -> None:
    c = es_clients()
    await c.connect(py_server.url)
    result = await c.client.call("echo", BIG, timeout=20)
    assert type(result) is bytes
    assert len(result) == 2 * 1024 * 1024
    assert result == BIG
