"""wss:// end to end, with certificates made by trustme, and certificate pinning against
a real TLS server: the right pin connects, any other certificate is refused inside the
TLS handshake, before a byte of the HTTP request reaches it."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import trustme

import eventsock
from eventsock.testing import Recorder

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def leaf(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1", "localhost")


def server_context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return context


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def app() -> eventsock.Server:
    server = eventsock.Server()

    @server.on("echo")
    def echo(session: eventsock.Session, value: Any) -> Any:
        return value

    @server.on("connect")
    async def hello(session: eventsock.Session, auth: Any) -> None:
        await session.emit("hello", session.id)

    return server


@pytest.fixture
async def tls_url(leaf: trustme.LeafCert) -> AsyncIterator[str]:
    server = app()
    port = await server.start("127.0.0.1", 0, ssl=server_context(leaf))
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await server.shutdown()


async def test_wss_end_to_end(ca: trustme.CA, tls_url: str, no_leaks: None) -> None:
    client = eventsock.Client(reconnection=False)
    hello = Recorder()
    client.on("hello", hello)
    await client.connect(tls_url.replace("https://", "wss://"), ssl=client_context(ca), timeout=5)
    try:
        await hello.wait(1)
        assert await client.call("echo", {"n": 1}, timeout=5) == {"n": 1}
        blob = bytes(range(256)) * 2048  # 512 KiB through TLS (under max_payload)
        assert await client.call("echo", blob, timeout=10) == blob
    finally:
        await client.disconnect()


async def test_an_untrusted_certificate_is_refused(tls_url: str, no_leaks: None) -> None:
    client = eventsock.Client(reconnection=False)
    with pytest.raises(eventsock.ConnectionFailed, match=r"(?i)certificate"):
        await client.connect(tls_url, timeout=5)


@pytest.mark.parametrize("target", ["public_key", "certificate"])
async def test_the_right_pin_connects(
    ca: trustme.LeafCert, leaf: trustme.LeafCert, tls_url: str, target: Any, no_leaks: None
) -> None:
    pin = eventsock.Pin.of(leaf.cert_chain_pems[0].bytes(), target=target)
    client = eventsock.Client(reconnection=False)
    # checked on top of the CA's verification, and given as text as a user would
    await client.connect(tls_url, ssl=client_context(ca), pin=str(pin), timeout=5)
    try:
        assert await client.call("echo", "pinned", timeout=5) == "pinned"
    finally:
        await client.disconnect()


async def test_pins_alone_trust_a_certificate_no_ca_vouches_for(
    leaf: trustme.LeafCert, tls_url: str, no_leaks: None
) -> None:
    pin = eventsock.Pin.of(leaf.cert_chain_pems[0].bytes())
    client = eventsock.Client(reconnection=False)
    await client.connect(tls_url, ssl=False, pin=pin, timeout=5)
    try:
        assert await client.call("echo", "self-signed", timeout=5) == "self-signed"
    finally:
        await client.disconnect()


async def test_a_pinned_client_refuses_any_other_certificate_before_sending_a_byte(
    ca: trustme.CA, no_leaks: None
) -> None:
    # an impostor with a certificate the same CA issued (so the CA check passes): the
    # pin refuses it, and the impostor reads nothing after the TLS handshake
    impostor_cert = ca.issue_cert("127.0.0.1")
    expected = eventsock.Pin.of(ca.issue_cert("127.0.0.1").cert_chain_pems[0].bytes())
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await asyncio.wait_for(reader.read(65536), 5)
        except (ConnectionError, ssl.SSLError, TimeoutError) as exc:
            data = repr(exc).encode()
        if not received.done():
            received.set_result(data)
        writer.transport.abort()

    listener = await asyncio.start_server(
        impostor, "127.0.0.1", 0, ssl=server_context(impostor_cert)
    )
    port = listener.sockets[0].getsockname()[1]
    try:
        client = eventsock.Client(reconnection=False)
        with pytest.raises(eventsock.CertificatePinMismatch) as refused:
            await client.connect(
                f"https://127.0.0.1:{port}", ssl=client_context(ca), pin=expected, timeout=5
            )
        assert isinstance(refused.value, eventsock.ConnectionFailed)
        assert str(expected) in str(refused.value)  # it names the pin it expected
        # the impostor's side of the handshake may end either way (the client drops the
        # connection as soon as its own side is done); if it ended, it read no request
        done, _ = await asyncio.wait([received], timeout=2)
        if done:
            data = received.result()
            assert b"GET" not in data
            assert b"socket.io" not in data
    finally:
        listener.close()
        await listener.wait_closed()


async def test_a_wrong_pin_fails_the_first_attempt_with_reconnection_on(
    ca: trustme.CA, tls_url: str, no_leaks: None
) -> None:
    other = eventsock.Pin.of(ca.issue_cert("127.0.0.1").cert_chain_pems[0].bytes())
    client = eventsock.Client(reconnection=True, reconnection_attempts=2)
    with pytest.raises(eventsock.CertificatePinMismatch):
        await client.connect(tls_url, ssl=client_context(ca), pin=other, timeout=5)
    assert not client.connected


def test_pins_under_uvloop(ca: trustme.CA, leaf: trustme.LeafCert) -> None:
    uvloop = pytest.importorskip("uvloop")  # a test extra: installed wherever tests run

    async def scenario() -> None:
        server = app()
        port = await server.start("127.0.0.1", 0, ssl=server_context(leaf))
        url = f"https://127.0.0.1:{port}"
        try:
            right = eventsock.Pin.of(leaf.cert_chain_pems[0].bytes())
            async with eventsock.Client(reconnection=False) as client:
                await client.connect(url, ssl=client_context(ca), pin=right, timeout=5)
                assert await client.call("echo", "uvloop", timeout=5) == "uvloop"
            wrong = eventsock.Pin.of(ca.issue_cert("127.0.0.1").cert_chain_pems[0].bytes())
            client = eventsock.Client(reconnection=False)
            with pytest.raises(eventsock.CertificatePinMismatch):
                await client.connect(url, ssl=client_context(ca), pin=wrong, timeout=5)
        finally:
            await server.shutdown()

    run_with(uvloop.run, scenario)


def run_with(runner: Callable[[Coroutine[Any, Any, None]], None], scenario: Any) -> None:
    runner(asyncio.wait_for(scenario(), 30))


async def test_python_socketio_over_wss(ca: trustme.CA, tls_url: str, no_leaks: None) -> None:
    import aiohttp
    import socketio

    connector = aiohttp.TCPConnector(ssl=client_context(ca))
    async with aiohttp.ClientSession(connector=connector) as http:
        sio = socketio.AsyncClient(serializer="msgpack", http_session=http, reconnection=False)
        hello: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        sio.on("hello", lambda sid: hello.done() or hello.set_result(sid))
        await sio.connect(tls_url, transports=["websocket"], wait_timeout=5)
        try:
            assert await asyncio.wait_for(hello, 5)
            assert await sio.call("echo", [1, b"\x00"], timeout=5) == [1, b"\x00"]
        finally:
            await sio.disconnect()
            await sio.eio.wait()
