"""A collaborative whiteboard: strokes and live cursors shared by everyone on a board.

Build the page once (Node 20 and npm), then run the server:

    cd examples/whiteboard && npm ci && npm run build
    python examples/whiteboard/server.py --port 8000

and open http://127.0.0.1:8000/?room=lobby in two browser windows. The page (index.html
and main.js, bundled with the official socket.io-client and socket.io-msgpack-parser) and
the eventsock endpoint are served by one aiohttp application; ``--port 0`` picks a free
port. Stop it with SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import re
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

import eventsock

HERE = Path(__file__).resolve().parent
BUILD_HINT = "cd examples/whiteboard && npm ci && npm run build"


# --8<-- [start:limits]
#: The board's own coordinates; the page scales them to the canvas it shows.
WIDTH, HEIGHT = 1600, 1000
#: The page sends a stroke in pieces while it is drawn; one piece has at most this many.
MAX_PIECE_POINTS = 256
MAX_LINE_WIDTH = 64.0
#: Memory is bounded: points per board, boards kept (the least recently joined empty
#: board is forgotten to make room for a new one).
MAX_BOARD_POINTS = 20_000
MAX_BOARDS = 100
ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
MAX_USER_NAME = 24
# --8<-- [end:limits]


# --8<-- [start:types]
@dataclasses.dataclass
class Stroke:
    """One piece of a stroke as the page sends it: a polyline in board coordinates."""

    points: list[tuple[float, float]]
    colour: str
    width: float


@dataclasses.dataclass
class Board:
    """One room's drawing, kept in memory while the server runs."""

    strokes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    points: int = 0
    next_id: int = 1
    #: who is here: session id -> name
    users: dict[str, str] = dataclasses.field(default_factory=dict)
    # --8<-- [end:types]


def invalid(code: str, message: str) -> eventsock.RemoteError:
    return eventsock.RemoteError(message, code=code)


def check_stroke(stroke: Stroke) -> None:
    """Refuse what the typed handler cannot: values out of range."""
    if not 1 <= len(stroke.points) <= MAX_PIECE_POINTS:
        raise invalid("invalid_stroke", f"a stroke has 1 to {MAX_PIECE_POINTS} points")
    for x, y in stroke.points:
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= WIDTH and 0 <= y <= HEIGHT):
            raise invalid("invalid_stroke", f"point {[x, y]} is outside the {WIDTH}x{HEIGHT} board")
    if COLOUR.fullmatch(stroke.colour) is None:
        raise invalid("invalid_stroke", f"colour must look like #1d4ed8, not {stroke.colour!r}")
    if not 1 <= stroke.width <= MAX_LINE_WIDTH:
        raise invalid("invalid_stroke", f"width must be between 1 and {MAX_LINE_WIDTH:g}")


def create_server(
    *, max_board_points: int = MAX_BOARD_POINTS, max_boards: int = MAX_BOARDS
) -> eventsock.Server:
    # Same-origin browsers only (the default): the page comes from this very server.
    # One frame holds one event: a piece of a stroke is far below 64 KiB.
    server = eventsock.Server(max_payload=64 * 1024)
    boards: dict[str, Board] = {}  # in the order they were last joined

    def board_of(session: eventsock.Session) -> tuple[str, Board]:
        room = session.data.get("room")
        if room is None:
            raise invalid("not_joined", "join a board first")
        return room, boards[room]

    def open_board(room: str) -> Board:
        board = boards.pop(room, None)
        if board is None:
            if len(boards) >= max_boards:
                empty = next((name for name, b in boards.items() if not b.users), None)
                if empty is None:
                    raise invalid("too_many_boards", f"all {max_boards} boards are in use")
                del boards[empty]
            board = Board()
        boards[room] = board  # now the most recently joined
        return board

    async def leave(session: eventsock.Session) -> None:
        room = session.data.pop("room", None)
        if room is None:
            return
        boards[room].users.pop(session.id, None)
        await session.leave_room(room)
        # presence: the others drop this user's cursor
        await server.emit("left", session.id, to=room)

    # --8<-- [start:join]
    @server.on("join")
    async def join(session: eventsock.Session, room: str, name: str) -> dict[str, Any]:
        if ROOM_NAME.fullmatch(room) is None:
            raise invalid("invalid_room", "a board name is 1 to 40 letters, digits, - or _")
        name = name.strip()
        if not 1 <= len(name) <= MAX_USER_NAME or not name.isprintable():
            raise invalid("invalid_name", f"a user name is 1 to {MAX_USER_NAME} characters")
        board = open_board(room)
        if session.data.get("room") is not None:
            await leave(session)  # one board at a time
        await server.emit("joined", {"id": session.id, "name": name}, to=room)
        board.users[session.id] = name
        session.data["room"] = room
        await session.enter_room(room)
        # The snapshot is taken after entering the room and nothing awaits between it and
        # the answer: a stroke saved after it reaches this page after the answer, and
        # one saved before it is in it (the page ignores strokes until it has the answer).
        return {
            "you": session.id,
            "width": WIDTH,
            "height": HEIGHT,
            "strokes": list(board.strokes),
            "users": [{"id": sid, "name": user} for sid, user in board.users.items()],
        }
        # --8<-- [end:join]

    # --8<-- [start:events]
    @server.on("stroke")
    async def stroke(session: eventsock.Session, stroke: Stroke) -> int:
        # `stroke` arrived as a map and was checked field by field (wrong types are
        # answered with invalid_arguments before this runs); the rest is checked here.
        room, board = board_of(session)
        check_stroke(stroke)
        if board.points + len(stroke.points) > max_board_points:
            raise invalid("board_full", f"the board holds {max_board_points} points: clear it")
        saved = {"id": board.next_id, "by": session.id, **dataclasses.asdict(stroke)}
        board.next_id += 1
        board.points += len(stroke.points)
        board.strokes.append(saved)
        await server.emit("stroke", saved, to=room, skip=session.id)
        return saved["id"]  # the ack: the page marks its own piece as saved

    @server.on("clear")
    async def clear(session: eventsock.Session) -> int:
        room, board = board_of(session)
        removed = len(board.strokes)
        board.strokes.clear()
        board.points = 0
        await server.emit("cleared", session.id, to=room, skip=session.id)
        return removed

    @server.on("cursor")
    async def cursor(session: eventsock.Session, x: float, y: float) -> None:
        # Sent without an ack, many times a second: a cursor that does not fit is
        # dropped; volatile: a late position is worth nothing, so none is kept for replay.
        room = session.data.get("room")
        if room is None or not (0 <= x <= WIDTH and 0 <= y <= HEIGHT):
            return
        await server.emit("cursor", session.id, x, y, to=room, skip=session.id, volatile=True)

    @server.on("disconnect")
    async def disconnect(session: eventsock.Session, reason: str) -> None:
        await leave(session)
        # --8<-- [end:events]

    return server


# --8<-- [start:app]
SERVER = web.AppKey("server", eventsock.Server)
BUNDLE = web.AppKey("bundle", Path)


async def index(request: web.Request) -> web.StreamResponse:
    if not request.app[BUNDLE].is_file():
        return web.Response(
            status=503,
            text=f"The whiteboard page is not built yet. Build it with:\n\n    {BUILD_HINT}\n",
        )
    return web.FileResponse(HERE / "index.html")


async def bundle(request: web.Request) -> web.StreamResponse:
    path = request.app[BUNDLE]
    if request.path.endswith(".map"):
        path = path.with_name(path.name + ".map")
    if not path.is_file():
        raise web.HTTPNotFound(text=f"{path.name} is missing: {BUILD_HINT}")
    return web.FileResponse(path)


def create_app(server: eventsock.Server, bundle_path: Path) -> web.Application:
    app = web.Application()
    app[SERVER] = server
    app[BUNDLE] = bundle_path
    app.router.add_get("/", index)
    app.router.add_get("/bundle.js", bundle)
    app.router.add_get("/bundle.js.map", bundle)
    server.attach(app)  # GET /socket.io/ on the same host and port as the page
    return app
    # --8<-- [end:app]


async def main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    server = create_server(max_board_points=args.max_points, max_boards=args.max_boards)
    runner = web.AppRunner(create_app(server, args.bundle))
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    url = f"http://{args.host}:{runner.addresses[0][1]}"
    print(f"listening on {url}", flush=True)
    if args.bundle.is_file():
        print(f"open {url}/?room=lobby in two browser windows", flush=True)
    else:
        print(f"the page is not built (no {args.bundle}): {BUILD_HINT}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # closes the eventsock connections too


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--max-points", type=int, default=MAX_BOARD_POINTS, help="per board")
    parser.add_argument("--max-boards", type=int, default=MAX_BOARDS)
    parser.add_argument(
        "--bundle", type=Path, default=HERE / "dist" / "bundle.js", help="the built page script"
    )
    asyncio.run(main(parser.parse_args()))
