"""The public surface and the layering rules, checked."""

from __future__ import annotations

import ast
import pathlib

import eventsock

PACKAGE = pathlib.Path(eventsock.__file__).parent


def test_all_is_sorted_and_complete() -> None:
    assert eventsock.__all__ == sorted(eventsock.__all__)
    for name in eventsock.__all__:
        assert hasattr(eventsock, name), name
    # (pytest rewrites the asserts of packages with a pytest11 entry point, which adds
    # names such as "@py_builtins": not identifiers, never public)
    public = {n for n in vars(eventsock) if n.isidentifier() and not n.startswith("_")}
    modules = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.parent.name for p in PACKAGE.glob("*/__init__.py")
    }
    assert public - modules - {"annotations"} == set(eventsock.__all__)


def test_one_exception_tree() -> None:
    for name in eventsock.__all__:
        obj = getattr(eventsock, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, eventsock.EventsockError), name
            assert obj.__doc__, f"{name} says when it is raised"
    assert issubclass(eventsock.AckTimeout, TimeoutError)
    assert issubclass(eventsock.NotConnected, eventsock.ConnectionClosed)


def imports_of(path: pathlib.Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_only_transport_imports_aiohttp_and_only_codec_imports_msgpack() -> None:
    for path in PACKAGE.rglob("*.py"):
        imported = imports_of(path)
        if path.name != "redis.py":
            assert "redis" not in imported, path.name
    for path in PACKAGE.glob("*.py"):
        imported = imports_of(path)
        if path.stem != "transport":
            assert "aiohttp" not in imported or path.stem == "server", path.name
        if path.stem != "codec":
            assert "msgpack" not in imported, path.name


def test_server_names_aiohttp_for_annotations_only() -> None:
    tree = ast.parse((PACKAGE / "server.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []  # imports for annotations only
    found = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("aiohttp")
    ]
    assert found == []


def test_the_protocol_core_does_no_io() -> None:
    core = ("packets", "codec", "protocol", "frames", "handlers", "rooms", "exceptions", "limits")
    for stem in core:
        imported = imports_of(PACKAGE / f"{stem}.py")
        assert not imported & {"asyncio", "aiohttp", "socket", "ssl"}, stem
