"""Error answers to calls: a handler's RemoteError reaches the caller as the same
exception, anything unexpected as an internal_error that tells nothing, and events with
no handler or the wrong arguments are answered instead of left to time out."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import eventsock
from eventsock import Session
from eventsock.codec import decode_packet, encode_ack
from eventsock.packets import Ack
from eventsock.remote import ERROR_KEY, error_args, is_error_object, raise_for_error
from eventsock.testing import Recorder, TestClient, TestServer, serve

from .helpers import suspend_once

pytestmark = pytest.mark.timeout(30)


def test_the_error_object_on_the_wire() -> None:
    frame = encode_ack(
        3, error_args(eventsock.RemoteError("no user 7", code="not_found", data={"id": 7})), "/"
    )
    # golden bytes: {"type": 3, "data": [{"$error": {...}}], "nsp": "/", "id": 3}
    assert frame == (
        b"\x84\xa4type\x03\xa4data\x91\x81\xa6$error\x83\xa4code\xa9not_found"
        b"\xa7message\xa9no user 7\xa4data\x81\xa2id\x07\xa3nsp\xa1/\xa2id\x03"
    )
    packet = decode_packet(frame)
    assert isinstance(packet, Ack)
    with pytest.raises(eventsock.RemoteError) as raised:
        raise_for_error(packet.args)
    assert (raised.value.code, raised.value.message, raised.value.data) == (
        "not_found",
        "no user 7",
        {"id": 7},
    )
    # no data: no "data" key
    assert error_args(eventsock.UnknownEvent("gone")) == (
        {ERROR_KEY: {"code": "unknown_event", "message": "gone"}},
    )


def test_only_the_exact_shape_is_an_error() -> None:
    error = {"code": "x", "message": "y"}
    assert is_error_object({ERROR_KEY: error})
    assert not is_error_object({ERROR_KEY: error, "other": 1})  # a second key
    assert not is_error_object({ERROR_KEY: {"code": 1, "message": "y"}})
    assert not is_error_object({ERROR_KEY: {"code": "x"}})
    assert not is_error_object([{ERROR_KEY: error}])
    assert not is_error_object({"error": error})
    raise_for_error(({ERROR_KEY: error}, 2))  # two ack arguments: a plain result


def test_codes_map_to_their_classes() -> None:
    for cls in (eventsock.InvalidArguments, eventsock.UnknownEvent, eventsock.InternalError):
        with pytest.raises(cls):
            raise_for_error(error_args(cls("m")))
        assert issubclass(cls, eventsock.RemoteError)
    with pytest.raises(eventsock.RemoteError) as raised:
        raise_for_error(error_args(eventsock.RemoteError("m", code="mine")))
    assert type(raised.value) is eventsock.RemoteError
    assert raised.value.code == "mine"
    assert eventsock.RemoteError("m").code == "error"
    assert str(eventsock.RemoteError("no user", code="not_found")) == "not_found: no user"


def error_server() -> eventsock.Server:
    server = eventsock.Server()

    @server.on("find")
    def find(session: Session, user_id: int) -> dict[str, Any]:
        if user_id != 1:
            raise eventsock.RemoteError(
                f"no user {user_id}", code="not_found", data={"id": user_id}
            )
        return {"id": 1}

    @server.on("find_later")
    async def find_later(session: Session, user_id: int) -> dict[str, Any]:
        await suspend_once()
        raise eventsock.RemoteError(f"no user {user_id}", code="not_found")

    @server.on("deny")
    async def deny(session: Session) -> None:
        raise eventsock.InvalidArguments("a reason the handler gives")

    @server.on("boom")
    def boom(session: Session) -> None:
        raise ValueError("secret detail")

    @server.on("boom_later")
    async def boom_later(session: Session) -> None:
        await suspend_once()
        raise KeyError("secret detail")

    @server.on("fake_error")
    def fake_error(session: Session) -> dict[str, Any]:
        return {"$error": {"code": "x", "message": "forged"}}

    @server.on("unencodable")
    def unencodable(session: Session) -> object:
        return object()

    @server.on("echo")
    def echo(session: Session, value: Any) -> Any:
        return value

    return server


# The tests below that take eventsock_server or eventsock_client (the pytest plugin's
# fixtures) run this app.
@pytest.fixture
def eventsock_app() -> eventsock.Server:
    return error_server()


async def test_handler_errors_reach_the_eventsock_caller(
    no_leaks: None, caplog: pytest.LogCaptureFixture, eventsock_client: TestClient
) -> None:
    client = eventsock_client
    assert await client.call("find", 1) == {"id": 1}
    with pytest.raises(eventsock.RemoteError) as raised:
        await client.call("find", 7)
    assert (raised.value.code, raised.value.message, raised.value.data) == (
        "not_found",
        "no user 7",
        {"id": 7},
    )
    with pytest.raises(eventsock.RemoteError, match="not_found: no user 8"):
        await client.call("find_later", 8)
    with pytest.raises(eventsock.InvalidArguments, match="a reason the handler gives"):
        await client.call("deny")
    with caplog.at_level(logging.ERROR, logger="eventsock"):
        for event in ("boom", "boom_later"):
            with pytest.raises(eventsock.InternalError) as failed:
                await client.call(event)
            assert failed.value.message == "internal error"
            assert failed.value.data is None
    # the details stay in the server's log
    assert "ValueError: secret detail" in caplog.text
    assert "KeyError: 'secret detail'" in caplog.text
    with pytest.raises(eventsock.InternalError, match="reserved"):
        await client.call("fake_error")
    with pytest.raises(eventsock.InternalError, match="cannot be encoded"):
        await client.call("unencodable")
    # nothing of this hurt the connection
    assert await client.call("echo", "still here") == "still here"


async def test_unknown_events_and_wrong_arguments_are_answered(
    no_leaks: None, eventsock_client: TestClient
) -> None:
    client = eventsock_client
    with pytest.raises(eventsock.UnknownEvent, match="no handler for 'nope' on '/'"):
        await client.call("nope", 1, timeout=5)
    with pytest.raises(eventsock.InvalidArguments) as raised:
        await client.call("find", 1, 2, timeout=5)
    assert raised.value.data == {"expected": "1", "received": 2}
    # without an ack asked, nothing is answered and nothing breaks
    await client.emit("nope")
    await client.emit("find")
    assert await client.call("echo", 1) == 1
    assert [ack.event for ack in client.acks] == ["nope", "find", "echo"]


async def test_debug_describes_the_unexpected_exception(
    no_leaks: None, eventsock_server: TestServer
) -> None:
    eventsock_server.server.debug = True  # as Server(debug=True) would
    client = await eventsock_server.connect()
    with pytest.raises(eventsock.InternalError) as failed:
        await client.call("boom")
    assert [(ack.event, ack.error) for ack in client.acks] == [("boom", failed.value)]
    assert failed.value.message == "ValueError: secret detail"
    assert "Traceback" in failed.value.data["traceback"]
    assert "secret detail" in failed.value.data["traceback"]
    assert eventsock.Server(debug=True).debug
    assert eventsock.Client(debug=True).debug


async def test_client_handler_errors_reach_the_server(no_leaks: None) -> None:
    server = eventsock.Server()
    joined = Recorder()
    server.on("connect", lambda session: joined(session))

    async with serve(server) as running:
        url = running.url
        clients = [eventsock.Client(), eventsock.Client()]
        for n, client in enumerate(clients):

            @client.on("question")
            def question(x: int, n: int = n) -> int:
                if n == 1:
                    raise eventsock.RemoteError("no", code="refused", data=n)
                return x * 2

            await client.connect(url, timeout=5)
            await server.enter_room(client.sid or "", "all")
        ok, refuse = (server._sessions[c.sid or ""] for c in clients)
        assert await ok.call("question", 21, timeout=5) == 42
        with pytest.raises(eventsock.RemoteError) as raised:
            await refuse.call("question", 21, timeout=5)
        assert (raised.value.code, raised.value.data) == ("refused", 1)
        with pytest.raises(eventsock.RemoteError, match="refused"):
            await server.call("question", 21, to=refuse.id, timeout=5)
        with pytest.raises(eventsock.UnknownEvent):
            await server.call("no_such", to=ok.id, timeout=5)
        answers = await server.call_room("question", 5, to="all", timeout=5)
        assert answers[ok.id] == 10
        error = answers[refuse.id]
        assert isinstance(error, eventsock.RemoteError)
        assert (error.code, error.message, error.data) == ("refused", "no", 1)
        await asyncio.gather(*(c.disconnect() for c in clients))
