"""Helpers for testing eventsock applications: a server on an ephemeral port, clients
that record what they receive, and awaits on it that fail with a clear message.

```python
from eventsock.testing import serve

async def test_say(app):
    async with serve(app) as running:
        alice = await running.connect(auth={"user": "alice"})
        bob = await running.connect(auth={"user": "bob"})
        await alice.emit("say", "hi")
        assert await bob.next_event("said") == ("alice", "hi")
        await alice.assert_not_received("said")
```

The pytest plugin in :mod:`eventsock.testing.plugin` (loaded through its entry point
when eventsock is installed) wraps these in fixtures. This module does not import
pytest: a failed expectation raises a plain ``AssertionError``.

Every helper that waits is bounded: it returns as soon as what it waits for happened
(or had happened already), and fails after its ``timeout`` otherwise.
:meth:`EventLog.assert_not_received` is the one that waits its whole ``within`` when
the test passes, so its default is short.
"""

from __future__ import annotations

import asyncio
import reprlib
import ssl as ssl_module
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from ..client import AuthSource, Client, HeadersSource
from ..server import Server, Session

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_WITHIN",
    "AckRecord",
    "EventLog",
    "Received",
    "Recorder",
    "TestClient",
    "TestServer",
    "connect",
    "serve",
]

#: Seconds the awaiting helpers wait by default.
DEFAULT_TIMEOUT: Final = 5.0
#: Seconds :meth:`EventLog.assert_not_received` watches by default.
DEFAULT_WITHIN: Final = 0.2

T = TypeVar("T")

_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlist = _repr.maxtuple = _repr.maxdict = 6


@dataclass(frozen=True)
class Received:
    """One event as it arrived.

    Attributes:
        event: its name.
        args: its arguments.
        namespace: the namespace it came on.
        sid: on the server side, the id of the session that sent it; ``None`` on a client.
    """

    event: str
    args: tuple[Any, ...]
    namespace: str = "/"
    sid: str | None = None

    def describe(self) -> str:
        where = "" if self.namespace == "/" else f" on {self.namespace!r}"
        sender = "" if self.sid is None else f" from {self.sid}"
        return f"{self.event}{_repr.repr(self.args)}{where}{sender}"


@dataclass(frozen=True)
class AckRecord:
    """A call a :class:`TestClient` made, and how it was answered.

    Attributes:
        event: the event called.
        args: its arguments.
        namespace: the namespace it was called on.
        result: what ``call()`` returned (``None`` when it raised).
        error: what ``call()`` raised instead: a :class:`~eventsock.RemoteError` for an
            error answer, :class:`~eventsock.AckTimeout`, :class:`~eventsock.ConnectionClosed`.
    """

    event: str
    args: tuple[Any, ...]
    namespace: str
    result: Any = None
    error: BaseException | None = None


class _Changes:
    """Something that changes and can be awaited until a check passes."""

    def __init__(self) -> None:
        self._changed: asyncio.Event | None = None

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _until(self, check: Callable[[], T | None], timeout: float) -> T | None:
        """``check()``'s first result that is not ``None``, or ``None`` after
        ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = check()
            if found is not None:
                return found
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            try:
                async with asyncio.timeout_at(deadline):
                    await changed.wait()
            except TimeoutError:
                return check()


class Recorder(_Changes):
    """A handler that records its calls, for tests to await:

    ```python
    news = Recorder()
    client.on("news", news)
    ...
    assert await news.wait(2) == [("first",), ("second",)]
    ```
    """

    def __init__(self) -> None:
        super().__init__()
        #: The arguments of each call, in order.
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)
        self._notify()

    async def wait(self, count: int = 1, timeout: float = DEFAULT_TIMEOUT) -> list[tuple[Any, ...]]:
        """Wait until there have been ``count`` calls; returns all the calls so far.

        Raises:
            AssertionError: fewer than ``count`` calls within ``timeout`` seconds.
        """
        __tracebackhide__ = True
        done = await self._until(lambda: True if len(self.calls) >= count else None, timeout)
        if done is None:
            raise AssertionError(
                f"expected {count} call(s) within {timeout} s, got {len(self.calls)}: "
                + _repr.repr(self.calls)
            )
        return self.calls


class EventLog(_Changes):
    """The events one side received, in arrival order, with awaits on them.

    Args:
        timeout: the default ``timeout`` of the methods that wait.
        owner: who received them, for failure messages ("the client").
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, owner: str = "the client") -> None:
        super().__init__()
        self.timeout = timeout
        self.owner = owner
        #: Every event received, in arrival order.
        self.records: list[Received] = []
        # how many events of each (event, namespace, sid) next_event() returned
        self._taken: dict[tuple[str, str, str | None], int] = {}

    def record(
        self, event: str, args: tuple[Any, ...], namespace: str = "/", sid: str | None = None
    ) -> None:
        """Add an event (the client and server helpers call this as events arrive)."""
        self.records.append(Received(event, tuple(args), namespace, sid))
        self._notify()

    def clear(self) -> None:
        """Forget every event received so far."""
        self.records.clear()
        self._taken.clear()

    def _matching(self, event: str, namespace: str, sid: str | None) -> list[Received]:
        return [
            r
            for r in self.records
            if r.event == event and r.namespace == namespace and (sid is None or r.sid == sid)
        ]

    def received(
        self, event: str, *, namespace: str = "/", sid: str | None = None
    ) -> list[tuple[Any, ...]]:
        """The arguments of every ``event`` received so far on ``namespace`` (from the
        session ``sid`` only, when given), oldest first. Does not wait."""
        return [r.args for r in self._matching(event, namespace, sid)]

    async def next_event(
        self,
        event: str,
        *,
        namespace: str = "/",
        sid: str | None = None,
        timeout: float | None = None,
    ) -> tuple[Any, ...]:
        """The arguments of the next ``event``: each call returns the following one,
        in arrival order, waiting for it if it has not arrived yet (one that arrived
        before the call counts).

        Raises:
            AssertionError: it did not arrive within ``timeout`` seconds; the message
                lists what did.
        """
        __tracebackhide__ = True
        timeout = self.timeout if timeout is None else timeout
        key = (event, namespace, sid)

        def take() -> Received | None:
            taken = self._taken.get(key, 0)
            matching = self._matching(event, namespace, sid)
            if len(matching) > taken:
                self._taken[key] = taken + 1
                return matching[taken]
            return None

        found = await self._until(take, timeout)
        if found is None:
            earlier = len(self._matching(event, namespace, sid))
            note = f" ({earlier} earlier one(s) already returned)" if earlier else ""
            raise AssertionError(
                f"{self.owner} received no {self._what(event, namespace, sid)} within"
                f" {timeout} s{note}; {self._summary()}"
            )
        return found.args

    async def assert_received(
        self,
        event: str,
        *args: Any,
        namespace: str = "/",
        sid: str | None = None,
        timeout: float | None = None,
    ) -> tuple[Any, ...]:
        """Check that ``event`` (with exactly ``args``, when some are given) was
        received, waiting up to ``timeout`` seconds for it; returns its arguments. It
        consumes nothing: :meth:`next_event` still returns the same event.

        Raises:
            AssertionError: no such event within ``timeout`` seconds.
        """
        __tracebackhide__ = True
        timeout = self.timeout if timeout is None else timeout

        def find() -> Received | None:
            for r in self._matching(event, namespace, sid):
                if not args or r.args == args:
                    return r
            return None

        found = await self._until(find, timeout)
        if found is None:
            wanted = self._what(event, namespace, sid)
            if args:
                wanted += f" with arguments {_repr.repr(args)}"
            raise AssertionError(
                f"{self.owner} received no {wanted} within {timeout} s; {self._summary()}"
            )
        return found.args

    async def assert_not_received(
        self,
        event: str,
        *args: Any,
        namespace: str = "/",
        sid: str | None = None,
        within: float = DEFAULT_WITHIN,
    ) -> None:
        """Check that no ``event`` (with exactly ``args``, when some are given) was
        received, nor arrives within ``within`` seconds.

        It fails as soon as one is there; when none comes it waits the whole of
        ``within`` (the only helper that does), so make that as short as what it
        rules out allows. To rule out an event the server would have sent before
        answering a call, call something and check at once with ``within=0``.

        Raises:
            AssertionError: such an event was received.
        """
        __tracebackhide__ = True

        def find() -> Received | None:
            for r in self._matching(event, namespace, sid):
                if not args or r.args == args:
                    return r
            return None

        found = await self._until(find, within)
        if found is not None:
            raise AssertionError(
                f"{self.owner} received {found.describe()}, which it should not have"
            )

    def _what(self, event: str, namespace: str, sid: str | None) -> str:
        what = f"{event!r} event"
        if namespace != "/":
            what += f" on {namespace!r}"
        if sid is not None:
            what += f" from {sid}"
        return what

    def _summary(self, limit: int = 10) -> str:
        if not self.records:
            return "it received nothing at all"
        shown = ", ".join(r.describe() for r in self.records[-limit:])
        more = f" (the last {limit} shown)" if len(self.records) > limit else ""
        return f"it received {len(self.records)} event(s){more}: {shown}"


class _Inbox:
    """What a side that records its events offers: the methods of its :attr:`events`."""

    events: EventLog

    async def next_event(
        self,
        event: str,
        *,
        namespace: str = "/",
        sid: str | None = None,
        timeout: float | None = None,
    ) -> tuple[Any, ...]:
        """See :meth:`EventLog.next_event`."""
        __tracebackhide__ = True
        return await self.events.next_event(event, namespace=namespace, sid=sid, timeout=timeout)

    def received(
        self, event: str, *, namespace: str = "/", sid: str | None = None
    ) -> list[tuple[Any, ...]]:
        """See :meth:`EventLog.received`."""
        return self.events.received(event, namespace=namespace, sid=sid)

    async def assert_received(
        self,
        event: str,
        *args: Any,
        namespace: str = "/",
        sid: str | None = None,
        timeout: float | None = None,
    ) -> tuple[Any, ...]:
        """See :meth:`EventLog.assert_received`."""
        __tracebackhide__ = True
        return await self.events.assert_received(
            event, *args, namespace=namespace, sid=sid, timeout=timeout
        )

    async def assert_not_received(
        self,
        event: str,
        *args: Any,
        namespace: str = "/",
        sid: str | None = None,
        within: float = DEFAULT_WITHIN,
    ) -> None:
        """See :meth:`EventLog.assert_not_received`."""
        __tracebackhide__ = True
        await self.events.assert_not_received(
            event, *args, namespace=namespace, sid=sid, within=within
        )


class TestClient(Client, _Inbox):
    """An :class:`eventsock.Client` that records every event it receives and every
    call it makes, with awaits on them. It takes the Client's options, and:

    Args:
        timeout: the default timeout, in seconds, of :meth:`connect`, :meth:`call`
            and the helpers that wait (5 s).

    Events are recorded as they arrive on the namespaces it connects to (after the
    client's own incoming middleware, before its handlers), whether or not it has a
    handler for them; :meth:`next_event`, :meth:`received`, :meth:`assert_received`
    and :meth:`assert_not_received` are those of its :attr:`events`.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, **options: Any) -> None:
        super().__init__(**options)
        self.timeout = timeout
        #: The events received.
        self.events = EventLog(timeout=timeout, owner="the client")
        #: The calls made with :meth:`call`, once answered (or failed), in that order.
        self.acks: list[AckRecord] = []
        self._watched: set[str] = set()

    def __repr__(self) -> str:
        state = f"sid={self.sid}" if self.connected else "not connected"
        return f"<TestClient {state}, {len(self.events.records)} event(s) received>"

    def _watch(self, namespace: str) -> None:
        if namespace in self._watched:
            return
        self._watched.add(namespace)
        events = self.events

        def record(event: str, args: tuple[Any, ...]) -> None:
            events.record(event, args, namespace)

        self.incoming(record, namespace=namespace)

    async def connect(
        self,
        url: str,
        *,
        namespaces: Iterable[str] | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> None:
        """:meth:`eventsock.Client.connect` (``options`` are its other keyword
        arguments: ``auth``, ``headers``, ``ssl``, ...), with :attr:`timeout` by default."""
        # the namespaces Client.connect would choose, so that they are watched first
        wanted = list(namespaces) if namespaces is not None else sorted(self._handlers) or ["/"]
        for namespace in wanted:
            self._watch(namespace)
        await super().connect(
            url,
            namespaces=wanted,
            timeout=self.timeout if timeout is None else timeout,
            **options,
        )

    async def call(
        self,
        event: str,
        *args: Any,
        namespace: str = "/",
        timeout: float | None = None,
        **options: Any,
    ) -> Any:
        """:meth:`eventsock.Client.call` (``options``: its other keyword arguments, such
        as ``result``), with :attr:`timeout` by default; the call and its answer (or
        error) are added to :attr:`acks`."""
        try:
            answer = await super().call(
                event,
                *args,
                namespace=namespace,
                timeout=self.timeout if timeout is None else timeout,
                **options,
            )
        except Exception as exc:
            self.acks.append(AckRecord(event, args, namespace, error=exc))
            raise
        self.acks.append(AckRecord(event, args, namespace, result=answer))
        return answer


# One middleware per Server, however many times it is served: a module-level server
# run by every test must not gather one per test.
_server_logs: weakref.WeakKeyDictionary[Server, list[EventLog]] = weakref.WeakKeyDictionary()


def _observe(server: Server, log: EventLog) -> None:
    logs = _server_logs.get(server)
    if logs is None:
        logs = _server_logs[server] = []

        def record(session: Session, event: str, args: tuple[Any, ...]) -> None:
            for each in logs:
                each.record(event, args, session.namespace, session.id)

        server.incoming(record)
    logs.append(log)


def _forget(server: Server, log: EventLog) -> None:
    logs = _server_logs.get(server)
    if logs is not None and log in logs:
        logs.remove(log)


class TestServer(_Inbox):
    """Runs a :class:`~eventsock.Server` on an ephemeral port of 127.0.0.1 while in an
    ``async with`` block, and connects :class:`TestClient` objects to it, which it
    disconnects before shutting the server down.

    Args:
        server: the application's server.
        host: the address to listen on.
        ssl: an ``ssl.SSLContext`` to serve TLS (the URL is then ``https://``).
        timeout: the default timeout of the clients it connects and of its helpers.

    It records the events the server receives from every client (after the server's
    own incoming middleware), with the id of the session that sent each:
    :meth:`next_event`, :meth:`received`, :meth:`assert_received` and
    :meth:`assert_not_received` are those of its :attr:`events` and take ``sid=`` to
    keep to one session.
    """

    __test__ = False

    def __init__(
        self,
        server: Server,
        *,
        host: str = "127.0.0.1",
        ssl: ssl_module.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not isinstance(server, Server):
            raise TypeError(f"expected an eventsock.Server, not {type(server).__name__}")
        self.server = server
        self.host = host
        self.ssl = ssl
        self.timeout = timeout
        #: The events the server received.
        self.events = EventLog(timeout=timeout, owner="the server")
        #: The clients :meth:`connect` made, connected or not.
        self.clients: list[TestClient] = []
        self._port: int | None = None

    def __repr__(self) -> str:
        where = "not running" if self._port is None else self.url
        return f"<TestServer {where}, {len(self.clients)} client(s)>"

    @property
    def port(self) -> int:
        """The port it listens on.

        Raises:
            RuntimeError: it is not running.
        """
        if self._port is None:
            raise RuntimeError("the test server is not running")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with TLS), for ``Client.connect``.

        Raises:
            RuntimeError: it is not running.
        """
        scheme = "http" if self.ssl is None else "https"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> str:
        """Start the server; returns its URL."""
        if self._port is not None:
            raise RuntimeError("the test server is already running")
        _observe(self.server, self.events)
        try:
            self._port = await self.server.start(self.host, 0, ssl=self.ssl)
        except BaseException:
            _forget(self.server, self.events)
            raise
        return self.url

    async def stop(self) -> None:
        """Disconnect the clients it made, then shut the server down."""
        if self._port is None:
            return
        try:
            await asyncio.gather(*(client.disconnect() for client in self.clients))
        finally:
            self._port = None
            _forget(self.server, self.events)
            await self.server.shutdown()

    async def connect(
        self,
        *,
        auth: AuthSource = None,
        headers: HeadersSource = None,
        namespaces: Iterable[str] | None = None,
        ssl: Any = None,
        timeout: float | None = None,
        **options: Any,
    ) -> TestClient:
        """A new :class:`TestClient`, connected (``options`` are the Client's; it does
        not reconnect unless given ``reconnection=True``).

        Raises:
            ConnectionFailed: it could not connect.
            ConnectionRefused: the server refused a namespace.
        """
        options.setdefault("reconnection", False)
        timeout = self.timeout if timeout is None else timeout
        client = TestClient(timeout=timeout, **options)
        self.clients.append(client)
        await client.connect(self.url, auth=auth, headers=headers, namespaces=namespaces, ssl=ssl)
        return client

    async def __aenter__(self) -> TestServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def serve(
    server: Server,
    *,
    host: str = "127.0.0.1",
    ssl: ssl_module.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> TestServer:
    """``async with serve(server) as running:`` runs ``server`` on an ephemeral port
    for the block; ``running.url`` is its URL (see :class:`TestServer`)."""
    return TestServer(server, host=host, ssl=ssl, timeout=timeout)


@asynccontextmanager
async def connect(
    url: str,
    *,
    auth: AuthSource = None,
    headers: HeadersSource = None,
    namespaces: Iterable[str] | None = None,
    ssl: Any = None,
    retry: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> AsyncIterator[TestClient]:
    """``async with connect(url, auth=...) as client:`` a :class:`TestClient`
    connected to any server's URL for the block, disconnected after.

    ``options`` are the Client's (it does not reconnect unless given
    ``reconnection=True``); the others are those of ``Client.connect``, and
    ``timeout`` is also the client's default timeout.
    """
    options.setdefault("reconnection", False)
    client = TestClient(timeout=timeout, **options)
    try:
        await client.connect(
            url, auth=auth, headers=headers, namespaces=namespaces, ssl=ssl, retry=retry
        )
        yield client
    finally:
        await client.disconnect()
