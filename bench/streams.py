"""Flow control under a slow consumer: a server process streams chunks to a client
process that reads them slowly; how much did each process's peak memory grow?

With credits, the producer is never more than ``window`` chunks ahead, so neither side
should hold much more than ``window x chunk`` bytes of stream data at any moment,
however large the whole transfer. The figure is the growth of each process's peak RSS
(sampled every 5 ms) over its RSS just before the measured stream, after a warm-up
stream has made every buffer once.

    python bench/streams.py            # 100 MB in 64 KiB chunks, window 8
    python bench/streams.py --quick    # 8 MB (the CI smoke run)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventsock

CHUNK = 64 * 1024


_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib() -> int:
    """This process's resident memory now (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_KIB


class PeakSampler:
    """The highest RSS seen, sampled every 5 ms by a task (bounded by stop())."""

    def __init__(self) -> None:
        self.baseline = rss_kib()
        self.peak = self.baseline
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_kib())
            await asyncio.sleep(0.005)

    async def stop(self) -> int:
        """The growth of the peak over the baseline, in KiB."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, rss_kib())
        return self.peak - self.baseline


async def serve() -> None:
    server = eventsock.Server(max_payload=4 * 1024 * 1024)
    samplers: list[PeakSampler] = []

    @server.stream("blob")
    async def blob(session: eventsock.Session, total: int) -> AsyncIterator[bytes]:
        chunk = os.urandom(CHUNK)
        for _ in range(total // CHUNK):
            yield chunk

    @server.on("sample")
    async def sample(session: eventsock.Session, start: bool) -> int:
        if start:
            samplers.append(PeakSampler())
            return 0
        return await samplers.pop().stop()

    port = await server.start("127.0.0.1", 0)
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.shutdown()


async def measure(port: int, total: int, window: int, delay: float) -> dict[str, Any]:
    async with eventsock.Client(reconnection=False) as client:
        await client.connect(f"http://127.0.0.1:{port}", timeout=10)
        async for _ in client.stream("blob", 4 * window * CHUNK, window=window):
            pass  # warm-up: every buffer the transfer needs is made once
        await client.call("sample", True, timeout=10)
        sampler = PeakSampler()
        received = 0
        started = time.perf_counter()
        async for chunk in client.stream("blob", total, window=window, timeout=60):
            received += len(chunk)
            await asyncio.sleep(delay)  # the slow consumer (a benchmark, not a test)
        elapsed = time.perf_counter() - started
        client_growth = await sampler.stop()
        server_growth = await client.call("sample", False, timeout=10)
    if received != total // CHUNK * CHUNK:
        raise SystemExit(f"received {received} bytes, expected {total // CHUNK * CHUNK}")
    bound = window * CHUNK // 1024
    return {
        "bytes": received,
        "chunk": CHUNK,
        "window": window,
        "seconds": round(elapsed, 2),
        "mb_per_s": round(received / elapsed / 1e6, 1),
        "window_kib": bound,
        "server_peak_growth_kib": server_growth,
        "client_peak_growth_kib": client_growth,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 MB instead of 100 MB")
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.0005, help="seconds per chunk read")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve())
        return 0
    total = (8 if args.quick else 100) * 1_000_000
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        result = asyncio.run(measure(port, total, args.window, args.delay))
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    print(
        f"{result['bytes'] / 1e6:.0f} MB in {CHUNK // 1024} KiB chunks, window {args.window}"
        f" ({result['window_kib']} KiB), slow consumer: {result['seconds']} s,"
        f" {result['mb_per_s']} MB/s"
    )
    print(
        f"  peak RSS growth: server {result['server_peak_growth_kib']} KiB,"
        f" client {result['client_peak_growth_kib']} KiB"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
