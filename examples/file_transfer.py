"""File transfer with progress: upload a file to the server as a stream argument, and
download it back as a stream. One process: ``python examples/file_transfer.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import eventsock

CHUNK = 64 * 1024


# --8<-- [start:server]
async def read_file(path: Path) -> AsyncIterator[bytes]:
    """The file's chunks, read in a thread."""
    source = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(source.read, CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(source.close)


def create_server(storage: Path) -> eventsock.Server:
    server = eventsock.Server(max_payload=2 * CHUNK)

    @server.on("upload")
    async def upload(
        session: eventsock.Session, name: str, chunks: AsyncIterator[bytes]
    ) -> dict[str, object]:
        digest = hashlib.sha256()
        size = 0
        # file I/O in a thread, so that the event loop serves everyone meanwhile
        out = await asyncio.to_thread(open, storage / Path(name).name, "wb")
        try:
            async for chunk in chunks:  # arrives as the client sends it, 16 chunks ahead
                await asyncio.to_thread(out.write, chunk)
                digest.update(chunk)
                size += len(chunk)
        finally:
            await asyncio.to_thread(out.close)
        return {"size": size, "sha256": digest.hexdigest()}  # acks the whole upload

    @server.stream("download")
    async def download(session: eventsock.Session, name: str) -> AsyncIterator[bytes]:
        async for chunk in read_file(storage / Path(name).name):
            yield chunk

    return server
    # --8<-- [end:server]


# --8<-- [start:client]
def progress(label: str, done: int, total: int) -> None:
    width = 20
    filled = width * done // total if total else width
    print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} bytes", end="")
    if done == total:
        print()


async def read_chunks(path: Path, total: int) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in read_file(path):
        yield chunk
        sent += len(chunk)
        progress("upload  ", sent, total)


async def transfer(client: eventsock.Client, path: Path) -> None:
    total = (await asyncio.to_thread(path.stat)).st_size
    receipt = await client.call("upload", path.name, read_chunks(path, total))
    print("server stored", receipt["size"], "bytes, sha256", str(receipt["sha256"])[:16])
    received = hashlib.sha256()
    got = 0
    async for chunk in client.stream("download", path.name, window=8, item=bytes):
        received.update(chunk)
        got += len(chunk)
        progress("download", got, total)
    print("same file back:", received.hexdigest() == receipt["sha256"])
    # --8<-- [end:client]


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        storage = Path(folder) / "server"
        storage.mkdir()
        source = Path(folder) / "photo.raw"
        source.write_bytes(os.urandom(10 * CHUNK + 123))
        server = create_server(storage)
        port = await server.start("127.0.0.1", 0)
        try:
            async with eventsock.Client() as client:
                await client.connect(f"http://127.0.0.1:{port}")
                await transfer(client, source)
        finally:
            await server.shutdown()
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
