"""Soak: connections opening, exchanging events and closing, cycle after cycle.

Each cycle opens ``--connections`` clients (50 setting up at a time; one in ten a
python-socketio client) to a server in its own process; each joins a room (and answers
the server's call that joining makes), makes a call, receives a broadcast to its room,
emits an event and disconnects. After every cycle the server reports its RSS and its counts
of asyncio tasks, sessions, connections, rooms and pending acks. The run fails (exit
status 1) when the RSS after the last cycle is more than 10% above the RSS after the
first, when a count after the last cycle is above its value after the first, or when a
client misses its broadcast or its answer.

    python bench/soak.py              # 1,000 connections x 20 cycles
    python bench/soak.py --quick      # 200 x 5: a smoke run (tests/test_soak.py)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import eventsock  # noqa: E402

CONCURRENCY = 50
COUNTS = ("tasks", "sessions", "connections", "rooms", "pending_acks")
# reported beside them: the objects the garbage collector tracks (what a leak grows)


async def serve() -> None:
    server = eventsock.Server(ping_interval=60, ping_timeout=60)
    process = psutil.Process()

    @server.on("join")
    async def join(session: eventsock.Session, room: str) -> str:
        await session.enter_room(room)
        # a call to the client: the server's pending acks and deadlines get used too
        assert await session.call("hello", room, timeout=20) == room
        return room

    @server.on("echo")
    def echo(session: eventsock.Session, value: Any) -> Any:
        return value

    @server.on("shout")
    async def shout(session: eventsock.Session, room: str) -> None:
        await server.emit("news", room, to=room)

    @server.on("bye")
    def bye(session: eventsock.Session, n: int) -> None:
        pass

    @server.on("stats")
    async def stats(session: eventsock.Session) -> dict[str, int]:
        # the last clients' connections may still be finishing: wait for them (each is
        # the task serving it), so that what is counted is what stays
        others = [task for conn, task in server._connections.items() if conn is not session._conn]
        if others:
            await asyncio.wait(others, timeout=20)
        else:  # suspend all the same: this handler is then always a task of its own
            turn = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(turn.set_result, None)
            await turn
        this = asyncio.current_task()
        gc.collect()
        return {
            "rss": process.memory_info().rss,
            "objects": len(gc.get_objects()),
            "tasks": sum(1 for task in asyncio.all_tasks() if task is not this),
            "sessions": len(server._sessions),
            "connections": len(server._connections),
            "rooms": sum(len(rooms._members) for rooms in server._rooms.values()),
            "pending_acks": sum(conn.link.pending_acks for conn in server._connections),
        }

    port = await server.start("127.0.0.1", 0)
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await server.shutdown()


async def one_client(url: str, n: int) -> None:
    if n % 10 == 0:
        await one_socketio_client(url, n)
        return
    client = eventsock.Client(reconnection=False)
    news: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    client.on("news", lambda room: news.done() or news.set_result(room))
    client.on("hello", lambda room: room)
    await client.connect(url, timeout=20)
    try:
        room = f"room-{n % 20}"
        assert await client.call("join", room, timeout=20) == room
        assert await client.call("echo", {"n": n, "b": b"\x00" * 64}, timeout=20) == {
            "n": n,
            "b": b"\x00" * 64,
        }
        await client.call("shout", room, timeout=20)  # answered after the broadcast went
        assert await asyncio.wait_for(news, 20) == room
        await client.emit("bye", n)
    finally:
        await client.disconnect()


async def one_socketio_client(url: str, n: int) -> None:
    """The same with python-socketio's client (which closes with DISCONNECT data nil and
    an Engine.IO close packet)."""
    sio = socketio.AsyncClient(serializer="msgpack", reconnection=False, handle_sigint=False)
    news: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    sio.on("news", lambda room: news.done() or news.set_result(room))
    sio.on("hello", lambda room: room)
    await sio.connect(url, transports=["websocket"], wait_timeout=20)
    try:
        room = f"room-{n % 20}"
        assert await sio.call("join", room, timeout=20) == room
        assert await sio.call("echo", {"n": n}, timeout=20) == {"n": n}
        await sio.call("shout", room, timeout=20)
        assert await asyncio.wait_for(news, 20) == room
        await sio.emit("bye", n)
    finally:
        await sio.disconnect()


async def cycle(url: str, connections: int) -> None:
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < connections:
            issued += 1
            await one_client(url, issued)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(CONCURRENCY, connections)):
            group.create_task(worker())


async def clients_main(port: int, args: argparse.Namespace) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    control = eventsock.Client(reconnection=False)
    await control.connect(url, timeout=20)
    baseline = await control.call("stats", timeout=20)
    cycles: list[dict[str, Any]] = []
    try:
        for index in range(args.cycles):
            started = time.perf_counter()
            await cycle(url, args.connections)
            elapsed = time.perf_counter() - started
            stats = await control.call("stats", timeout=60)
            cycles.append(stats | {"seconds": elapsed})
            print(
                f"cycle {index + 1:2}: {args.connections / elapsed:6.0f} clients/s,"
                f" RSS {stats['rss'] / 2**20:6.1f} MiB, "
                + ", ".join(f"{key} {stats[key]}" for key in COUNTS)
                + f"; {stats['objects']:,} objects",
                flush=True,
            )
    finally:
        await control.disconnect()
    return {"baseline": baseline, "cycles": cycles}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 connections x 5 cycles")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return 0
    if args.quick:
        args.connections, args.cycles = 200, 5
    if args.cycles < 2:
        parser.error("--cycles must be at least 2")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        results = asyncio.run(asyncio.wait_for(clients_main(port, args), 3000))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
    first, last = results["cycles"][0], results["cycles"][-1]
    growth = last["rss"] / first["rss"] - 1
    grown = [key for key in COUNTS if last[key] > first[key]]
    results.update(
        rss_growth=growth,
        grown=grown,
        machine={"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        args={"connections": args.connections, "cycles": args.cycles},
    )
    print(
        f"RSS after the last cycle {growth:+.1%} against after the first (limit +10%);"
        f" counts that grew: {', '.join(grown) or 'none'}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if growth > 0.10 or grown:
        print("FAIL", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
