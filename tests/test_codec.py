"""Golden bytes, both ways, for every packet; peer quirks; decoder refusals."""

from __future__ import annotations

import pytest

from eventsock import EncodeError, ProtocolError
from eventsock.codec import (
    decode_open,
    decode_packet,
    decode_text_frame,
    encode_open,
    encode_packet,
)
from eventsock.packets import (
    Ack,
    Close,
    Connect,
    ConnectError,
    Disconnect,
    EngineMessage,
    Event,
    Noop,
    Open,
    Ping,
    Pong,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# (packet, the bytes eventsock sends) — the first three are protocol.md §8 a to c.
GOLDEN = [
    (
        Connect("/", {"token": "abc"}),
        h("83 a4 74 79 70 65 00 a4 64 61 74 61 81 a5 74 6f 6b 65 6e a3 61 62 63 a3 6e 73 70 a1 2f"),
    ),
    (
        Event("chat", ("hi", b"\x00\x01"), "/room", 7),
        h(
            "84 a4 74 79 70 65 02 a4 64 61 74 61 93 a4 63 68 61 74 a2 68 69 c4 02 00 01"
            "a3 6e 73 70 a5 2f 72 6f 6f 6d a2 69 64 07"
        ),
    ),
    (
        Ack(7, (True,), "/room"),
        h("84 a4 74 79 70 65 03 a4 64 61 74 61 91 c3 a3 6e 73 70 a5 2f 72 6f 6f 6d a2 69 64 07"),
    ),
    # DISCONNECT as the JS client sends it: no data key at all.
    (Disconnect("/"), h("82 a4 74 79 70 65 01 a3 6e 73 70 a1 2f")),
    # CONNECT without auth: no data key (never nil).
    (Connect("/room"), h("82 a4 74 79 70 65 00 a3 6e 73 70 a5 2f 72 6f 6f 6d")),
    # CONNECT reply from the server.
    (
        Connect("/", {"sid": "abc"}),
        h("83 a4 74 79 70 65 00 a4 64 61 74 61 81 a3 73 69 64 a3 61 62 63 a3 6e 73 70 a1 2f"),
    ),
    # CONNECT_ERROR: always a map with message, data only when given.
    (
        ConnectError("Not authorized", {"code": 42}, "/"),
        h(
            "83 a4 74 79 70 65 04 a4 64 61 74 61 82 a7 6d 65 73 73 61 67 65"
            "ae 4e 6f 74 20 61 75 74 68 6f 72 69 7a 65 64 a4 64 61 74 61 81 a4 63 6f 64 65 2a"
            "a3 6e 73 70 a1 2f"
        ),
    ),
    (
        ConnectError("Invalid namespace", None, "/x"),
        h(
            "83 a4 74 79 70 65 04 a4 64 61 74 61 81 a7 6d 65 73 73 61 67 65"
            "b1 49 6e 76 61 6c 69 64 20 6e 61 6d 65 73 70 61 63 65 a3 6e 73 70 a2 2f 78"
        ),
    ),
    # ack id 0 is a real id.
    (
        Event("ping", (), "/", 0),
        h("84 a4 74 79 70 65 02 a4 64 61 74 61 91 a4 70 69 6e 67 a3 6e 73 70 a1 2f a2 69 64 00"),
    ),
    (Ack(0, (), "/"), h("84 a4 74 79 70 65 03 a4 64 61 74 61 90 a3 6e 73 70 a1 2f a2 69 64 00")),
]


@pytest.mark.parametrize(("packet", "wire"), GOLDEN, ids=lambda v: type(v).__name__)
def test_golden_bytes_both_ways(packet: object, wire: bytes) -> None:
    assert encode_packet(packet) == wire  # type: ignore[arg-type]
    assert decode_packet(wire) == packet


# What other peers send, and what eventsock reads from it (protocol.md §3.3, §8).
PEER_FRAMES = [
    # JS client EVENT: 5 keys with `options`, another key order.
    (
        h(
            "85 a4 74 79 70 65 02 a4 64 61 74 61 93 a4 63 68 61 74 a2 68 69 c4 02 00 01"
            "a7 6f 70 74 69 6f 6e 73 81 a8 63 6f 6d 70 72 65 73 73 c3 a2 69 64 07"
            "a3 6e 73 70 a5 2f 72 6f 6f 6d"
        ),
        Event("chat", ("hi", b"\x00\x01"), "/room", 7),
    ),
    # JS server ACK order (id first) and JS client ACK order.
    (
        h("84 a2 69 64 07 a4 74 79 70 65 03 a4 64 61 74 61 91 c3 a3 6e 73 70 a5 2f 72 6f 6f 6d"),
        Ack(7, (True,), "/room"),
    ),
    (
        h("84 a4 74 79 70 65 03 a2 69 64 07 a4 64 61 74 61 91 c3 a3 6e 73 70 a5 2f 72 6f 6f 6d"),
        Ack(7, (True,), "/room"),
    ),
    # JS client CONNECT without auth: data is Node's undefined (d4 00 00).
    (
        h("83 a4 74 79 70 65 00 a4 64 61 74 61 d4 00 00 a3 6e 73 70 a5 2f 72 6f 6f 6d"),
        Connect("/room", None),
    ),
    # python-socketio DISCONNECT with data nil.
    (
        h("83 a4 74 79 70 65 01 a4 64 61 74 61 c0 a3 6e 73 70 a5 2f 72 6f 6f 6d"),
        Disconnect("/room"),
    ),
    # JS server CONNECT reply with CSR off: pid is undefined → absent.
    (
        h(
            "83 a4 74 79 70 65 00 a4 64 61 74 61 82 a3 73 69 64 a3 61 62 63"
            "a3 70 69 64 d4 00 00 a3 6e 73 70 a1 2f"
        ),
        Connect("/", {"sid": "abc"}),
    ),
    # python-socketio's CONNECT_ERROR for an unknown namespace: a bare string.
    (
        h(
            "83 a4 74 79 70 65 04 a4 64 61 74 61 b1 55 6e 61 62 6c 65 20 74 6f 20 63 6f 6e"
            "6e 65 63 74 a3 6e 73 70 a3 2f 6e 6f"
        ),
        ConnectError("Unable to connect", None, "/no"),
    ),
    # Node typed array (ext 0 with bytes) → bytes; undefined inside an array → None.
    (
        h("83 a4 74 79 70 65 02 a4 64 61 74 61 93 a1 78 c7 02 00 02 03 d4 00 00a3 6e 73 70 a1 2f"),
        Event("x", (b"\x02\x03", None), "/"),
    ),
    # undefined as a map value inside an argument: the key is absent, as in JS.
    (
        h(
            "83 a4 74 79 70 65 02 a4 64 61 74 61 92 a1 78 82 a1 61 01 a1 62 d4 00 00"
            "a3 6e 73 70 a1 2f"
        ),
        Event("x", ({"a": 1},), "/"),
    ),
]


@pytest.mark.parametrize(("wire", "packet"), PEER_FRAMES)
def test_peer_frames_decode(wire: bytes, packet: object) -> None:
    assert decode_packet(wire) == packet


BAD = {
    "not msgpack": b"\xc1",
    "truncated": h("84 a4 74 79 70 65 02"),
    "trailing bytes": encode_packet(Disconnect("/")) + b"\x00",
    "not a map": h("93 01 02 03"),
    "no type": h("81 a3 6e 73 70 a1 2f"),
    "type is a string": h("82 a4 74 79 70 65 a1 32 a3 6e 73 70 a1 2f"),
    "type is a bool": h("82 a4 74 79 70 65 c3 a3 6e 73 70 a1 2f"),
    "no nsp": h("81 a4 74 79 70 65 01"),
    "nsp not a string": h("82 a4 74 79 70 65 01 a3 6e 73 70 01"),
    "unknown type 9": h("82 a4 74 79 70 65 09 a3 6e 73 70 a1 2f"),
    "binary event type 5": h("83 a4 74 79 70 65 05 a4 64 61 74 61 91 a1 78 a3 6e 73 70 a1 2f"),
    "event without data": h("82 a4 74 79 70 65 02 a3 6e 73 70 a1 2f"),
    "event with empty data": h("83 a4 74 79 70 65 02 a4 64 61 74 61 90 a3 6e 73 70 a1 2f"),
    "event name not a string": h("83 a4 74 79 70 65 02 a4 64 61 74 61 91 01 a3 6e 73 70 a1 2f"),
    "event data a map": h("83 a4 74 79 70 65 02 a4 64 61 74 61 80 a3 6e 73 70 a1 2f"),
    "ack without id": h("83 a4 74 79 70 65 03 a4 64 61 74 61 90 a3 6e 73 70 a1 2f"),
    "ack id negative": h("84 a4 74 79 70 65 03 a4 64 61 74 61 90 a3 6e 73 70 a1 2f a2 69 64 ff"),
    "ack id a string": h("84 a4 74 79 70 65 03 a4 64 61 74 61 90 a3 6e 73 70 a1 2f a2 69 64 a1 31"),
    "connect data a list": h("83 a4 74 79 70 65 00 a4 64 61 74 61 90 a3 6e 73 70 a1 2f"),
    "disconnect with data": h("83 a4 74 79 70 65 01 a4 64 61 74 61 01 a3 6e 73 70 a1 2f"),
    "ext type 1": h("83 a4 74 79 70 65 02 a4 64 61 74 61 92 a1 78 d4 01 00 a3 6e 73 70 a1 2f"),
    # msgpack's timestamps (ext -1), 4, 8 and 12 bytes, as an argument and in a map
    "timestamp 32": h("83 a4 74 79 70 65 02 a4 64 61 74 61 92 a1 78 d6 ff 00 00 00 01")
    + h("a3 6e 73 70 a1 2f"),
    "timestamp 64": h("83 a4 74 79 70 65 02 a4 64 61 74 61 92 a1 78 d7 ff")
    + bytes(7)
    + b"\x01"
    + h("a3 6e 73 70 a1 2f"),
    "timestamp 96 in a map": h("83 a4 74 79 70 65 02 a4 64 61 74 61 92 a1 78 81 a1 74 c7 0c ff")
    + bytes(11)
    + b"\x01"
    + h("a3 6e 73 70 a1 2f"),
    "timestamp as a map key": h("83 a4 74 79 70 65 02 a4 64 61 74 61 92 a1 78 81 d6 ff")
    + bytes(4)
    + h("c0 a3 6e 73 70 a1 2f"),
    # headers that claim more than the frame holds: refused before allocating
    "array of 2**32-1": h("83 a4 74 79 70 65 02 a4 64 61 74 61 dd ff ff ff ff a3 6e 73 70 a1 2f"),
    "map of 2**32-1": h("83 a4 74 79 70 65 02 a4 64 61 74 61 91 df ff ff ff ff"),
    "str of 2**32-1": h("83 a4 74 79 70 65 02 a4 64 61 74 61 91 db ff ff ff ff 61 62"),
    "bin of 2**32-1": h("83 a4 74 79 70 65 02 a4 64 61 74 61 91 c6 ff ff ff ff 61 62"),
    "nested beyond 1024": h("83 a4 74 79 70 65 02 a4 64 61 74 61 92 a1 78")
    + b"\x91" * 1100
    + h("c0 a3 6e 73 70 a1 2f"),
}


@pytest.mark.parametrize("wire", BAD.values(), ids=BAD.keys())
def test_bad_packets_raise_protocol_error(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_packet(wire)


def test_binary_data_that_holds_timestamp_header_bytes_is_still_accepted() -> None:
    # the header bytes of a timestamp inside a bin are data: the search finds nothing
    data = b"\xd6\xff\xd7\xff\xc7\x0c\xff" * 100
    packet = decode_packet(encode_packet(Event("x", (data, "\xff"))))
    assert packet == Event("x", (data, "\xff"))


def test_encode_refuses_unencodable_arguments() -> None:
    with pytest.raises(EncodeError):
        encode_packet(Event("x", (object(),)))
    with pytest.raises(TypeError):  # EncodeError is a TypeError too
        encode_packet(Event("x", ({1, 2},)))


def test_packets_validate_on_construction() -> None:
    with pytest.raises(ValueError, match="ack id"):
        Ack(-1)
    with pytest.raises(ValueError, match="ack id"):
        Event("x", (), "/", True)  # a bool is not an id
    with pytest.raises(ValueError, match="namespace"):
        Disconnect(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        Event(3)  # type: ignore[arg-type]


def test_open_frame_round_trip() -> None:
    frame = encode_open(Open("s1d", 25.0, 20.0, 1_000_000))
    assert frame == (
        '0{"sid":"s1d","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
    )
    assert decode_open(frame) == Open("s1d", 25.0, 20.0, 1_000_000)
    # python-engineio's key order and its missing fields are fine.
    assert decode_open('0{"sid":"a","upgrades":[],"pingTimeout":2000,"pingInterval":1000}') == Open(
        "a", 1.0, 2.0, 1_000_000
    )


@pytest.mark.parametrize(
    "frame", ["", "40", '0{"sid":1}', "0not json", "x", "2probe", "bnot base64!", "5"]
)
def test_bad_text_frames(frame: str) -> None:
    decode = decode_open if frame.startswith("0") else decode_text_frame
    with pytest.raises(ProtocolError):
        decode(frame)


def test_text_frames() -> None:
    assert decode_text_frame("2") == Ping()
    assert decode_text_frame("3") == Pong()
    assert decode_text_frame("1") == Close()
    assert decode_text_frame("6") == Noop()
    # forceBase64 clients send binary messages as `b<base64>`.
    assert decode_text_frame("bAAE=") == EngineMessage(b"\x00\x01")


def test_fast_encoders_write_the_same_bytes() -> None:
    from eventsock.codec import encode_ack, encode_event

    for packet, wire in GOLDEN:
        if isinstance(packet, Event):
            assert encode_event(packet.name, packet.args, packet.namespace, packet.id) == wire
        elif isinstance(packet, Ack):
            assert encode_ack(packet.id, packet.args, packet.namespace) == wire
    with pytest.raises(EncodeError):
        encode_event("x", (object(),), "/")
    with pytest.raises(EncodeError):
        encode_ack(0, (object(),), "/")
