"""Cluster broadcast benchmark: eventsock's RedisBackend against python-socketio's
AsyncRedisManager.

Two server processes share one Redis; N clients are split evenly across them and all
join room "r". One client asks server process 1 to broadcast M small events to "r";
every client must receive all M. Deliveries/s = N x M / (time from the blast request to
the last delivery). Both systems run in the same invocation, with their own server and
client libraries, in rotating order, for several repeats; the ratio
eventsock / python-socketio is the median of the per-repeat paired ratios.

Run it from the repository root with the project's virtualenv:

    python bench/cluster.py --quick           # 40 clients, 50 ticks, 2 repeats (< 1 min)
    python bench/cluster.py                   # 100 clients, 200 ticks, 5 repeats
    python bench/cluster.py --profile DIR     # also cProfile servers and clients

The script starts its own servers by re-invoking itself with ``--serve SYSTEM``; such a
process prints its port as its first stdout line and runs until SIGTERM (or until its
stdin closes, so that it never outlives the benchmark). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped,unused-ignore]  # the `bench` extra
from _common import Sink, fmt, new_profile, profile_table

SYSTEMS = ("eventsock", "python-socketio")
ROOM = "r"
HOST = "127.0.0.1"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "cluster.json"
#: Set (to a directory) in a server process's environment to let it cProfile the blast.
PROFILE_ENV = "EVENTSOCK_BENCH_PROFILE"
#: "wall" (default: time off the CPU counts too) or "cpu" (process CPU time only).
PROFILE_CLOCK_ENV = "EVENTSOCK_BENCH_PROFILE_CLOCK"

# Seconds allowed for each step; every wait in the benchmark is bounded by one of these.
SERVER_START_TIMEOUT = 20.0
SERVER_STOP_TIMEOUT = 10.0
CONNECT_TIMEOUT = 15.0
CALL_TIMEOUT = 15.0
SUBSCRIBE_TIMEOUT = 10.0
DISCONNECT_TIMEOUT = 10.0
CONNECT_BATCH = 20  # clients connecting at once


# ======================================================================================
# Server processes (``--serve SYSTEM``)
# ======================================================================================


class ServerProfiler:
    """cProfile switched on and off by the benchmark through a "profile" event, so that
    only the blast is profiled. Does nothing unless PROFILE_ENV names a directory."""

    def __init__(self) -> None:
        self.directory = os.environ.get(PROFILE_ENV) or None
        self.clock = os.environ.get(PROFILE_CLOCK_ENV, "wall")
        self._profile: cProfile.Profile | None = None

    def command(self, action: str, name: str = "") -> bool:
        if self.directory is None:
            return False
        if action == "start" and self._profile is None:
            self._profile = new_profile(self.clock)
            self._profile.enable()
            return True
        if action == "stop" and self._profile is not None:
            profile, self._profile = self._profile, None
            profile.disable()
            profile.dump_stats(str(Path(self.directory) / f"{name}.prof"))
            return True
        return False


async def start_eventsock(
    redis_url: str, prefix: str, profiler: ServerProfiler
) -> tuple[int, Callable[[], Awaitable[None]]]:
    import eventsock
    from eventsock.backends.redis import RedisBackend

    backend = RedisBackend(redis_url, prefix=prefix)
    server = eventsock.Server(backend=backend)

    @server.on("join")
    async def join(session: eventsock.Session) -> bool:
        await session.enter_room(ROOM)
        return True

    @server.on("blast")
    async def blast(session: eventsock.Session, count: int) -> int:
        for i in range(count):
            await server.emit("tick", i, to=ROOM)
        return count

    @server.on("profile")
    def profile(session: eventsock.Session, action: str, name: str = "") -> bool:
        return profiler.command(action, name)

    port = await server.start(HOST, 0)
    if not backend.subscribed:
        await server.shutdown()
        raise RuntimeError(f"eventsock: Redis at {redis_url} not subscribed")
    return port, server.shutdown


async def start_pysio(
    redis_url: str, prefix: str, profiler: ServerProfiler
) -> tuple[int, Callable[[], Awaitable[None]]]:
    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        serializer="msgpack",
        client_manager=socketio.AsyncRedisManager(redis_url, channel=prefix),
    )
    app = web.Application()
    sio.attach(app)

    async def join(sid: str) -> bool:
        await sio.enter_room(sid, ROOM)
        return True

    async def blast(sid: str, count: int) -> int:
        for i in range(count):
            await sio.emit("tick", i, room=ROOM)
        return count

    def profile(sid: str, action: str, name: str = "") -> bool:
        return profiler.command(action, name)

    sio.on("join", join)
    sio.on("blast", blast)
    sio.on("profile", profile)

    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or ()
    if not sockets:
        await runner.cleanup()
        raise RuntimeError("python-socketio: no listening socket")
    port = int(sockets[0].getsockname()[1])

    async def close() -> None:
        if sio.eio.sockets:
            await sio.eio.disconnect()
        await sio.shutdown()
        await runner.cleanup()

    return port, close


async def serve(system: str, redis_url: str, prefix: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:
        # The benchmark holds our stdin open; EOF means it is gone: stop too. (os.read,
        # not sys.stdin: a daemon thread blocked in a buffered read aborts the exit.)
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    profiler = ServerProfiler()
    start = start_eventsock if system == "eventsock" else start_pysio
    port, close = await start(redis_url, prefix, profiler)
    print(port, flush=True)
    try:
        await stop.wait()
    finally:
        try:
            await asyncio.wait_for(close(), SERVER_STOP_TIMEOUT)
        except TimeoutError:
            print(f"{system} server: shutdown timed out", file=sys.stderr)


# ======================================================================================
# The benchmark side: server processes as children, clients in this process
# ======================================================================================

_CHILDREN: list[subprocess.Popen[bytes]] = []


class ServerProcess:
    """One ``--serve`` child: started, its port read, terminated (SIGTERM, then kill)."""

    def __init__(
        self,
        system: str,
        redis_url: str,
        prefix: str,
        profile_dir: str | None,
        profile_clock: str = "wall",
    ) -> None:
        env = dict(os.environ)
        env.pop(PROFILE_ENV, None)
        env.pop(PROFILE_CLOCK_ENV, None)
        if profile_dir is not None:
            env[PROFILE_ENV] = profile_dir
            env[PROFILE_CLOCK_ENV] = profile_clock
        self.system = system
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--serve",
                system,
                "--redis",
                redis_url,
                "--prefix",
                prefix,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        _CHILDREN.append(self.proc)
        self.port = 0
        self.ps = psutil.Process(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def wait_port(self) -> int:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(
                asyncio.to_thread(self.proc.stdout.readline), SERVER_START_TIMEOUT
            )
        except TimeoutError:
            raise RuntimeError(f"{self.system} server printed no port in time") from None
        if not line.strip().isdigit():
            raise RuntimeError(
                f"{self.system} server did not start (exit code {self.proc.poll()}, "
                f"first line {line!r})"
            )
        self.port = int(line)
        return self.port

    def cpu(self) -> float:
        """User + system CPU seconds so far."""
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    async def stop(self) -> None:
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.to_thread(proc.wait, SERVER_STOP_TIMEOUT)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if proc in _CHILDREN:
            _CHILDREN.remove(proc)


def kill_leftover_children() -> None:
    """Last resort (a crash or Ctrl-C past the async finally blocks)."""
    for proc in list(_CHILDREN):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(SERVER_STOP_TIMEOUT)
        _CHILDREN.remove(proc)


class BenchClient:
    """The few operations the benchmark needs, over each system's own client."""

    def __init__(self) -> None:
        self.sink = Sink()

    async def connect(self, url: str) -> None:
        raise NotImplementedError

    async def call(self, event: str, *args: Any) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class EventsockClient(BenchClient):
    def __init__(self) -> None:
        import eventsock

        super().__init__()
        self.client = eventsock.Client(reconnection=False)
        self.client.on("tick", self.sink.tick)

    async def connect(self, url: str) -> None:
        await self.client.connect(url, timeout=CONNECT_TIMEOUT)

    async def call(self, event: str, *args: Any) -> Any:
        return await self.client.call(event, *args, timeout=CALL_TIMEOUT)

    async def close(self) -> None:
        await self.client.disconnect()


class PysioClient(BenchClient):
    def __init__(self) -> None:
        import socketio

        super().__init__()
        self.sio = socketio.AsyncClient(
            serializer="msgpack", reconnection=False, handle_sigint=False
        )
        self.sio.on("tick", self.sink.tick)

    async def connect(self, url: str) -> None:
        await self.sio.connect(url, transports=["websocket"], wait_timeout=CONNECT_TIMEOUT)

    async def call(self, event: str, *args: Any) -> Any:
        # python-socketio sends a tuple as several arguments
        return await self.sio.call(event, args, timeout=CALL_TIMEOUT)

    async def close(self) -> None:
        await self.sio.disconnect()
        await self.sio.eio.wait()


def channel_of(system: str, redis_url: str, prefix: str) -> str:
    """The Redis channel that every server node of the run subscribes to."""
    if system == "eventsock":
        from eventsock.backends.redis import RedisBackend

        return RedisBackend(redis_url, prefix=prefix).all_channel
    return prefix  # AsyncRedisManager(channel=prefix)


async def wait_subscribers(redis_url: str, channel: str, count: int) -> None:
    """Wait (bounded) until ``count`` server nodes subscribe to ``channel``:
    python-socketio subscribes in the background after its first connection."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        while True:
            [(_, subscribers)] = await client.pubsub_numsub(channel)
            if subscribers >= count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{subscribers}/{count} nodes subscribed to {channel!r}")
            await asyncio.sleep(0.02)
    finally:
        await client.aclose()


def redis_process(redis_url: str) -> psutil.Process | None:
    """The redis-server listening on the URL's port, to report its CPU too."""
    port = urlsplit(redis_url).port or 6379
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if (
                conn.status == psutil.CONN_LISTEN
                and conn.laddr
                and conn.laddr.port == port
                and conn.pid is not None
            ):
                return psutil.Process(conn.pid)
    return None


def cpu_of(proc: psutil.Process | None) -> float | None:
    if proc is None:
        return None
    with contextlib.suppress(psutil.Error):
        times = proc.cpu_times()
        return float(times.user + times.system)
    return None


@dataclass
class Trial:
    system: str
    repeat: int
    position: int  # 0: ran first in its repeat
    clients: int
    messages: int
    ok: bool = False
    error: str | None = None
    elapsed_s: float | None = None
    deliveries: int = 0
    deliveries_per_s: float | None = None
    ack_s: float | None = None  # blast request -> blast ack (server 1 done emitting)
    delivered: int = 0  # what arrived before the end (== deliveries when ok)
    disorder: int = 0  # ticks that arrived out of sequence
    extra: int = 0  # ticks beyond M
    cpu_s: dict[str, float | None] = field(default_factory=dict)
    cpu_util: dict[str, float | None] = field(default_factory=dict)


async def gather_bounded(items: Sequence[Awaitable[Any]], timeout: float) -> list[Any]:
    return list(await asyncio.wait_for(asyncio.gather(*items), timeout))


async def run_trial(
    system: str,
    repeat: int,
    position: int,
    args: argparse.Namespace,
    run_id: str,
    redis_proc: psutil.Process | None,
) -> Trial:
    n, m = args.clients, args.messages
    trial = Trial(system, repeat, position, n, m)
    prefix = f"bench-cluster-{run_id}-{system}-{repeat}"
    label = f"{system}-r{repeat}"
    servers: list[ServerProcess] = []
    clients: list[BenchClient] = []
    client_profile: cProfile.Profile | None = None
    me = psutil.Process()
    try:
        servers = [
            ServerProcess(system, args.redis, prefix, args.profile, args.profile_clock)
            for _ in range(2)
        ]
        await gather_bounded([s.wait_port() for s in servers], SERVER_START_TIMEOUT + 5)
        make = EventsockClient if system == "eventsock" else PysioClient
        clients = [make() for _ in range(n)]
        # client i on server i % 2; client 0 (the blaster) is on server process 1
        for start in range(0, n, CONNECT_BATCH):
            batch = range(start, min(n, start + CONNECT_BATCH))
            await gather_bounded(
                [clients[i].connect(servers[i % 2].url) for i in batch], CONNECT_TIMEOUT + 5
            )
        joined = await gather_bounded([c.call("join") for c in clients], CALL_TIMEOUT + 5)
        if not all(j is True for j in joined):
            raise RuntimeError(f"join acks: {joined[:5]}...")
        await wait_subscribers(args.redis, channel_of(system, args.redis, prefix), 2)
        blaster = clients[0]

        async def blast(count: int) -> tuple[float, float, float]:
            """Returns (request time, ack time, last delivery time) on perf_counter."""
            futures = [c.sink.reset(count) for c in clients]
            t0 = time.perf_counter()
            acked = await blaster.call("blast", count)
            t_ack = time.perf_counter()
            if acked != count:
                raise RuntimeError(f"blast ack {acked!r}, expected {count}")
            try:
                await asyncio.wait_for(asyncio.gather(*futures), args.timeout)
            except TimeoutError:
                raise RuntimeError(
                    f"not every client got {count} ticks within {args.timeout} s"
                ) from None
            return t0, t_ack, max(c.sink.finished_at for c in clients)

        if args.warmup:
            await blast(args.warmup)

        # a neutral clock for "what limited this number": CPU of each process
        if args.profile:
            for server, name in ((servers[0], "s1"), (servers[1], "s2")):
                await server_call(clients, servers, server, "profile", "start", f"{label}-{name}")
            client_profile = new_profile(args.profile_clock)
        before = {
            "server1": servers[0].cpu(),
            "server2": servers[1].cpu(),
            "clients": cpu_of(me),
            "redis": cpu_of(redis_proc),
        }
        if client_profile is not None:
            client_profile.enable()
        try:
            t0, t_ack, t_end = await blast(m)
        finally:
            if client_profile is not None:
                client_profile.disable()
            after = {
                "server1": servers[0].cpu(),
                "server2": servers[1].cpu(),
                "clients": cpu_of(me),
                "redis": cpu_of(redis_proc),
            }
            for key, value in before.items():
                later = after[key]
                trial.cpu_s[key] = None if value is None or later is None else later - value
            trial.delivered = sum(c.sink.count for c in clients)
            trial.disorder = sum(c.sink.disorder for c in clients)
        trial.elapsed_s = t_end - t0
        trial.ack_s = t_ack - t0
        trial.deliveries = n * m
        trial.deliveries_per_s = n * m / trial.elapsed_s
        trial.cpu_util = {
            key: None if value is None else value / trial.elapsed_s
            for key, value in trial.cpu_s.items()
        }
        if args.profile and client_profile is not None:
            client_profile.dump_stats(str(Path(args.profile) / f"{label}-clients.prof"))
            for server, name in ((servers[0], "s1"), (servers[1], "s2")):
                await server_call(clients, servers, server, "profile", "stop", f"{label}-{name}")
        # A round trip per client to its own server, then nothing beyond M may be there.
        await gather_bounded([c.call("join") for c in clients], CALL_TIMEOUT + 5)
        trial.extra = sum(max(0, c.sink.count - m) for c in clients)
        trial.ok = trial.disorder == 0 and trial.extra == 0
        if not trial.ok:
            trial.error = f"{trial.disorder} ticks out of order, {trial.extra} extra"
    except Exception as exc:
        trial.ok = False
        trial.error = f"{type(exc).__name__}: {exc}"
        if trial.delivered == 0:
            trial.delivered = sum(c.sink.count for c in clients)
    finally:
        if clients:
            results = await asyncio.gather(
                *(asyncio.wait_for(c.close(), DISCONNECT_TIMEOUT) for c in clients),
                return_exceptions=True,
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                print(f"  ({len(failed)} client(s) did not close cleanly: {failed[0]!r})")
        await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)
    return trial


async def server_call(
    clients: list[BenchClient], servers: list[ServerProcess], server: ServerProcess, *args: Any
) -> Any:
    """Call an event on one particular server through a client connected to it."""
    index = servers.index(server)
    return await clients[index].call(*args)  # client i is on server i % 2


# ======================================================================================
# Report
# ======================================================================================


def summarize(trials: list[Trial], repeats: int) -> dict[str, Any]:
    summary: dict[str, Any] = {"systems": {}}
    for system in SYSTEMS:
        good = [t for t in trials if t.system == system and t.ok]
        rates = [t.deliveries_per_s for t in good if t.deliveries_per_s is not None]
        cpu: dict[str, float | None] = {}
        util: dict[str, float | None] = {}
        for key in ("server1", "server2", "clients", "redis"):
            values = [v for t in good if (v := t.cpu_s.get(key)) is not None]
            cpu[key] = statistics.median(values) if values else None
            values = [v for t in good if (v := t.cpu_util.get(key)) is not None]
            util[key] = statistics.median(values) if values else None
        summary["systems"][system] = {
            "trials_ok": len(good),
            "trials_failed": sum(1 for t in trials if t.system == system and not t.ok),
            "deliveries_per_s_median": statistics.median(rates) if rates else None,
            "deliveries_per_s_min": min(rates) if rates else None,
            "deliveries_per_s_max": max(rates) if rates else None,
            "elapsed_s_median": (
                statistics.median(t.elapsed_s for t in good if t.elapsed_s is not None)
                if good
                else None
            ),
            "ack_s_median": (
                statistics.median(t.ack_s for t in good if t.ack_s is not None) if good else None
            ),
            "cpu_s_median": cpu,
            "cpu_util_median": util,
        }
    ratios = []
    for repeat in range(repeats):
        pair = {t.system: t for t in trials if t.repeat == repeat and t.ok}
        es, py = pair.get("eventsock"), pair.get("python-socketio")
        if es and py and es.deliveries_per_s and py.deliveries_per_s:
            ratios.append(es.deliveries_per_s / py.deliveries_per_s)
    summary["paired_ratios"] = ratios
    summary["ratio_median"] = statistics.median(ratios) if ratios else None
    summary["goal_ratio"] = 3.0
    summary["goal_met"] = summary["ratio_median"] is not None and summary["ratio_median"] >= 3.0
    return summary


def print_trial(t: Trial) -> None:
    cpu = t.cpu_s
    status = "ok" if t.ok else f"FAILED: {t.error} ({t.delivered}/{t.clients * t.messages})"
    print(
        f"  {t.repeat:>2} {t.position:>3}  {t.system:<16}"
        f" {fmt(t.elapsed_s and t.elapsed_s * 1000, '9.1f')}"
        f" {fmt(t.deliveries_per_s, '12,.0f')}"
        f" {fmt(t.ack_s and t.ack_s * 1000, '8.1f')}"
        f" {fmt(cpu.get('server1'), '6.2f')} {fmt(cpu.get('server2'), '6.2f')}"
        f" {fmt(cpu.get('clients'), '7.2f')} {fmt(cpu.get('redis'), '6.2f')}  {status}",
        flush=True,
    )


TRIAL_HEADER = (
    "  rep pos  system           elapsed ms  deliveries/s   ack ms"
    "  srv1 s  srv2 s  clients s redis s"
)


def print_summary(summary: dict[str, Any], args: argparse.Namespace) -> None:
    print()
    print(
        f"summary: {args.clients} clients, {args.messages} ticks/blast,"
        f" {args.clients * args.messages:,} deliveries per trial, medians of the trials"
    )
    print(
        "  system            deliveries/s  (min - max)               elapsed ms  "
        "CPU s: srv1  srv2  clients redis"
    )
    for system, s in summary["systems"].items():
        cpu = s["cpu_s_median"]
        low, high = s["deliveries_per_s_min"], s["deliveries_per_s_max"]
        span = f"({fmt(low, ',.0f')} - {fmt(high, ',.0f')})"
        elapsed = s["elapsed_s_median"]
        print(
            f"  {system:<16} {fmt(s['deliveries_per_s_median'], '13,.0f')}  {span:<24}"
            f" {fmt(elapsed and elapsed * 1000, '10.1f')}"
            f"  {fmt(cpu['server1'], '10.2f')} {fmt(cpu['server2'], '5.2f')}"
            f" {fmt(cpu['clients'], '7.2f')} {fmt(cpu['redis'], '5.2f')}"
            + (f"   [{s['trials_failed']} failed]" if s["trials_failed"] else "")
        )
    print("  CPU busy during the blast, as a share of one core (2 cores in all here):")
    for system, s in summary["systems"].items():
        util = s["cpu_util_median"]
        shares = "  ".join(f"{key} {fmt(value, '4.0%')}" for key, value in util.items())
        total = sum(v for v in util.values() if v is not None)
        print(f"  {system:<16} {shares}  all {total:.2f} cores")
    ratios = ", ".join(f"{r:.2f}" for r in summary["paired_ratios"])
    ratio = summary["ratio_median"]
    print(
        f"  ratio eventsock / python-socketio (median of paired repeats):"
        f" {fmt(ratio, '.2f')}{'x' if ratio is not None else ''}  [{ratios}]"
        f"  goal >= {summary['goal_ratio']:.0f}x: {'met' if summary['goal_met'] else 'NOT met'}"
    )


def environment(args: argparse.Namespace) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in ("eventsock", "python-socketio", "python-engineio", "aiohttp", "msgpack", "redis"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
        "git_commit": commit,
        "redis_url": args.redis,
    }


async def redis_version(redis_url: str) -> str | None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        info = await asyncio.wait_for(client.info("server"), 5)
        return str(info.get("redis_version"))
    except Exception:
        return None
    finally:
        await client.aclose()


def report_profiles(directory: Path, top: int, clock: str) -> str:
    """Top functions per system and process role, summed over the repeats' blasts."""
    parts = []
    for system in SYSTEMS:
        for role, title in (
            ("s1", "server process 1 (runs the blast, publishes)"),
            ("s2", "server process 2 (receives from Redis)"),
            ("clients", "client process"),
        ):
            files = sorted(directory.glob(f"{system}-r*-{role}.prof"))
            if files:
                table = profile_table(files, top, f"profiled {clock} time", "blast(s)")
                parts.append(f"===== {system}: {title} =====\n{table}\n")
    return "\n".join(parts)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:10]
    redis_proc = redis_process(args.redis)
    env = environment(args)
    env["redis_server"] = await redis_version(args.redis)
    if env["redis_server"] is None:
        raise SystemExit(f"Redis at {args.redis} does not answer: start it first")
    env["redis_pid_found"] = redis_proc is not None
    print(
        f"cluster broadcast benchmark: 2 server processes on Redis {args.redis}"
        f" (redis {env['redis_server']}), {args.clients} clients split across them in room"
        f" {ROOM!r}, {args.messages} ticks per blast from server process 1,"
        f" {args.repeats} repeats, warm-up {args.warmup} ticks"
        + (f", PROFILING into {args.profile}" if args.profile else "")
    )
    print(TRIAL_HEADER)
    trials: list[Trial] = []
    for repeat in range(args.repeats):
        order = SYSTEMS[repeat % len(SYSTEMS) :] + SYSTEMS[: repeat % len(SYSTEMS)]
        for position, system in enumerate(order):
            trial = await run_trial(system, repeat, position, args, run_id, redis_proc)
            trials.append(trial)
            print_trial(trial)
    summary = summarize(trials, args.repeats)
    print_summary(summary, args)
    return {
        "benchmark": "cluster broadcast (bench/cluster.py)",
        "config": {
            "clients": args.clients,
            "messages": args.messages,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "timeout_s": args.timeout,
            "quick": args.quick,
            "profiled": bool(args.profile),
            "profile_clock": args.profile_clock if args.profile else None,
            "servers": 2,
            "room": ROOM,
            "blast_from": "server process 1",
        },
        "environment": env,
        "trials": [asdict(t) for t in trials],
        "summary": summary,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Room broadcast across two server processes on one Redis:"
        " eventsock vs python-socketio's AsyncRedisManager."
    )
    parser.add_argument("--quick", action="store_true", help="40 clients, 50 ticks, 2 repeats")
    parser.add_argument("--clients", type=int, help="N clients (default 100; --quick 40)")
    parser.add_argument("--messages", type=int, help="M ticks per blast (default 200; --quick 50)")
    parser.add_argument("--repeats", type=int, help="repeats (default 5; --quick 2)")
    parser.add_argument(
        "--warmup", type=int, help="ticks of an unmeasured blast first (default 20; --quick 10)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds a blast may take (default 60)"
    )
    parser.add_argument("--redis", default=DEFAULT_REDIS, help=f"Redis URL ({DEFAULT_REDIS})")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="cProfile each blast in the servers and the client process; write .prof files"
        " and a top-functions report (profiled numbers are slower: not for comparison)",
    )
    parser.add_argument(
        "--profile-clock",
        choices=("wall", "cpu"),
        default="wall",
        help="profile on wall time (default; time spent descheduled counts) or CPU time",
    )
    parser.add_argument("--top", type=int, default=25, help="functions per profile report")
    parser.add_argument("--serve", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="bench-cluster", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    if args.clients is None:
        args.clients = 40 if quick else 100
    if args.messages is None:
        args.messages = 50 if quick else 200
    if args.repeats is None:
        args.repeats = 2 if quick else 5
    if args.warmup is None:
        args.warmup = 10 if quick else 20
    if args.clients < 2 or args.messages < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("need --clients >= 2, --messages >= 1, --repeats >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve, args.redis, args.prefix))
        return 0
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        result = asyncio.run(bench(args))
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, nothing written", file=sys.stderr)
        return 130
    finally:
        kill_leftover_children()
    result["wall_s"] = round(time.monotonic() - started, 2)
    if args.profile:
        text = report_profiles(Path(args.profile), args.top, args.profile_clock)
        report = Path(args.profile) / "report.txt"
        report.write_text(text)
        result["profile_report"] = str(report)
        print(f"\nprofile report: {report}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults: {args.json}   (wall {result['wall_s']} s)")
    failed = sum(1 for t in result["trials"] if not t["ok"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
