"""Single-node benchmark harness: eventsock against python-socketio and against a raw
aiohttp WebSocket + msgpack baseline (the ceiling of the transport in Python).

Every trial runs the server and the client in two processes of their own, each pinned
to its own core when the machine has two or more (server on the first allowed core,
client on the second). The harness reads both processes' CPU time (psutil) before and
after the measured phase and reports CPU microseconds per operation on each side beside
the throughput, so that a reader can see what limited each number.

    python bench/run.py --quick                 # smoke test, < 1 minute (CI runs it)
    python bench/run.py                         # every scenario and system, 5 repeats
    python bench/run.py --scenarios rpc_seq,binary --systems eventsock,raw --repeats 7
    python bench/run.py --profile /tmp/prof --scenarios rpc_seq,emit_throughput \\
        --systems eventsock,raw                 # + cProfile of servers and clients

Scenarios: rpc_seq, rpc_pipelined, emit_throughput, fanout_100, fanout_500, binary,
idle_memory. Systems: eventsock, python-socketio, raw. The reported ratios are medians
of per-repeat paired ratios (system / raw and eventsock / python-socketio); the systems'
order rotates every repeat. See bench/README.md.

The harness starts its servers and clients by re-invoking itself with ``--role``; such a
process prints one JSON line (ready, with its port) first on stdout, then answers JSON
line commands read from stdin, and exits on SIGTERM or when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import psutil  # type: ignore[import-untyped,unused-ignore]  # the `bench` extra
from _common import Sink, fmt, new_profile, profile_table

SCRIPT = Path(__file__).resolve()
HERE = SCRIPT.parent
DEFAULT_JSON = HERE / "results" / "run.json"
HOST = "127.0.0.1"
SYSTEMS = ("eventsock", "python-socketio", "raw")
SCENARIOS = (
    "rpc_seq",
    "rpc_pipelined",
    "emit_throughput",
    "fanout_100",
    "fanout_500",
    "binary",
    "idle_memory",
)
#: Set (to a directory) to cProfile the measured phase of every server and client.
PROFILE_ENV = "EVENTSOCK_BENCH_PROFILE"
#: "wall" (default: perf_counter, time off the CPU counts too) or "cpu" (process time).
PROFILE_CLOCK_ENV = "EVENTSOCK_BENCH_PROFILE_CLOCK"

SMALL = {"a": 1, "b": "text", "c": [1, 2, 3]}
FAN_ROOM = "fan"
MAX_FRAME = 4 * 1024 * 1024  # every server accepts frames this big (binary sends 1 MiB)

# Seconds allowed for each step; every wait in the harness is bounded by one of these
# (or by --timeout, the longest one command to a child may take).
START_TIMEOUT = 30.0  # a child process prints its ready line
STOP_TIMEOUT = 10.0  # after SIGTERM, before SIGKILL
CONTROL_TIMEOUT = 15.0  # a small command (stats, profile) is answered
CONNECT_TIMEOUT = 30.0  # one client connection is set up
CALL_TIMEOUT = 60.0  # one call is acknowledged (the phase timeout is usually shorter)
CLOSE_TIMEOUT = 15.0  # a client's connections are closed
SETTLE_TIMEOUT = 10.0  # the server's session count reaches what the harness expects
CONNECT_CONCURRENCY = 50  # connections being set up at once by one client process

#: Work per trial, full run and --quick.
FULL: dict[str, dict[str, int]] = {
    "rpc_seq": {"calls": 10_000, "warmup": 500},
    "rpc_pipelined": {"calls": 20_000, "window": 64, "warmup": 2_000},
    "emit_throughput": {"events": 50_000, "warmup": 5_000},
    "fanout_100": {"clients": 100, "messages": 200, "warmup": 20},
    "fanout_500": {"clients": 500, "messages": 200, "warmup": 20},
    "binary": {"calls": 200, "size": 1 << 20, "warmup": 5},
    "idle_memory": {"connections": 1_000, "warmup": 20},
}
QUICK: dict[str, dict[str, int]] = {
    "rpc_seq": {"calls": 1_000, "warmup": 100},
    "rpc_pipelined": {"calls": 3_000, "window": 64, "warmup": 256},
    "emit_throughput": {"events": 5_000, "warmup": 500},
    "fanout_100": {"clients": 100, "messages": 40, "warmup": 5},
    "fanout_500": {"clients": 500, "messages": 20, "warmup": 5},
    "binary": {"calls": 10, "size": 1 << 20, "warmup": 2},
    "idle_memory": {"connections": 200, "warmup": 10},
}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    spec: str  # format spec of the value
    higher_is_better: bool = True


@dataclass(frozen=True)
class ScenarioInfo:
    title: str  # what one trial does, with {placeholders} from its parameters
    op: str  # what "per operation" counts
    metrics: tuple[Metric, ...]  # reported with ratios
    extras: tuple[Metric, ...] = ()  # reported beside them (medians only)


INFO: dict[str, ScenarioInfo] = {
    "rpc_seq": ScenarioInfo(
        "1 client, {calls:,} sequential calls echoing {{'a': 1, 'b': 'text', 'c': [1, 2, 3]}}",
        "call",
        (Metric("rt_per_s", "round trips/s", ",.0f"),),
        (Metric("p50_ms", "p50 ms", ".3f", False), Metric("p99_ms", "p99 ms", ".3f", False)),
    ),
    "rpc_pipelined": ScenarioInfo(
        "1 client, {calls:,} calls of the same map, {window} in flight",
        "call",
        (Metric("acks_per_s", "acks/s", ",.0f"),),
    ),
    "emit_throughput": ScenarioInfo(
        "1 client, {events:,} one-way events of the same map, then one call acked when the"
        " server has counted them all",
        "event",
        (Metric("events_per_s", "events/s", ",.0f"),),
    ),
    "fanout_100": ScenarioInfo(
        "{clients} clients in one room, {messages} broadcasts to it (one client's call);"
        " deliveries/s = N x M / time until every client has all M",
        "delivery",
        (Metric("deliveries_per_s", "deliveries/s", ",.0f"),),
        (Metric("ack_ms", "blast ack ms", ".1f", False),),
    ),
    "fanout_500": ScenarioInfo(
        "{clients} clients in one room, {messages} broadcasts to it (one client's call);"
        " deliveries/s = N x M / time until every client has all M",
        "delivery",
        (Metric("deliveries_per_s", "deliveries/s", ",.0f"),),
        (Metric("ack_ms", "blast ack ms", ".1f", False),),
    ),
    "binary": ScenarioInfo(
        "1 client, {calls} sequential calls echoing {size:,} bytes; MB/s counts both"
        " directions (2 x payload per call, MB = 10^6 bytes)",
        "call",
        (Metric("mb_per_s", "MB/s", ",.1f"),),
    ),
    "idle_memory": ScenarioInfo(
        "{connections:,} idle connections from one client process ({concurrency} setting up"
        " at once); server RSS growth / N after a gc, and connections set up per second",
        "connection",
        (
            Metric("rss_kib_per_conn", "server KiB/conn", ",.1f", False),
            Metric("conn_per_s", "connections/s", ",.0f"),
        ),
    ),
}

#: The goals for eventsock / raw (median of paired ratios).
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("rpc_seq", "rt_per_s", ">=", 0.80),
    ("rpc_pipelined", "acks_per_s", ">=", 0.70),
    ("emit_throughput", "events_per_s", ">=", 0.70),
    ("fanout_500", "deliveries_per_s", ">=", 0.60),
    ("binary", "mb_per_s", ">=", 0.90),
    ("idle_memory", "rss_kib_per_conn", "<=", 1.30),
    ("idle_memory", "conn_per_s", ">=", 0.80),
)


class BenchError(Exception):
    """A trial step that failed: the trial is reported as failed."""


# ======================================================================================
# Child processes: plumbing shared by servers and clients
# ======================================================================================


class Control:
    """A child's control channel: JSON line commands on stdin, replies on the real
    stdout (fd 1 is pointed at stderr, so that stray prints cannot corrupt it).

    stdin is read by a task of its own, so that its end (the harness is gone) is seen
    at once, even in the middle of a command: ``on_eof`` is then called."""

    def __init__(self, out_fd: int) -> None:
        self.out_fd = out_fd
        self._commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    async def open(self, on_eof: Callable[[], object]) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        await loop.connect_read_pipe(lambda: protocol, sys.stdin)

        async def pump() -> None:
            try:
                while line := await reader.readline():
                    self._commands.put_nowait(json.loads(line))
            finally:
                on_eof()

        self._pump = loop.create_task(pump())

    async def read(self) -> dict[str, Any]:
        """The next command."""
        return await self._commands.get()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            written = os.write(self.out_fd, data)
            data = data[written:]


def child_main(args: argparse.Namespace) -> int:
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    with contextlib.suppress(ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if os.environ.get(UVLOOP_ENV):
        import uvloop

        uvloop.install()  # every system's processes run on uvloop alike
    out_fd = os.dup(1)
    os.dup2(2, 1)
    control = Control(out_fd)
    main = serve if args.role == "server" else client_process
    try:
        asyncio.run(run_child(main, args.system, control))
    except KeyboardInterrupt:
        return 130
    return 0


async def run_child(
    main: Callable[[str, Control], Awaitable[None]], system: str, control: Control
) -> None:
    """Run a child's main coroutine until stdin closes, or SIGTERM/SIGINT cancels it."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    await control.open(on_eof=task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await main(system, control)


def error_text(exc: BaseException) -> str:
    text = str(exc) or ("timed out" if isinstance(exc, TimeoutError) else repr(exc))
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {text}".removeprefix("builtins.")


# ======================================================================================
# Server processes (``--role server --system S``)
# ======================================================================================


class Counter:
    """The server's count of one-way events; ``wait`` answers "done" once all are in
    (handlers may run as tasks, so "done" can be handled before the last events)."""

    def __init__(self) -> None:
        self.count = 0
        self._target = 0
        self._waiter: asyncio.Future[None] | None = None

    def hit(self) -> None:
        self.count += 1
        waiter = self._waiter
        if waiter is not None and self.count >= self._target and not waiter.done():
            waiter.set_result(None)

    async def wait(self, total: int) -> int:
        """The count once it reaches ``total`` (or after CALL_TIMEOUT); resets it."""
        if self.count < total:
            self._target = total
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, CALL_TIMEOUT)
            except TimeoutError:
                pass
            finally:
                self._waiter = None
        count, self.count = self.count, 0
        return count


# A started server: its port, its count of connected sessions, and how to close it.
Started = tuple[int, Callable[[], int], Callable[[], Awaitable[None]]]


async def start_eventsock() -> Started:
    import eventsock

    server = eventsock.Server(max_payload=MAX_FRAME)
    counter = Counter()

    @server.on("echo")
    async def echo(session: eventsock.Session, data: Any) -> Any:
        return data

    @server.on("ev")
    async def ev(session: eventsock.Session, data: Any) -> None:
        counter.hit()

    @server.on("done")
    async def done(session: eventsock.Session, total: int) -> int:
        return await counter.wait(total)

    @server.on("join")
    async def join(session: eventsock.Session, room: str) -> bool:
        await session.enter_room(room)
        return True

    @server.on("blast")
    async def blast(session: eventsock.Session, count: int) -> int:
        for i in range(count):
            await server.emit("tick", i, to=FAN_ROOM)
        return count

    port = await server.start(HOST, 0)
    return port, lambda: server.session_count, server.shutdown


async def start_pysio() -> Started:
    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(
        async_mode="aiohttp", serializer="msgpack", max_http_buffer_size=MAX_FRAME
    )
    app = web.Application()
    sio.attach(app)
    counter = Counter()

    async def echo(sid: str, data: Any) -> Any:
        return data

    async def ev(sid: str, data: Any) -> None:
        counter.hit()

    async def done(sid: str, total: int) -> int:
        return await counter.wait(total)

    async def join(sid: str, room: str) -> bool:
        await sio.enter_room(sid, room)
        return True

    async def blast(sid: str, count: int) -> int:
        for i in range(count):
            await sio.emit("tick", i, room=FAN_ROOM)
        return count

    for name, handler in (
        ("echo", echo),
        ("ev", ev),
        ("done", done),
        ("join", join),
        ("blast", blast),
    ):
        sio.on(name, handler)

    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = tcp_site_port(site)

    def sessions() -> int:
        return sum(1 for _ in sio.manager.get_participants("/", None))

    async def close() -> None:
        if sio.eio.sockets:
            await sio.eio.disconnect()
        await sio.shutdown()
        await runner.cleanup()

    return port, sessions, close


def tcp_site_port(site: Any) -> int:
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or ()
    if not sockets:
        raise RuntimeError("no listening socket")
    return int(sockets[0].getsockname()[1])


# The raw system's frames: one msgpack array [kind, id, name, payload] per binary frame.
RAW_EVENT, RAW_CALL, RAW_ACK = 0, 1, 2


async def start_raw() -> Started:
    """A bare aiohttp WebSocket server: the least work that gives request/ack semantics.
    Frames are handled inline, in order, by the connection's reader."""
    import aiohttp
    import msgpack
    from aiohttp import web

    conns: set[web.WebSocketResponse] = set()
    rooms: dict[str, set[web.WebSocketResponse]] = {}
    count = 0
    packb, unpackb = msgpack.packb, msgpack.unpackb
    binary = aiohttp.WSMsgType.BINARY

    async def endpoint(request: web.Request) -> web.WebSocketResponse:
        nonlocal count
        ws = web.WebSocketResponse(
            max_msg_size=MAX_FRAME, compress=False, autoping=True, autoclose=True
        )
        await ws.prepare(request)
        conns.add(ws)
        try:
            async for msg in ws:
                if msg.type is not binary:
                    continue
                kind, ident, name, payload = unpackb(msg.data)
                if name == "echo":
                    result = payload
                elif name == "ev":
                    count += 1
                    continue
                elif name == "done":
                    result, count = count, 0
                elif name == "join":
                    rooms.setdefault(payload, set()).add(ws)
                    result = True
                elif name == "blast":
                    members = rooms.get(FAN_ROOM, set())
                    for i in range(payload):
                        frame = packb([RAW_EVENT, 0, "tick", i])
                        for member in list(members):
                            await member.send_bytes(frame)
                    result = payload
                else:
                    continue
                if kind == RAW_CALL:
                    await ws.send_bytes(packb([RAW_ACK, ident, None, result]))
        finally:
            conns.discard(ws)
            for members in rooms.values():
                members.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/ws", endpoint)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = tcp_site_port(site)

    async def close() -> None:
        for ws in list(conns):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
        await runner.cleanup()

    return port, lambda: len(conns), close


SERVERS: dict[str, Callable[[], Awaitable[Started]]] = {
    "eventsock": start_eventsock,
    "python-socketio": start_pysio,
    "raw": start_raw,
}


async def serve(system: str, control: Control) -> None:
    port, sessions, close = await SERVERS[system]()
    me = psutil.Process()
    control.send(
        {"ready": True, "port": port, "pid": os.getpid(), "cpus": sorted(os.sched_getaffinity(0))}
    )
    profile: cProfile.Profile | None = None
    try:
        while command := await control.read():
            try:
                cmd = command.get("cmd")
                if cmd == "stats":
                    if command.get("gc"):
                        gc.collect()
                    control.send({"ok": True, "rss": me.memory_info().rss, "sessions": sessions()})
                elif cmd == "profile_start":
                    profile = new_profile(command.get("clock", "wall"))
                    profile.enable()
                    control.send({"ok": True})
                elif cmd == "profile_stop":
                    if profile is not None:
                        profile.disable()
                        profile.dump_stats(command["path"])
                        profile = None
                    control.send({"ok": True})
                else:
                    control.send({"ok": False, "error": f"unknown command {cmd!r}"})
            except Exception as exc:
                control.send({"ok": False, "error": error_text(exc)})
    finally:
        try:
            await asyncio.wait_for(close(), STOP_TIMEOUT)
        except Exception as exc:
            print(f"{system} server: shutdown failed: {error_text(exc)}", file=sys.stderr)


# ======================================================================================
# Client processes (``--role client --system S``): one adapter per system
# ======================================================================================


class Conn(Protocol):
    """One client connection, whatever the system."""

    async def connect(self, url: str) -> None: ...

    def call(self, event: str, arg: Any) -> Awaitable[Any]: ...

    def emit(self, event: str, arg: Any) -> Awaitable[None]: ...

    async def close(self) -> None: ...


class EventsockConn:
    def __init__(self, on_tick: Callable[[int], None] | None) -> None:
        import eventsock

        self.client = eventsock.Client(reconnection=False)
        if on_tick is not None:
            self.client.on("tick", on_tick)

    async def connect(self, url: str) -> None:
        await self.client.connect(url, timeout=CONNECT_TIMEOUT)

    def call(self, event: str, arg: Any) -> Awaitable[Any]:
        return self.client.call(event, arg, timeout=CALL_TIMEOUT)

    def emit(self, event: str, arg: Any) -> Awaitable[None]:
        return self.client.emit(event, arg)

    async def close(self) -> None:
        await self.client.disconnect()


class PysioConn:
    def __init__(self, on_tick: Callable[[int], None] | None) -> None:
        import socketio

        self.sio = socketio.AsyncClient(
            serializer="msgpack", reconnection=False, handle_sigint=False
        )
        if on_tick is not None:
            self.sio.on("tick", on_tick)

    async def connect(self, url: str) -> None:
        await self.sio.connect(url, transports=["websocket"], wait_timeout=CONNECT_TIMEOUT)

    def call(self, event: str, arg: Any) -> Awaitable[Any]:
        return self.sio.call(event, arg, timeout=CALL_TIMEOUT)  # type: ignore[no-any-return]

    def emit(self, event: str, arg: Any) -> Awaitable[None]:
        return self.sio.emit(event, arg)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.sio.disconnect()
        await self.sio.eio.wait()


class RawConn:
    """A bare aiohttp WebSocket: calls matched to acks by id, a reader task per
    connection, one shared ClientSession per client process. No per-call timer: the
    harness bounds the whole phase instead (the least work)."""

    def __init__(self, http: Any, on_tick: Callable[[int], None] | None) -> None:
        import msgpack

        self.http = http
        self.on_tick = on_tick
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.next_id = 0
        self.packb = msgpack.packb
        self.unpackb = msgpack.unpackb

    async def connect(self, url: str) -> None:
        self.ws = await asyncio.wait_for(
            self.http.ws_connect(url + "/ws", max_msg_size=MAX_FRAME, autoping=True),
            CONNECT_TIMEOUT,
        )
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        import aiohttp

        binary = aiohttp.WSMsgType.BINARY
        pending, unpackb, on_tick = self.pending, self.unpackb, self.on_tick
        try:
            async for msg in self.ws:
                if msg.type is not binary:
                    continue
                kind, ident, _name, payload = unpackb(msg.data)
                if kind == RAW_ACK:
                    future = pending.pop(ident, None)
                    if future is not None and not future.done():
                        future.set_result(payload)
                elif on_tick is not None:
                    on_tick(payload)
        finally:
            for future in pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("raw connection closed"))
            pending.clear()

    async def call(self, event: str, arg: Any) -> Any:
        ident = self.next_id
        self.next_id = ident + 1
        future = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send_bytes(self.packb([RAW_CALL, ident, event, arg]))
        return await future

    async def emit(self, event: str, arg: Any) -> None:
        await self.ws.send_bytes(self.packb([RAW_EVENT, 0, event, arg]))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader


class Kit:
    """Makes one system's client connections (the raw ones share an aiohttp session)."""

    def __init__(self, system: str) -> None:
        self.system = system
        self._http: Any = None

    def new(self, on_tick: Callable[[int], None] | None = None) -> Conn:
        if self.system == "eventsock":
            return EventsockConn(on_tick)
        if self.system == "python-socketio":
            return PysioConn(on_tick)
        if self._http is None:
            import aiohttp

            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return RawConn(self._http, on_tick)

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


class ClientSide:
    """The client process's state for one trial: prepare (connect, warm up), measure,
    finish (check, close)."""

    def __init__(self, system: str) -> None:
        self.system = system
        self.kit = Kit(system)
        self.conns: list[Conn] = []
        self.sinks: list[Sink] = []
        self.scenario = ""
        self.url = ""
        self.params: dict[str, int] = {}
        self.blob = b""

    async def connect_many(self, count: int, sinks: bool) -> None:
        """Set up ``count`` connections, CONNECT_CONCURRENCY at a time."""
        issued = 0

        async def worker() -> None:
            nonlocal issued
            while issued < count:
                issued += 1
                sink = Sink() if sinks else None
                conn = self.kit.new(sink.tick if sink is not None else None)
                self.conns.append(conn)
                if sink is not None:
                    self.sinks.append(sink)
                await conn.connect(self.url)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(CONNECT_CONCURRENCY, count)):
                group.create_task(worker())

    async def close_all(self) -> None:
        conns, self.conns, self.sinks = self.conns, [], []
        results = await asyncio.gather(
            *(asyncio.wait_for(c.close(), CLOSE_TIMEOUT) for c in conns), return_exceptions=True
        )
        await self.kit.aclose()
        self.kit = Kit(self.system)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise BenchError(f"{len(failed)} connection(s) did not close: {failed[0]!r}")

    # -- the operations that scenarios repeat --------------------------------------------

    async def echo_seq(self, calls: int, payload: Any) -> tuple[list[float], int]:
        """Sequential calls; their latencies (s) and how many acks were wrong."""
        conn = self.conns[0]
        latencies: list[float] = []
        wrong = 0
        clock = time.perf_counter
        for _ in range(calls):
            start = clock()
            result = await conn.call("echo", payload)
            latencies.append(clock() - start)
            if result != payload:
                wrong += 1
        return latencies, wrong

    async def echo_pipelined(self, calls: int, window: int) -> int:
        """``calls`` calls, ``window`` in flight; how many acks were wrong."""
        conn = self.conns[0]
        issued = wrong = 0

        async def worker() -> None:
            nonlocal issued, wrong
            while issued < calls:
                issued += 1
                if await conn.call("echo", SMALL) != SMALL:
                    wrong += 1

        await asyncio.gather(*(worker() for _ in range(min(window, calls))))
        return wrong

    async def emit_burst(self, events: int) -> int:
        """``events`` one-way events, then "done": the server's count."""
        conn = self.conns[0]
        for _ in range(events):
            await conn.emit("ev", SMALL)
        count: int = await conn.call("done", events)
        return count

    async def blast(self, messages: int) -> tuple[float, float, float]:
        """One broadcast of ``messages`` ticks to every client; returns the request,
        ack and last delivery times (perf_counter)."""
        futures = [sink.reset(messages) for sink in self.sinks]
        t0 = time.perf_counter()
        acked = await self.conns[0].call("blast", messages)
        t_ack = time.perf_counter()
        if acked != messages:
            raise BenchError(f"blast ack {acked!r}, expected {messages}")
        await asyncio.gather(*futures)
        return t0, t_ack, max(sink.finished_at for sink in self.sinks)

    # -- the three steps of a trial ------------------------------------------------------

    async def prepare(self, scenario: str, url: str, params: dict[str, int]) -> dict[str, Any]:
        self.scenario, self.url, self.params = scenario, url, params
        p = params
        if scenario.startswith("fanout"):
            await self.connect_many(p["clients"], sinks=True)
            joined = await asyncio.gather(*(c.call("join", FAN_ROOM) for c in self.conns))
            if not all(j is True for j in joined):
                raise BenchError(f"join acks: {joined[:3]}...")
            if p["warmup"]:
                await self.blast(p["warmup"])
        elif scenario == "idle_memory":
            if p["warmup"]:
                await self.connect_many(p["warmup"], sinks=False)
                await self.close_all()
        else:
            await self.connect_many(1, sinks=False)
            if scenario == "rpc_seq":
                _, wrong = await self.echo_seq(p["warmup"], SMALL)
            elif scenario == "rpc_pipelined":
                wrong = await self.echo_pipelined(p["warmup"], p["window"])
            elif scenario == "emit_throughput":
                count = await self.emit_burst(p["warmup"])
                wrong = 0 if count == p["warmup"] else 1
            elif scenario == "binary":
                self.blob = os.urandom(p["size"])
                _, wrong = await self.echo_seq(p["warmup"], self.blob)
            else:
                raise BenchError(f"unknown scenario {scenario!r}")
            if wrong:
                raise BenchError(f"warm-up: {wrong} wrong ack(s)")
        return {}

    async def measure(self) -> dict[str, Any]:
        """The measured phase: ``ops`` operations in ``elapsed`` seconds, the scenario's
        metrics (all but the server RSS, which the harness adds) and ``errors``."""
        scenario, p = self.scenario, self.params
        clock = time.perf_counter
        metrics: dict[str, float] = {}
        errors: list[str] = []
        if scenario == "rpc_seq":
            t0 = clock()
            latencies, wrong = await self.echo_seq(p["calls"], SMALL)
            elapsed = clock() - t0
            ops = p["calls"]
            latencies.sort()
            metrics = {
                "rt_per_s": ops / elapsed,
                "p50_ms": percentile(latencies, 0.50) * 1000,
                "p99_ms": percentile(latencies, 0.99) * 1000,
            }
            if wrong:
                errors.append(f"{wrong} wrong ack(s)")
        elif scenario == "rpc_pipelined":
            t0 = clock()
            wrong = await self.echo_pipelined(p["calls"], p["window"])
            elapsed = clock() - t0
            ops = p["calls"]
            metrics = {"acks_per_s": ops / elapsed}
            if wrong:
                errors.append(f"{wrong} wrong ack(s)")
        elif scenario == "emit_throughput":
            t0 = clock()
            count = await self.emit_burst(p["events"])
            elapsed = clock() - t0
            ops = p["events"]
            metrics = {"events_per_s": ops / elapsed}
            if count != ops:
                errors.append(f"the server counted {count} of {ops} events")
        elif scenario.startswith("fanout"):
            t0, t_ack, t_end = await self.blast(p["messages"])
            elapsed = t_end - t0
            ops = p["clients"] * p["messages"]
            metrics = {"deliveries_per_s": ops / elapsed, "ack_ms": (t_ack - t0) * 1000}
        elif scenario == "binary":
            t0 = clock()
            latencies, wrong = await self.echo_seq_lengths(p["calls"])
            elapsed = clock() - t0
            ops = p["calls"]
            metrics = {"mb_per_s": 2 * ops * len(self.blob) / 1e6 / elapsed}
            if wrong:
                errors.append(f"{wrong} ack(s) of the wrong length")
        elif scenario == "idle_memory":
            t0 = clock()
            await self.connect_many(p["connections"], sinks=False)
            elapsed = clock() - t0
            ops = p["connections"]
            metrics = {"conn_per_s": ops / elapsed}
        else:
            raise BenchError(f"unknown scenario {scenario!r}")
        return {"ops": ops, "elapsed": elapsed, "metrics": metrics, "errors": errors}

    async def echo_seq_lengths(self, calls: int) -> tuple[list[float], int]:
        """Binary echo: only the length is checked (the warm-up compared the bytes)."""
        conn, blob = self.conns[0], self.blob
        wrong = 0
        latencies: list[float] = []
        clock = time.perf_counter
        for _ in range(calls):
            start = clock()
            result = await conn.call("echo", blob)
            latencies.append(clock() - start)
            if len(result) != len(blob):
                wrong += 1
        return latencies, wrong

    async def finish(self) -> dict[str, Any]:
        """Checks after the measured phase, then every connection closed."""
        errors: list[str] = []
        try:
            if self.scenario.startswith("fanout") and self.sinks:
                # A round trip on every connection: nothing beyond M may have arrived.
                await asyncio.gather(*(c.call("echo", 0) for c in self.conns))
                m = self.params["messages"]
                disorder = sum(s.disorder for s in self.sinks)
                wrong = sum(1 for s in self.sinks if s.count != m)
                if disorder or wrong:
                    errors.append(
                        f"{disorder} tick(s) out of order, {wrong} client(s) without exactly"
                        f" {m} ticks"
                    )
        finally:
            await self.close_all()
        return {"errors": errors}


async def client_process(system: str, control: Control) -> None:
    control.send({"ready": True, "pid": os.getpid(), "cpus": sorted(os.sched_getaffinity(0))})
    side = ClientSide(system)
    profile: cProfile.Profile | None = None
    try:
        while command := await control.read():
            cmd = command.get("cmd")
            timeout = float(command.get("timeout", 60.0))
            try:
                if cmd == "prepare":
                    await asyncio.wait_for(side.close_all(), CLOSE_TIMEOUT)
                    side = ClientSide(system)
                    coro = side.prepare(command["scenario"], command["url"], command["params"])
                    reply = await asyncio.wait_for(coro, timeout)
                elif cmd == "measure":
                    path = command.get("profile")
                    if path:
                        profile = new_profile(command.get("clock", "wall"))
                        profile.enable()
                    try:
                        reply = await asyncio.wait_for(side.measure(), timeout)
                    finally:
                        if profile is not None:
                            profile.disable()
                            profile.dump_stats(path)
                            profile = None
                elif cmd == "finish":
                    reply = await asyncio.wait_for(side.finish(), timeout)
                elif cmd == "close":
                    await asyncio.wait_for(side.close_all(), timeout)
                    reply = {}
                else:
                    raise BenchError(f"unknown command {cmd!r}")
                control.send({"ok": True, **reply})
            except Exception as exc:
                control.send({"ok": False, "error": error_text(exc)})
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(side.close_all(), CLOSE_TIMEOUT)


# ======================================================================================
# The harness: child processes, trials
# ======================================================================================

_CHILDREN: list[psutil.Process] = []


class Child:
    """One child process: started, spoken to in JSON lines, terminated (SIGTERM, kill)."""

    def __init__(self, role: str, system: str, cpu: int | None) -> None:
        self.role = role
        self.system = system
        self.cpu_index = cpu
        self.name = f"{system} {role}"
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.hello: dict[str, Any] = {}

    async def start(self) -> dict[str, Any]:
        argv = [sys.executable, str(SCRIPT), "--role", self.role, "--system", self.system]
        if self.cpu_index is not None:
            argv += ["--cpu", str(self.cpu_index)]
        self.proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.stderr,
            limit=1 << 20,
        )
        self.ps = psutil.Process(self.proc.pid)
        _CHILDREN.append(self.ps)
        self.hello = await self.read(START_TIMEOUT)
        if not self.hello.get("ready"):
            raise BenchError(f"{self.name} did not start: {self.hello}")
        return self.hello

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def stderr_tail(self, limit: int = 800) -> str:
        with contextlib.suppress(OSError, ValueError):
            self.stderr.seek(0)
            text = self.stderr.read().decode(errors="replace").strip()
            return text[-limit:]
        return ""

    async def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise BenchError(f"{self.name}: no answer within {timeout:g} s") from None
        except (ValueError, asyncio.LimitOverrunError) as exc:
            raise BenchError(f"{self.name}: unreadable answer ({exc})") from None
        if not line:
            code = None
            with contextlib.suppress(TimeoutError):
                code = await asyncio.wait_for(self.proc.wait(), 2)
            tail = self.stderr_tail()
            raise BenchError(
                f"{self.name} exited (code {code})" + (f"; stderr: ...{tail}" if tail else "")
            )
        try:
            message: dict[str, Any] = json.loads(line)
        except ValueError:
            raise BenchError(f"{self.name}: not a JSON line: {line[:200]!r}") from None
        return message

    async def request(
        self, message: dict[str, Any], timeout: float, watch: Sequence[Child] = ()
    ) -> dict[str, Any]:
        """Send one command, wait (bounded) for its answer; raise BenchError if the child
        failed, died or did not answer, or if a ``watch``ed process died meanwhile (a
        client waiting on a dead server would otherwise sit out its own timeouts)."""
        assert self.proc is not None and self.proc.stdin is not None
        if not self.alive:
            raise BenchError(f"{self.name} is not running (code {self.proc.returncode})")
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            await asyncio.wait_for(self.proc.stdin.drain(), CONTROL_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise BenchError(f"{self.name}: cannot send a command ({error_text(exc)})") from None
        reader = asyncio.ensure_future(self.read(timeout))
        deaths = [asyncio.ensure_future(c.proc.wait()) for c in watch if c.proc is not None]
        try:
            await asyncio.wait([reader, *deaths], return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                dead = next(c for c in watch if not c.alive)
                raise BenchError(
                    f"{dead.name} exited (code {dead.returncode}) during {message.get('cmd')!r}"
                )
            reply = reader.result()
        finally:
            for task in (reader, *deaths):
                task.cancel()
            await asyncio.gather(reader, *deaths, return_exceptions=True)
        if not reply.get("ok"):
            raise BenchError(f"{self.name}: {reply.get('error', reply)}")
        return reply

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    def cpu(self) -> float:
        """User + system CPU seconds so far."""
        assert self.ps is not None
        try:
            times = self.ps.cpu_times()
        except psutil.Error as exc:
            raise BenchError(f"{self.name}: no CPU times ({exc})") from None
        return float(times.user + times.system)

    async def stop(self) -> None:
        proc = self.proc
        try:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            if proc is not None and proc.stdin is not None:
                proc.stdin.close()
        finally:
            if self.ps in _CHILDREN:
                _CHILDREN.remove(self.ps)
            self.stderr.close()


def kill_leftover_children() -> None:
    """Last resort (a crash or Ctrl-C past the async finally blocks)."""
    for ps in list(_CHILDREN):
        with contextlib.suppress(psutil.Error):
            ps.kill()
            ps.wait(STOP_TIMEOUT)
        _CHILDREN.remove(ps)


def pick_cpus() -> tuple[int | None, int | None]:
    """Server on the first allowed core, client on the second (None: not pinned)."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


class Pair:
    """One system's server process and client process."""

    def __init__(self, system: str, cpus: tuple[int | None, int | None]) -> None:
        self.system = system
        self.server = Child("server", system, cpus[0])
        self.client = Child("client", system, cpus[1])
        self.url = ""

    async def start(self) -> None:
        results = await asyncio.gather(
            self.server.start(), self.client.start(), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        port = self.server.hello["port"]
        self.url = f"http://{HOST}:{port}"

    @property
    def alive(self) -> bool:
        return self.server.alive and self.client.alive

    async def stop(self) -> None:
        try:
            await self.client.stop()
        finally:
            await self.server.stop()


@dataclass
class Trial:
    scenario: str
    system: str
    repeat: int
    position: int  # the system's place in this repeat's order (0: first)
    ok: bool = False
    error: str | None = None
    ops: int = 0
    elapsed_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # server, client
    cpu_us_per_op: dict[str, float] = field(default_factory=dict)
    cpu_busy: dict[str, float] = field(default_factory=dict)  # share of one core
    details: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0  # the whole trial, setup included


async def server_sessions(pair: Pair, expected: int, gc_first: bool) -> dict[str, Any]:
    """The server's stats once its session count is ``expected`` (bounded wait)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        stats = await pair.server.request(
            {"cmd": "stats", "gc": gc_first}, CONTROL_TIMEOUT, watch=[pair.client]
        )
        if stats["sessions"] == expected:
            return stats
        if time.monotonic() > deadline:
            raise BenchError(f"the server has {stats['sessions']} sessions, expected {expected}")
        await asyncio.sleep(0.05)


async def run_trial(pair: Pair, scenario: str, repeat: int, position: int, cfg: Config) -> Trial:
    trial = Trial(scenario, pair.system, repeat, position)
    started = time.monotonic()
    params = cfg.params[scenario]
    timeout = cfg.timeout
    reply_timeout = timeout + CONTROL_TIMEOUT  # the child bounds itself by `timeout`
    label = f"{scenario}-{pair.system}-r{repeat}"
    profile_dir = cfg.profile_dir
    try:
        await pair.client.request(
            {
                "cmd": "prepare",
                "scenario": scenario,
                "url": pair.url,
                "params": params,
                "timeout": timeout,
            },
            reply_timeout,
            watch=[pair.server],
        )
        if scenario == "idle_memory":
            before = await server_sessions(pair, 0, gc_first=True)
            trial.details["server_rss_before"] = before["rss"]
        if profile_dir is not None:
            await pair.server.request(
                {"cmd": "profile_start", "clock": cfg.profile_clock}, CONTROL_TIMEOUT
            )
        cpu0 = {"server": pair.server.cpu(), "client": pair.client.cpu()}
        measured = await pair.client.request(
            {
                "cmd": "measure",
                "timeout": timeout,
                "profile": str(profile_dir / f"{label}-client.prof") if profile_dir else None,
                "clock": cfg.profile_clock,
            },
            reply_timeout,
            watch=[pair.server],
        )
        cpu1 = {"server": pair.server.cpu(), "client": pair.client.cpu()}
        if profile_dir is not None:
            await pair.server.request(
                {"cmd": "profile_stop", "path": str(profile_dir / f"{label}-server.prof")},
                CONTROL_TIMEOUT,
            )
        trial.ops = int(measured["ops"])
        trial.elapsed_s = float(measured["elapsed"])
        trial.metrics = dict(measured["metrics"])
        for side in ("server", "client"):
            used = cpu1[side] - cpu0[side]
            trial.cpu_s[side] = used
            trial.cpu_us_per_op[side] = used / trial.ops * 1e6
            trial.cpu_busy[side] = used / trial.elapsed_s
        errors = list(measured["errors"])
        if scenario == "idle_memory":
            after = await server_sessions(pair, trial.ops, gc_first=True)
            growth = after["rss"] - trial.details["server_rss_before"]
            trial.details["server_rss_after"] = after["rss"]
            trial.metrics["rss_kib_per_conn"] = growth / trial.ops / 1024
        finished = await pair.client.request(
            {"cmd": "finish", "timeout": timeout}, reply_timeout, watch=[pair.server]
        )
        errors += finished["errors"]
        if errors:
            raise BenchError("; ".join(errors))
        trial.ok = True
    except BenchError as exc:
        trial.ok = False
        trial.error = str(exc)
        for child in (pair.server, pair.client):
            if child.proc is not None and not child.alive:
                tail = child.stderr_tail(300).replace("\n", " | ")
                trial.error += f" [{child.name} exited with code {child.returncode}" + (
                    f"; stderr: ...{tail}]" if tail else "]"
                )
    trial.wall_s = time.monotonic() - started
    return trial


# ======================================================================================
# Configuration, summary, report
# ======================================================================================


@dataclass
class Config:
    scenarios: list[str]
    systems: list[str]
    repeats: int
    quick: bool
    timeout: float
    params: dict[str, dict[str, int]]
    json_path: Path
    profile_dir: Path | None
    profile_clock: str
    top: int


def median_or_none(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def paired_ratios(
    trials: list[Trial], scenario: str, key: str, top: str, bottom: str, repeats: int
) -> list[float]:
    """For each repeat where both ran fine: top's metric / bottom's metric."""
    ratios = []
    for repeat in range(repeats):
        pair = {
            t.system: t.metrics.get(key)
            for t in trials
            if t.scenario == scenario and t.repeat == repeat and t.ok
        }
        a, b = pair.get(top), pair.get(bottom)
        if a is not None and b:
            ratios.append(a / b)
    return ratios


def summarize(trials: list[Trial], cfg: Config) -> dict[str, Any]:
    summary: dict[str, Any] = {"scenarios": {}, "targets": []}
    for scenario in cfg.scenarios:
        info = INFO[scenario]
        per_system: dict[str, Any] = {}
        for system in cfg.systems:
            mine = [t for t in trials if t.scenario == scenario and t.system == system]
            good = [t for t in mine if t.ok]
            entry: dict[str, Any] = {
                "trials_ok": len(good),
                "trials_failed": len(mine) - len(good),
                "metrics": {},
                "cpu_us_per_op": {
                    side: median_or_none(t.cpu_us_per_op.get(side) for t in good)
                    for side in ("server", "client")
                },
                "cpu_busy": {
                    side: median_or_none(t.cpu_busy.get(side) for t in good)
                    for side in ("server", "client")
                },
                "elapsed_s": median_or_none(t.elapsed_s for t in good),
            }
            for metric in (*info.metrics, *info.extras):
                values = [t.metrics[metric.key] for t in good if metric.key in t.metrics]
                ratio_raw = paired_ratios(trials, scenario, metric.key, system, "raw", cfg.repeats)
                ratio_py = (
                    paired_ratios(
                        trials, scenario, metric.key, "eventsock", "python-socketio", cfg.repeats
                    )
                    if system == "eventsock"
                    else []
                )
                entry["metrics"][metric.key] = {
                    "median": statistics.median(values) if values else None,
                    "min": min(values) if values else None,
                    "max": max(values) if values else None,
                    "values": values,
                    "ratio_to_raw": statistics.median(ratio_raw) if ratio_raw else None,
                    "paired_ratios_to_raw": ratio_raw,
                    "ratio_to_python_socketio": statistics.median(ratio_py) if ratio_py else None,
                    "paired_ratios_to_python_socketio": ratio_py,
                }
            per_system[system] = entry
        summary["scenarios"][scenario] = per_system
    for scenario, key, op, threshold in TARGETS:
        if scenario not in cfg.scenarios:
            continue
        ratio = (
            summary["scenarios"][scenario]
            .get("eventsock", {})
            .get("metrics", {})
            .get(key, {})
            .get("ratio_to_raw")
        )
        met = None if ratio is None else (ratio >= threshold if op == ">=" else ratio <= threshold)
        summary["targets"].append(
            {"scenario": scenario, "metric": key, "op": op, "target": threshold, "ratio": ratio}
            | {"met": met}
        )
    return summary


def metric_label(key: str) -> str:
    for info in INFO.values():
        for metric in (*info.metrics, *info.extras):
            if metric.key == key:
                return metric.label
    return key


def target_text(target: dict[str, Any]) -> str:
    verdict = {True: "met", False: "NOT met", None: "no ratio"}[target["met"]]
    return (
        f"eventsock/raw {target['op']} {target['target']:.2f}:"
        f" {fmt(target['ratio'], '.2f')} {verdict}"
    )


def print_trial(t: Trial) -> None:
    info = INFO[t.scenario]
    if t.ok:
        shown = "  ".join(
            f"{fmt(t.metrics.get(m.key), m.spec)} {m.label}" for m in (*info.metrics, *info.extras)
        )
        cpu = (
            f"srv {t.cpu_us_per_op['server']:.1f} us/op ({t.cpu_busy['server']:.0%})"
            f"  cli {t.cpu_us_per_op['client']:.1f} us/op ({t.cpu_busy['client']:.0%})"
        )
        status = f"{shown}  [{cpu}]"
    else:
        status = f"FAILED: {t.error}"
    print(f"  r{t.repeat} {t.scenario:<16} {t.system:<16} {status}", flush=True)


def print_table(summary: dict[str, Any], cfg: Config) -> None:
    print()
    print(
        "summary: medians over the repeats; x raw and es/psio are medians of per-repeat paired"
        " ratios; CPU us per operation (and busy share of one core) during the measured phase"
    )
    for scenario, per_system in summary["scenarios"].items():
        info = INFO[scenario]
        params = dict(cfg.params[scenario], concurrency=CONNECT_CONCURRENCY)
        print()
        print(f"{scenario}: {info.title.format(**params)}")
        for metric in info.metrics:
            print(
                f"  {'system':<16} {metric.label:>16}  {'(min - max)':<23} {'x raw':>6}"
                f" {'es/psio':>7}  {'srv us/' + info.op:>17} {'cli us/' + info.op:>17}"
                f"  {'trials':>6}"
                + ("  " + "  ".join(e.label for e in info.extras) if info.extras else "")
            )
            for system, entry in per_system.items():
                m = entry["metrics"][metric.key]
                span = f"({fmt(m['min'], metric.spec)} - {fmt(m['max'], metric.spec)})"
                cpu, busy = entry["cpu_us_per_op"], entry["cpu_busy"]
                srv = f"{fmt(cpu['server'], '.1f')} ({fmt(busy['server'], '.0%')})"
                cli = f"{fmt(cpu['client'], '.1f')} ({fmt(busy['client'], '.0%')})"
                ok = entry["trials_ok"]
                trials = f"{ok}/{ok + entry['trials_failed']}"
                extras = "  ".join(
                    f"{fmt(entry['metrics'][e.key]['median'], e.spec):>{len(e.label)}}"
                    for e in info.extras
                )
                print(
                    f"  {system:<16} {fmt(m['median'], metric.spec):>16}  {span:<23}"
                    f" {fmt(m['ratio_to_raw'], '.2f'):>6}"
                    f" {fmt(m['ratio_to_python_socketio'], '.2f'):>7}"
                    f"  {srv:>17} {cli:>17}  {trials:>6}" + (f"  {extras}" if extras else "")
                )
            for target in summary["targets"]:
                if target["scenario"] == scenario and target["metric"] == metric.key:
                    print(f"  target {target_text(target)}")
    if summary["targets"]:
        print()
        print("targets (eventsock / raw, median of paired ratios):")
        for target in summary["targets"]:
            name = f"{target['scenario']} {metric_label(target['metric'])}"
            print(f"  {name:<36} {target_text(target)}")


def code_version() -> dict[str, Any]:
    """The git commit, and whether eventsock/ has uncommitted changes (what the child
    processes import is what is on disk when each starts)."""
    version: dict[str, Any] = {"git_commit": None, "eventsock_dirty": None}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(HERE.parent)]
        version["git_commit"] = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        status = subprocess.run(
            [*git, "status", "--porcelain", "--", "eventsock"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        version["eventsock_dirty"] = bool(status)
    return version


def environment(cpus: tuple[int | None, int | None]) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in ("eventsock", "python-socketio", "python-engineio", "aiohttp", "msgpack"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "server_cpu": cpus[0],
        "client_cpu": cpus[1],
        "packages": versions,
        **code_version(),
    }


# -- profiles ----------------------------------------------------------------------------


def report_profiles(cfg: Config) -> Path | None:
    directory = cfg.profile_dir
    if directory is None:
        return None
    parts = []
    for scenario in cfg.scenarios:
        for system in cfg.systems:
            for role in ("server", "client"):
                files = sorted(directory.glob(f"{scenario}-{system}-r*-{role}.prof"))
                if files:
                    table = profile_table(files, cfg.top, "profiled", "run(s)")
                    parts.append(f"===== {scenario}: {system} {role} =====\n{table}\n")
    report = directory / "report.txt"
    report.write_text("\n".join(parts))
    return report


# -- the run -------------------------------------------------------------------------------


async def bench(cfg: Config) -> dict[str, Any]:
    cpus = pick_cpus()
    env = environment(cpus)
    pinning = (
        f"server pinned to core {cpus[0]}, client to core {cpus[1]}"
        if cpus[0] is not None
        else "NOT pinned (fewer than 2 cores allowed)"
    )
    commit = (env["git_commit"] or "unknown")[:10]
    dirty = " + uncommitted changes in eventsock/" if env["eventsock_dirty"] else ""
    print(
        f"eventsock benchmark (commit {commit}{dirty}):"
        f" {', '.join(cfg.systems)}; {cfg.repeats} repeats"
        f"{' (--quick)' if cfg.quick else ''}; {pinning}"
        + (
            f"; PROFILING into {cfg.profile_dir} (numbers not comparable)"
            if cfg.profile_dir
            else ""
        )
    )
    trials: list[Trial] = []
    restarts = 0
    for repeat in range(cfg.repeats):
        shift = repeat % len(cfg.systems)
        order = cfg.systems[shift:] + cfg.systems[:shift]
        print(f"repeat {repeat}: order {', '.join(order)}", flush=True)
        pairs: dict[str, Pair] = {}
        try:
            for scenario in cfg.scenarios:
                for position, system in enumerate(order):
                    fresh = scenario == "idle_memory"  # a fresh server for a clean RSS
                    pair = pairs.get(system)
                    if fresh or pair is None or not pair.alive:
                        if pair is not None:
                            pairs.pop(system)
                            await pair.stop()
                            restarts += 1
                        pair = Pair(system, cpus)
                        pairs[system] = pair
                        try:
                            await pair.start()
                        except BenchError as exc:
                            trial = Trial(scenario, system, repeat, position, error=str(exc))
                            trials.append(trial)
                            print_trial(trial)
                            pairs.pop(system)
                            await pair.stop()
                            continue
                    trial = await run_trial(pair, scenario, repeat, position, cfg)
                    trials.append(trial)
                    print_trial(trial)
                    if fresh or not trial.ok:
                        # a failed trial leaves the processes in an unknown state
                        pairs.pop(system)
                        await pair.stop()
        finally:
            for pair in pairs.values():
                await pair.stop()
    summary = summarize(trials, cfg)
    print_table(summary, cfg)
    end = code_version()
    if (end["git_commit"], end["eventsock_dirty"]) != (env["git_commit"], env["eventsock_dirty"]):
        env["code_at_end"] = end
        print(
            f"\nWARNING: the code changed during the run (commit {env['git_commit']},"
            f" eventsock/ modified: {env['eventsock_dirty']} -> commit {end['git_commit']},"
            f" modified: {end['eventsock_dirty']}): trials may have measured different code"
        )
    return {
        "benchmark": "single node (bench/run.py)",
        "config": {
            "scenarios": cfg.scenarios,
            "systems": cfg.systems,
            "repeats": cfg.repeats,
            "quick": cfg.quick,
            "timeout_s": cfg.timeout,
            "params": {s: cfg.params[s] for s in cfg.scenarios},
            "connect_concurrency": CONNECT_CONCURRENCY,
            "profiled": cfg.profile_dir is not None,
        },
        "environment": env,
        "pair_restarts_after_failure": restarts,
        "trials": [asdict(t) for t in trials],
        "summary": summary,
    }


def parse_list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none)'}; choose from {', '.join(allowed)}"
        )
    return list(dict.fromkeys(items))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="eventsock vs python-socketio vs a raw aiohttp WebSocket, server and"
        " client in separate pinned processes."
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer operations and 2 repeats (< 1 minute)"
    )
    parser.add_argument(
        "--scenarios",
        type=lambda t: parse_list(t, SCENARIOS, "scenario"),
        default=list(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--systems",
        type=lambda t: parse_list(t, SYSTEMS, "system"),
        default=list(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)}",
    )
    parser.add_argument("--repeats", type=int, help="repeats (default 5; --quick 2)")
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds one step of a trial may take (default 120; --quick 60)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        default=os.environ.get(PROFILE_ENV) or None,
        help=f"cProfile the measured phase of every server and client into DIR (also"
        f" ${PROFILE_ENV}); profiled numbers are slower and not for comparison",
    )
    parser.add_argument("--top", type=int, default=25, help="functions per profile table")
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="run every server and client process on uvloop (pip install uvloop)",
    )
    parser.add_argument("--role", choices=("server", "client"), help=argparse.SUPPRESS)
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role is None:
        if args.repeats is None:
            args.repeats = 2 if args.quick else 5
        if args.timeout is None:
            args.timeout = 60.0 if args.quick else 120.0
        if args.repeats < 1 or args.timeout <= 0:
            parser.error("need --repeats >= 1 and --timeout > 0")
    elif args.system is None:
        parser.error("--role needs --system")
    return args


UVLOOP_ENV = "EVENTSOCK_BENCH_UVLOOP"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role is not None:
        return child_main(args)
    if args.uvloop:
        os.environ[UVLOOP_ENV] = "1"  # the children read it
    profile_dir = None
    if args.profile:
        profile_dir = Path(args.profile).resolve()
        profile_dir.mkdir(parents=True, exist_ok=True)
    # keep the command-line order of the systems: it is repeat 0's order
    cfg = Config(
        scenarios=[s for s in SCENARIOS if s in args.scenarios],
        systems=args.systems,
        repeats=args.repeats,
        quick=args.quick,
        timeout=args.timeout,
        params=QUICK if args.quick else FULL,
        json_path=args.json,
        profile_dir=profile_dir,
        profile_clock=os.environ.get(PROFILE_CLOCK_ENV, "wall"),
        top=args.top,
    )
    started = time.monotonic()
    try:
        result = asyncio.run(bench(cfg))
    except KeyboardInterrupt:
        print("\ninterrupted: children stopped, nothing written", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        return 2
    finally:
        kill_leftover_children()
    result["wall_s"] = round(time.monotonic() - started, 2)
    result["uvloop"] = bool(args.uvloop)
    report = report_profiles(cfg)
    if report is not None:
        result["profile_report"] = str(report)
        print(f"\nprofile report: {report}")
    cfg.json_path.parent.mkdir(parents=True, exist_ok=True)
    cfg.json_path.write_text(json.dumps(result, indent=2) + "\n")
    failed = sum(1 for t in result["trials"] if not t["ok"])
    print(
        f"\nresults: {cfg.json_path}   (wall {result['wall_s']} s;"
        f" {len(result['trials']) - failed}/{len(result['trials'])} trials completed)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
