"""TLS end to end (wss://) and certificate pinning, with certificates made by trustme.

Real TLS on 127.0.0.1: eventsock's server and client, python-socketio's client, Node's
socket.io-client, and a bare TLS listener that records every byte a client sends after
the handshake (the proof that a refused pin sends nothing, not even the HTTP request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import socketio
import socketio.exceptions
import trustme
import uvloop
from aiohttp import web

import eventsock
from eventsock import CertificatePinMismatch, Pin, Session

from .faults import FaultProxy
from .helpers import Recorder
from .test_interop_node import NODE_DIR, finish_process, node_executable, parse_line

pytestmark = pytest.mark.timeout(60)

WAIT = 5.0  # seconds allowed for any single expected observation
BLOB = bytes(i % 251 for i in range(1 << 20))  # 1 MiB


@dataclass
class Certs:
    """A CA, a server certificate it issued, and contexts for both sides."""

    ca: trustme.CA
    pem: bytes  # the server certificate
    server: ssl.SSLContext
    client: ssl.SSLContext  # trusts ``ca``

    def pin(self, target: Any = "public_key") -> Pin:
        return Pin.of(self.pem, target=target)


def make_certs(ca: trustme.CA | None = None, host: str = "127.0.0.1") -> Certs:
    ca = ca or trustme.CA()
    leaf = ca.issue_cert(host)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Certs(ca, leaf.cert_chain_pems[0].bytes(), server, client)


def echo_server() -> eventsock.Server:
    server = eventsock.Server(max_payload=4 << 20)
    server.on("echo", lambda session, x: x)
    return server


@asynccontextmanager
async def serving_tls(server: eventsock.Server, certs: Certs) -> AsyncIterator[str]:
    port = await server.start("127.0.0.1", 0, ssl=certs.server)
    try:
        yield f"wss://127.0.0.1:{port}"
    finally:
        await server.shutdown()


async def echo_once(url: str, **options: Any) -> Any:
    async with eventsock.Client() as client:
        await client.connect(url, timeout=WAIT, **options)
        return await client.call("echo", b"over tls", timeout=WAIT)


class TlsListener:
    """A TCP listener that runs the server side of TLS itself (an ``ssl.SSLObject`` over
    the raw bytes, so nothing else can read them first) and records, for each
    connection, how its handshake ended and every byte decrypted after it.

    It answers a complete HTTP request with 403 (so that a client does not retry)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self.accepted = 0
        self.results: asyncio.Queue[tuple[str | None, bytes]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> TlsListener:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.url = f"wss://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), WAIT)
        await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self._context.wrap_bio(incoming, outgoing, server_side=True)

        async def flush() -> None:
            data = outgoing.read()
            if data:
                writer.write(data)
                await asyncio.wait_for(writer.drain(), WAIT)

        async def feed() -> bool:
            data = await asyncio.wait_for(reader.read(65536), WAIT)
            if data:
                incoming.write(data)
            else:
                incoming.write_eof()
            return bool(data)

        handshake: str | None = "the client closed the connection during the handshake"
        received = b""
        try:
            for _ in range(100):  # a handshake takes a few rounds
                try:
                    tls.do_handshake()
                except ssl.SSLWantReadError:
                    await flush()
                    if not await feed():
                        return
                else:
                    handshake = None
                    await flush()
                    break
            for _ in range(1000):
                if b"\r\n\r\n" in received:
                    tls.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    await flush()
                    return
                try:
                    received += tls.read(65536)
                except ssl.SSLWantReadError:
                    if not await feed():
                        return
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return  # the client closed: ``received`` is all it sent
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            if handshake is not None:
                handshake = f"{type(exc).__name__}: {exc}"
        finally:
            writer.transport.abort()
            self.results.put_nowait((handshake, received))


# -- wss:// end to end -----------------------------------------------------------------


async def test_events_acks_and_binary_both_ways_over_wss(no_leaks: None) -> None:
    certs = make_certs()
    server = echo_server()
    answers: list[Any] = []

    @server.on("connect")
    async def joined(session: Session) -> None:
        await session.emit("welcome", "over tls")

    @server.on("ask")
    async def ask(session: Session, x: int) -> None:
        answers.append(await session.call("double", x, timeout=WAIT))

    welcome = Recorder()
    async with serving_tls(server, certs) as url:
        client = eventsock.Client()
        client.on("welcome", welcome)
        client.on("double", lambda x: 2 * x)
        await client.connect(url, ssl=certs.client, timeout=WAIT)
        try:
            assert await welcome.wait() == [("over tls",)]
            assert await client.call("echo", BLOB, timeout=WAIT) == BLOB  # 1 MiB, binary
            assert await client.call("echo", {"k": [1, None, b"\x00"]}) == {"k": [1, None, b"\x00"]}
            await client.call("ask", 21, timeout=WAIT)  # the server calls the client back
            assert answers == [42]
        finally:
            await client.disconnect()
        # https:// means the same; a plain ws:// client cannot talk to a TLS port
        assert await echo_once(url.replace("wss://", "https://"), ssl=certs.client) == b"over tls"
        with pytest.raises(eventsock.ConnectionFailed):
            await echo_once(url.replace("wss://", "ws://"))


# -- pins that match -------------------------------------------------------------------


async def test_a_matching_public_key_or_certificate_pin_connects(no_leaks: None) -> None:
    certs = make_certs()
    other = make_certs(certs.ca)  # same CA, another key
    async with serving_tls(echo_server(), certs) as url:
        for pin in (
            certs.pin(),
            certs.pin("certificate"),
            str(certs.pin()),  # "sha256/..."
            str(certs.pin("certificate")),  # "AB:CD:..."
            str(certs.pin("certificate")).replace(":", "").lower(),
            [other.pin(), certs.pin("certificate")],  # any one of several (key rotation)
        ):
            assert await echo_once(url, ssl=certs.client, pin=pin) == b"over tls", pin


# -- pins that do not match: nothing is sent -------------------------------------------


async def test_a_wrong_pin_fails_in_the_handshake_before_any_request_byte(no_leaks: None) -> None:
    certs = make_certs()
    wrong = make_certs(certs.ca).pin()
    async with TlsListener(certs.server) as listener:
        with pytest.raises(CertificatePinMismatch) as caught:
            await echo_once(listener.url, ssl=certs.client, pin=wrong, headers={"X-Token": "t"})
        # (the listener's side of the handshake may or may not have completed: the
        # client stops as soon as its own side has; either way nothing came after it)
        _, received = await asyncio.wait_for(listener.results.get(), WAIT)
        assert received == b"", "bytes reached the impostor"
        assert listener.accepted == 1
        # the control: the same listener with the right pin does see the request
        with pytest.raises(eventsock.ConnectionFailed, match="HTTP 403"):
            await echo_once(
                listener.url, ssl=certs.client, pin=certs.pin(), headers={"X-Token": "t"}
            )
        handshake, received = await asyncio.wait_for(listener.results.get(), WAIT)
        assert handshake is None
        assert received.startswith(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n")
        assert b"\r\nX-Token: t\r\n" in received
        assert listener.accepted == 2
    error = caught.value
    assert isinstance(error, eventsock.ConnectionFailed)
    assert error.expected == (str(wrong),)
    assert error.public_key == str(certs.pin())
    assert error.certificate == str(certs.pin("certificate"))
    assert str(error) == (
        f"the certificate of 127.0.0.1 matches none of the pins: expected {wrong}; "
        f"it has public key {certs.pin()} and certificate {certs.pin('certificate')}"
    )
    # raised by the TLS handshake itself, as the certificate verification error it is
    assert isinstance(error.__cause__, ssl.SSLCertVerificationError)


async def test_an_eventsock_server_never_sees_the_request_of_a_wrong_pin(no_leaks: None) -> None:
    certs = make_certs()
    requests: list[str] = []

    @web.middleware
    async def count(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        requests.append(request.path)
        return await handler(request)

    app = web.Application(middlewares=[count])
    server = echo_server()
    server.attach(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs.server)
        await site.start()
        url = f"wss://127.0.0.1:{runner.addresses[0][1]}"
        with pytest.raises(CertificatePinMismatch):
            await echo_once(url, ssl=certs.client, pin=make_certs(certs.ca).pin())
        assert requests == []
        assert await echo_once(url, ssl=certs.client, pin=certs.pin()) == b"over tls"
        assert requests == ["/socket.io/"]
    finally:
        await runner.cleanup()


# -- pins and the other checks ---------------------------------------------------------


async def test_pins_add_to_ca_verification_unless_ssl_is_false(no_leaks: None) -> None:
    """A certificate from a CA the client does not trust: the default verification
    refuses it even with its right pin; ``ssl=False`` leaves the pins as the only trust
    (how to accept a self-signed certificate), and then a wrong pin is still refused."""
    certs = make_certs()  # nothing trusts this CA by default
    async with serving_tls(echo_server(), certs) as url:
        with pytest.raises(eventsock.ConnectionFailed, match="certificate verify failed"):
            await echo_once(url)
        with pytest.raises(eventsock.ConnectionFailed, match="certificate verify failed") as caught:
            await echo_once(url, pin=certs.pin())
        assert not isinstance(caught.value, CertificatePinMismatch)
        assert await echo_once(url, ssl=False, pin=certs.pin()) == b"over tls"
        assert await echo_once(url, ssl=False, pin=certs.pin("certificate")) == b"over tls"
        with pytest.raises(CertificatePinMismatch):
            await echo_once(url, ssl=False, pin=make_certs().pin())


async def test_pins_keep_the_host_name_check(no_leaks: None) -> None:
    certs = make_certs(host="example.org")  # trusted, but not for 127.0.0.1
    async with serving_tls(echo_server(), certs) as url:
        with pytest.raises(eventsock.ConnectionFailed, match="IP address mismatch") as caught:
            await echo_once(url, ssl=certs.client, pin=certs.pin())
        assert not isinstance(caught.value, CertificatePinMismatch)
        assert await echo_once(url, ssl=False, pin=certs.pin()) == b"over tls"


async def test_one_context_shared_by_pinned_and_unpinned_clients(no_leaks: None) -> None:
    certs = make_certs()
    before = (certs.client.sslobject_class, certs.client.verify_mode, certs.client.check_hostname)
    async with serving_tls(echo_server(), certs) as url:
        outcomes: tuple[Any, ...] = await asyncio.gather(
            echo_once(url, ssl=certs.client, pin=certs.pin()),
            echo_once(url, ssl=certs.client, pin=make_certs(certs.ca).pin()),
            echo_once(url, ssl=certs.client),
            return_exceptions=True,
        )
    right, wrong, plain = outcomes
    assert right == plain == b"over tls"
    assert isinstance(wrong, CertificatePinMismatch)
    after = (certs.client.sslobject_class, certs.client.verify_mode, certs.client.check_hostname)
    assert after == before == (ssl.SSLObject, ssl.CERT_REQUIRED, True)


async def test_bad_pin_arguments_are_refused_before_connecting(no_leaks: None) -> None:
    client = eventsock.Client()
    with pytest.raises(ValueError, match="not a pin"):
        await client.connect("wss://127.0.0.1:9", pin="md5/abc")
    with pytest.raises(ValueError, match="https:// or wss://"):
        await client.connect("http://127.0.0.1:9", pin=Pin("public_key", bytes(32)))
    with pytest.raises(ValueError, match="empty"):
        await client.connect("wss://127.0.0.1:9", pin=[])
    assert not client.connected


# -- reconnection ----------------------------------------------------------------------


async def test_reconnection_to_another_key_follows_the_policy_and_warns(
    no_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The server the client reconnects to has a certificate from the same trusted CA
    but another key: each attempt is refused with a warning, and the client gives up
    after ``reconnection_attempts``, never having sent a request there."""
    first = make_certs()
    second = make_certs(first.ca)
    impostor = echo_server()
    reached = Recorder()
    impostor.on("connect", reached)
    caplog.set_level(logging.WARNING, logger="eventsock")
    async with (
        serving_tls(echo_server(), first) as genuine_url,
        serving_tls(impostor, second) as impostor_url,
        FaultProxy(int(genuine_url.rsplit(":", 1)[1])) as proxy,
    ):
        client = eventsock.Client(
            reconnection_attempts=2,
            reconnection_delay=0.01,
            reconnection_delay_max=0.01,
            randomization_factor=0,
        )
        gave_up = Recorder()
        client.on("reconnect_failed", gave_up)
        url = proxy.url.replace("http://", "wss://")
        await client.connect(url, ssl=first.client, pin=first.pin(), timeout=WAIT)
        try:
            assert await client.call("echo", 1) == 1
            proxy.target_port = int(impostor_url.rsplit(":", 1)[1])
            assert proxy.cut() == 1
            await gave_up.wait()
            await asyncio.wait_for(client.wait(), WAIT)
        finally:
            await client.disconnect()
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.WARNING] * 2
    for n, record in enumerate(refusals, 1):
        assert record.getMessage().startswith(
            f"reconnection attempt {n} refused: the certificate of 127.0.0.1 matches none "
            f"of the pins: expected {first.pin()}; it has public key {second.pin()}"
        )
    assert proxy.accepted == 3  # the first connection and two attempts
    assert reached.calls == []


async def test_a_first_connect_with_a_wrong_pin_raises_and_retries_only_if_asked(
    no_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    certs = make_certs()
    wrong = make_certs(certs.ca).pin()
    caplog.set_level(logging.WARNING, logger="eventsock")
    async with serving_tls(echo_server(), certs) as url:
        # reconnection is for connections that were up: the first attempt just fails
        client = eventsock.Client(reconnection_attempts=2)
        with pytest.raises(CertificatePinMismatch):
            await client.connect(url, ssl=certs.client, pin=wrong, timeout=WAIT)
        assert not client.connected
        assert not client.reconnecting
        assert caplog.records == []
        # retry=True follows the reconnection schedule, warning at each refusal
        client = eventsock.Client(
            reconnection_attempts=1, reconnection_delay=0.01, randomization_factor=0
        )
        with pytest.raises(CertificatePinMismatch):
            await client.connect(url, ssl=certs.client, pin=wrong, retry=True, timeout=WAIT)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1
    assert messages[0].startswith("connection attempt 1 refused: the certificate of 127.0.0.1")


# -- uvloop ----------------------------------------------------------------------------


def test_wss_and_pins_under_uvloop() -> None:
    async def scenario() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        certs = make_certs()
        async with serving_tls(echo_server(), certs) as url:
            async with eventsock.Client() as client:
                await client.connect(url, ssl=certs.client, pin=certs.pin(), timeout=WAIT)
                assert await client.call("echo", BLOB, timeout=WAIT) == BLOB
            with pytest.raises(CertificatePinMismatch):
                await echo_once(url, ssl=certs.client, pin=make_certs(certs.ca).pin())
        async with TlsListener(certs.server) as listener:
            with pytest.raises(CertificatePinMismatch):
                await echo_once(listener.url, ssl=certs.client, pin=make_certs(certs.ca).pin())
            _, received = await asyncio.wait_for(listener.results.get(), WAIT)
            assert received == b""
            with pytest.raises(eventsock.ConnectionFailed, match="HTTP 403"):
                await echo_once(listener.url, ssl=certs.client, pin=certs.pin())
            _, received = await asyncio.wait_for(listener.results.get(), WAIT)
            assert received.startswith(b"GET /socket.io/")

    uvloop.run(scenario())


# -- other clients over wss:// ---------------------------------------------------------


async def test_python_socketio_client_over_wss(no_leaks: None) -> None:
    certs = make_certs()
    server = echo_server()

    @server.on("connect")
    async def joined(session: Session) -> None:
        await session.emit("welcome", "over tls")

    async with serving_tls(server, certs) as url:
        https = url.replace("wss://", "https://")
        # python-socketio passes websocket_extra_options on to aiohttp's ws_connect
        sio = socketio.AsyncClient(
            serializer="msgpack",
            reconnection=False,
            handle_sigint=False,
            websocket_extra_options={"ssl": certs.client},
        )
        welcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        sio.on("welcome", welcome.set_result)
        try:
            await sio.connect(https, transports=["websocket"], wait_timeout=WAIT)
            assert await asyncio.wait_for(welcome, WAIT) == "over tls"
            assert await sio.call("echo", BLOB, timeout=WAIT) == BLOB
        finally:
            await sio.disconnect()
            await asyncio.wait_for(sio.eio.wait(), WAIT)
        # without the CA, python-socketio's default verification refuses the server
        untrusting = socketio.AsyncClient(
            serializer="msgpack", reconnection=False, handle_sigint=False
        )
        try:
            with pytest.raises(socketio.exceptions.ConnectionError):
                await untrusting.connect(https, transports=["websocket"], wait_timeout=WAIT)
        finally:
            await untrusting.disconnect()


async def test_node_socketio_client_over_wss(no_leaks: None, tmp_path: Path) -> None:
    certs = make_certs()
    ca_file = tmp_path / "ca.pem"
    certs.ca.cert_pem.write_to_path(str(ca_file))
    server = echo_server()

    @server.on("connect")
    async def joined(session: Session) -> None:
        await session.emit("welcome", "over tls", b"\x01\x02")

    async with serving_tls(server, certs) as url:
        proc = await asyncio.create_subprocess_exec(
            node_executable(),
            "tls_client.js",
            url.replace("wss://", "https://"),
            str(ca_file),
            cwd=NODE_DIR,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await finish_process(proc)
    steps = [parse_line(line) for line in out.splitlines() if line.strip()]
    assert proc.returncode == 0, (steps, err)
    assert err == b""
    assert [s["step"] for s in steps] == ["untrusted", "welcome", "echo", "done"], steps
    assert steps[0]["message"].endswith("unable to verify the first certificate"), steps[0]
    assert steps[1]["args"][0] == "over tls"
    assert steps[2] == {"step": "echo", "equal": True, "length": 100_000}
