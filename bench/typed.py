"""What typed handlers cost on the hot path: the server's handling of one call (decode,
protocol checks, argument conversion, the handler, encoding and writing the ack) for
the same call with handlers that differ only in their annotations.

The connection is real eventsock code fed frames directly, with a WebSocket that
accepts every write, so the figure is eventsock's own work per call, without the
network and the event loop's wake-ups (which are the same for every handler).

    python bench/typed.py            # 200,000 calls per variant, 5 repeats
    python bench/typed.py --quick    # 20,000 calls, 2 repeats (the CI smoke run)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pydantic

import eventsock
from eventsock.codec import encode_event, encode_packet
from eventsock.connection import Connection
from eventsock.packets import Connect
from eventsock.transport import HandshakeRequest, WebSocket


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Stroke:
    color: str
    width: int
    points: list[Point]


class StrokeModel(pydantic.BaseModel):
    color: str
    width: int
    points: list[tuple[float, float]]


ARGS: dict[str, tuple[Any, ...]] = {
    "builtins": (7, "text", 2.5),
    "dataclass": ({"color": "red", "width": 2, "points": [{"x": 1, "y": 2}] * 4},),
    "pydantic": ({"color": "red", "width": 2, "points": [[1, 2]] * 4},),
}


def make_server() -> eventsock.Server:
    server = eventsock.Server()

    @server.on("builtins_untyped")
    def builtins_untyped(session, a, b, c):  # type: ignore[no-untyped-def]
        return a

    @server.on("builtins")
    def builtins(session: eventsock.Session, a: int, b: str, c: float) -> int:
        return a

    @server.on("dataclass_untyped")
    def dataclass_untyped(session, stroke):  # type: ignore[no-untyped-def]
        return stroke["width"]

    @server.on("dataclass")
    def dataclass(session: eventsock.Session, stroke: Stroke) -> int:
        return stroke.width

    @server.on("pydantic_untyped")
    def pydantic_untyped(session, stroke):  # type: ignore[no-untyped-def]
        return stroke["width"]

    @server.on("pydantic")
    def pydantic_(session: eventsock.Session, stroke: StrokeModel) -> int:
        return stroke.width

    return server


class _AcceptingSocket:
    """Stands for aiohttp's WebSocket: takes every frame at once."""

    closed = False
    close_code = None

    def __init__(self) -> None:
        self.frames = 0

    async def send_bytes(self, data: bytes) -> None:
        self.frames += 1

    async def send_str(self, data: str) -> None:
        self.frames += 1


def measure(conn: Connection, frame: bytes, calls: int) -> float:
    """Seconds per call for ``calls`` calls of ``frame`` (bounded by count)."""
    on_frame = conn._on_frame
    started = time.perf_counter()
    for _ in range(calls):
        on_frame(frame)
    return (time.perf_counter() - started) / calls


async def run(calls: int, repeats: int) -> dict[str, Any]:
    server = make_server()
    sock = _AcceptingSocket()
    conn = Connection(server, WebSocket(sock), HandshakeRequest({}, {}, "bench", None, True))  # type: ignore[arg-type]
    conn._on_frame(encode_packet(Connect("/", None)))
    results: dict[str, Any] = {}
    for kind, args in ARGS.items():
        frames = {
            typed: encode_event(kind if typed else f"{kind}_untyped", args, "/", 1)
            for typed in (False, True)
        }
        for frame in frames.values():
            measure(conn, frame, max(1, calls // 10))  # warm-up
        samples: dict[bool, list[float]] = {False: [], True: []}
        for repeat in range(repeats):
            order = (False, True) if repeat % 2 == 0 else (True, False)
            for typed in order:
                samples[typed].append(measure(conn, frames[typed], calls))
        untyped = statistics.median(samples[False]) * 1e6
        typed_us = statistics.median(samples[True]) * 1e6
        ratios = [t / u for t, u in zip(samples[True], samples[False], strict=True)]
        results[kind] = {
            "untyped_us": round(untyped, 3),
            "typed_us": round(typed_us, 3),
            "extra_us": round(typed_us - untyped, 3),
            "ratio": round(statistics.median(ratios), 3),
        }
    expected = (1 + len(ARGS) * 2 * (repeats * calls + max(1, calls // 10))) - 1
    if sock.frames < expected:
        raise SystemExit(f"only {sock.frames} acks written, expected {expected}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 calls, 2 repeats")
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    calls = args.calls or (20_000 if args.quick else 200_000)
    repeats = args.repeats or (2 if args.quick else 5)
    results = asyncio.run(run(calls, repeats))
    print(f"server handling of one call, {calls:,} calls x {repeats} repeats (median)")
    print(f"  {'arguments':<12}{'untyped us':>12}{'typed us':>10}{'extra us':>10}{'ratio':>8}")
    for kind, row in results.items():
        print(
            f"  {kind:<12}{row['untyped_us']:>12.2f}{row['typed_us']:>10.2f}"
            f"{row['extra_us']:>10.2f}{row['ratio']:>8.2f}"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"calls": calls, "repeats": repeats, **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
