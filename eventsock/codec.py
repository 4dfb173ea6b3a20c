"""Packets to bytes and back: the only module that imports msgpack.

Socket.IO packets travel as one msgpack map per binary WebSocket frame (the
socket.io-msgpack-parser format); Engine.IO control packets travel as short text
frames. Peer quirks handled here, from the wire reference:

* Node's ``undefined`` arrives as ext type 0 with the single byte ``00``: it is read as
  "absent" for packet fields and map values, and as ``None`` inside arrays.
* Node typed arrays arrive as ext type 0 with their bytes: they are read as ``bytes``.
  (A one-byte typed array holding 0 is indistinguishable from ``undefined``.)
* Every other extension type is refused.
* Unknown keys (the JS client's ``options``) are ignored and key order is irrelevant.
* python-socketio writes ``data: nil`` on DISCONNECT; it is accepted, never sent.

Sizes: a frame is bounded by ``max_payload`` before it gets here, and msgpack bounds
every string, bin and ext by the frame's length, every array by it (one byte per item
at least) and every map by half of it, so a header that claims more is refused before
anything is allocated; nesting stops at msgpack's 1,024 levels.

msgpack's own timestamp (ext type -1) is decoded by msgpack before any hook sees it, so
it is refused after the fact: a frame in which its header bytes appear (rare outside
random binary data) has its decoded value searched for one.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Any, Final

import msgpack

from .exceptions import EncodeError, ProtocolError
from .packets import (
    MAX_ACK_ID,
    Ack,
    Close,
    Connect,
    ConnectError,
    Disconnect,
    EngineMessage,
    EnginePacket,
    Event,
    Noop,
    Open,
    Packet,
    Ping,
    Pong,
)

__all__ = [
    "PING_FRAME",
    "pack_map",
    "unpack_map",
    "PONG_FRAME",
    "decode_open",
    "decode_packet",
    "decode_text_frame",
    "encode_ack",
    "encode_event",
    "encode_open",
    "encode_packet",
]

PING_FRAME: Final = "2"
PONG_FRAME: Final = "3"


class _Undefined:
    """Stands for Node's ``undefined`` while a packet is being decoded."""

    __slots__ = ()


_UNDEFINED: Final = _Undefined()
_UNDEFINED_EXT: Final = b"\x00"


# How many ``undefined`` values the ext hook has met, ever: a decode that moved it has
# some to strip. (Only ever incremented, so a decode in another thread can at worst
# cause one needless walk, never a missed one.)
_undefined_seen = 0


def _ext_hook(code: int, data: bytes) -> object:
    global _undefined_seen
    if code != 0:
        raise ProtocolError(f"msgpack extension type {code} is not accepted")
    if data == _UNDEFINED_EXT:
        _undefined_seen += 1
        return _UNDEFINED
    return bytes(data)


_local = threading.local()


def _pack(obj: object) -> bytes:
    """msgpack bytes of ``obj`` (``bytes`` as bin), from this thread's own Packer:
    making a Packer per call, as ``msgpack.packb`` does, costs as much as packing."""
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True, autoreset=True)
    return packer.pack(obj)  # type: ignore[no-any-return]


def _strip_undefined(value: Any) -> Any:
    """Replace ``undefined`` by ``None`` in arrays and drop it from maps, recursively."""
    if type(value) is list:
        return [None if item is _UNDEFINED else _strip_undefined(item) for item in value]
    if type(value) is dict:
        return {k: _strip_undefined(v) for k, v in value.items() if v is not _UNDEFINED}
    return value


def decode_packet(payload: bytes) -> Packet:
    """Decode one Engine.IO message (a whole msgpack map) into a Socket.IO packet.

    Raises:
        ProtocolError: the bytes are not msgpack, not a packet map, or a field is wrong.
    """
    seen = _undefined_seen
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=False, ext_hook=_ext_hook)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ProtocolError(f"invalid msgpack ({detail})") from exc
    if type(obj) is not dict:
        raise ProtocolError(f"a packet must be a msgpack map, not {type(obj).__name__}")
    # Every timestamp header ends in 0xff, which most packets lack: one memchr for
    # the byte (an int operand: ``bytes in bytes`` first tries its operand as an int,
    # and raises, formats and discards a TypeError each time), then the headers.
    if 0xFF in payload and (
        payload.find(_TIMESTAMP_HEADERS[0]) != -1
        or payload.find(_TIMESTAMP_HEADERS[1]) != -1
        or payload.find(_TIMESTAMP_HEADERS[2]) != -1
    ):
        _refuse_timestamps(obj)
    if _undefined_seen != seen:
        try:
            obj = _strip_undefined(obj)
        except RecursionError:
            # msgpack takes deeper nesting than Python's stack: refuse it, not crash
            raise ProtocolError("packet nested too deeply") from None
    try:
        return _packet_from_map(obj)
    except ValueError as exc:
        raise ProtocolError(f"invalid packet: {exc}") from exc


# The headers of msgpack's timestamps (ext type -1): fixext 4, fixext 8, ext 8 of 12.
_TIMESTAMP_HEADERS: Final = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")


def _refuse_timestamps(obj: Any) -> None:
    """Raise ProtocolError if a msgpack Timestamp is anywhere in ``obj`` (no recursion:
    the nesting is msgpack's, up to 1,024 levels)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is list:
            stack.extend(value)
        elif kind is dict:
            stack.extend(value)
            stack.extend(value.values())
        elif kind is msgpack.Timestamp:
            raise ProtocolError("msgpack extension type -1 (timestamp) is not accepted")


_new: Final = object.__new__


def _packet_from_map(obj: dict[Any, Any]) -> Packet:
    ptype = obj.get("type")
    if type(ptype) is not int:
        raise ValueError("missing or non-integer 'type'")
    if "nsp" not in obj:
        raise ValueError("missing 'nsp'")
    nsp = obj["nsp"]
    data = obj.get("data")
    ack_id = obj.get("id")
    if ptype == 2:
        if type(data) is not list or not data:
            raise ValueError("EVENT data must be a non-empty array")
        name = data[0]
        if (
            type(name) is not str
            or type(nsp) is not str
            or (ack_id is not None and (type(ack_id) is not int or not 0 <= ack_id <= MAX_ACK_ID))
        ):
            return Event(name, tuple(data[1:]), nsp, ack_id)  # raises the ValueError
        # checked above as Event.__post_init__ checks: made without its three calls
        event = _new(Event)
        event.name = name
        event.args = tuple(data[1:])
        event.namespace = nsp
        event.id = ack_id
        return event
    if ptype == 3:
        if type(data) is not list:
            raise ValueError("ACK data must be an array")
        if ack_id is None:
            raise ValueError("ACK without 'id'")
        if type(nsp) is not str or type(ack_id) is not int or not 0 <= ack_id <= MAX_ACK_ID:
            return Ack(ack_id, tuple(data), nsp)  # raises the ValueError
        ack = _new(Ack)
        ack.id = ack_id
        ack.args = tuple(data)
        ack.namespace = nsp
        return ack
    if ptype == 0:
        return Connect(nsp, data)
    if ptype == 1:
        if data is not None:
            raise ValueError("DISCONNECT must not carry data")
        return Disconnect(nsp)
    if ptype == 4:
        if type(data) is dict:
            message = data.get("message", "")
            return ConnectError(
                message if type(message) is str else str(message), data.get("data"), nsp
            )
        if type(data) is str:
            return ConnectError(data, None, nsp)
        return ConnectError("", data, nsp)
    if ptype in (5, 6):
        raise ValueError("binary packet types 5 and 6 are not used with the msgpack parser")
    raise ValueError(f"unknown packet type {ptype}")


def encode_packet(packet: Packet) -> bytes:
    """Encode a Socket.IO packet as the msgpack map the msgpack parser expects.

    Keys are written in python-socketio's order (``type, data, nsp, id``); ``data`` only
    when there is a payload, ``id`` only when set.

    Raises:
        EncodeError: an argument is not a msgpack-encodable value.
    """
    obj: dict[str, Any]
    if type(packet) is Event:
        obj = {"type": 2, "data": [packet.name, *packet.args], "nsp": packet.namespace}
        if packet.id is not None:
            obj["id"] = packet.id
    elif type(packet) is Ack:
        obj = {"type": 3, "data": list(packet.args), "nsp": packet.namespace, "id": packet.id}
    elif type(packet) is Connect:
        obj = {"type": 0}
        if packet.data is not None:
            obj["data"] = packet.data
        obj["nsp"] = packet.namespace
    elif type(packet) is Disconnect:
        obj = {"type": 1, "nsp": packet.namespace}
    elif type(packet) is ConnectError:
        error: dict[str, Any] = {"message": packet.message}
        if packet.data is not None:
            error["data"] = packet.data
        obj = {"type": 4, "data": error, "nsp": packet.namespace}
    else:
        raise TypeError(f"not a Socket.IO packet: {packet!r}")
    try:
        return _pack(obj)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode packet arguments as msgpack: {exc}") from exc


def encode_event(
    name: str, args: tuple[Any, ...], namespace: str, ack_id: int | None = None
) -> bytes:
    """``encode_packet(Event(name, args, namespace, ack_id))`` without building the
    packet: the hot path, for callers whose name, namespace and id are already valid.

    Raises:
        EncodeError: an argument is not a msgpack-encodable value.
    """
    obj: dict[str, Any] = {"type": 2, "data": [name, *args], "nsp": namespace}
    if ack_id is not None:
        obj["id"] = ack_id
    try:
        return _pack(obj)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode packet arguments as msgpack: {exc}") from exc


def encode_ack(ack_id: int, args: tuple[Any, ...], namespace: str) -> bytes:
    """``encode_packet(Ack(ack_id, args, namespace))`` without building the packet.

    Raises:
        EncodeError: an argument is not a msgpack-encodable value.
    """
    obj = {"type": 3, "data": list(args), "nsp": namespace, "id": ack_id}
    try:
        return _pack(obj)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode ack arguments as msgpack: {exc}") from exc


def encode_open(packet: Open) -> str:
    """The Engine.IO open frame; durations become whole milliseconds."""
    # the JSON json.dumps(..., separators=(",", ":")) makes, at a tenth of its cost
    return (
        f'0{{"sid":{json.dumps(packet.sid)},"upgrades":[],'
        f'"pingInterval":{round(packet.ping_interval * 1000)},'
        f'"pingTimeout":{round(packet.ping_timeout * 1000)},'
        f'"maxPayload":{int(packet.max_payload)}}}'
    )


def decode_open(text: str) -> Open:
    """Parse the server's open frame (``0{...}``).

    Raises:
        ProtocolError: it is not an open packet with the fields Engine.IO v4 requires.
    """
    if not text.startswith("0"):
        raise ProtocolError("the first frame from the server is not an Engine.IO open packet")
    try:
        info = json.loads(text[1:])
        sid = info["sid"]
        interval = info["pingInterval"]
        timeout = info["pingTimeout"]
        max_payload = info.get("maxPayload", 1_000_000)
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"invalid Engine.IO open packet: {exc}") from exc
    numbers = (interval, timeout, max_payload)
    if type(sid) is not str or not all(type(n) in (int, float) and n >= 0 for n in numbers):
        raise ProtocolError("invalid Engine.IO open packet: wrongly typed fields")
    return Open(sid, interval / 1000, timeout / 1000, int(max_payload))


_TEXT_PACKETS: Final[dict[str, EnginePacket]] = {
    "1": Close(),
    "2": Ping(),
    "3": Pong(),
    "6": Noop(),
}


def decode_text_frame(text: str) -> EnginePacket:
    """Decode an Engine.IO text frame other than the open packet.

    Raises:
        ProtocolError: empty frame, unknown type, or a JSON-parser text message.
    """
    packet = _TEXT_PACKETS.get(text)
    if packet is not None:
        return packet
    if not text:
        raise ProtocolError("empty text frame")
    kind = text[0]
    if kind == "b":
        try:
            return EngineMessage(base64.b64decode(text[1:], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError("invalid base64 binary message") from exc
    if kind == "4":
        raise ProtocolError(
            "text message received: this peer speaks the msgpack parser, not the JSON parser"
        )
    if kind in "0123456":
        raise ProtocolError(f"unexpected Engine.IO packet {text[:16]!r}")
    raise ProtocolError(f"not an Engine.IO packet: {text[:16]!r}")


def pack_map(obj: dict[str, Any]) -> bytes:
    """Encode a map (a cluster envelope) as msgpack, ``bytes`` as bin.

    Raises:
        EncodeError: a value cannot be encoded.
    """
    try:
        return _pack(obj)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode as msgpack: {exc}") from exc


def unpack_map(data: bytes) -> dict[Any, Any]:
    """Decode one msgpack map; extension types are refused (never pickle, never code).

    Raises:
        ProtocolError: the bytes are not one msgpack map.
    """
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_no_ext)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"invalid msgpack ({type(exc).__name__}: {exc})") from exc
    if type(obj) is not dict:
        raise ProtocolError(f"expected a msgpack map, not {type(obj).__name__}")
    _refuse_timestamps(obj)
    return obj


def _no_ext(code: int, data: bytes) -> object:
    raise ProtocolError(f"msgpack extension type {code} is not accepted")
