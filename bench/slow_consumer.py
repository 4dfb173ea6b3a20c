"""One slow client beside many normal ones: does it hold them up, and what does it cost
the server?

The server (its own process, on its own core where there are two) broadcasts bursts of
small events to a room of ``--clients`` normal clients (another process). Runs without
a slow client give the baseline delivery rate; runs with one client that reads 10x
slower than the server sends (behind a TCP proxy that forwards a tenth of the baseline's
bytes per second) give the rate beside it, with ordinary events (the slow client is
disconnected as a "slow consumer") and with volatile events (it stays, and what does not
fit its queue is dropped). Reported: the normal clients' deliveries/s in each case, as
a ratio to the baseline of the same repeat (median over repeats); the server's RSS
growth; the slow client's fate (disconnects, drops). The target of the hardening issue
is a ratio of at least 0.80; the exit status is 1 when a run misses it, or when a
normal client misses an event.

    python bench/slow_consumer.py            # 3 repeats, 20,000 events per burst
    python bench/slow_consumer.py --quick    # a few seconds: a smoke run for CI
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import eventsock  # noqa: E402

# The slow client's queue on the server: small, so its bound shows in the RSS figure.
BOUNDS = eventsock.Backpressure(max_packets=256, max_bytes=1 << 20, send_timeout=5.0)


def pin(core: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        if len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {core})


# -- the server process ----------------------------------------------------------------


async def serve() -> None:
    pin(0)
    server = eventsock.Server(backpressure=BOUNDS, ping_interval=60, ping_timeout=60)
    process = psutil.Process()

    @server.on("join")
    async def join(session: eventsock.Session) -> None:
        await session.enter_room("all")

    @server.on("blast")
    async def blast(session: eventsock.Session, count: int, size: int, volatile: bool) -> float:
        payload = b"x" * size
        started = time.perf_counter()
        for n in range(count):
            await server.emit("tick", n, payload, to="all", volatile=volatile)
            if n % 16 == 15:
                await asyncio.sleep(0)  # an app's own pacing: let the loop write
        return time.perf_counter() - started

    @server.on("stats")
    def stats(session: eventsock.Session) -> dict[str, Any]:
        return {
            "rss": process.memory_info().rss,
            "dropped": server.stats.dropped,
            "slow_consumers": server.stats.slow_consumers,
            "sessions": len(server._sessions),
        }

    port = await server.start("127.0.0.1", 0)
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await server.shutdown()


# -- the clients' process ---------------------------------------------------------------


class Throttle:
    """A TCP proxy that forwards server-to-client bytes at ``rate`` bytes/s at most."""

    def __init__(self, port: int, rate: float) -> None:
        self.port, self.rate = port, rate
        self.listen_port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Throttle:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writers += [writer, up_writer]
        for task in (
            asyncio.ensure_future(self._pump(reader, up_writer, None)),
            asyncio.ensure_future(self._pump(up_reader, writer, self.rate)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float | None
    ) -> None:
        chunk = 4096 if rate is not None else 65536
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(chunk):
                writer.write(data)
                await writer.drain()
                if rate is not None:
                    await asyncio.sleep(len(data) / rate)  # the bandwidth, not a sync
        writer.transport.abort()


async def burst(
    url: str, normal: list[Any], count: int, size: int, volatile: bool
) -> tuple[float, int]:
    """Broadcast a burst; returns (deliveries/s to the normal clients, missed events)."""
    loop = asyncio.get_running_loop()
    for sink in normal:
        sink.expect(count, loop)
    control = normal[0].client
    started = time.perf_counter()
    await control.call("blast", count, size, volatile, timeout=120)
    done = await asyncio.wait([s.done for s in normal], timeout=60)
    elapsed = max(s.finished for s in normal if s.done.done()) - started if done[0] else 0.0
    missed = sum(count - s.count for s in normal)
    rate = len(normal) * count / elapsed if elapsed > 0 else 0.0
    return rate, missed


class Sink:
    def __init__(self) -> None:
        self.client = eventsock.Client(reconnection=False)
        self.client.on("tick", self.tick)
        self.count = 0
        self.expected = 0
        self.finished = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def expect(self, count: int, loop: asyncio.AbstractEventLoop) -> None:
        self.count, self.expected, self.done = 0, count, loop.create_future()

    def tick(self, n: int, data: bytes) -> None:
        self.count += 1
        if self.count == self.expected and not self.done.done():
            self.finished = time.perf_counter()
            self.done.set_result(None)


async def clients_main(port: int, args: argparse.Namespace) -> dict[str, Any]:
    pin(1)
    url = f"http://127.0.0.1:{port}"
    normal = [Sink() for _ in range(args.clients)]
    for sink in normal:
        await sink.client.connect(url, timeout=10)
        await sink.client.call("join", timeout=10)
    control = normal[0].client
    results: dict[str, Any] = {"runs": []}
    rss_start = (await control.call("stats"))["rss"]
    rss_peak = rss_start
    for repeat in range(args.repeats):
        base, missed = await burst(url, normal, args.count, args.size, False)
        assert missed == 0, f"normal clients missed {missed} events in the baseline"
        per_client = base / len(normal) * args.size  # bytes/s each normal client takes
        run: dict[str, Any] = {"repeat": repeat, "baseline": base}
        for label, volatile in (("ordinary", False), ("volatile", True)):
            before = await control.call("stats")
            async with Throttle(port, per_client / 10) as throttle:
                slow = eventsock.Client(reconnection=False)
                await slow.connect(f"http://127.0.0.1:{throttle.listen_port}", timeout=10)
                await slow.call("join", timeout=10)
                rate, missed = await burst(url, normal, args.count, args.size, volatile)
                after = await control.call("stats")
                rss_peak = max(rss_peak, after["rss"])
                run[label] = {
                    "rate": rate,
                    "ratio": rate / base,
                    "missed": missed,
                    "slow_disconnected": after["slow_consumers"] - before["slow_consumers"],
                    "dropped_for_slow": after["dropped"] - before["dropped"],
                }
                await slow.disconnect()
        results["runs"].append(run)
        print(
            f"repeat {repeat}: baseline {base:,.0f} deliveries/s;"
            f" beside a slow client: ordinary {run['ordinary']['ratio']:.2f}"
            f" (slow disconnected {run['ordinary']['slow_disconnected']}),"
            f" volatile {run['volatile']['ratio']:.2f}"
            f" ({run['volatile']['dropped_for_slow']} dropped for it)",
            flush=True,
        )
    results["rss_growth_bytes"] = rss_peak - rss_start
    for sink in normal:
        await sink.client.disconnect()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--count", type=int, default=20_000, help="events per burst")
    parser.add_argument("--size", type=int, default=256, help="payload bytes per event")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return 0
    if args.quick:
        args.count, args.repeats, args.clients = 2000, 1, 20
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        results = asyncio.run(asyncio.wait_for(clients_main(port, args), 600))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    runs = results["runs"]
    summary = {
        label: statistics.median(run[label]["ratio"] for run in runs)
        for label in ("ordinary", "volatile")
    }
    results.update(
        summary=summary,
        queue_bound={"max_packets": BOUNDS.max_packets, "max_bytes": BOUNDS.max_bytes},
        machine={"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        args=vars(args) | {"json": str(args.json) if args.json else None},
    )
    print(
        f"median ratio to the baseline beside a slow client: ordinary"
        f" {summary['ordinary']:.2f}, volatile {summary['volatile']:.2f} (target >= 0.80);"
        f" server RSS growth {results['rss_growth_bytes'] / 2**20:.1f} MiB"
        f" (the slow client's queue is bounded at {BOUNDS.max_bytes / 2**20:.0f} MiB)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    missed = sum(run[label]["missed"] for run in runs for label in ("ordinary", "volatile"))
    if missed:
        print(f"FAIL: normal clients missed {missed} events", file=sys.stderr)
        return 1
    if not args.quick and min(summary.values()) < 0.80:
        print("FAIL: the slow client held the others up by more than 20%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
