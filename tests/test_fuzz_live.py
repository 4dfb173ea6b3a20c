"""Protocol fuzzing against a live server.

Many raw WebSocket clients send random and mutated Engine.IO / Socket.IO frames to a
real server for a bounded time: valid msgpack packets, the same mutated (bit flips,
truncation, splices), fields of the wrong type, wrong and huge ack ids, packets out of
order, unknown namespaces, text frames where binary ones belong, frames before the
open packet, pings and pongs at the wrong time, stream control events with made-up
ids, broken WebSocket framing, abrupt TCP drops. Afterwards the server must still serve
a normal client, and every count (connections, sessions, rooms, pending acks, streams,
handler tasks, asyncio tasks) must be back where it was before; no exception may have
escaped a task, and nothing but the app's deliberate failures may be logged at ERROR.

Each fuzz client draws its frames from its own RNG, seeded from the run's seed and its
number, so one client's choices can be replayed (as closely as the server's answers,
which steer some choices, allow). The seed is printed, and is in every failure message.

    EVENTSOCK_FUZZ_SECONDS=60 python -m pytest tests/test_fuzz_live.py   # default 5 (per variant)
    EVENTSOCK_FUZZ_SEED=1234 python -m pytest tests/test_fuzz_live.py    # replay a seed
    EVENTSOCK_FUZZ_CLIENTS=17,42 EVENTSOCK_FUZZ_SEED=1234 ...            # only these clients

Bugs the fuzz found are reproduced by regression tests at the end of this file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import logging
import os
import random
import secrets
import struct
import time
import weakref
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgpack
import pytest

import eventsock
from eventsock.codec import decode_packet
from eventsock.packets import Ack, Connect, ConnectError, Disconnect, Event

from .helpers import serving
from .raw import RawPeer, connections_done

SECONDS = float(os.environ.get("EVENTSOCK_FUZZ_SECONDS", "5"))
SEED = int(os.environ.get("EVENTSOCK_FUZZ_SEED") or secrets.randbelow(2**32))
ONLY = [int(n) for n in os.environ.get("EVENTSOCK_FUZZ_CLIENTS", "").split(",") if n.strip()]
WORKERS = 16  # fuzz clients at once
MAX_CLIENTS = 100_000  # fuzz clients in all, whatever the time
MAX_ACTIONS = 40  # actions of one client
CLIENT_SECONDS = 1.5  # one client's actions stop after this
CLIENT_LIMIT = 15.0  # a client still running after this is stuck: a failure
SETTLE = 10.0  # seconds the server has to forget the fuzz clients once they are gone
MAX_PAYLOAD = 16_384
TOKEN = "secret"

pytestmark = pytest.mark.timeout(SECONDS + 120)


# ======================================================================================
# The app under fuzz
# ======================================================================================


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # the waiter may have been cancelled meanwhile
        future.set_result(None)


async def yield_once() -> None:
    """Yield to the loop once through a real future, as code awaiting I/O would.

    (helpers.suspend_once, but safe to cancel: a stream the client cancels is
    cancelled right there, and the future's late set_result must not raise.)"""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    loop.call_soon(_wake, future)
    await future


class OnPurpose(Exception):
    """Raised by the app on purpose: the ERROR records it causes are expected."""


class Unavailable(Exception):
    """Raised by a handler and translated by the app's error handler."""


@dataclass
class Point:
    x: int
    y: int


#: The fuzz client a server-side handler runs for (set by the app's event middleware,
#: in the connection reader's context, which every handler's context copies).
FUZZ_CLIENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("fuzz", default=None)


@dataclass
class App:
    server: eventsock.Server
    disconnects: Counter[str] = field(default_factory=Counter)


def make_app(*, recovery: bool) -> App:
    server = eventsock.Server(
        ping_interval=0.3,
        ping_timeout=0.3,
        connect_timeout=0.4,
        max_payload=MAX_PAYLOAD,
        max_namespaces=2,
        recovery=eventsock.Recovery(max_disconnection=60, max_events=2_000) if recovery else None,
    )
    app = App(server)
    failed = (eventsock.EventsockError, ValueError)  # what eventsock raises on purpose

    @server.incoming
    def guard(session: eventsock.Session, event: str, args: tuple[Any, ...]) -> None:
        FUZZ_CLIENT.set(session.query.get("fuzz"))
        if event == "forbidden":
            raise eventsock.RemoteError("not for you", code="forbidden")

    @server.on("connect")
    async def connect(session: eventsock.Session, auth: dict[str, Any]) -> bool:
        await yield_once()
        if auth.get("refuse"):
            return False
        if auth.get("crash"):
            raise OnPurpose("a connect handler failing on purpose")
        await session.enter_room("lobby")
        return True

    @server.on("disconnect")
    def disconnect(session: eventsock.Session, reason: str) -> None:
        app.disconnects[reason] += 1

    @server.on("echo")
    def echo(session: eventsock.Session, *args: Any) -> tuple[Any, ...]:
        return args

    @server.on("join")
    async def join(session: eventsock.Session, room: str) -> bool:
        await session.enter_room(room)
        return True

    @server.on("leave")
    async def leave(session: eventsock.Session, room: str) -> bool:
        await session.leave_room(room)
        return True

    @server.on("shout")
    async def shout(session: eventsock.Session, room: str, msg: Any) -> bool:
        await server.emit("shout", msg, to=room, skip=session.id)
        return True

    @server.on("everyone")
    async def everyone(session: eventsock.Session, msg: Any, volatile: bool = False) -> None:
        await server.emit("news", msg, volatile=volatile)

    # rooms starting with "r-" are the fuzz clients' own (the bystander is in "lobby"
    # and "all"): closing them or kicking their members is fine
    @server.on("close_room")
    async def close_room(session: eventsock.Session, room: str) -> None:
        if room.startswith("r-"):
            await server.close_room(room)

    @server.on("kick_room")
    async def kick_room(session: eventsock.Session, room: str) -> None:
        if room.startswith("r-"):
            await server.disconnect(room)

    @server.on("kick_me")
    async def kick_me(session: eventsock.Session) -> None:
        await session.disconnect()

    @server.on("please_call")
    async def please_call(session: eventsock.Session, x: Any) -> Any:
        try:
            return await session.call("question", x, timeout=0.5)
        except failed as exc:
            return type(exc).__name__

    @server.on("call_room")
    async def call_room(session: eventsock.Session) -> int:
        return len(await server.call_room("question", "all?", to="all", timeout=0.3))

    @server.on("slow")
    async def slow(session: eventsock.Session, n: int) -> int:
        for _ in range(min(n, 20)):
            await yield_once()
        return n

    @server.on("limited", concurrency=2)
    async def limited(session: eventsock.Session, n: int) -> int:
        for _ in range(min(n, 5)):
            await yield_once()
        return n

    @server.on("typed_add")
    def typed_add(session: eventsock.Session, a: int, b: int) -> int:
        return a + b  # two huge ints make a sum msgpack cannot carry: see too_big

    @server.on("too_big")
    def too_big(session: eventsock.Session) -> int:
        return 2**64  # a result msgpack cannot carry: an internal_error answer, logged

    @server.on("move")
    def move(session: eventsock.Session, p: Point, dx: int = 1) -> Point:
        return Point(p.x + dx, p.y)

    @server.on("small", max_payload=64)
    def small(session: eventsock.Session, text: str) -> int:
        return len(text)

    @server.on("boom")
    def boom(session: eventsock.Session, *args: Any) -> None:
        raise OnPurpose("a handler failing on purpose")

    @server.on("flaky")
    def flaky(session: eventsock.Session) -> None:
        raise Unavailable

    @server.on_error
    def translate(exc: Exception, session: eventsock.Session, event: str) -> Any:
        if isinstance(exc, Unavailable):
            return eventsock.RemoteError("try again later", code="unavailable")
        return None

    @server.on("upload")
    async def upload(session: eventsock.Session, items: AsyncIterator[int]) -> Any:
        got = 0
        try:
            async for _ in items:
                got += 1
                if got >= 50:
                    break
        except failed as exc:
            return type(exc).__name__
        return got

    @server.on("pull")
    async def pull(session: eventsock.Session, name: str, window: int) -> Any:
        got = 0
        try:
            async for _ in session.stream(name, window=window, timeout=0.5):
                got += 1
                if got >= 20:
                    break
        except failed as exc:
            return type(exc).__name__
        return got

    @server.stream("count")
    async def count(session: eventsock.Session, n: int) -> AsyncIterator[int]:
        if n > 500:
            raise eventsock.RemoteError("too many", code="too_many")
        for i in range(n):
            yield i

    @server.stream("endless")
    async def endless(session: eventsock.Session) -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1
            await yield_once()

    @server.stream("broken")
    async def broken(session: eventsock.Session) -> AsyncIterator[int]:
        yield 1
        raise eventsock.RemoteError("feed lost", code="feed_lost")

    @server.stream("crash")
    async def crash(session: eventsock.Session) -> AsyncIterator[int]:
        yield 1
        raise OnPurpose("a stream failing on purpose")

    # a second namespace, with its own middleware and a catch-all
    @server.use(namespace="/chat")
    def chat_auth(session: eventsock.Session, auth: dict[str, Any]) -> None:
        if auth.get("token") != TOKEN:
            raise eventsock.ConnectionRefused("Not authorized", data={"code": 42})

    @server.on("connect", namespace="/chat")
    async def chat_connect(session: eventsock.Session) -> None:
        await yield_once()
        await session.enter_room("chat-lobby")

    @server.on("disconnect", namespace="/chat")
    def chat_disconnect(session: eventsock.Session, reason: str) -> None:
        app.disconnects["/chat " + reason] += 1

    @server.on("say", namespace="/chat")
    async def say(session: eventsock.Session, msg: Any) -> bool:
        await server.emit("said", msg, to="chat-lobby", namespace="/chat")
        return True

    @server.on("*", namespace="/chat")
    def anything(session: eventsock.Session, event: str, *args: Any) -> str:
        return event

    return app


# ======================================================================================
# What fuzz clients send
# ======================================================================================

SERVER_EVENTS = (
    "echo", "join", "leave", "shout", "everyone", "close_room", "kick_room", "kick_me",
    "please_call", "call_room", "slow", "limited", "typed_add", "move", "small", "boom",
    "flaky", "forbidden", "upload", "pull", "say", "too_big", "no_such_event",
)  # fmt: skip
ODD_NAMES = (
    "connect", "disconnect", "connect_error", "newListener", "$stream", "$item", "$credit",
    "$end", "$cancel", "*", "", "$error", "é" * 40, "x" * 2000,
)  # fmt: skip
STREAM_NAMES = ("count", "endless", "broken", "crash", "nope")
NAMESPACES = ("/", "/", "/", "/chat", "/chat", "/nope", "/chat/", "", "chat", "//", "/" * 300)
ROOMS = ("lobby", "all", "r-1", "r-2", "chat-lobby", "")
MSGPACK_MARKERS = (
    b"\xc0\xc1\xc2\xc3\xc4\xc7\xc9\xca\xcb\xcf\xd3\xd4\xd8\xd9\xdb\xdc\xdd\xde\xdf\x80\x90\xa0\xff"
)


def value(rng: random.Random, depth: int = 0, *, safe: bool = False) -> Any:
    """A random msgpack value: what the peers send, and (unless ``safe``) what they
    should not (extension types other than Node's)."""
    kind = rng.randrange(18 if depth < 3 else 12)
    if safe and kind == 10:
        kind = 0
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randrange(-100, 100)
    if kind == 3:
        return rng.choice([2**31, 2**53 - 1, 2**53, 2**63 - 1, -(2**63), 2**64 - 1, -1])
    if kind == 4:
        return rng.choice([0.5, -1e308, float("inf"), float("-inf"), float("nan"), 1e-300])
    if kind == 5:
        return "".join(rng.choice("ab/$é😀\x00 ") for _ in range(rng.randrange(12)))
    if kind == 6:
        return rng.choice(ROOMS + ODD_NAMES[:10])
    if kind == 7:
        return rng.randbytes(rng.randrange(20))
    if kind == 8:
        return msgpack.ExtType(0, b"\x00")  # Node's undefined
    if kind == 9:
        return msgpack.ExtType(0, rng.randbytes(rng.randrange(1, 9)))  # a typed array
    if kind == 10:
        return msgpack.ExtType(rng.randrange(1, 128), rng.randbytes(2))  # refused
    if kind == 11:
        return {"$error": {"code": rng.choice(["x", 1]), "message": "m"}}  # error-shaped
    if kind in (12, 13, 14):
        return [value(rng, depth + 1, safe=safe) for _ in range(rng.randrange(5))]
    if kind == 15:
        return {"$stream": rng.randrange(-2, 40)}
    keys: list[Any] = ["a", "b", "x", "y", "$stream", "token", "pid", "offset", 1, -1, b"k"]
    return {rng.choice(keys): value(rng, depth + 1, safe=safe) for _ in range(rng.randrange(4))}


def ack_id(rng: random.Random) -> Any:
    return rng.choice(
        [None, None, 0, 1, rng.randrange(100), 2**53 - 1, 2**53, -1, 2**64 - 1, 1.5, "3", True]
    )


def args_for(rng: random.Random, name: str, fuzz: FuzzClient) -> list[Any]:
    """Arguments that fit the app's handler for ``name`` most of the time."""
    if rng.random() < 0.15:
        return [fuzz.value() for _ in range(rng.randrange(4))]
    room = rng.choice(ROOMS)
    match name:
        case "echo" | "say":
            return [fuzz.value() for _ in range(rng.randrange(4))]
        case "join" | "leave" | "close_room" | "kick_room":
            return [room]
        case "shout":
            return [room, fuzz.value()]
        case "everyone":
            return [fuzz.value(), rng.random() < 0.5]
        case "please_call":
            return [fuzz.value()]
        case "slow" | "limited":
            return [rng.randrange(10)]
        case "typed_add":
            return [rng.randrange(100), rng.choice([1, "2", 2.5, None])]
        case "move":
            return [{"x": rng.randrange(9), "y": rng.choice([1, "y"])}, rng.randrange(3)]
        case "small":
            return ["s" * rng.randrange(100)]
        case "upload":
            stream_id = fuzz.new_stream_id()
            fuzz.uploads.append((fuzz.pick_namespace(), stream_id))
            return [{"$stream": stream_id}]
        case "pull":
            return [rng.choice(["feed", "none"]), rng.choice([1, 2, 4, 0, -1, 2**21])]
    return []


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def packet_map(
    ptype: Any, nsp: Any, data: Any = ..., pid: Any = ..., rng: random.Random | None = None
) -> dict[Any, Any]:
    """A packet as a map, with python-socketio's key order or a shuffled one, and
    sometimes the JS client's ``options`` key."""
    items: list[tuple[Any, Any]] = [("type", ptype)]
    if data is not ...:
        items.append(("data", data))
    items.append(("nsp", nsp))
    if pid is not ... and pid is not None:
        items.append(("id", pid))
    if rng is not None:
        if rng.random() < 0.2:
            items.append(("options", {"compress": True}))
        if rng.random() < 0.3:
            rng.shuffle(items)
    return dict(items)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Bit flips, truncation, insertions, deletions, duplications, splices."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            del out[at:]
        elif op == 2:
            out[at:at] = bytes([rng.choice(MSGPACK_MARKERS)]) + rng.randbytes(rng.randrange(5))
        elif op == 3:
            del out[at : at + rng.randrange(1, 6)]
        elif op == 4:
            out[at:at] = out[at : at + rng.randrange(1, 10)]
        elif op == 5 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif op == 6:
            out += pack(packet_map(2, "/", ["echo"]))  # two maps in one frame
        else:
            out[at:at] = b"\xdd\xff\xff\xff\xff"  # an array claiming 4 G elements
    return bytes(out)


def ws_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """One WebSocket frame, as a client writes it (masked), or broken on purpose."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = secrets.token_bytes(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def describe(frame: bytes | str) -> str:
    if isinstance(frame, bytes):
        text = frame[:120].hex()
        return f"BIN {text}{'...' if len(frame) > 120 else ''} ({len(frame)} B)"
    return f"TXT {frame[:120]!r}{'...' if len(frame) > 120 else ''} ({len(frame)} chars)"


# ======================================================================================
# The fuzz clients
# ======================================================================================

CLIENT_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError, RuntimeError)


@dataclass
class Run:
    """What every fuzz client shares, and what they saw."""

    server: eventsock.Server
    url: str
    http: aiohttp.ClientSession
    deadline: float
    stats: Counter[str] = field(default_factory=Counter)
    # (namespace, pid, offset) learnt from CONNECT replies and events: recovery attempts
    pids: deque[tuple[str, str, str | None]] = field(default_factory=lambda: deque(maxlen=64))
    owners: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    alive: dict[int, FuzzClient] = field(default_factory=dict)
    flagged: set[int] = field(default_factory=set)
    kept: dict[int, list[str]] = field(default_factory=dict)  # frames of flagged clients
    stuck: list[int] = field(default_factory=list)
    next_index: int = 0

    def owner(self, task: asyncio.Task[Any] | None = None) -> int | None:
        """The fuzz client a server task (the current one by default) serves."""
        try:
            task = task or asyncio.current_task()
        except RuntimeError:
            return None
        if task is not None and task in self.owners:
            return self.owners[task]
        name = FUZZ_CLIENT.get()
        return int(name) if name is not None and name.isdigit() else None

    def flag(self, index: int | None) -> None:
        """Keep the frames of a client that caused trouble, the last one sent (most
        likely the culprit) last."""
        if index is not None and index not in self.flagged:
            self.flagged.add(index)
            client = self.alive.get(index)
            if client is not None:
                self.kept[index] = list(client.sent)


class FuzzClient:
    def __init__(self, run: Run, index: int) -> None:
        self.run = run
        self.index = index
        self.rng = random.Random(f"{SEED}:{index}")
        # polite: valid frames only; careless: valid ones with some chaos among them
        self.mode = self.rng.choices(
            ["polite", "careless", "mixed", "chaos"], weights=[3, 3, 2, 2]
        )[0]
        self.careful = self.mode in ("polite", "careless")  # for the current action
        self.answer_pings = self.rng.random() < 0.9
        self.sent: deque[str] = deque(maxlen=80)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.opened = False
        self.connected: set[str] = set()
        self.calls: list[tuple[str, int, str]] = []  # the server's calls we may answer
        self.streams: list[tuple[str, int]] = []  # stream ids opened by us or the server
        self.uploads: list[tuple[str, int]] = []
        self._stream_id = self.rng.choice([0, 2, 1, 1000])
        self._ack_id = 0
        self._changed: asyncio.Future[None] | None = None
        self.closed_by_server = False

    # -- helpers ---------------------------------------------------------------------

    def new_stream_id(self) -> int:
        self._stream_id += 2
        return self._stream_id

    def next_ack(self) -> int:
        self._ack_id += 1
        return self._ack_id

    def pick_namespace(self) -> str:
        if self.connected and (self.careful or self.rng.random() < 0.85):
            return self.rng.choice(sorted(self.connected))
        return "/" if self.careful else self.rng.choice(NAMESPACES)

    def value(self) -> Any:
        return value(self.rng, safe=self.careful)

    def some_ack_id(self) -> Any:
        if self.careful or self.rng.random() < 0.7:
            return self.next_ack() if self.rng.random() < 0.8 else None
        return ack_id(self.rng)

    async def send(self, frame: bytes | str) -> None:
        assert self.ws is not None
        self.sent.append(describe(frame))
        self.run.stats["frames sent"] += 1
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def changed(self, timeout: float = 0.5) -> None:
        """Wait (bounded) until the server sends something."""
        future = self._changed = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(future, timeout)

    def _notify(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    # -- the run ---------------------------------------------------------------------

    async def main(self) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.03:
            await self.bad_request()
            return
        if roll < 0.06:
            await self.raw_tcp()
            return
        self.ws = await self.run.http.ws_connect(
            f"{self.run.url}/socket.io/?EIO=4&transport=websocket&fuzz={self.index}",
            max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_close=3.0),
        )
        reader = asyncio.ensure_future(self.read())
        try:
            if self.careful:
                await self.changed(1.0)  # the open packet
            await self.act()
            await self.finish(reader)
        finally:
            if not reader.done():
                reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await self.ws.close()

    async def act(self) -> None:
        rng = self.rng
        loop = asyncio.get_running_loop()
        stop = min(loop.time() + CLIENT_SECONDS, self.run.deadline)
        weights = {
            "polite": [6, 40, 10, 12, 2, 6, 0, 0, 0, 0, 0, 3, 0],
            "careless": [6, 40, 10, 12, 2, 6, 1, 1, 1, 0.5, 1, 3, 0.5],
            "mixed": [15, 20, 6, 6, 5, 4, 10, 10, 6, 5, 5, 5, 2],
            "chaos": [5, 8, 2, 3, 3, 2, 20, 20, 12, 8, 8, 8, 3],
        }[self.mode]
        careful = self.mode in ("polite", "careless")
        actions: list[Callable[[], Any]] = [
            self.do_connect,
            self.do_event,
            self.do_answer,
            self.do_stream,
            self.do_disconnect,
            self.do_burst,
            self.do_mutated,
            self.do_structural,
            self.do_text,
            self.do_random,
            self.do_out_of_order,
            self.do_ws_control,
            self.do_oversize,
        ]
        for _ in range(rng.randrange(1, MAX_ACTIONS + 1)):
            if loop.time() > stop or self.ws is None or self.ws.closed:
                return
            action = rng.choices(actions, weights=weights)[0]
            # careless clients slip now and then even in valid-looking actions
            self.careful = careful and not (self.mode == "careless" and rng.random() < 0.03)
            if self.careful and not self.connected and action in actions[1:6]:
                action = self.do_connect  # nothing valid to send before a namespace
            try:
                await action()
            except CLIENT_ERRORS:
                return  # the server closed on us: what fuzzing is for
            await yield_once()

    async def finish(self, reader: asyncio.Future[None]) -> None:
        assert self.ws is not None
        roll = self.rng.random()
        try:
            if roll < 0.55:
                await self.ws.close()
            elif roll < 0.8:
                self.abort()
            elif roll < 0.9:
                await self.ws.close(code=self.rng.choice([1002, 1011, 3000, 4999]), message=b"x")
            else:
                # wait for the server to drop us (it stops hearing pongs, or we broke it)
                self.answer_pings = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reader), 3.0)
                self.abort()
        except CLIENT_ERRORS:
            pass
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), 5.0)

    def abort(self) -> None:
        assert self.ws is not None
        self.run.stats["aborted"] += 1
        connection = self.ws._response.connection
        if connection is not None and connection.transport is not None:
            connection.transport.abort()

    async def read(self) -> None:
        assert self.ws is not None
        ws, stats = self.ws, self.run.stats
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                if msg.data == "2":
                    stats["pings"] += 1
                    if self.answer_pings:
                        with contextlib.suppress(*CLIENT_ERRORS):
                            await ws.send_str("3")
                elif msg.data.startswith("0") and not self.opened:
                    self.on_open(msg.data)
                self._notify()
            elif msg.type is aiohttp.WSMsgType.BINARY:
                self.on_packet(msg.data)
                self._notify()
            else:
                if msg.type is aiohttp.WSMsgType.CLOSE:
                    self.closed_by_server = True
                    stats[f"server closed {msg.data}"] += 1
                self._notify()
                return

    def on_open(self, text: str) -> None:
        import json

        self.opened = True
        sid = json.loads(text[1:])["sid"]
        for conn, task in self.run.server._connections.items():
            if conn.eio_sid == sid:
                self.run.owners[task] = self.index
        self.run.stats["opened"] += 1

    def on_packet(self, data: bytes) -> None:
        stats = self.run.stats
        packet = decode_packet(data)  # the server's frames are always valid
        match packet:
            case Connect():
                self.connected.add(packet.namespace)
                stats["namespaces joined"] += 1
                pid = (packet.data or {}).get("pid")
                if isinstance(pid, str):
                    self.run.pids.append((packet.namespace, pid, None))
            case ConnectError():
                stats[f"refused: {packet.message}"] += 1
            case Disconnect():
                self.connected.discard(packet.namespace)
                stats["disconnected by server"] += 1
            case Ack():
                stats["acks"] += 1
            case Event():
                stats["events"] += 1
                if packet.name == "$stream" and packet.args and isinstance(packet.args[0], int):
                    self.streams.append((packet.namespace, packet.args[0]))
                if packet.id is not None:
                    self.calls.append((packet.namespace, packet.id, packet.name))
                elif packet.args and isinstance(packet.args[-1], str) and self.run.pids:
                    # with recovery, the last argument is an offset
                    namespace, pid, _ = self.run.pids[-1]
                    self.run.pids.append((namespace, pid, packet.args[-1]))

    # -- actions ---------------------------------------------------------------------

    async def do_connect(self) -> None:
        rng = self.rng
        if self.careful:  # a namespace not joined yet (or one that does not exist)
            free = [ns for ns in ("/", "/chat", "/nope") if ns not in self.connected]
            namespace = free[0] if free and rng.random() < 0.7 else rng.choice(free or ["/"])
        else:
            namespace = rng.choice(NAMESPACES)
        auth: Any
        roll = rng.random()
        if roll < 0.5:
            auth = {"token": TOKEN}
        elif roll < 0.6:
            auth = {"token": "wrong"}
        elif roll < 0.65:
            auth = {"refuse": True}
        elif roll < 0.7:
            auth = {"crash": True}
        elif roll < 0.85 and self.run.pids:
            namespace, pid, offset = rng.choice(self.run.pids)
            auth = {"pid": pid, "offset": offset, "token": TOKEN}
            if rng.random() < 0.2:
                auth["offset"] = rng.choice([None, "zz", "", 7])
        elif roll < 0.9 or self.careful:
            auth = ...
        else:
            auth = value(rng)
        if self.careful and namespace in self.connected:
            return  # a second CONNECT: not from a careful client
        await self.send(pack(packet_map(0, namespace, auth, rng=rng)))
        if self.careful:
            await self.changed()

    async def do_event(self) -> None:
        rng = self.rng
        name = rng.choice(SERVER_EVENTS) if rng.random() < 0.9 else rng.choice(ODD_NAMES)
        namespace = self.pick_namespace()
        data = [name, *args_for(rng, name, self)]
        await self.send(pack(packet_map(2, namespace, data, self.some_ack_id(), rng=rng)))
        if self.careful and rng.random() < 0.5:
            await self.changed()

    async def do_answer(self) -> None:
        rng = self.rng
        if self.calls:
            namespace, call_id, name = self.calls.pop(rng.randrange(len(self.calls)))
        else:
            namespace, call_id, name = self.pick_namespace(), rng.randrange(5), "?"
        if namespace not in self.connected and self.careful:
            return
        if rng.random() < 0.2:
            call_id = self.some_ack_id() if self.careful else ack_id(rng)
            if call_id is None:
                call_id = 0
        if rng.random() < 0.1 and not self.careful:
            namespace = rng.choice(NAMESPACES)
        if name == "$stream" and rng.random() < 0.7:
            answer: list[Any] = [True]
        elif rng.random() < 0.2:
            answer = [{"$error": {"code": "nope", "message": "refused by the fuzzer"}}]
        else:
            answer = [self.value() for _ in range(rng.randrange(3))]
        data: Any = answer if self.careful or rng.random() < 0.9 else value(rng)
        await self.send(pack(packet_map(3, namespace, data, call_id, rng=rng)))
        if name == "$stream" and self.streams:
            # produce some items for the server's pull, then end (or not)
            _, stream_id = self.streams[-1]
            for i in range(rng.randrange(6)):
                await self.send(pack(packet_map(2, namespace, ["$item", stream_id, i])))
            if rng.random() < 0.6:
                await self.send(pack(packet_map(2, namespace, ["$end", stream_id])))

    async def do_stream(self) -> None:
        """Stream control events, with stream ids known or made up (the server drops
        malformed ones)."""
        rng = self.rng
        namespace = self.pick_namespace()
        known = [key for key in self.streams + self.uploads if key[0] == namespace]
        stream_id: Any = rng.choice(known)[1] if known and rng.random() < 0.7 else self.value()
        roll = rng.random()
        if roll < 0.35:
            stream_id = self.new_stream_id() if rng.random() < 0.8 else stream_id
            self.streams.append((namespace, stream_id))
            window = rng.choice([1, 4, 16, 0, -1, 2**20, 2**20 + 1, "8"])
            name = rng.choice(STREAM_NAMES)
            extra = [rng.choice([3, 50, 1000, -1, "x"])] if name == "count" else []
            data = ["$stream", stream_id, name, window, *extra]
            await self.send(pack(packet_map(2, namespace, data, self.some_ack_id(), rng=rng)))
        elif roll < 0.55:
            n = rng.choice([1, 8, 2**40, 0, -5, "x"])
            await self.send(pack(packet_map(2, namespace, ["$credit", stream_id, n], rng=rng)))
        elif roll < 0.7:
            await self.send(pack(packet_map(2, namespace, ["$cancel", stream_id], rng=rng)))
        elif roll < 0.9:
            for i in range(rng.randrange(1, 20)):
                item = i if rng.random() < 0.9 else self.value()
                await self.send(pack(packet_map(2, namespace, ["$item", stream_id, item])))
        else:
            tail = [] if rng.random() < 0.5 else [self.value()]
            await self.send(pack(packet_map(2, namespace, ["$end", stream_id, *tail])))

    async def do_disconnect(self) -> None:
        rng = self.rng
        namespace = self.pick_namespace()
        if self.careful or rng.random() < 0.8:
            frame = pack(packet_map(1, namespace, rng=rng))
        else:
            frame = pack(packet_map(1, namespace, rng.choice([None, "bye", {}])))
        self.connected.discard(namespace)
        await self.send(frame)

    async def do_burst(self) -> None:
        """Many calls at once, sometimes with the same ack id."""
        rng = self.rng
        namespace = self.pick_namespace()
        same = rng.random() < 0.3
        pid = self.next_ack()
        for _ in range(rng.randrange(5, 40)):
            name = rng.choice(("echo", "slow", "limited", "typed_add"))
            data = [name, *args_for(rng, name, self)]
            await self.send(pack(packet_map(2, namespace, data, pid if same else self.next_ack())))

    async def do_mutated(self) -> None:
        rng = self.rng
        namespace = self.pick_namespace()
        name = rng.choice(SERVER_EVENTS)
        base = rng.choice(
            [
                packet_map(2, namespace, [name, *args_for(rng, name, self)], self.next_ack()),
                packet_map(0, namespace, {"token": TOKEN}),
                packet_map(3, namespace, [value(rng)], rng.randrange(5)),
                packet_map(1, namespace),
                packet_map(2, namespace, ["$stream", self.new_stream_id(), "count", 4, 3], 7),
            ]
        )
        await self.send(mutate(rng, pack(base)))

    async def do_structural(self) -> None:
        """A packet map whose fields have the wrong types, or are missing."""
        rng = self.rng
        fields: dict[Any, Any] = {}
        for key in ("type", "nsp", "data", "id"):
            roll = rng.random()
            if roll < 0.15:
                continue
            if key == "type":
                fields[key] = (
                    rng.choice([0, 1, 2, 3, 4, 5, 6, 7, -1, 2**64 - 1])
                    if roll < 0.7
                    else value(rng)
                )
            elif key == "nsp":
                fields[key] = rng.choice(NAMESPACES) if roll < 0.7 else value(rng)
            elif key == "data":
                fields[key] = value(rng)
            else:
                fields[key] = ack_id(rng)
        if rng.random() < 0.2:
            # keys msgpack reads as unhashable (an array) or of odd types
            fields[rng.choice([1, -1, b"k", None, 1.5, True, (1, 2), "extra"])] = value(rng)
        try:
            frame = pack(fields)
        except (TypeError, ValueError):  # an unhashable key: msgpack refuses to write it
            frame = pack({"type": 2})
        await self.send(frame)

    async def do_text(self) -> None:
        rng = self.rng
        valid = pack(packet_map(2, self.pick_namespace(), ["echo", 1], self.next_ack()))
        frame = rng.choice(
            [
                "3",  # a pong nobody asked for
                "2",  # a ping from the client: not allowed in v4
                "6",
                "1",
                "0",
                "5",
                "4hello",
                '42["echo",1]',
                "40",
                "b" + base64.b64encode(valid).decode(),
                "b" + base64.b64encode(mutate(rng, valid)).decode(),
                "b" + "!not base64",
                "b",
                "",
                "33",
                "\x00",
                "é" * rng.randrange(1, 50),
                valid.decode("latin-1"),
            ]
        )
        await self.send(frame)

    async def do_random(self) -> None:
        rng = self.rng
        frame = rng.choice([b"", b"2", b"3", b"40", b"\x80", b"\x90", b"\xc0", b"\xc1"])
        if rng.random() < 0.6:
            frame = rng.randbytes(rng.randrange(1, 64))
        await self.send(frame)

    async def do_out_of_order(self) -> None:
        """Valid packets in an order the protocol does not allow."""
        rng = self.rng
        namespace = rng.choice(("/", "/chat", "/nope"))
        auth = {"token": TOKEN}
        connect = pack(packet_map(0, namespace, auth))
        event = pack(packet_map(2, namespace, ["echo", "early"], self.next_ack()))
        disconnect = pack(packet_map(1, namespace))
        ack = pack(packet_map(3, namespace, [], rng.randrange(3)))
        orders = [
            [event, connect],  # an event before the CONNECT
            [connect, event],  # an event before the CONNECT reply
            [connect, connect],  # a second CONNECT
            [connect, disconnect, event],  # an event after leaving
            [connect, disconnect, disconnect],
            [disconnect, connect],
            [ack, connect, ack],
            [connect, disconnect, connect, event],
            [connect, pack(packet_map(4, namespace, {"message": "x"}))],  # CONNECT_ERROR
        ]
        for frame in rng.choice(orders):
            await self.send(frame)

    async def do_ws_control(self) -> None:
        assert self.ws is not None
        rng = self.rng
        roll = rng.random()
        self.run.stats["ws control"] += 1
        if roll < 0.4:
            await self.ws.ping(rng.randbytes(rng.randrange(10)))
        elif roll < 0.8:
            await self.ws.pong(rng.randbytes(rng.randrange(10)))
        else:
            self.answer_pings = not self.answer_pings

    async def do_oversize(self) -> None:
        rng = self.rng
        if rng.random() < 0.5:
            data = ["echo", "x" * (MAX_PAYLOAD + rng.randrange(-40, 200))]
            await self.send(pack(packet_map(2, self.pick_namespace(), data, self.next_ack())))
        else:
            await self.send("b" + "A" * (MAX_PAYLOAD + rng.randrange(-8, 100)))

    # -- not a WebSocket at all ------------------------------------------------------

    async def bad_request(self) -> None:
        """An HTTP request the endpoint must refuse before any upgrade."""
        rng = self.rng
        query = rng.choice(
            [
                "EIO=3&transport=websocket",
                "transport=websocket",
                "EIO=4&transport=polling",
                "EIO=4&transport=websocket&sid=abc",
                "EIO=4",
            ]
        )
        self.run.stats["bad requests"] += 1
        url = f"{self.run.url}/socket.io/?{query}"
        if rng.random() < 0.5:
            async with self.run.http.get(url) as response:
                await response.read()
                status = response.status
        else:
            try:
                ws = await self.run.http.ws_connect(url)
            except aiohttp.WSServerHandshakeError as exc:
                status = exc.status
            else:
                await ws.close()
                raise AssertionError(f"the server upgraded {url}")
        assert 400 <= status < 500, (url, status)

    async def raw_tcp(self) -> None:
        """A TCP connection that breaks HTTP or WebSocket framing."""
        rng = self.rng
        self.run.stats["raw tcp"] += 1
        host, port = "127.0.0.1", int(self.run.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection(host, port)
        try:
            key = base64.b64encode(rng.randbytes(16)).decode()
            request = (
                f"GET /socket.io/?EIO=4&transport=websocket&fuzz={self.index} HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
            packet = pack(packet_map(0, "/", {"token": TOKEN}))
            broken = rng.choice(
                [
                    ws_frame(0x2, packet, mask=False),  # clients must mask
                    ws_frame(0x3, b"x"),  # a reserved opcode
                    ws_frame(0x2, packet, rsv=rng.randrange(1, 8)),  # reserved bits
                    ws_frame(0x9, b"p", fin=False),  # a fragmented control frame
                    ws_frame(0x0, b"x"),  # a continuation of nothing
                    ws_frame(0x1, b"\xff\xfe"),  # a text frame that is not UTF-8
                    ws_frame(0x8, b"\x03"),  # a close frame with a 1-byte payload
                    ws_frame(0x2, packet, fin=False) + ws_frame(0x2, packet),  # bad fragments
                    ws_frame(0x2, packet)[: rng.randrange(1, len(packet))],  # cut short
                    b"\x82\xff" + b"\x7f" * 8,  # a 2**63-byte frame
                    rng.randbytes(rng.randrange(1, 40)),
                ]
            )
            roll = rng.random()
            if roll < 0.1:
                refused = request.replace(b"EIO=4", b"EIO=3")  # refused, then frames
                writer.write(refused + ws_frame(0x2, packet) + broken)
            elif roll < 0.2:
                writer.write(request[: rng.randrange(len(request))])  # half a request
            elif roll < 0.3:
                writer.write(rng.randbytes(rng.randrange(1, 200)))  # not HTTP
            elif roll < 0.5:
                writer.write(request + ws_frame(0x2, packet) + broken)  # before the 101
            else:
                writer.write(request)
                with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError):
                    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
                writer.write(ws_frame(0x2, packet) + broken)
            with contextlib.suppress(TimeoutError, *CLIENT_ERRORS):
                await writer.drain()
                await asyncio.wait_for(reader.read(1 << 20), 1.0)
        finally:
            writer.close()
            with contextlib.suppress(*CLIENT_ERRORS):
                await writer.wait_closed()


async def fuzz_worker(run: Run, todo: deque[int] | None) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < run.deadline:
        if todo is not None:
            if not todo:
                return
            index = todo.popleft()
        else:
            if run.next_index >= MAX_CLIENTS:
                return
            index = run.next_index
            run.next_index += 1
        client = FuzzClient(run, index)
        run.alive[index] = client
        run.stats["clients"] += 1
        run.stats[f"mode {client.mode}"] += 1
        try:
            async with asyncio.timeout(CLIENT_LIMIT):
                try:
                    await client.main()
                except CLIENT_ERRORS:
                    run.stats["client errors"] += 1
        except TimeoutError:
            run.stuck.append(index)
            run.flag(index)
        finally:
            del run.alive[index]
            if index in run.flagged and index not in run.kept:
                run.kept[index] = list(client.sent)


# ======================================================================================
# The test
# ======================================================================================


class LagMonitor:
    """The longest the loop took to run a callback due every 50 ms: a stall that long
    delays every timer (pings included), whatever the code under test does."""

    PERIOD = 0.05

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.worst = 0.0
        self.worst_at = 0.0
        self._due = self.loop.time() + self.PERIOD
        self._handle: asyncio.TimerHandle | None = self.loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self.loop.time()
        if now - self._due > self.worst:
            self.worst, self.worst_at = now - self._due, now
        self._due = now + self.PERIOD
        self._handle = self.loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


@contextlib.asynccontextmanager
async def running(server: eventsock.Server) -> AsyncIterator[str]:
    """The server on an ephemeral port, bare: helpers.serving's test server records
    every event it receives, which for a fuzz run is tens of thousands of them (a heap
    whose gen-2 collections stall the loop longer than the bystander's ping window)."""
    port = await server.start("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.shutdown()


def where(task: asyncio.Task[Any]) -> str:
    """Where a pending task waits: its chain of awaits, innermost last (through
    eventsock.eager's resume(), which drives a coroutine by hand)."""
    places = []
    awaited: Any = task.get_coro()
    for _ in range(50):
        frame = next(
            (
                getattr(awaited, name)
                for name in ("cr_frame", "ag_frame", "gi_frame")
                if getattr(awaited, name, None) is not None
            ),
            None,
        )
        if frame is None:
            places.append(f"awaiting {awaited!r}")
            break
        places.append(f"{frame.f_code.co_qualname} ({frame.f_code.co_filename}:{frame.f_lineno})")
        if frame.f_code.co_name == "resume" and "coro" in frame.f_locals:
            awaited = frame.f_locals["coro"]
            continue
        awaited = next(
            (
                getattr(awaited, name)
                for name in ("cr_await", "ag_await", "gi_yieldfrom")
                if getattr(awaited, name, None) is not None
            ),
            None,
        )
        if awaited is None:
            break
    return "\n      ".join(places)


def census(server: eventsock.Server) -> dict[str, int]:
    """Everything a connection leaves behind if it leaks."""
    links = [conn.link for conn in server._connections]
    indexes = list(server._rooms.values())
    return {
        "connections": len(server._connections),
        "sessions": len(server._sessions),
        "rooms": sum(1 for rooms in indexes for members in rooms._members.values() if members),
        "room memberships": sum(1 for rooms in indexes for sid in rooms._rooms),
        "handler tasks": len(server._tasks),
        "disconnect handler tasks": len(server._cleanup),
        "pending acks": sum(link.pending_acks for link in links),
        "streams": sum(link._streams.active for link in links if link._streams is not None),
        "pending namespaces": sum(len(conn.protocol.pending) for conn in server._connections),
    }


def orphans(server: eventsock.Server) -> set[str]:
    """Session ids in a room that belong to no session."""
    return {sid for rooms in server._rooms.values() for sid in rooms._rooms} - set(server._sessions)


def is_expected(record: logging.LogRecord) -> bool:
    """An ERROR record the app causes on purpose, or aiohttp's own about bad HTTP."""
    exc = record.exc_info[1] if record.exc_info is not None else None
    if isinstance(exc, OnPurpose):
        return True
    if record.name == "aiohttp.server" and isinstance(
        exc, aiohttp.http_exceptions.HttpProcessingError
    ):
        # aiohttp logs garbage that follows a request it answered (here an upgrade
        # eventsock refused, EIO=3) at ERROR: its HTTP parser's, not eventsock's
        return True
    message = record.getMessage()
    if message.startswith("cannot encode the ack of a handler") and isinstance(
        exc, eventsock.EncodeError
    ):
        # a result msgpack cannot carry (too_big on purpose, typed_add's sum of two
        # huge ints): the caller gets an internal_error, and the app's bug is logged
        return True
    # the echo handler returns what it was sent, error-shaped maps included
    return message.startswith("a handler on '/' returned a value shaped like")


@pytest.mark.parametrize("recovery", [False, True], ids=["plain", "recovery"])
async def test_fuzz_live_server(recovery: bool, caplog: pytest.LogCaptureFixture) -> None:
    print(f"fuzz seed {SEED} (EVENTSOCK_FUZZ_SEED={SEED} to replay), {SECONDS} s")
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: escaped.append(context))
    caplog.set_level(logging.INFO, logger="eventsock")
    app = make_app(recovery=recovery)
    server = app.server
    run: Run | None = None
    lag: LagMonitor | None = None

    def attribute(record: logging.LogRecord) -> bool:
        if run is not None and record.levelno >= logging.ERROR:
            record.fuzz_client = run.owner()
            if not is_expected(record):
                run.flag(record.fuzz_client)
        return True

    tally: Counter[str] = Counter()
    eventsock_logger = logging.getLogger("eventsock")

    def triage(record: logging.LogRecord) -> bool:
        """On the eventsock logger: format and count every record; let only unexpected
        ERROR ones on to the handlers. What pytest keeps of a long run's thousands of
        records would otherwise grow the heap until gen-2 collections stall the loop
        for longer than the bystander's ping window."""
        record.getMessage()  # any record that cannot be formatted raises here
        tally[f"{record.levelname} {record.msg}"[:90]] += 1
        return record.levelno >= logging.ERROR and not is_expected(record)

    eventsock_logger.addFilter(triage)
    caplog.handler.addFilter(attribute)
    try:
        async with running(server) as url:
            received: Counter[str] = Counter()
            hello: asyncio.Future[None] = loop.create_future()
            bystander = eventsock.Client(reconnection=False)

            @bystander.on("question")
            def question(x: Any) -> Any:
                return x

            @bystander.on("shout")
            def on_shout(msg: Any, *rest: Any) -> None:
                received["shout"] += 1
                if msg == "hello" and not hello.done():
                    hello.set_result(None)

            @bystander.on("news")
            def on_news(*args: Any) -> None:
                received["news"] += 1

            @bystander.on("disconnect")
            def on_disconnect(reason: str) -> None:
                received["disconnect: " + reason] += 1
                if lag is not None:
                    received[f"(worst loop lag so far {lag.worst * 1000:.0f} ms)"] += 1

            await bystander.connect(
                url, auth={"token": TOKEN}, namespaces=["/", "/chat"], timeout=5
            )
            bystander_sid = bystander.sid
            assert await bystander.call("join", "all", timeout=5) is True
            await yield_once()
            baseline = census(server)
            tasks_before = asyncio.all_tasks()
            assert baseline["sessions"] == 2 and baseline["connections"] == 1

            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
            ) as http:
                run = Run(server, url, http, loop.time() + SECONDS)
                lag = LagMonitor()
                todo = deque(ONLY) if ONLY else None
                workers = [fuzz_worker(run, todo) for _ in range(1 if ONLY else WORKERS)]
                try:
                    await asyncio.gather(*workers)
                finally:
                    lag.stop()
                run.stats["worst loop lag ms"] = round(lag.worst * 1000)
                # the bystander carried on through it all
                assert bystander.connected, received
                assert await bystander.call("echo", "still here", timeout=5) == "still here"
            context = f"(seed {SEED}: EVENTSOCK_FUZZ_SEED={SEED} to replay)"
            print(f"fuzz stats {context}:", dict(sorted(run.stats.items())))
            print("server disconnect reasons:", dict(app.disconnects))
            print("the bystander received:", dict(received))
            print("eventsock log records:", dict(tally.most_common(25)))

            # every fuzz client is gone: the server must forget them all, in bounded time
            fuzz_tasks = [
                task
                for conn, task in server._connections.items()
                if bystander_sid not in {s.id for s in conn.sessions.values()}
            ]
            if fuzz_tasks:
                _, stuck = await asyncio.wait(fuzz_tasks, timeout=SETTLE)
                for task in stuck:
                    run.flag(run.owners.get(task))
                assert not stuck, f"{len(stuck)} fuzz connection(s) never closed {context}"
            handlers = [*server._tasks, *server._cleanup]
            if handlers:
                await asyncio.wait(handlers, timeout=SETTLE)
            current = asyncio.current_task()
            extra = [t for t in asyncio.all_tasks() - tasks_before if t is not current]
            if extra:
                await asyncio.wait(extra, timeout=SETTLE)
            leftover = [t for t in extra if not t.done()]

            # what went wrong, with the frames of the clients involved
            crashes = [
                record
                for record in caplog.records
                if record.levelno >= logging.ERROR and not is_expected(record)
            ]
            report = []
            formatter = caplog.handler.formatter or logging.Formatter()
            for record in crashes[:5]:
                line = f"client {getattr(record, 'fuzz_client', None)}: {record.getMessage()}"
                if record.exc_info:
                    line += "\n" + formatter.formatException(record.exc_info)
                report.append(line)
            for entry in escaped[:5]:
                index = run.owner(entry.get("task") or entry.get("future"))  # type: ignore[arg-type]
                run.flag(index)
                exc = entry.get("exception")
                report.append(f"client {index}: escaped: {entry.get('message')} {exc!r}")
            for index in sorted(run.flagged)[:5]:
                frames = "\n    ".join(run.kept.get(index, ["(not kept)"])[-12:])
                report.append(
                    f"last frames of client {index}, the culprit most likely last:\n    {frames}"
                )
            problems = "\n".join(report)
            assert not crashes, f"unexpected ERROR records {context}:\n{problems}"
            assert not escaped, f"exceptions escaped tasks {context}:\n{problems}"
            assert not run.stuck, f"fuzz clients stuck {run.stuck[:10]} {context}:\n{problems}"
            stacks = "\n".join(f"  {task!r}:\n      {where(task)}" for task in leftover[:5])
            assert not leftover, f"tasks left behind {context}:\n{stacks}"
            unknown = orphans(server)
            assert not unknown, f"room memberships of no session {context}: {unknown}"
            assert census(server) == baseline, f"leaked {context}"
            assert bystander.sid == bystander_sid and bystander.connected

            # the fuzz reached where it was meant to reach
            stats = run.stats
            assert stats["clients"] >= 10 or ONLY, stats
            if not ONLY:
                for reached in ("namespaces joined", "acks", "server closed 1002", "aborted"):
                    assert stats[reached] > 0, f"no {reached!r} in {SECONDS} s: {stats}"

            # the server still serves: the bystander, and a new client
            assert await bystander.call("typed_add", 2, 3, timeout=5) == 5
            assert [i async for i in bystander.stream("count", 5)] == [0, 1, 2, 3, 4]
            fresh = eventsock.Client(reconnection=False)
            fresh.on("question", question)
            async with fresh:
                await fresh.connect(url, auth={"token": TOKEN}, timeout=5)
                assert await fresh.call("echo", 1, [2], {"three": 3}, timeout=5) == (
                    1,
                    [2],
                    {"three": 3},
                )
                assert await fresh.call("join", "r-1", timeout=5) is True
                await fresh.emit("shout", "lobby", "hello")
                await asyncio.wait_for(hello, 5)  # the bystander is in the lobby
                assert await fresh.call("please_call", "q", timeout=5) == "q"
            if recovery:
                store, log = server._store, server._log
                assert store is not None and log is not None
                assert len(log) <= 2_000
                store.expire(time.monotonic() + 61)  # what a minute would drop
                assert len(store) == 0
    finally:
        caplog.handler.removeFilter(attribute)
        eventsock_logger.removeFilter(triage)
        loop.set_exception_handler(previous_handler)


async def test_an_event_named_star_reaches_the_catch_all(caplog: pytest.LogCaptureFixture) -> None:
    """Found by the fuzz: an EVENT whose name is "*" ran the catch-all as the event's
    own handler, without the event name: a TypeError logged at ERROR, and the caller
    got an internal_error instead of the catch-all's answer."""
    server = eventsock.Server()

    @server.on("*")
    def anything(session: eventsock.Session, event: str, *args: Any) -> str:
        return event

    async with serving(server) as url:
        peer = await RawPeer.open_to(url)
        try:
            assert isinstance(await peer.connect("/"), Connect)
            await peer.send(
                bytes.fromhex("84a474797065 02 a464617461 91a12a a36e7370a12f a26964 01")
            )
            assert await peer.recv_packet() == Ack(1, ("*",))
        finally:
            await peer.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_call_on_a_closed_connection_leaves_no_orphan_future() -> None:
    """Found by the fuzz: a call on a connection that has closed raises ConnectionClosed,
    and then its deadline fails the forgotten future with AckTimeout, which escapes
    ("Future exception was never retrieved"). Server.call_room does this when a
    session's connection ends between the resolution of the room and the call."""
    loop = asyncio.get_running_loop()
    escaped: asyncio.Future[dict[str, Any]] = loop.create_future()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: escaped.done() or escaped.set_result(ctx))
    server = eventsock.Server()
    try:
        async with running(server) as url:
            peer = await RawPeer.open_to(url)
            assert isinstance(await peer.connect("/"), Connect)
            (conn,) = server._connections
            await peer.close()
            await connections_done(server)
            with pytest.raises(eventsock.ConnectionClosed):
                await conn.link.call("/", "question", (), 0.2)
            # nothing may escape, however long one waits (the deadline is 0.2 s)
            done, _ = await asyncio.wait([escaped], timeout=1.0)
            assert not done, f"escaped: {escaped.result()}"
    finally:
        loop.set_exception_handler(previous)


async def test_a_session_abandoned_in_its_connect_handler_is_not_accepted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by the fuzz: CONNECT, DISCONNECT, CONNECT on "/" while the first session's
    async connect handler waits. The first session was accepted (its sid in the reply)
    though it was no longer registered: its room stayed forever, the second session
    was dropped, and the next EVENT raised KeyError out of the connection's reader."""
    loop = asyncio.get_running_loop()
    server = eventsock.Server()
    gate: asyncio.Future[None] = loop.create_future()
    both: asyncio.Future[None] = loop.create_future()
    started: list[str] = []

    @server.on("connect")
    async def connect(session: eventsock.Session) -> None:
        started.append(session.id)
        if len(started) == 2:
            both.set_result(None)
        await gate
        await session.enter_room("lobby")

    server.on("echo", lambda session, x: x)
    async with running(server) as url:
        peer = await RawPeer.open_to(url)
        try:
            for packet in (Connect("/"), Disconnect("/"), Connect("/")):
                await peer.send_packet(packet)
            await asyncio.wait_for(both, 5)
            gate.set_result(None)
            assert await peer.recv_packet() == Connect("/", {"sid": started[1]})
            await peer.send_packet(Event("echo", (1,), "/", 5))
            assert await peer.recv_packet() == Ack(5, (1,))
        finally:
            await peer.close()
        await connections_done(server)
        assert orphans(server) == set()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
