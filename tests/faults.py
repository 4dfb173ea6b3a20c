"""Fault injection for tests: a loopback TCP proxy that can cut, stall or refuse.

Clients connect to the proxy; it forwards bytes to the server's current port. Real
sockets all the way: the faults are what a real network does to a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Pipe:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.server):
            writer.transport.abort()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 with an ephemeral port.

    - ``cut()`` drops every current connection at once, with no WebSocket close
      (a reset, as when a phone changes cells);
    - ``stall()`` keeps the connections open but stops moving bytes (a dead network
      path), ``flow()`` moves them again;
    - ``refuse = True`` closes new connections at once (the server is unreachable);
    - ``target_port`` can change (the server restarted on another port).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refuse = False
        self.accepted = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pipes: set[_Pipe] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        self._flowing.set()
        tasks = [task for pipe in self._pipes for task in pipe.tasks]
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.refuse:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pipe = _Pipe(writer, up_writer)
        self._pipes.add(pipe)
        pipe.tasks = [
            asyncio.ensure_future(self._pump(reader, up_writer, pipe)),
            asyncio.ensure_future(self._pump(up_reader, writer, pipe)),
        ]

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pipe: _Pipe
    ) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            pipe.abort()
            self._pipes.discard(pipe)
            with contextlib.suppress(Exception):
                writer.close()

    def cut(self) -> int:
        """Drop every current connection; returns how many there were."""
        pipes = list(self._pipes)
        for pipe in pipes:
            pipe.abort()
        return len(pipes)

    def stall(self) -> None:
        """Stop moving bytes on every connection, keeping them open."""
        self._flowing.clear()

    def flow(self) -> None:
        """Move bytes again after ``stall()``."""
        self._flowing.set()

    @property
    def connections(self) -> int:
        return len(self._pipes)
