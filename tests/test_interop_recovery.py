"""Connection state recovery against socket.io 4.8 in Node, both ways.

The Node side uses ``connectionStateRecovery`` (tests/node/server.js --recovery) and
socket.io-client's own recovery (client.js scenario ``recovery``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import eventsock
from eventsock import Recovery, Session

from .faults import FaultProxy
from .helpers import Recorder
from .reference_app import SECRET
from .test_interop_node import NodeServer, run_node_client

pytestmark = pytest.mark.timeout(60)

FAST = {"reconnection_delay": 0.05, "reconnection_delay_max": 0.2, "randomization_factor": 0}


def recovering_reference_server() -> eventsock.Server:
    """The reference app's recovery part in eventsock (see tests/node/README.md)."""
    server = eventsock.Server(recovery=Recovery())

    @server.on("connect")
    def connect(session: Session, auth: dict[str, Any]) -> None:
        if auth.get("token") != SECRET:
            raise eventsock.ConnectionRefused("Not authorized", data={"code": 42})

    @server.on("tick_me")
    async def tick_me(session: Session, n: int) -> bool:
        for i in range(n):
            await session.emit("tick", i)
        return True

    @server.on("disconnect")
    async def disconnect(session: Session, reason: str) -> None:
        if reason in ("transport close", "transport error", "ping timeout"):
            # kept in the replay log for the session's own room
            await server.emit("tick", "missed-1", to=session.id)
            await server.emit("tick", "missed-2", to=session.id)

    return server


def is_offset(value: Any) -> bool:
    return isinstance(value, str) and len(value) > 0


async def test_node_client_recovers_against_eventsock(no_leaks: None) -> None:
    server = recovering_reference_server()
    port = await server.start("127.0.0.1", 0)
    try:
        run = await run_node_client(f"http://127.0.0.1:{port}", "recovery")
    finally:
        await server.shutdown()
    first, reconnected, ticks = run.ok_steps()
    assert first["step"] == "first"
    assert [args[0] for args in first["ticks"]] == [0, 1, 2]
    assert reconnected == {"step": "reconnected", "recovered": True, "same_id": True}
    assert ticks["missed_complete"] is True
    args = ticks["args"]
    # socket.io-client passes the offset on as a last argument; every one is distinct
    assert [a[0] for a in args] == [0, 1, 2, "missed-1", "missed-2"]
    assert all(len(a) == 2 and is_offset(a[1]) for a in args)
    assert len({a[1] for a in args}) == 5


async def test_eventsock_client_recovers_against_node(no_leaks: None) -> None:
    async with NodeServer("--recovery") as node, FaultProxy(node.port) as proxy:
        client = eventsock.Client(**FAST)
        ticks = Recorder()
        client.on("tick", ticks)  # one argument: the offset never reaches the handler
        reconnected: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        client.on("reconnect", lambda n: reconnected.put_nowait((n,)))
        await client.connect(proxy.url, auth={"token": "secret"}, timeout=5)
        first = await node.expect("connect")
        assert first["recovered"] is False
        assert await client.call("tick_me", 3, timeout=5) is True
        assert await ticks.wait(3) == [(0,), (1,), (2,)]
        sid = client.sid

        proxy.cut()
        assert (await node.expect("disconnect"))["reason"] == "transport close"
        await asyncio.wait_for(reconnected.get(), 10)
        again = await node.expect("connect")
        assert again["recovered"] is True
        assert again["sid"] == sid
        assert set(again["auth"]) == {"pid", "offset", "token"}
        assert client.recovered
        assert client.sid == sid
        assert await ticks.wait(5) == [(0,), (1,), (2,), ("missed-1",), ("missed-2",)]
        await client.disconnect()


async def test_eventsock_client_without_recovery_keeps_trailing_strings(
    no_leaks: None,
) -> None:
    # server.js without --recovery sends no pid: nothing is taken for an offset
    async with NodeServer() as node:
        client = eventsock.Client(**FAST)
        echoes = Recorder()
        client.on("tick", echoes)
        await client.connect(node.url, auth={"token": "secret"}, timeout=5)
        assert await client.call("tick_me", 2, timeout=5) is True
        assert await echoes.wait(2) == [(0,), (1,)]
        assert await client.call("echo", "a", "trailing string", timeout=5) == (
            "a",
            "trailing string",
        )
        assert not client.recovered
        await client.disconnect()


def test_only_offset_shaped_strings_are_taken_for_offsets() -> None:
    from eventsock.packets import Event

    client = eventsock.Client()
    client._pids["/"] = "pid"
    strip = client._strip_offset
    assert strip(Event("e", ("x", "Q8LX0jH"))) == Event("e", ("x",))
    assert strip(Event("e", ("x", "Q8LX0jH.0"))) == Event("e", ("x",))
    assert strip(Event("e", ("x", "a1b2f"))) == Event("e", ("x",))
    # a volatile event from socket.io carries no offset: text stays an argument
    assert strip(Event("e", ("x", "last string"))) == Event("e", ("x", "last string"))
    assert strip(Event("e", ("x", "done!"))) == Event("e", ("x", "done!"))
    assert strip(Event("e", ("x", 3))) == Event("e", ("x", 3))
    # a call (with an id) never carries an offset
    assert strip(Event("e", ("x", "Q8LX0jH"), "/", 1)) == Event("e", ("x", "Q8LX0jH"), "/", 1)
