"""Typed handlers: annotations checked and converted on arrival, results encoded,
call(result=...) checked, plans built once at registration."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Literal, Optional, TypedDict, Union

import pydantic
import pytest

import eventsock
from eventsock import Session
from eventsock.convert import Mismatch, converter_for, to_wire

from .helpers import connected, serving

pytestmark = pytest.mark.timeout(30)


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Stroke:
    color: str
    points: list[Point]
    width: int = 1


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Options(TypedDict, total=False):
    limit: int
    tags: list[str]


class User(pydantic.BaseModel):
    id: int
    name: str


def convert(annotation: Any, value: Any) -> Any:
    converter = converter_for(annotation)
    assert converter is not None
    return converter(value)


def mismatch(annotation: Any, value: Any) -> Mismatch:
    with pytest.raises(Mismatch) as raised:
        convert(annotation, value)
    return raised.value


def test_builtins() -> None:
    assert convert(str, "a") == "a"
    assert convert(bytes, b"\x00") == b"\x00"
    assert convert(int, 3) == 3
    assert convert(bool, True) is True
    assert convert(None, None) is None
    result = convert(float, 2)
    assert result == 2.0
    assert type(result) is float
    assert "expected int, got bool" in str(mismatch(int, True))  # bool is not an int here
    assert "expected float, got str" in str(mismatch(float, "1.5"))
    assert "expected str, got bytes" in str(mismatch(str, b"a"))
    assert "expected bool, got int" in str(mismatch(bool, 1))
    for passthrough in (Any, object):
        assert converter_for(passthrough) is None


def test_containers() -> None:
    assert convert(list[int], [1, 2]) == [1, 2]
    assert convert(list, [1, "a"]) == [1, "a"]
    assert convert(tuple[int, ...], [1, 2]) == (1, 2)
    assert convert(tuple[int, str], [1, "a"]) == (1, "a")
    assert convert(set[str], ["a", "a"]) == {"a"}
    assert convert(frozenset[int], [1]) == frozenset({1})
    assert convert(dict[str, list[float]], {"a": [1, 2.5]}) == {"a": [1.0, 2.5]}
    assert str(mismatch(list[int], [1, "x"])) == "[1]: expected int, got str"
    assert str(mismatch(dict[str, int], {"a": "b"})) == "['a']: expected int, got str"
    assert "expected 2 items, got 1" in str(mismatch(tuple[int, str], [1]))
    assert "expected list[int], got dict" in str(mismatch(list[int], {}))


def test_unions_literals_and_enums() -> None:
    assert convert(Optional[int], None) is None  # noqa: UP045 - both spellings work
    assert convert(int | None, 3) == 3
    assert convert(Union[int, str], "a") == "a"  # noqa: UP007
    assert "expected int | None" in str(mismatch(int | None, "a"))
    assert convert(Literal["a", 1], 1) == 1
    assert "expected one of ['a', 1], got True" in str(mismatch(Literal["a", 1], True))
    assert convert(Color, "red") is Color.RED
    assert "'green' is not a valid Color" in str(mismatch(Color, "green"))


def test_dataclasses_typeddicts_and_models() -> None:
    stroke = convert(Stroke, {"color": "red", "points": [{"x": 1, "y": 2.5}], "extra": 1})
    assert stroke == Stroke("red", [Point(1.0, 2.5)], 1)
    assert str(mismatch(Stroke, {"color": "red", "points": [{"x": 1}]})) == (
        ".points[0]: Point is missing y"
    )
    assert str(mismatch(Stroke, {"color": 5, "points": []})) == ".color: expected str, got int"
    assert "expected a map for Point, got list" in str(mismatch(Point, [1, 2]))
    assert convert(Options, {"limit": 3, "other": True}) == {"limit": 3, "other": True}
    assert str(mismatch(Options, {"tags": ["a", 2]})) == ".tags[1]: expected str, got int"
    assert convert(User, {"id": 7, "name": "ada"}) == User(id=7, name="ada")
    failure = mismatch(User, {"id": "seven", "name": "ada"})
    assert failure.path == ".id"
    assert "User" in failure.reason


def test_results_become_maps() -> None:
    assert to_wire(Stroke("red", [Point(1, 2)])) == {
        "color": "red",
        "points": [{"x": 1, "y": 2}],
        "width": 1,
    }
    assert to_wire([User(id=1, name="a")]) == [{"id": 1, "name": "a"}]
    assert to_wire({"c": Color.BLUE, "t": (1, 2)}) == {"c": "blue", "t": [1, 2]}


class Opaque:
    """Not a kind of value msgpack brings."""


def test_unsupported_annotations_fail_at_registration() -> None:
    server = eventsock.Server()

    with pytest.raises(eventsock.InvalidHandler, match="cannot convert event arguments"):

        @server.on("bad")
        def bad(session: Session, value: Opaque) -> None: ...


def test_unresolvable_annotations_are_not_checked(caplog: pytest.LogCaptureFixture) -> None:
    # a name the handler's module cannot see (imported under TYPE_CHECKING, say): the
    # parameter passes as it arrives, with a warning at registration; the leading
    # session parameter's annotation is never read at all
    server = eventsock.Server()

    def unresolved(session: NotThere, value: NoSuchType, count: int) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with caplog.at_level("WARNING", logger="eventsock"):
        server.on("unresolved", unresolved)
    assert "'value'" in caplog.text
    assert "cannot be resolved" in caplog.text
    assert "NotThere" not in caplog.text
    handler, _ = server.lookup("/", "unresolved")
    assert handler is not None
    assert handler.params is not None
    assert [(name, convert is None) for name, _, convert in handler.params] == [
        ("value", True),
        ("count", False),
    ]


def typed_server() -> eventsock.Server:
    server = eventsock.Server()

    @server.on("draw")
    def draw(session: Session, stroke: Stroke, note) -> Stroke:  # type: ignore[no-untyped-def]
        assert isinstance(stroke, Stroke)
        assert all(isinstance(p, Point) for p in stroke.points)
        session.data["note"] = note  # unannotated: passed as it arrived
        return dataclasses.replace(stroke, width=stroke.width * 2)

    @server.on("user")
    async def user(session: Session, user_id: int) -> User:
        return User(id=user_id, name=f"user {user_id}")

    @server.on("total")
    def total(session: Session, *amounts: float) -> float:
        return sum(amounts)

    @server.on("*")
    def anything(session: Session, event: str, count: int) -> str:
        return f"{event} x{count}"

    @server.on("raw")
    def raw(session: Session, value: Any) -> Any:
        return value

    return server


async def test_typed_server_handlers_end_to_end(no_leaks: None) -> None:
    server = typed_server()
    async with serving(server) as url, connected(url) as client:
        drawn = {"color": "red", "points": [{"x": 1, "y": 2}], "width": 2}
        assert await client.call("draw", drawn, {"free": [1]}) == {
            "color": "red",
            "points": [{"x": 1.0, "y": 2.0}],
            "width": 4,
        }
        assert await client.call("draw", drawn, None, result=Stroke) == Stroke(
            "red", [Point(1.0, 2.0)], 4
        )
        with pytest.raises(eventsock.InvalidArguments) as raised:
            await client.call("draw", {"color": "red", "points": [{"x": "one", "y": 2}]}, None)
        assert raised.value.data == {
            "argument": "stroke",
            "path": ".points[0].x",
            "expected": "Stroke",
            "reason": "expected float, got str",
        }
        assert raised.value.message == "argument 'stroke'.points[0].x: expected float, got str"
        assert await client.call("user", 7) == {"id": 7, "name": "user 7"}
        assert await client.call("user", 7, result=User) == User(id=7, name="user 7")
        with pytest.raises(eventsock.InvalidArguments, match="argument 'user_id': expected int"):
            await client.call("user", "7")
        assert await client.call("total", 1, 2.5, 3) == 6.5
        with pytest.raises(eventsock.InvalidArguments, match="argument 'amounts'"):
            await client.call("total", 1, "2")
        assert await client.call("whatever", 3) == "whatever x3"
        with pytest.raises(eventsock.InvalidArguments, match="argument 'count'"):
            await client.call("whatever", "3")
        assert await client.call("raw", {"any": b"thing"}) == {"any": b"thing"}
        with pytest.raises(eventsock.InvalidResult, match="does not fit Stroke") as bad:
            await client.call("raw", {"color": 1}, result=Stroke)
        assert bad.value.value == {"color": 1}
        assert await client.call("raw", [1, 2], result=tuple[int, int]) == (1, 2)


async def test_typed_client_handlers(no_leaks: None) -> None:
    server = eventsock.Server()
    async with serving(server) as url:
        client = eventsock.Client()

        @client.on("locate")
        def locate(point: Point) -> list[Point]:
            return [point, Point(point.x + 1, point.y)]

        await client.connect(url, timeout=5)
        sid = client.sid
        assert sid is not None
        assert await server.call("locate", {"x": 0, "y": 1}, to=sid, timeout=5) == [
            {"x": 0.0, "y": 1.0},
            {"x": 1.0, "y": 1.0},
        ]
        session = server._sessions[sid]
        assert await session.call("locate", {"x": 0, "y": 1}, timeout=5, result=list[Point]) == [
            Point(0.0, 1.0),
            Point(1.0, 1.0),
        ]
        with pytest.raises(eventsock.InvalidArguments, match="Point is missing y"):
            await session.call("locate", {"x": 0}, timeout=5)
        await client.disconnect()


def test_plans_are_built_once_at_registration() -> None:
    server = typed_server()
    handler, _ = server.lookup("/", "draw")
    assert handler is not None
    assert handler.params is not None
    assert [name for name, _, _ in handler.params] == ["stroke", "note"]
    assert handler.params[1][2] is None  # unannotated: no conversion
    assert handler.encode is not None
    untyped, _ = server.lookup("/", "raw")
    assert untyped is not None
    assert untyped.params is None  # Any everywhere: nothing to do at dispatch
