"""Binary data in events: bytes anywhere in the arguments and in the answer arrive as
bytes, with no base64 on the way. One process: ``python examples/binary.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import eventsock

TIMEOUT = 5.0


def create_server() -> eventsock.Server:
    server = eventsock.Server()

    # --8<-- [start:server]
    @server.on("store")
    def store(session: eventsock.Session, upload: dict[str, Any]) -> dict[str, Any]:
        data: bytes = upload["data"]  # bytes inside a dict arrive as bytes
        return {
            "name": upload["name"],
            "size": len(data),
            "sha256": hashlib.sha256(data).digest(),  # 32 bytes, not 64 hex characters
            "head": data[:4],
        }

    # --8<-- [end:server]
    return server


async def main() -> None:
    server = create_server()
    port = await server.start("127.0.0.1", 0)
    try:
        async with eventsock.Client() as client:
            await client.connect(f"http://127.0.0.1:{port}", timeout=TIMEOUT)
            # --8<-- [start:client]
            image = bytes(range(256)) * 64  # 16 KiB of binary data
            upload = {"name": "pattern.bin", "data": image}
            reply = await client.call("store", upload, timeout=TIMEOUT)
            print(f"stored {reply['name']}: {reply['size']} bytes, head {reply['head']!r}")
            print(f"same digest: {reply['sha256'] == hashlib.sha256(image).digest()}")
            # bytearray and memoryview are sent as bytes too
            view = {"name": "view", "data": memoryview(image)[:8]}
            reply = await client.call("store", view, timeout=TIMEOUT)
            print(
                f"stored {reply['name']}: {reply['size']} bytes, a {type(reply['head']).__name__}"
            )
            # --8<-- [end:client]
    finally:
        await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
