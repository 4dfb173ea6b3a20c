"""Typed handlers: annotations turned, once, into converters of event arguments.

:func:`converter_for` reads a type annotation and returns a function that checks a
value decoded from msgpack and converts it to that type (a ``list`` to a ``tuple``, a
map to a dataclass or a pydantic model), raising :class:`Mismatch` with a path and a
reason when it does not fit. It is built when a handler is registered; at dispatch
only the converters run. ``None`` stands for "no conversion": unannotated parameters,
``Any`` and ``object``.

:func:`encoder_for` does the opposite for return annotations: dataclasses and
pydantic models become maps, nested ones included.

Supported: ``str``, ``bytes``, ``int`` (not ``bool``), ``float`` (an ``int`` is
accepted), ``bool``, ``None``, ``list[...]``, ``tuple[...]`` (both forms), ``dict[...]``,
``set[...]`` and ``frozenset[...]`` (from arrays), ``Optional``/unions (the first
alternative that fits wins), ``Literal``, ``Enum`` subclasses (by value), dataclasses,
``TypedDict``, and pydantic models when pydantic is installed. Anything else is refused
at registration with :class:`TypeError`, never half-checked at run time.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, Final, Literal, Union

from .exceptions import InvalidArguments, InvalidResult

__all__ = ["Converter", "Mismatch", "as_result", "converter_for", "describe", "encoder_for"]

Converter = Callable[[Any], Any]


class Mismatch(ValueError):
    """A value does not fit its annotation; ``path`` says where (``"[2].name"``)."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def at(self, step: str) -> Mismatch:
        """The same mismatch, one level further out."""
        return Mismatch(self.reason, step + self.path)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


_NO_CONVERSION: Final = (Any, object)


def describe(annotation: Any) -> str:
    """An annotation in words, for error messages."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _type_name(value: Any) -> str:
    return type(value).__name__


def converter_for(annotation: Any) -> Converter | None:
    """The converter for ``annotation``, or ``None`` when values pass untouched.

    Raises:
        TypeError: the annotation is not one of the supported kinds.
    """
    if annotation in _NO_CONVERSION or annotation is typing.Any:
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is None or annotation is type(None):
        return _exact_none
    if annotation is bool:
        return _exact(bool)
    if annotation is int:
        return _int
    if annotation is float:
        return _float
    if annotation is str:
        return _exact(str)
    if annotation is bytes:
        return _exact(bytes)
    if origin is Union or origin is types.UnionType:
        return _union(annotation, [converter_for(arg) for arg in args])
    if origin is Literal:
        return _literal(args)
    if origin in (collections.abc.AsyncIterator, collections.abc.AsyncIterable):
        return _upload(converter_for(args[0]) if args else None, annotation)
    if origin in (list, typing.List) or annotation is list:  # noqa: UP006
        return _sequence(list, converter_for(args[0]) if args else None, annotation)
    if origin in (set, frozenset) or annotation in (set, frozenset):
        kind = origin or annotation
        return _sequence(kind, converter_for(args[0]) if args else None, annotation)
    if origin is tuple or annotation is tuple:
        return _tuple(args, annotation)
    if origin is dict or annotation is dict:
        key = converter_for(args[0]) if args else None
        value = converter_for(args[1]) if args else None
        return _mapping(key, value, annotation)
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return _enum(annotation)
        if dataclasses.is_dataclass(annotation):
            return _dataclass(annotation)
        if _is_typeddict(annotation):
            return _typeddict(annotation)
        if _is_pydantic_model(annotation):
            return _pydantic(annotation)
    raise TypeError(f"cannot convert event arguments to {describe(annotation)}")


def _exact(kind: type) -> Converter:
    def convert(value: Any) -> Any:
        if type(value) is not kind:
            raise Mismatch(f"expected {kind.__name__}, got {_type_name(value)}")
        return value

    return convert


def _exact_none(value: Any) -> Any:
    if value is not None:
        raise Mismatch(f"expected None, got {_type_name(value)}")
    return None


def _int(value: Any) -> Any:
    if type(value) is not int:
        raise Mismatch(f"expected int, got {_type_name(value)}")
    return value


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    raise Mismatch(f"expected float, got {_type_name(value)}")


def _union(annotation: Any, alternatives: list[Converter | None]) -> Converter | None:
    if any(alt is None for alt in alternatives):
        return None  # Any among them: anything fits

    def convert(value: Any) -> Any:
        for alt in alternatives:
            try:
                return alt(value)  # type: ignore[misc]
            except Mismatch:
                continue
        raise Mismatch(f"expected {describe(annotation)}, got {_type_name(value)}")

    return convert


def _literal(choices: tuple[Any, ...]) -> Converter:
    allowed = [(type(choice), choice) for choice in choices]

    def convert(value: Any) -> Any:
        for kind, choice in allowed:
            if type(value) is kind and value == choice:
                return value
        raise Mismatch(f"expected one of {list(choices)!r}, got {value!r}")

    return convert


def _sequence(kind: type, item: Converter | None, annotation: Any) -> Converter:
    def convert(value: Any) -> Any:
        if type(value) is not list and type(value) is not tuple:
            raise Mismatch(f"expected {describe(annotation)}, got {_type_name(value)}")
        if item is None:
            return value if kind is list and type(value) is list else kind(value)
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except Mismatch as exc:
                raise exc.at(f"[{index}]") from None
        return out if kind is list else kind(out)

    return convert


def _upload(item: Converter | None, annotation: Any) -> Converter:
    """A stream passed as an argument (an upload): its items are checked as they come;
    one that does not fit raises :class:`InvalidArguments` in the handler's loop."""

    def convert(value: Any) -> Any:
        if not hasattr(type(value), "__aiter__"):
            raise Mismatch(f"expected a stream ({describe(annotation)}), got {_type_name(value)}")
        return value if item is None else _checked_items(value, item)

    return convert


async def _checked_items(source: Any, item: Converter) -> Any:
    index = 0
    try:
        async for value in source:
            try:
                yield item(value)
            except Mismatch as exc:
                raise InvalidArguments(
                    f"item {index} of the stream{exc.path}: {exc.reason}",
                    data={"item": index, "path": exc.path, "reason": exc.reason},
                ) from None
            index += 1
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def _tuple(args: tuple[Any, ...], annotation: Any) -> Converter:
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        return _sequence(tuple, converter_for(args[0]) if args else None, annotation)
    items = [converter_for(arg) for arg in args]

    def convert(value: Any) -> Any:
        if type(value) is not list and type(value) is not tuple:
            raise Mismatch(f"expected {describe(annotation)}, got {_type_name(value)}")
        if len(value) != len(items):
            raise Mismatch(f"expected {len(items)} items, got {len(value)}")
        out = []
        for index, (item, element) in enumerate(zip(items, value, strict=True)):
            try:
                out.append(element if item is None else item(element))
            except Mismatch as exc:
                raise exc.at(f"[{index}]") from None
        return tuple(out)

    return convert


def _mapping(key: Converter | None, value: Converter | None, annotation: Any) -> Converter:
    def convert(data: Any) -> Any:
        if type(data) is not dict:
            raise Mismatch(f"expected {describe(annotation)}, got {_type_name(data)}")
        if key is None and value is None:
            return data
        out = {}
        for k, v in data.items():
            try:
                k2 = k if key is None else key(k)
            except Mismatch as exc:
                raise exc.at(f"[{k!r}] (key)") from None
            try:
                out[k2] = v if value is None else value(v)
            except Mismatch as exc:
                raise exc.at(f"[{k!r}]") from None
        return out

    return convert


def _enum(kind: type[enum.Enum]) -> Converter:
    def convert(value: Any) -> Any:
        try:
            return kind(value)
        except ValueError:
            raise Mismatch(f"{value!r} is not a valid {kind.__name__}") from None

    return convert


def _fields(owner: type, hints: dict[str, Any], names: list[str]) -> list[tuple[str, Any]]:
    plan = []
    for name in names:
        try:
            plan.append((name, converter_for(hints[name])))
        except TypeError as exc:
            raise TypeError(f"{owner.__name__}.{name}: {exc}") from None
    return plan


def _dataclass(kind: type) -> Converter:
    hints = typing.get_type_hints(kind)
    fields = [f for f in dataclasses.fields(kind) if f.init]
    converters = _fields(kind, hints, [f.name for f in fields])
    plan = tuple(
        (
            name,
            convert,
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING,
        )
        for (name, convert), field in zip(converters, fields, strict=True)
    )
    label = kind.__name__

    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise Mismatch(f"expected a map for {label}, got {_type_name(value)}")
        given = {}
        for name, field, required in plan:
            if name not in value:
                if required:
                    missing = [n for n, _, r in plan if r and n not in value]
                    raise Mismatch(f"{label} is missing {', '.join(missing)}")
                continue
            if field is None:
                given[name] = value[name]
                continue
            try:
                given[name] = field(value[name])
            except Mismatch as exc:
                raise exc.at(f".{name}") from None
        return kind(**given)

    return convert


def _is_typeddict(kind: type) -> bool:
    return typing.is_typeddict(kind)


def _typeddict(kind: type) -> Converter:
    hints = typing.get_type_hints(kind)
    plan = _fields(kind, hints, list(hints))
    required: frozenset[str] = getattr(kind, "__required_keys__", frozenset(hints))

    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise Mismatch(f"expected a map for {kind.__name__}, got {_type_name(value)}")
        missing = [name for name in required if name not in value]
        if missing:
            raise Mismatch(f"{kind.__name__} is missing {', '.join(sorted(missing))}")
        out = dict(value)
        for name, field in plan:
            if name in value and field is not None:
                try:
                    out[name] = field(value[name])
                except Mismatch as exc:
                    raise exc.at(f".{name}") from None
        return out

    return convert


def _is_pydantic_model(kind: type) -> bool:
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None) if pydantic is not None else None
    return base is not None and issubclass(kind, base)


def _pydantic(kind: type) -> Converter:
    import pydantic

    def convert(value: Any) -> Any:
        try:
            return kind.model_validate(value)  # type: ignore[attr-defined]
        except pydantic.ValidationError as exc:
            errors = exc.errors()
            if not errors:
                raise Mismatch(f"{kind.__name__}: {exc}") from None
            first = errors[0]
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
            raise Mismatch(f"{kind.__name__}: {first['msg']}", where) from None

    return convert


def encoder_for(annotation: Any) -> Callable[[Any], Any] | None:
    """How to turn a handler's return value into msgpack-ready data, or ``None`` when
    nothing in ``annotation`` needs it (no dataclass, no pydantic model)."""
    if not _needs_encoding(annotation):
        return None
    return to_wire


def _needs_encoding(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return dataclasses.is_dataclass(annotation) or _is_pydantic_model(annotation)
    return any(_needs_encoding(arg) for arg in typing.get_args(annotation))


def to_wire(value: Any) -> Any:
    """``value`` with dataclasses and pydantic models turned into maps, recursively."""
    kind = type(value)
    if kind in (str, int, float, bool, bytes) or value is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if dump is not None and _is_pydantic_model(kind):
        return dump(mode="python")
    if kind is list or kind is tuple:
        return [to_wire(item) for item in value]
    if kind is dict:
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    return value


_result_converters: dict[Any, Converter | None] = {}


def as_result(value: Any, annotation: Any) -> Any:
    """``value`` (a call's answer) converted to ``annotation``; the plan is built on
    first use of each annotation and kept.

    Raises:
        InvalidResult: the answer does not fit.
        TypeError: the annotation is not a supported kind.
    """
    try:
        convert = _result_converters[annotation]
    except KeyError:
        convert = _result_converters[annotation] = converter_for(annotation)
    except TypeError:  # an unhashable annotation: no cache
        convert = converter_for(annotation)
    if convert is None:
        return value
    try:
        return convert(value)
    except Mismatch as exc:
        raise InvalidResult(
            f"the answer does not fit {describe(annotation)}: {exc}", value
        ) from None
