"""Server limits: connections at once, namespaces per connection."""

from __future__ import annotations

import pytest

import eventsock

from .helpers import connected, serving

pytestmark = pytest.mark.timeout(30)


async def test_max_connections_refuses_the_one_too_many(no_leaks: None) -> None:
    server = eventsock.Server(max_connections=2)
    server.on("echo", lambda session, value: value)
    async with serving(server) as url, connected(url) as first, connected(url) as second:
        third = eventsock.Client(reconnection=False)
        with pytest.raises(eventsock.ConnectionFailed, match="HTTP 503"):
            await third.connect(url, timeout=5)
        # the two served carry on
        assert await first.call("echo", 1) == 1
        assert await second.call("echo", 2) == 2
        await second.disconnect()
        # a slot is free again once a connection has ended
        async with connected(url) as again:
            assert await again.call("echo", 3) == 3


async def test_max_namespaces_per_connection(no_leaks: None) -> None:
    server = eventsock.Server(max_namespaces=2)
    for namespace in ("/a", "/b", "/c"):
        server.on("echo", lambda session, value: value, namespace=namespace)
    async with serving(server) as url:
        client = eventsock.Client(reconnection=False)
        with pytest.raises(eventsock.ConnectionRefused, match="Too many namespaces"):
            await client.connect(url, namespaces=["/a", "/b", "/c"], timeout=5)
        async with connected(url, namespaces=["/a", "/b"]) as fine:
            assert await fine.call("echo", "x", namespace="/b") == "x"


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        eventsock.Server(max_connections=0)
    with pytest.raises(ValueError, match="max_namespaces"):
        eventsock.Server(max_namespaces=0)
