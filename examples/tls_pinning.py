"""TLS and certificate pinning: a wss:// server, a client that pins its public key, and
the same client refusing a server with another certificate; then the pin alone, with
no CA check (``ssl=False``), as for a self-signed certificate.

Certificates come from trustme (a test tool: ``pip install trustme``); in production
they are your own, and the pin is computed once from your server's certificate.

    python examples/tls_pinning.py
"""

from __future__ import annotations

import asyncio
import ssl

import trustme

import eventsock

ca = trustme.CA()
ours = ca.issue_cert("127.0.0.1")
theirs = ca.issue_cert("127.0.0.1")  # same CA, another key: what pinning is for


def tls_server(certificate: trustme.LeafCert) -> tuple[eventsock.Server, ssl.SSLContext]:
    server = eventsock.Server()
    server.on("whoami", lambda session: "the real server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    return server, context


async def main() -> None:
    # --8<-- [start:pin]
    # the pin: SHA-256 of the server's public key ("sha256/<base64>")
    pin = eventsock.Pin.of(ours.cert_chain_pems[0].bytes())
    print("pin:", pin)

    trust = ssl.create_default_context()
    ca.configure_trust(trust)  # the CA check still applies; the pin comes on top
    # --8<-- [end:pin]

    for name, certificate in (("ours", ours), ("theirs", theirs)):
        server, context = tls_server(certificate)
        port = await server.start("127.0.0.1", 0, ssl=context)
        try:
            # --8<-- [start:connect]
            client = eventsock.Client(reconnection=False)
            try:
                await client.connect(f"wss://127.0.0.1:{port}", ssl=trust, pin=pin)
            except eventsock.CertificatePinMismatch as exc:
                print(f"{name}: refused:", exc)
            else:
                print(f"{name}:", await client.call("whoami"))
                await client.disconnect()
            # --8<-- [end:connect]
            # --8<-- [start:alone]
            # no CA check at all (as for a self-signed certificate): the pin is the trust
            async with eventsock.Client(reconnection=False) as alone:
                try:
                    await alone.connect(f"wss://127.0.0.1:{port}", ssl=False, pin=pin)
                except eventsock.CertificatePinMismatch:
                    print(f"{name}, pin alone: refused")
                else:
                    print(f"{name}, pin alone:", await alone.call("whoami"))
            # --8<-- [end:alone]
        finally:
            await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
