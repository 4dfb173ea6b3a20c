"""The command line, built on click: ``eventsock serve``, ``call``, ``listen``, ``demo``.

``serve module:server`` runs a server: one process, ``--workers N`` processes on one
port (``SO_REUSEPORT``) sharing their sessions through Redis with ``--redis URL``, or
with ``--reload`` one process restarted whenever a ``.py`` file under the app's folder
changes. SIGTERM or Ctrl-C shuts every worker down cleanly (sessions get "server
shutting down").

``call URL EVENT [ARGS]...`` calls an event and prints its ack as JSON; ``listen URL``
prints the events the server sends, one JSON line each, until interrupted. Both show
bytes as ``{"$bytes": "<hex>", "len": N}`` and take them back in that form.

Exit codes: 0 success; 1 the server answered with an error (``call``), or the server
could not be loaded or failed (``serve``); 2 usage error; 3 the connection failed, was
refused or was lost; 4 no answer within ``--timeout`` (``call``); 130 interrupted
(``call``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import importlib
import importlib.util
import inspect
import json
import logging
import os
import signal
import socket
import ssl as ssl_module
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from .client import Client
from .exceptions import (
    AckTimeout,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionRefused,
    EncodeError,
    RemoteError,
)
from .pinning import Pin
from .remote import ERROR_KEY
from .server import Server

__all__ = [
    "EXIT_CONNECTION",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "cli",
    "find_server",
    "from_json",
    "load_server",
    "main",
    "to_json",
]

logger = logging.getLogger("eventsock")

#: Exit codes, as the module docstring and the command-line guide describe them.
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_CONNECTION: Final = 3
EXIT_TIMEOUT: Final = 4
EXIT_INTERRUPTED: Final = 130

#: Seconds between two looks at the watched files of ``serve --reload``.
RELOAD_INTERVAL: Final = 0.5
#: At most this many files are watched; more are left out, with a warning.
RELOAD_MAX_FILES: Final = 10_000
# Folders never watched: caches, virtual environments, VCS and node dependencies.
_UNWATCHED: Final = frozenset(
    {"__pycache__", "node_modules", "site-packages", "venv", "env", "build", "dist"}
)
# Seconds a worker gets to shut down after SIGTERM before it is killed.
STOP_GRACE: Final = 15.0

F = TypeVar("F", bound=Callable[..., Any])


# -- loading the application -----------------------------------------------------------


def find_server(spec: str) -> Server:
    """The :class:`Server` named by ``module:attribute`` (an attribute that is a
    callable taking no arguments is called, and must return a Server), imported from
    the import path as it is.

    Raises:
        ValueError: ``spec`` is not ``module:attribute``.
        LookupError: the module cannot be imported or has no such attribute.
        TypeError: it is not a Server.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"expected module:attribute, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise LookupError(f"{module_name!r} has no attribute {attribute!r}")
    if callable(target) and not isinstance(target, Server) and _takes_no_arguments(target):
        target = target()
    if not isinstance(target, Server):
        raise TypeError(f"{spec} is a {type(target).__name__}, not an eventsock.Server")
    return target


def load_server(spec: str) -> Server:
    """:func:`find_server` with the current folder first on the import path, as
    ``eventsock serve`` loads its app.

    Raises:
        SystemExit: the module or attribute is missing, or is not a Server.
    """
    sys.path.insert(0, os.getcwd())
    try:
        return find_server(spec)
    except (ValueError, LookupError, TypeError) as exc:
        raise SystemExit(f"eventsock: {exc}") from exc


def _takes_no_arguments(func: Any) -> bool:
    try:
        inspect.signature(func).bind()
    except (TypeError, ValueError):
        return False
    return True


# -- JSON in and out -------------------------------------------------------------------

BYTES_KEY: Final = "$bytes"


def to_json(value: Any) -> Any:
    """``value`` (an event argument or an ack, as msgpack decodes them) as JSON data:
    bytes become ``{"$bytes": "<hex>", "len": N}``, with ``"text"`` too when they are
    printable UTF-8; a map key that is not a string becomes its JSON text."""
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        shown: dict[str, Any] = {BYTES_KEY: data.hex(), "len": len(data)}
        try:
            text = data.decode()
        except UnicodeDecodeError:
            pass
        else:
            if text and all(c.isprintable() or c in "\t\n\r" for c in text):
                shown["text"] = text
        return shown
    if isinstance(value, dict):
        return {
            key if isinstance(key, str) else json.dumps(to_json(key), ensure_ascii=False): (
                to_json(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return {"$repr": repr(value)}


def from_json(value: Any) -> Any:
    """JSON data with ``{"$bytes": "<hex>"}`` maps (as :func:`to_json` writes them,
    ``len`` and ``text`` optional and checked) turned into bytes.

    Raises:
        ValueError: a ``$bytes`` map that is not valid hex, or whose ``len`` or
            ``text`` does not match.
    """
    if isinstance(value, dict):
        if BYTES_KEY in value and set(value) <= {BYTES_KEY, "len", "text"}:
            hexed = value[BYTES_KEY]
            if not isinstance(hexed, str):
                raise ValueError(f"{BYTES_KEY} must be a string of hex digits")
            try:
                data = bytes.fromhex(hexed)
            except ValueError:
                raise ValueError(f"{BYTES_KEY} is not hex: {hexed[:40]!r}") from None
            if "len" in value and value["len"] != len(data):
                raise ValueError(f"{BYTES_KEY} holds {len(data)} bytes, not len={value['len']}")
            if "text" in value and value["text"].encode() != data:
                raise ValueError(f"{BYTES_KEY} and its text differ")
            return data
        return {key: from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json(item) for item in value]
    return value


def parse_argument(text: str) -> Any:
    """One ``call`` argument: JSON, or ``s:TEXT`` (a string as it is), ``hex:HEX``,
    ``b64:BASE64`` or ``@FILE`` (bytes; ``@-`` reads standard input).

    Raises:
        ValueError: it is none of these.
    """
    if text.startswith("s:"):
        return text[2:]
    if text.startswith("hex:"):
        try:
            return bytes.fromhex(text[4:])
        except ValueError:
            raise ValueError(f"not hex: {text[4:44]!r}") from None
    if text.startswith("b64:"):
        try:
            return base64.b64decode(text[4:], validate=True)
        except binascii.Error:
            raise ValueError(f"not base64: {text[4:44]!r}") from None
    if text.startswith("@"):
        if text == "@-":
            return sys.stdin.buffer.read()
        try:
            return Path(text[1:]).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {text[1:]!r}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(
            f"{text!r} is not JSON (for a string, quote it: '\"{text}\"', or write s:{text})"
        ) from None
    return from_json(value)


def _dump(value: Any, *, pretty: bool = False) -> str:
    return json.dumps(to_json(value), ensure_ascii=False, indent=2 if pretty else None)


# -- the commands -----------------------------------------------------------------------


class _Exit(Exception):
    """Ends a command with an exit code, after a message on stderr."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 success, 1 an error answer (call) or a failed server (serve), "
    "2 usage, 3 connection failed, refused or lost, 4 timeout, 130 interrupted (call).",
)
@click.version_option(package_name="eventsock", prog_name="eventsock")
def cli() -> None:
    """eventsock: asyncio event RPC over WebSocket (Socket.IO v5, msgpack parser).

    Run a server, call an event, listen to events, or see the demo.
    """


# serve ---------------------------------------------------------------------------------


@cli.command(short_help="Run a server (one process, several workers, or reloading).")
@click.argument("app", metavar="MODULE:ATTRIBUTE")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port; 0 takes any free port (the first line says which).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes listening on the same port.",
)
@click.option("--redis", metavar="URL", help="Share sessions between workers through this Redis.")
@click.option("--prefix", default="eventsock", show_default=True, help="Redis channel prefix.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
    default="info",
    show_default=True,
    help="Level of the root logger.",
)
@click.option(
    "--reload",
    is_flag=True,
    help="Development: restart the server when a .py file under the app's folder changes.",
)
@click.option(
    "--reload-dir",
    "reload_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Watch this folder instead (repeatable; implies --reload).",
)
@click.option("--reuse-port", is_flag=True, hidden=True)
def serve(
    app: str,
    host: str,
    port: int,
    workers: int,
    redis: str | None,
    prefix: str,
    log_level: str,
    reload: bool,
    reload_dirs: tuple[Path, ...],
    reuse_port: bool,
) -> None:
    """Run the eventsock.Server that MODULE:ATTRIBUTE names (or a function without
    arguments that returns one), imported with the current folder on the import path.

    Stops cleanly on SIGTERM or Ctrl-C, exiting 0.
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(process)d %(levelname)s %(message)s"
    )
    options = _ServeOptions(app, host, port, redis, prefix, log_level.lower(), reuse_port)
    if reload or reload_dirs:
        if workers > 1:
            raise click.UsageError("--reload runs one worker: leave out --workers")
        raise SystemExit(_run_reload(options, reload_dirs))
    if workers == 1:
        raise SystemExit(_run_worker(options))
    raise SystemExit(_run_workers(options, workers))


class _ServeOptions:
    def __init__(
        self,
        app: str,
        host: str,
        port: int,
        redis: str | None,
        prefix: str,
        log_level: str,
        reuse_port: bool,
    ) -> None:
        self.app, self.host, self.port = app, host, port
        self.redis, self.prefix, self.log_level = redis, prefix, log_level
        self.reuse_port = reuse_port

    def worker_command(self, port: int) -> list[str]:
        """The command line of one worker on ``port`` (already held by the parent)."""
        command = [
            sys.executable,
            "-m",
            "eventsock",
            "serve",
            self.app,
            "--host",
            self.host,
            "--port",
            str(port),
            "--reuse-port",
            "--log-level",
            self.log_level,
        ]
        if self.redis:
            command += ["--redis", self.redis, "--prefix", self.prefix]
        return command


def _run_worker(options: _ServeOptions) -> int:
    server = load_server(options.app)
    if options.redis:
        from .backends.redis import RedisBackend

        server.backend = RedisBackend(options.redis, prefix=options.prefix)
    asyncio.run(_serve(server, options))
    return EXIT_OK


async def _serve(server: Server, options: _ServeOptions) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = await server.start(options.host, options.port, reuse_port=options.reuse_port)
    print(
        f"eventsock: serving {options.app} on http://{options.host}:{port}{server.path} "
        f"(pid {os.getpid()}, node {server.node_id})",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.shutdown()
        logger.info("worker %d stopped", os.getpid())


def _hold_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``(host, port)`` and not listening, which keeps the port for
    the workers that bind it with ``SO_REUSEPORT`` (with port 0, this picks it)."""
    holder = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError as exc:
        holder.close()
        raise SystemExit(f"eventsock: cannot bind {host}:{port}: {exc.strerror}") from exc
    return holder


def _die_with_parent() -> None:
    """In a worker, before it runs: SIGTERM it when the parent process dies, so that a
    parent killed outright (SIGKILL) leaves no worker behind (Linux only)."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(command: list[str], **options: Any) -> subprocess.Popen[Any]:
    """Start a worker: our own interpreter and arguments, no shell."""
    return subprocess.Popen(command, preexec_fn=_die_with_parent, **options)  # noqa: S603


def _run_workers(options: _ServeOptions, count: int) -> int:
    holder = _hold_port(options.host, options.port)
    port = holder.getsockname()[1]
    command = options.worker_command(port)
    if not options.redis:
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
        for _ in range(count):
            worker = _spawn(command, stdout=subprocess.PIPE, text=True)
            workers.append(worker)
            assert worker.stdout is not None
            line = worker.stdout.readline()
            if not line:
                stop(signal.SIGTERM, None)
                raise SystemExit(f"eventsock: a worker exited at start ({worker.wait()})")
            print(line, end="", flush=True)
        print(f"eventsock: {count} workers on port {port}", flush=True)
    finally:
        holder.close()
    codes = [worker.wait() for worker in workers]
    return EXIT_OK if stopping and all(code == 0 for code in codes) else max([*codes, 1])


def _app_folder(app: str) -> Path:
    """The folder of the app's top-level module or package, found without importing it."""
    top = app.partition(":")[0].split(".")[0]
    if not top:
        raise click.UsageError(f"expected module:attribute, not {app!r}")
    sys.path.insert(0, os.getcwd())
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None or (spec.origin is None and not spec.submodule_search_locations):
        raise click.UsageError(f"cannot find module {top!r} to watch (try --reload-dir)")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    assert spec.origin is not None
    return Path(spec.origin).parent


def _snapshot(folders: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """``(mtime_ns, size)`` of every ``.py`` file under ``folders``, at most
    :data:`RELOAD_MAX_FILES` of them; hidden folders, caches and environments skipped."""
    found: dict[str, tuple[int, int]] = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _UNWATCHED)
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(root, name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue  # removed meanwhile: it will be missing from the next one
                found[path] = (stat.st_mtime_ns, stat.st_size)
                if len(found) >= RELOAD_MAX_FILES:
                    return found
    return found


def _stop_process(proc: subprocess.Popen[Any] | None) -> int | None:
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            logger.warning("the server did not stop within %s s: killed", STOP_GRACE)
            proc.kill()
    return proc.wait()


def _run_reload(options: _ServeOptions, folders: tuple[Path, ...]) -> int:
    watched = [folder.resolve() for folder in folders] or [_app_folder(options.app)]
    holder = _hold_port(options.host, options.port)  # the same port for every restart
    command = options.worker_command(holder.getsockname()[1])
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    snapshot = _snapshot(watched)
    if len(snapshot) >= RELOAD_MAX_FILES:
        logger.warning("watching only the first %d .py files", RELOAD_MAX_FILES)
    names = ", ".join(str(folder) for folder in watched)
    print(f"eventsock: watching {len(snapshot)} .py file(s) under {names}", file=sys.stderr)
    proc: subprocess.Popen[Any] | None = None
    reported = False
    try:
        proc = _spawn(command)
        while not stopping:
            time.sleep(RELOAD_INTERVAL)
            if stopping:
                break
            if proc is not None and not reported and proc.poll() is not None:
                reported = True
                print(
                    f"eventsock: the server exited ({proc.returncode}); waiting for a change",
                    file=sys.stderr,
                    flush=True,
                )
            current = _snapshot(watched)
            if current == snapshot:
                continue
            changed = sorted({path for path, _ in set(current.items()) ^ set(snapshot.items())})
            snapshot = current
            more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
            print(
                f"eventsock: {os.path.relpath(changed[0])}{more} changed; restarting",
                file=sys.stderr,
                flush=True,
            )
            _stop_process(proc)
            proc = _spawn(command)
            reported = False
    finally:
        _stop_process(proc)
        holder.close()
    return EXIT_OK


# call and listen ---------------------------------------------------------------------


def _connection_options(func: F) -> F:
    """The options ``call`` and ``listen`` share: how to reach and authenticate."""
    decorators = [
        click.option(
            "--auth",
            metavar="JSON",
            help="The auth payload of each namespace's CONNECT, a JSON object.",
        ),
        click.option(
            "-H",
            "--header",
            "headers",
            multiple=True,
            metavar="'NAME: VALUE'",
            help="An HTTP header for the WebSocket request (repeatable).",
        ),
        click.option(
            "--path",
            default="/socket.io/",
            show_default=True,
            help="The server's endpoint path.",
        ),
        click.option(
            "--ca",
            type=click.Path(exists=True, dir_okay=False),
            help="Trust the certificates in this PEM file (for https:// and wss://).",
        ),
        click.option("--insecure", is_flag=True, help="Do not check the server's certificate."),
        click.option(
            "--pin",
            "pins",
            multiple=True,
            metavar="PIN",
            help="Accept only a server whose public key is 'sha256/<base64>' or whose "
            "certificate's SHA-256 is these 64 hex digits (repeatable).",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=10.0,
            show_default=True,
            help="Seconds to connect, and (call) to wait for the ack.",
        ),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


class _Connection:
    """What ``call`` and ``listen`` were told about the server, checked."""

    def __init__(
        self,
        url: str,
        auth: str | None,
        headers: tuple[str, ...],
        path: str,
        ca: str | None,
        insecure: bool,
        pins: tuple[str, ...],
        timeout: float,
    ) -> None:
        self.url = url
        self.path = path
        self.timeout = timeout
        self.auth: dict[str, Any] | None = None
        if auth is not None:
            try:
                parsed = from_json(json.loads(auth))
            except (json.JSONDecodeError, ValueError) as exc:
                raise click.BadParameter(f"not JSON: {exc}", param_hint="--auth") from None
            if not isinstance(parsed, dict):
                raise click.BadParameter("must be a JSON object", param_hint="--auth")
            self.auth = parsed
        self.headers: dict[str, str] = {}
        for header in headers:
            name, colon, value = header.partition(":")
            if not colon or not name.strip():
                raise click.BadParameter(
                    f"expected 'Name: value', not {header!r}", param_hint="--header"
                )
            self.headers[name.strip()] = value.strip()
        if ca is not None and insecure:
            raise click.UsageError("--ca and --insecure contradict each other")
        self.pins: list[Pin] = []
        for pin in pins:
            try:
                self.pins.append(Pin.parse(pin))
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--pin") from None
        self.ssl: Any = None
        if insecure:
            self.ssl = False
        elif ca is not None:
            self.ssl = ssl_module.create_default_context(cafile=ca)

    def client(self, *, reconnection: bool) -> Client:
        return Client(path=self.path, reconnection=reconnection)

    async def connect(self, client: Client, namespaces: list[str]) -> None:
        """Connect ``client``.

        Raises:
            _Exit: it could not connect (:data:`EXIT_CONNECTION`), or the URL is not
                one (:data:`EXIT_USAGE`).
        """
        try:
            await client.connect(
                self.url,
                auth=self.auth,
                headers=self.headers or None,
                namespaces=namespaces,
                ssl=self.ssl,
                pin=self.pins or None,
                timeout=self.timeout,
            )
        except ConnectionRefused as exc:
            data = "" if exc.data is None else f" {_dump(exc.data)}"
            raise _Exit(
                EXIT_CONNECTION, f"the server refused the connection: {exc.message}{data}"
            ) from exc
        except ConnectionFailed as exc:
            raise _Exit(EXIT_CONNECTION, f"cannot connect to {self.url}: {exc}") from exc
        except ValueError as exc:  # the URL, checked before anything is sent
            raise _Exit(EXIT_USAGE, str(exc)) from exc


def _run(coro: Any) -> None:
    """Run a command's coroutine; ends the process with the code it returns."""
    try:
        code = asyncio.run(coro)
    except _Exit as exc:
        if exc.message:
            click.echo(f"eventsock: {exc.message}", err=True)
        code = exc.code
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    raise SystemExit(code)


@cli.command(short_help="Call an event and print its ack as JSON.")
@click.argument("url")
@click.argument("event")
@click.argument("args", nargs=-1, metavar="[ARGS]...")
@click.option("-n", "--namespace", default="/", show_default=True, help="The namespace to call on.")
@click.option("--no-ack", is_flag=True, help="Emit the event and ask for no ack; prints nothing.")
@click.option("--pretty", is_flag=True, help="Indent the JSON printed.")
@_connection_options
def call(
    url: str,
    event: str,
    args: tuple[str, ...],
    namespace: str,
    no_ack: bool,
    pretty: bool,
    auth: str | None,
    headers: tuple[str, ...],
    path: str,
    ca: str | None,
    insecure: bool,
    pins: tuple[str, ...],
    timeout: float,
) -> None:
    """Call EVENT on the server at URL (http(s):// or ws(s)://) and print its ack as
    JSON: the handler's return value; several values as a list; a map
    {"$error": {"code": ..., "message": ..., "data": ...}} for an error answer (exit 1).

    Each of ARGS is JSON ('3', '"text"', '{"a": [1, 2]}'), or s:TEXT for a string as it
    is, hex:HEX or b64:BASE64 for bytes, @FILE for a file's bytes (@- reads stdin).
    Put -- before ARGS that start with a dash. Bytes in the ack are printed as
    {"$bytes": "<hex>", "len": N}, with "text" when they are printable UTF-8, and
    are read back in that form.

    \b
    Examples:
      eventsock call http://127.0.0.1:8000 add 2 3
      eventsock call http://127.0.0.1:8000 echo hex:00ff --auth '{"token": "t"}'
    """
    values = []
    for number, text in enumerate(args, 1):
        try:
            values.append(parse_argument(text))
        except ValueError as exc:
            raise click.BadParameter(f"argument {number}: {exc}", param_hint="ARGS") from None
    link = _Connection(url, auth, headers, path, ca, insecure, pins, timeout)
    _run(_call(link, namespace, event, values, no_ack=no_ack, pretty=pretty))


async def _call(
    link: _Connection,
    namespace: str,
    event: str,
    args: list[Any],
    *,
    no_ack: bool,
    pretty: bool,
) -> int:
    client = link.client(reconnection=False)
    try:
        await link.connect(client, [namespace])
        try:
            if no_ack:
                await client.emit(event, *args, namespace=namespace)
                return EXIT_OK
            answer = await client.call(event, *args, namespace=namespace, timeout=link.timeout)
        except (EncodeError, ValueError) as exc:
            raise _Exit(EXIT_USAGE, f"cannot send {event!r}: {exc}") from exc
        except RemoteError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                error["data"] = exc.data
            click.echo(_dump({ERROR_KEY: error}, pretty=pretty))
            return EXIT_ERROR
        except AckTimeout as exc:
            raise _Exit(EXIT_TIMEOUT, str(exc)) from exc
        except ConnectionClosed as exc:
            raise _Exit(EXIT_CONNECTION, f"the connection ended before the ack: {exc}") from exc
        click.echo(_dump(answer, pretty=pretty))
        return EXIT_OK
    finally:
        await client.disconnect()


@cli.command(short_help="Print the events a server sends, one JSON line each.")
@click.argument("url")
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    default=["/"],
    show_default=True,
    help="A namespace to join (repeatable).",
)
@click.option(
    "-e",
    "--event",
    "events",
    multiple=True,
    help="Print only this event (repeatable); every event by default.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    help="Exit 0 after printing this many events.",
)
@click.option(
    "--reconnect/--no-reconnect",
    default=True,
    show_default=True,
    help="Reconnect after the connection drops.",
)
@_connection_options
def listen(
    url: str,
    namespaces: tuple[str, ...],
    events: tuple[str, ...],
    count: int | None,
    reconnect: bool,
    auth: str | None,
    headers: tuple[str, ...],
    path: str,
    ca: str | None,
    insecure: bool,
    pins: tuple[str, ...],
    timeout: float,
) -> None:
    """Print the events the server at URL sends, one JSON line each, as they arrive:
    {"namespace": "/", "event": "news", "args": [...]}, bytes shown as call shows
    them. Calls from the server are printed too, and answered with unknown_event.

    Runs until interrupted (Ctrl-C or SIGTERM: exit 0), or --count events were
    printed (exit 0). Exits 3 if it cannot connect, or if the connection is lost for
    good (with --no-reconnect, or when the server disconnects it). Status lines go to
    stderr.
    """
    for namespace in namespaces:
        if not namespace.startswith("/"):
            raise click.BadParameter(
                f"must start with '/', not {namespace!r}", param_hint="--namespace"
            )
    link = _Connection(url, auth, headers, path, ca, insecure, pins, timeout)
    _run(_listen(link, list(dict.fromkeys(namespaces)), frozenset(events), count, reconnect))


async def _listen(
    link: _Connection,
    namespaces: list[str],
    events: frozenset[str],
    count: int | None,
    reconnect: bool,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = link.client(reconnection=reconnect)
    printed = 0
    lost: list[str] = []

    def printer(namespace: str) -> Callable[[str, tuple[Any, ...]], None]:
        def show(event: str, args: tuple[Any, ...]) -> None:
            nonlocal printed
            if stop.is_set() or (events and event not in events):
                return
            line = {"namespace": namespace, "event": event, "args": list(args)}
            try:
                sys.stdout.write(_dump(line) + "\n")
                sys.stdout.flush()
            except BrokenPipeError:  # the reader went away (| head): we are done
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                stop.set()
                return
            printed += 1
            if count is not None and printed >= count:
                stop.set()

        return show

    def disconnected(namespace: str) -> Callable[[str], None]:
        def note(reason: str) -> None:
            lost.append(reason)
            if not stop.is_set():
                status(f"{namespace}: disconnected ({reason})")

        return note

    def status(text: str) -> None:
        click.echo(f"eventsock: {text}", err=True)

    for namespace in namespaces:
        client.incoming(printer(namespace), namespace=namespace)
        client.on("disconnect", disconnected(namespace), namespace=namespace)
    client.on("reconnect_attempt", lambda n: status(f"reconnecting (attempt {n})"))
    client.on("reconnect", lambda n: status(f"reconnected after {n} attempt(s)"))
    try:
        connecting = asyncio.ensure_future(link.connect(client, namespaces))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([connecting, stopped], return_when=asyncio.FIRST_COMPLETED)
            if not connecting.done():
                connecting.cancel()
                await asyncio.gather(connecting, return_exceptions=True)
                return EXIT_OK  # interrupted while connecting
            connecting.result()  # raises _Exit if it failed
            status(f"connected to {link.url} ({', '.join(namespaces)}); listening")
            gone = asyncio.ensure_future(client.wait())
            try:
                await asyncio.wait([stopped, gone], return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
            if stop.is_set():
                return EXIT_OK
            reason = lost[-1] if lost else "unknown"
            raise _Exit(EXIT_CONNECTION, f"the connection was lost for good ({reason})")
        finally:
            stopped.cancel()
    finally:
        await client.disconnect()


# demo ----------------------------------------------------------------------------------


@cli.command(short_help="Run the demo: a server and two clients in one process.")
def demo() -> None:
    """Run the demo: a server and two clients in this process, exchanging an event, an
    ack, a room broadcast and binary data (the code is examples/demo.py's)."""
    from . import _demo

    asyncio.run(_demo.main())


# -- entry point -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); returns the
    exit status."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="eventsock",
            standalone_mode=True,
        )
    except SystemExit as exc:
        if exc.code is None:
            return EXIT_OK
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
