"""Malformed, oversized and out-of-order input: the offending connection is closed with
a logged reason (or answered with CONNECT_ERROR), and everyone else carries on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest

import eventsock
from eventsock.packets import Ack, Connect, Event

from .helpers import serving
from .raw import RawPeer, connections_done

pytestmark = pytest.mark.timeout(30)

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009


@dataclass
class Stage:
    server: eventsock.Server
    url: str
    bystander: eventsock.Client
    reasons: asyncio.Queue[str]
    calls: list[asyncio.Future[Any]]


@pytest.fixture
async def stage() -> AsyncIterator[Stage]:
    server = eventsock.Server(max_payload=8000, connect_timeout=0.2)
    reasons: asyncio.Queue[str] = asyncio.Queue()
    calls: list[asyncio.Future[Any]] = []

    @server.on("connect")
    async def on_connect(session: eventsock.Session) -> None:
        await session.enter_room("lobby")

    @server.on("disconnect")
    def on_disconnect(session: eventsock.Session, reason: str) -> None:
        reasons.put_nowait(reason)

    @server.on("echo")
    def echo(session: eventsock.Session, x: Any) -> Any:
        return x

    @server.on("ask_me")
    def ask_me(session: eventsock.Session) -> None:
        # a server→client call that the raw peer never answers
        calls.append(asyncio.ensure_future(session.call("question", timeout=30)))

    async with serving(server) as url:
        bystander = eventsock.Client()
        await bystander.connect(url, timeout=5)
        try:
            yield Stage(server, url, bystander, reasons, calls)
        finally:
            await bystander.disconnect()


async def assert_only_the_bystander_is_left(stage: Stage) -> None:
    assert stage.bystander.sid is not None
    await connections_done(stage.server, keep=frozenset({stage.bystander.sid}))
    server = stage.server
    assert server.connection_count == 1
    assert server.session_count == 1
    assert server.members("lobby") == {stage.bystander.sid}
    assert server.task_count == 0
    for call in stage.calls:
        with pytest.raises(eventsock.ConnectionClosed):
            await asyncio.wait_for(call, 5)
    for conn in server._connections:
        assert conn.link.pending_acks == 0
    assert await stage.bystander.call("echo", "still fine", timeout=5) == "still fine"


async def joined_peer(stage: Stage) -> RawPeer:
    peer = await RawPeer.open_to(stage.url)
    reply = await peer.connect("/")
    assert isinstance(reply, Connect)
    # leave a server→client call pending on this connection
    await peer.send_packet(Event("ask_me"))
    question = await peer.recv_packet()
    assert isinstance(question, Event)
    assert question.name == "question"
    return peer


def packet(**fields: Any) -> bytes:
    return msgpack.packb(fields)  # type: ignore[no-any-return]


AFTER_CONNECT = {
    "not msgpack": (b"\xc1\xc1\xc1", "invalid msgpack"),
    "truncated msgpack": (b"\x84\xa4type", "invalid msgpack"),
    "not a map": (msgpack.packb([2, "x"]), "must be a msgpack map"),
    "missing nsp": (packet(type=2, data=["x"]), "missing 'nsp'"),
    "missing type": (packet(nsp="/", data=["x"]), "'type'"),
    "type is a string": (packet(type="2", nsp="/", data=["x"]), "'type'"),
    "nsp is a number": (packet(type=2, nsp=1, data=["x"]), "namespace must be a string"),
    "unknown packet type": (packet(type=9, nsp="/"), "unknown packet type 9"),
    "binary event type": (packet(type=5, nsp="/", data=["x"]), "types 5 and 6"),
    "event data not an array": (packet(type=2, nsp="/", data={"a": 1}), "non-empty array"),
    "event data empty": (packet(type=2, nsp="/", data=[]), "non-empty array"),
    "event name not a string": (packet(type=2, nsp="/", data=[42, "x"]), "string name"),
    "ack id not an integer": (packet(type=3, nsp="/", data=[], id="7"), "ack id"),
    "disconnect with data": (packet(type=1, nsp="/", data="bye"), "must not carry data"),
    "extension type": (b"\x83\xa4type\x02\xa4data\x92\xa1x\xd4\x05\x00\xa3nsp\xa1/", "extension"),
    "nested deeper than Python's stack, with an undefined": (
        b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1x" + b"\x91" * 1000 + b"\xd4\x00\x00",
        "nested too deeply",
    ),
    "nested deeper than msgpack takes": (
        b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1x" + b"\x91" * 5000 + b"\xc0",
        "invalid msgpack",
    ),
    "text frame that is not Engine.IO": ("hello", "not an Engine.IO packet"),
    "empty text frame": ("", "empty text frame"),
    "JSON-parser text message": ('42["x"]', "JSON parser"),
    "ping from the client": ("2", "only the server pings"),
    "event for a namespace not connected": (
        packet(type=2, nsp="/other", data=["x"]),
        "EVENT for namespace '/other', which is not connected",
    ),
    "ack for a namespace not connected": (
        packet(type=3, nsp="/other", data=[], id=0),
        "ACK for namespace '/other'",
    ),
    "second CONNECT": (packet(type=0, nsp="/"), "second CONNECT"),
    "CONNECT_ERROR from a client": (
        packet(type=4, nsp="/", data={"message": "x"}),
        "CONNECT_ERROR",
    ),
}


@pytest.mark.parametrize(("frame", "why"), AFTER_CONNECT.values(), ids=AFTER_CONNECT.keys())
async def test_bad_frame_after_connect_closes_only_that_connection(
    stage: Stage, frame: bytes | str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await joined_peer(stage)
    try:
        await peer.send(frame)
        assert await peer.wait_closed() == CLOSE_PROTOCOL_ERROR
        assert await asyncio.wait_for(stage.reasons.get(), 5) == "transport error"
    finally:
        await peer.close()
    assert why in caplog.text
    await assert_only_the_bystander_is_left(stage)


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (packet(type=2, nsp="/", data=["x"]), "EVENT for namespace '/', which is not connected"),
        (packet(type=1, nsp="/"), "DISCONNECT for namespace '/'"),
        (b"garbage", "invalid msgpack"),
        ("2", "only the server pings"),
    ],
    ids=["event before connect", "disconnect before connect", "garbage", "ping"],
)
async def test_bad_frame_before_connect(
    stage: Stage, frame: bytes | str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await RawPeer.open_to(stage.url)
    try:
        await peer.send(frame)
        assert await peer.wait_closed() == CLOSE_PROTOCOL_ERROR
    finally:
        await peer.close()
    assert why in caplog.text
    await assert_only_the_bystander_is_left(stage)


async def test_oversized_frame_closes_the_connection(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await joined_peer(stage)
    try:
        await peer.send_packet(Event("echo", (b"x" * 9000,)))
        assert await peer.wait_closed() == CLOSE_TOO_BIG
        assert await asyncio.wait_for(stage.reasons.get(), 5) == "transport error"
    finally:
        await peer.close()
    assert "exceeds max_payload" in caplog.text
    await assert_only_the_bystander_is_left(stage)


async def test_oversized_text_frame_closes_the_connection(stage: Stage) -> None:
    peer = await joined_peer(stage)
    try:
        await peer.send("b" + "A" * 12000)
        assert await peer.wait_closed() == CLOSE_TOO_BIG
    finally:
        await peer.close()
    await assert_only_the_bystander_is_left(stage)


async def test_a_peer_that_never_connects_is_closed_after_connect_timeout(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await RawPeer.open_to(stage.url)
    try:
        assert await peer.wait_closed() == 1000
    finally:
        await peer.close()
    assert "no namespace joined within connect_timeout" in caplog.text
    await assert_only_the_bystander_is_left(stage)


async def test_harmless_oddities_keep_the_connection(stage: Stage) -> None:
    peer = await joined_peer(stage)
    try:
        # an ACK for an id nobody waits for is ignored, as are noop and a stray pong
        await peer.send_packet(Ack(12345, ("late",)))
        await peer.send("6")
        await peer.send("3")
        # unknown keys and another key order are fine; ack id 0 is a real id
        await peer.send(
            msgpack.packb(
                {
                    "id": 0,
                    "options": {"compress": True},
                    "nsp": "/",
                    "data": ["echo", "ok"],
                    "type": 2,
                }
            )
        )
        assert await peer.recv_packet() == Ack(0, ("ok",))
        # forceBase64 clients send binary messages as base64 text
        import base64

        frame = eventsock.codec.encode_packet(Event("echo", (b"\x00\xff",), "/", 1))
        await peer.send("b" + base64.b64encode(frame).decode())
        assert await peer.recv_packet() == Ack(1, (b"\x00\xff",))
        # the DISCONNECT python-socketio sends, with data nil, is accepted
        await peer.send(packet(type=1, data=None, nsp="/"))
        assert await asyncio.wait_for(stage.reasons.get(), 5) == "client disconnect"
    finally:
        await peer.close()
    await assert_only_the_bystander_is_left(stage)


async def test_engine_io_close_packet_is_a_transport_close(stage: Stage) -> None:
    peer = await joined_peer(stage)
    try:
        await peer.send("1")
        await peer.wait_closed()
        assert await asyncio.wait_for(stage.reasons.get(), 5) == "transport close"
    finally:
        await peer.close()
    await assert_only_the_bystander_is_left(stage)


async def test_abrupt_transport_loss(stage: Stage) -> None:
    peer = await joined_peer(stage)
    # drop the TCP connection without a WebSocket close
    transport = peer.ws._response.connection.transport  # type: ignore[union-attr]
    assert transport is not None
    transport.abort()
    assert await asyncio.wait_for(stage.reasons.get(), 5) in ("transport close", "transport error")
    await peer.close()
    await assert_only_the_bystander_is_left(stage)


# -- stream ids a peer may not choose (found by tests/test_fuzz_live.py) ----------------


async def test_an_upload_with_an_id_the_server_chooses_is_refused() -> None:
    # Before: the upload's consumer (id 1) was replaced by the server's own stream 1,
    # so nothing ever ended it and its handler waited forever after the peer left.
    server = eventsock.Server()

    @server.on("upload")
    async def upload(session: eventsock.Session, items: AsyncIterator[int]) -> int:
        return len([item async for item in items])

    @server.on("pull")
    async def pull(session: eventsock.Session) -> int:
        return len([item async for item in session.stream("feed", timeout=30)])

    async with serving(server) as url:
        peer = await RawPeer.open_to(url)
        try:
            assert isinstance(await peer.connect("/"), Connect)
            await peer.send_packet(Event("upload", ({"$stream": 1},), "/", 1))  # odd: the server's
            refused = await peer.recv_packet()
            assert isinstance(refused, Ack) and refused.id == 1
            assert refused.args[0]["$error"]["code"] == "invalid_arguments"
            assert "expected a stream" in refused.args[0]["$error"]["message"]
            await peer.send_packet(Event("pull", (), "/", 2))
            opened = await peer.recv_packet()
            assert isinstance(opened, Event) and opened.name == "$stream" and opened.args[0] == 1
        finally:
            await peer.close()
        await connections_done(server)
        handlers = list(server._tasks)
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=5)
            assert not pending, f"handlers left waiting: {pending}"
        assert server.task_count == 0


async def test_the_same_upload_id_twice_in_one_call_is_refused() -> None:
    server = eventsock.Server()

    @server.on("zip")
    async def zip_two(
        session: eventsock.Session, a: AsyncIterator[int], b: AsyncIterator[int]
    ) -> list[int]:
        first = await anext(aiter(a))
        return [first, await anext(aiter(b))]

    async with serving(server) as url:
        peer = await RawPeer.open_to(url)
        try:
            assert isinstance(await peer.connect("/"), Connect)
            await peer.send_packet(Event("zip", ({"$stream": 2}, {"$stream": 2}), "/", 1))
            assert await peer.recv_packet() == Event("$credit", (2, 16), "/")
            await peer.send_packet(Event("$item", (2, 5), "/"))
            answer = await peer.recv_packet()
            while isinstance(answer, Event):  # the first upload's credit and cancel
                answer = await peer.recv_packet()
            assert isinstance(answer, Ack) and answer.id == 1
            assert answer.args[0]["$error"]["code"] == "invalid_arguments"
            assert answer.args[0]["$error"]["message"] == "stream 2 is already in use"
        finally:
            await peer.close()
        await connections_done(server)
        assert sum(conn.link.streams.active for conn in server._connections) == 0


async def test_a_stream_open_with_an_id_the_server_chooses_is_refused() -> None:
    server = eventsock.Server()

    @server.stream("count")
    async def count(session: eventsock.Session, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async with serving(server) as url:
        peer = await RawPeer.open_to(url)
        try:
            assert isinstance(await peer.connect("/"), Connect)
            await peer.send_packet(Event("$stream", (1, "count", 4, 2), "/", 1))
            refused = await peer.recv_packet()
            assert isinstance(refused, Ack)
            assert refused.args[0]["$error"] == {
                "code": "invalid_arguments",
                "message": "stream id 1: the server side chooses the odd ids",
            }
            await peer.send_packet(Event("$stream", (2, "count", 4, 2), "/", 2))
            assert await peer.recv_packet() == Ack(2, (True,))
            assert await peer.recv_packet() == Event("$item", (2, 0), "/")
            assert await peer.recv_packet() == Event("$item", (2, 1), "/")
            assert await peer.recv_packet() == Event("$end", (2,), "/")
        finally:
            await peer.close()
