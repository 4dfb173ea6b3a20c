"""The command line: ``eventsock serve module:server``.

One process, or ``--workers N`` processes listening on one port (``SO_REUSEPORT``),
which share their sessions through Redis with ``--redis URL``. SIGTERM or Ctrl-C shuts
every worker down cleanly (sessions get "server shutting down")."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from .server import Server

__all__ = ["load_server", "main"]

logger = logging.getLogger("eventsock")


def load_server(spec: str) -> Server:
    """The :class:`Server` named by ``module:attribute`` (an attribute that is a
    callable returning a Server is called).

    Raises:
        SystemExit: the module or attribute is missing, or is not a Server.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"eventsock: expected module:attribute, not {spec!r}")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"eventsock: cannot import {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise SystemExit(f"eventsock: {module_name!r} has no attribute {attribute!r}")
    if callable(target) and not isinstance(target, Server) and _takes_no_arguments(target):
        target = target()
    if not isinstance(target, Server):
        raise SystemExit(f"eventsock: {spec} is a {type(target).__name__}, not an eventsock.Server")
    return target


def _takes_no_arguments(func: Any) -> bool:
    try:
        inspect.signature(func).bind()
    except (TypeError, ValueError):
        return False
    return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventsock", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a server")
    serve.add_argument("app", help="module:attribute of an eventsock.Server (or a factory)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (8000; 0: any free port)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    serve.add_argument("--redis", metavar="URL", help="share sessions through this Redis")
    serve.add_argument("--prefix", default="eventsock", help="Redis channel prefix")
    serve.add_argument("--log-level", default="info", help="logging level (info)")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(process)d %(levelname)s %(message)s"
    )
    if args.workers < 1:
        raise SystemExit("eventsock: --workers must be at least 1")
    if args.workers == 1:
        return _run_worker(args)
    return _run_workers(args)


def _run_worker(args: argparse.Namespace) -> int:
    server = load_server(args.app)
    if args.redis:
        from .backends.redis import RedisBackend

        server.backend = RedisBackend(args.redis, prefix=args.prefix)
    asyncio.run(_serve(server, args))
    return 0


async def _serve(server: Server, args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = await server.start(args.host, args.port, reuse_port=args.reuse_port)
    print(
        f"eventsock: serving {args.app} on http://{args.host}:{port}{server.path} "
        f"(pid {os.getpid()}, node {server.node_id})",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.shutdown()
        logger.info("worker %d stopped", os.getpid())


def _run_workers(args: argparse.Namespace) -> int:
    # Hold the port while the workers bind it too: with port 0 this is how they agree.
    holder = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((args.host, args.port))
    port = holder.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "eventsock",
        "serve",
        args.app,
        "--host",
        args.host,
        "--port",
        str(port),
        "--reuse-port",
        "--log-level",
        args.log_level,
    ]
    if args.redis:
        command += ["--redis", args.redis, "--prefix", args.prefix]
    elif args.workers > 1:
        logger.warning("several workers without --redis: each sees only its own sessions")
    workers: list[subprocess.Popen[str]] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for _ in range(args.workers):
            # our own interpreter and arguments, no shell
            worker = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
            workers.append(worker)
            assert worker.stdout is not None
            line = worker.stdout.readline()
            if not line:
                stop(signal.SIGTERM, None)
                raise SystemExit(f"eventsock: a worker exited at start ({worker.wait()})")
            print(line, end="", flush=True)
        print(f"eventsock: {args.workers} workers on port {port}", flush=True)
    finally:
        holder.close()
    codes = [worker.wait() for worker in workers]
    return 0 if stopping and all(code == 0 for code in codes) else max([*codes, 1])
