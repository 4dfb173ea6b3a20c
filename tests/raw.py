"""A raw Engine.IO peer for tests: real WebSocket, frames sent exactly as given."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from eventsock import Server
from eventsock.codec import decode_packet, encode_packet
from eventsock.packets import Connect, Packet


class RawPeer:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self.open: dict[str, Any] = {}
        self.pings = 0
        self.close_code: int | None = None

    @classmethod
    async def open_to(cls, url: str, *, answer_pings: bool = True, **kwargs: Any) -> RawPeer:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(
                f"{url}/socket.io/?EIO=4&transport=websocket", max_msg_size=0, **kwargs
            )
        except BaseException:
            await session.close()
            raise
        peer = cls(session, ws)
        peer.answer_pings = answer_pings
        first = await asyncio.wait_for(ws.receive(), 5)
        assert first.type is aiohttp.WSMsgType.TEXT and first.data.startswith("0"), first
        peer.open = json.loads(first.data[1:])
        return peer

    answer_pings = True

    async def send(self, frame: bytes | str) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def send_packet(self, packet: Packet) -> None:
        await self.send(encode_packet(packet))

    async def recv(self, timeout: float = 5.0) -> str | bytes | None:
        """The next data frame (pings answered and skipped), or None once closed."""
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type is aiohttp.WSMsgType.CLOSE:
                self.close_code = msg.data  # what the server sent, whatever our reply did
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                return None
            if msg.type is aiohttp.WSMsgType.TEXT and msg.data == "2":
                self.pings += 1
                if self.answer_pings:
                    await self.ws.send_str("3")
                continue
            return msg.data  # type: ignore[no-any-return]

    async def recv_packet(self, timeout: float = 5.0) -> Packet:
        frame = await self.recv(timeout)
        assert isinstance(frame, bytes), f"expected a binary frame, got {frame!r}"
        return decode_packet(frame)

    async def connect(self, namespace: str = "/", auth: dict[str, Any] | None = None) -> Packet:
        await self.send_packet(Connect(namespace, auth))
        return await self.recv_packet()

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; returns the close code the server sent."""
        while await self.recv(timeout) is not None:
            pass
        return self.close_code if self.close_code is not None else self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


async def connections_done(
    server: Server, *, keep: frozenset[str] = frozenset(), timeout: float = 5.0
) -> None:
    """Wait until every connection the server holds now, except those holding a session
    id in ``keep``, has finished its cleanup."""
    tasks = [
        task
        for conn, task in server._connections.items()
        if not any(s.id in keep for s in conn.sessions.values())
    ]
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        assert not pending, f"{len(pending)} connection(s) still open after {timeout} s"
