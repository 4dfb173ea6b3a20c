"""Server limits: connections at once, namespaces per connection.

Written with the pytest plugin's fixtures (eventsock.testing.plugin): each test gets
a server made with its own limits through the indirect ``eventsock_app`` parameter."""

from __future__ import annotations

from typing import Any

import pytest

import eventsock
from eventsock.testing import TestClient, TestServer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def eventsock_app(request: pytest.FixtureRequest) -> eventsock.Server:
    """A server with the limits the test names, echoing on /, /a, /b and /c."""
    server = eventsock.Server(**request.param)
    for namespace in ("/", "/a", "/b", "/c"):
        server.on("echo", lambda session, value: value, namespace=namespace)
    return server


def limits(**options: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("eventsock_app", [options], indirect=True, ids=[""])


@limits(max_connections=2)
async def test_max_connections_refuses_the_one_too_many(
    no_leaks: None, eventsock_server: TestServer, eventsock_client: TestClient
) -> None:
    second = await eventsock_server.connect()
    with pytest.raises(eventsock.ConnectionFailed, match="HTTP 503"):
        await eventsock_server.connect()
    # the two served carry on
    assert await eventsock_client.call("echo", 1) == 1
    assert await second.call("echo", 2) == 2
    await second.disconnect()
    # a slot is free again once a connection has ended
    again = await eventsock_server.connect()
    assert await again.call("echo", 3) == 3


@limits(max_namespaces=2)
async def test_max_namespaces_per_connection(no_leaks: None, eventsock_server: TestServer) -> None:
    with pytest.raises(eventsock.ConnectionRefused, match="Too many namespaces"):
        await eventsock_server.connect(namespaces=["/a", "/b", "/c"])
    fine = await eventsock_server.connect(namespaces=["/a", "/b"])
    assert await fine.call("echo", "x", namespace="/b") == "x"
    assert [ack.namespace for ack in fine.acks] == ["/b"]


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        eventsock.Server(max_connections=0)
    with pytest.raises(ValueError, match="max_namespaces"):
        eventsock.Server(max_namespaces=0)
