"""The pytest plugin: fixtures that run your server and connect clients to it.

Installing eventsock registers it (the ``pytest11`` entry point ``eventsock``); with
``-p no:eventsock`` pytest leaves it out. Its async fixtures need pytest-asyncio, in
strict or auto mode, with function-scoped event loops (the default).

Fixtures:

``eventsock_app``
    the :class:`~eventsock.Server` under test. Override it in your ``conftest.py``
    (return a new server for each test), or name it in the ini option
    ``eventsock_app = "module:attribute"`` (a Server, or a function returning one).
``eventsock_server``
    a :class:`~eventsock.testing.TestServer` running ``eventsock_app`` on an
    ephemeral port of 127.0.0.1 for the test.
``eventsock_client``
    a :class:`~eventsock.testing.TestClient` connected to it on ``/``.
``eventsock_connect``
    ``await eventsock_connect(auth=..., namespaces=..., **client_options)`` connects
    one more TestClient (``eventsock_server.connect``); each is disconnected after the
    test.

Ini options: ``eventsock_app`` (above) and ``eventsock_timeout``, the default timeout
in seconds of the clients and of the helpers that wait (5).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import pytest

from ..cli import find_server
from ..server import Server
from . import DEFAULT_TIMEOUT, TestClient, TestServer

__all__ = [
    "eventsock_app",
    "eventsock_client",
    "eventsock_connect",
    "eventsock_server",
    "pytest_addoption",
]

F = TypeVar("F", bound=Callable[..., Any])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "eventsock_app",
        "module:attribute of the eventsock.Server (or a function returning one) that the "
        "eventsock_server fixture runs, unless the eventsock_app fixture is overridden",
        default="",
    )
    parser.addini(
        "eventsock_timeout",
        "default timeout, in seconds, of eventsock's test clients and of their helpers",
        default=str(DEFAULT_TIMEOUT),
    )


def _async_fixture(func: F) -> F:
    """``pytest_asyncio.fixture(func)``, or, without pytest-asyncio, a fixture that
    says it is missing (the plugin is loaded in every pytest run of an environment
    with eventsock, so it must not break those without it)."""
    try:
        import pytest_asyncio
    except ImportError:

        def missing() -> None:
            pytest.fail(
                f"the {func.__name__} fixture needs pytest-asyncio: pip install pytest-asyncio",
                pytrace=False,
            )

        missing.__name__ = func.__name__
        missing.__doc__ = func.__doc__
        return cast(F, pytest.fixture(missing))
    return cast(F, pytest_asyncio.fixture(func))


def _timeout(config: pytest.Config) -> float:
    text = config.getini("eventsock_timeout")
    try:
        timeout = float(text)
    except ValueError:
        timeout = -1.0
    if not timeout > 0:
        raise pytest.UsageError(f"eventsock_timeout must be a positive number, not {text!r}")
    return timeout


@pytest.fixture
def eventsock_app(pytestconfig: pytest.Config) -> Server:
    """The Server under test: override this fixture, or set the ini option
    ``eventsock_app = "module:attribute"``."""
    spec = pytestconfig.getini("eventsock_app")
    if not spec:
        pytest.fail(
            "eventsock_server needs your server: define a fixture named eventsock_app that"
            ' returns it, or set eventsock_app = "module:attribute" in the pytest ini options',
            pytrace=False,
        )
    try:
        return find_server(spec)
    except (ValueError, LookupError, TypeError) as exc:
        pytest.fail(f"eventsock_app = {spec!r}: {exc}", pytrace=False)


@_async_fixture
async def eventsock_server(
    eventsock_app: Server, pytestconfig: pytest.Config
) -> AsyncIterator[TestServer]:
    """``eventsock_app`` running on an ephemeral port for the test."""
    async with TestServer(eventsock_app, timeout=_timeout(pytestconfig)) as running:
        yield running


@_async_fixture
async def eventsock_client(eventsock_server: TestServer) -> TestClient:
    """A TestClient connected to ``eventsock_server`` on ``/``."""
    return await eventsock_server.connect()


@pytest.fixture
def eventsock_connect(eventsock_server: TestServer) -> Callable[..., Awaitable[TestClient]]:
    """``await eventsock_connect(auth=...)``: one more connected TestClient."""
    return eventsock_server.connect
