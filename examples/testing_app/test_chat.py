"""Tests of chat.py, written with eventsock's pytest fixtures (strict mode)."""

from collections.abc import Awaitable, Callable

import chat
import pytest

import eventsock
from eventsock.testing import TestClient, TestServer, serve

pytestmark = pytest.mark.asyncio

Connect = Callable[..., Awaitable[TestClient]]


# --8<-- [start:tests]
async def test_members_hear_what_is_said(eventsock_connect: Connect) -> None:
    ann = await eventsock_connect(auth={"user": "ann"})
    bob = await eventsock_connect(auth={"user": "bob"})
    assert await ann.call("join", "lobby") == ["ann"]
    assert await bob.call("join", "lobby") == ["ann", "bob"]
    assert await ann.next_event("joined") == ("bob",)

    await ann.emit("say", "lobby", "hello")
    assert await bob.next_event("said") == ("ann", "hello")
    # the sender is skipped; this one waits its whole `within` (0.2 s by default)
    await ann.assert_not_received("said")


async def test_saying_outside_a_room_is_an_error(eventsock_connect: Connect) -> None:
    ann = await eventsock_connect(auth={"user": "ann"})
    with pytest.raises(eventsock.RemoteError) as raised:
        await ann.call("say", "lobby", "anyone?")
    assert raised.value.code == "not_a_member"
    (ack,) = ann.acks
    assert (ack.event, ack.args, ack.error) == ("say", ("lobby", "anyone?"), raised.value)


async def test_a_user_name_is_required(eventsock_server: TestServer) -> None:
    with pytest.raises(eventsock.ConnectionRefused, match="a user name is required"):
        await eventsock_server.connect(auth={})


async def test_the_server_side(eventsock_server: TestServer) -> None:
    ann = await eventsock_server.connect(auth={"user": "ann"})
    await ann.call("join", "lobby")
    await ann.emit("say", "lobby", "hi")
    # what the server received, and from which session
    assert await eventsock_server.next_event("say", sid=ann.sid) == ("lobby", "hi")


# --8<-- [end:tests]


# --8<-- [start:serve]
async def test_without_the_fixtures() -> None:
    async with serve(chat.create_server()) as running:
        ann = await running.connect(auth={"user": "ann"})
        assert await ann.call("join", "lobby") == ["ann"]
    # leaving the block disconnected ann and shut the server down
    assert not ann.connected


# --8<-- [end:serve]
