"""Messages between the server nodes of a cluster: typed, versioned envelopes.

An envelope is one msgpack map with a version ``v``, a ``kind``, the id of the ``node``
that sent it, and the fields of its kind. Event arguments travel as msgpack values, so
bytes arrive as bytes and several arguments stay several. Nothing is pickled. A node
that receives an envelope of another version, or one that does not decode, logs a
warning and goes on (see :func:`decode_envelope`).

Kinds:

- ``emit``: deliver an event to the local sessions in rooms ``to`` (all when absent),
  except those in ``skip``;
- ``rooms``: make the local sessions in ``to`` enter or leave ``room``, close
  ``room``, or disconnect the sessions in ``to``;
- ``call``: call the local sessions in ``to`` and reply with their acks;
- ``query``: reply with the local sessions (with rooms and data) in a room;
- ``node_event``: an event between servers, with a reply when ``request`` is set;
- ``reply``: the answer to a request, sent to the node that asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from .codec import pack_map, unpack_map
from .exceptions import ProtocolError

__all__ = [
    "VERSION",
    "CallEnvelope",
    "EmitEnvelope",
    "Envelope",
    "NodeEventEnvelope",
    "QueryEnvelope",
    "ReplyEnvelope",
    "RoomsEnvelope",
    "decode_envelope",
    "encode_envelope",
]

VERSION: Final = 1

RoomOp = Literal["enter", "leave", "close", "disconnect"]
_ROOM_OPS: Final = frozenset({"enter", "leave", "close", "disconnect"})


@dataclass(frozen=True, slots=True)
class EmitEnvelope:
    namespace: str
    event: str
    args: tuple[Any, ...]
    to: tuple[str, ...] | None
    skip: tuple[str, ...]
    volatile: bool = False


@dataclass(frozen=True, slots=True)
class RoomsEnvelope:
    namespace: str
    op: RoomOp
    to: tuple[str, ...] | None
    room: str | None = None


@dataclass(frozen=True, slots=True)
class CallEnvelope:
    request: int
    namespace: str
    to: tuple[str, ...] | None
    event: str
    args: tuple[Any, ...]
    timeout: float


@dataclass(frozen=True, slots=True)
class QueryEnvelope:
    request: int
    namespace: str
    room: str | None


@dataclass(frozen=True, slots=True)
class NodeEventEnvelope:
    request: int | None
    event: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ReplyEnvelope:
    request: int
    results: tuple[Any, ...]


Envelope = (
    EmitEnvelope | RoomsEnvelope | CallEnvelope | QueryEnvelope | NodeEventEnvelope | ReplyEnvelope
)


def _rooms(value: tuple[str, ...] | None) -> list[str] | None:
    return None if value is None else list(value)


def encode_envelope(node: str, envelope: Envelope) -> bytes:
    """The msgpack bytes of ``envelope`` sent by ``node``.

    Raises:
        EncodeError: an argument cannot be encoded.
    """
    body: dict[str, Any] = {"v": VERSION, "node": node}
    match envelope:
        case EmitEnvelope():
            body |= {
                "kind": "emit",
                "ns": envelope.namespace,
                "event": envelope.event,
                "args": list(envelope.args),
                "to": _rooms(envelope.to),
                "skip": list(envelope.skip),
                "volatile": envelope.volatile,
            }
        case RoomsEnvelope():
            body |= {
                "kind": "rooms",
                "ns": envelope.namespace,
                "op": envelope.op,
                "to": _rooms(envelope.to),
                "room": envelope.room,
            }
        case CallEnvelope():
            body |= {
                "kind": "call",
                "request": envelope.request,
                "ns": envelope.namespace,
                "to": _rooms(envelope.to),
                "event": envelope.event,
                "args": list(envelope.args),
                "timeout": envelope.timeout,
            }
        case QueryEnvelope():
            body |= {
                "kind": "query",
                "request": envelope.request,
                "ns": envelope.namespace,
                "room": envelope.room,
            }
        case NodeEventEnvelope():
            body |= {
                "kind": "node_event",
                "request": envelope.request,
                "event": envelope.event,
                "args": list(envelope.args),
            }
        case ReplyEnvelope():
            body |= {
                "kind": "reply",
                "request": envelope.request,
                "results": list(envelope.results),
            }
    return pack_map(body)


def _str(body: dict[Any, Any], key: str) -> str:
    value = body.get(key)
    if type(value) is not str:
        raise ProtocolError(f"envelope field {key!r} must be a string")
    return value


def _opt_str(body: dict[Any, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and type(value) is not str:
        raise ProtocolError(f"envelope field {key!r} must be a string or nil")
    return value


def _int(body: dict[Any, Any], key: str) -> int:
    value = body.get(key)
    if type(value) is not int:
        raise ProtocolError(f"envelope field {key!r} must be an integer")
    return value


def _list(body: dict[Any, Any], key: str) -> list[Any]:
    value = body.get(key)
    if type(value) is not list:
        raise ProtocolError(f"envelope field {key!r} must be an array")
    return value


def _room_list(body: dict[Any, Any], key: str, *, optional: bool) -> tuple[str, ...] | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if type(value) is not list or not all(type(item) is str for item in value):
        raise ProtocolError(f"envelope field {key!r} must be an array of strings")
    return tuple(value)


def decode_envelope(data: bytes) -> tuple[str, Envelope]:
    """The sending node and the envelope in ``data``.

    Raises:
        ProtocolError: not an envelope of this version, or a field is wrong.
    """
    body = unpack_map(data)
    version = body.get("v")
    if version != VERSION:
        raise ProtocolError(f"envelope version {version!r} is not {VERSION}")
    node = _str(body, "node")
    kind = body.get("kind")
    envelope: Envelope
    if kind == "emit":
        envelope = EmitEnvelope(
            _str(body, "ns"),
            _str(body, "event"),
            tuple(_list(body, "args")),
            _room_list(body, "to", optional=True),
            _room_list(body, "skip", optional=False) or (),
            bool(body.get("volatile", False)),
        )
    elif kind == "rooms":
        op = body.get("op")
        if op not in _ROOM_OPS:
            raise ProtocolError(f"unknown rooms operation {op!r}")
        envelope = RoomsEnvelope(
            _str(body, "ns"), op, _room_list(body, "to", optional=True), _opt_str(body, "room")
        )
    elif kind == "call":
        timeout = body.get("timeout")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
            raise ProtocolError("envelope field 'timeout' must be a non-negative number")
        envelope = CallEnvelope(
            _int(body, "request"),
            _str(body, "ns"),
            _room_list(body, "to", optional=True),
            _str(body, "event"),
            tuple(_list(body, "args")),
            float(timeout),
        )
    elif kind == "query":
        envelope = QueryEnvelope(_int(body, "request"), _str(body, "ns"), _opt_str(body, "room"))
    elif kind == "node_event":
        request = body.get("request")
        if request is not None and type(request) is not int:
            raise ProtocolError("envelope field 'request' must be an integer or nil")
        envelope = NodeEventEnvelope(request, _str(body, "event"), tuple(_list(body, "args")))
    elif kind == "reply":
        envelope = ReplyEnvelope(_int(body, "request"), tuple(_list(body, "results")))
    else:
        raise ProtocolError(f"unknown envelope kind {kind!r}")
    return node, envelope
