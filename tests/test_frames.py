"""Unit tests for eventsock.frames: the Sans-I/O client side of RFC 6455.

Server frames are built here by hand, Sec-WebSocket-Accept is computed here from the
key found in the request, and client frames are unmasked here with a plain XOR, so
every expectation is independent of the code under test.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import struct

import pytest

from eventsock import frames
from eventsock.frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    FrameError,
    FrameParser,
    Handshake,
    HandshakeError,
    _mask_python,
    close_payload,
    encode_frame,
)

pytestmark = pytest.mark.timeout(30)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BIG = 16 * 1024 * 1024
MIB = 1024 * 1024
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, MIB + 3]
SMALL_SIZES = [0, 1, 125, 126]


# ---------------------------------------------------------------------------------------
# helpers


def server_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
) -> bytes:
    """An RFC 6455 frame as a server sends it: unmasked unless ``mask`` is given."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    size = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if size < 126:
        header = bytes((first, mask_bit | size))
    elif size < 65536:
        header = bytes((first, mask_bit | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + size.to_bytes(8, "big")
    if mask is not None:
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return header + mask + body
    return header + payload


def xor(mask: bytes, data: bytes) -> bytes:
    """A plain XOR with the 4-byte mask, independent of the module's maskers."""
    if not data:
        return b""
    key = (mask * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


def parse_client_frame(frame: bytes) -> tuple[bool, int, bool, int, bytes, bytes]:
    """(fin, opcode, masked, header length, mask, unmasked payload) of a client frame."""
    first, second = frame[0], frame[1]
    fin = bool(first & 0x80)
    opcode = first & 0x0F
    masked = bool(second & 0x80)
    size = second & 0x7F
    position = 2
    if size == 126:
        size = int.from_bytes(frame[2:4], "big")
        position = 4
    elif size == 127:
        size = int.from_bytes(frame[2:10], "big")
        position = 10
    header_length = position
    mask = b""
    if masked:
        mask = bytes(frame[position : position + 4])
        position += 4
    body = bytes(frame[position:])
    assert len(body) == size, "the frame's length field does not match its payload"
    return fin, opcode, masked, header_length, mask, xor(mask, body) if masked else body


def request_lines(handshake: Handshake) -> list[str]:
    text = handshake.request.decode("latin-1")
    assert text.endswith("\r\n\r\n")
    return text[:-4].split("\r\n")


def request_headers(handshake: Handshake) -> list[tuple[str, str]]:
    headers = []
    for line in request_lines(handshake)[1:]:
        name, sep, value = line.partition(": ")
        assert sep, line
        headers.append((name, value))
    return headers


def header(handshake: Handshake, name: str) -> str:
    values = [v for n, v in request_headers(handshake) if n.lower() == name.lower()]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def accept_for(handshake: Handshake) -> str:
    key = header(handshake, "Sec-WebSocket-Key").encode()
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def response(
    handshake: Handshake | None,
    *,
    status_line: str = "HTTP/1.1 101 Switching Protocols",
    headers: list[tuple[str, str]] | None = None,
    extra: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
) -> bytes:
    if headers is None:
        assert handshake is not None
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_for(handshake)),
        ]
    lines = [status_line, *(f"{n}: {v}" for n, v in [*headers, *extra])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def feed_in_chunks(parser: FrameParser, data: bytes, chunk: int) -> list[tuple[int, object]]:
    out: list[tuple[int, object]] = []
    for i in range(0, len(data), chunk):
        out.extend(parser.feed(data[i : i + chunk]))
    return out


def payload_of(size: int) -> bytes:
    """Bytes of every value, in an order that is not a multiple of 4."""
    return (bytes((i * 7 + 3) & 0xFF for i in range(251)) * (size // 251 + 1))[:size]


def text_of(size: int) -> str:
    return ("abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[:size]


# ---------------------------------------------------------------------------------------
# the request


def test_request_line_and_required_headers() -> None:
    hs = Handshake("example.com:8080", "/socket.io/?EIO=4&transport=websocket")
    lines = request_lines(hs)
    assert lines[0] == "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1"
    assert header(hs, "Host") == "example.com:8080"
    assert header(hs, "Upgrade") == "websocket"
    assert header(hs, "Connection") == "Upgrade"
    assert header(hs, "Sec-WebSocket-Version") == "13"
    assert isinstance(hs.request, bytes)


def test_request_key_is_16_random_bytes_in_base64() -> None:
    keys = set()
    for _ in range(5):
        key = header(Handshake("h", "/"), "Sec-WebSocket-Key")
        raw = base64.b64decode(key, validate=True)
        assert len(raw) == 16
        assert len(key) == 24
        keys.add(key)
    assert len(keys) == 5, "each handshake needs a fresh key"


def test_request_passes_user_headers_through_in_order() -> None:
    user = [("Authorization", "Bearer abc.def"), ("X-Trace", "1 2 3"), ("Cookie", "a=b; c=d")]
    hs = Handshake("h", "/", user)
    assert request_headers(hs)[-3:] == user


def test_request_without_user_headers_has_only_the_required_ones() -> None:
    names = [n.lower() for n, _ in request_headers(Handshake("h", "/"))]
    assert sorted(names) == sorted(
        ["host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"]
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Evil", "a\r\nInjected: yes"),
        ("X-Evil", "a\nb"),
        ("X-Evil", "a\rb"),
        ("X-Evil\r\nInjected", "v"),
        ("X-Ev\nil", "v"),
        ("X:Evil", "v"),
        ("", "v"),
    ],
)
def test_request_rejects_bad_header(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="invalid HTTP header"):
        Handshake("h", "/", [("X-Fine", "ok"), (name, value)])


# ---------------------------------------------------------------------------------------
# the response


def test_response_accepted_returns_empty_rest() -> None:
    hs = Handshake("h", "/")
    assert hs.receive(response(hs)) == b""


def test_response_accepted_with_first_frame_in_same_bytes() -> None:
    hs = Handshake("h", "/")
    first = server_frame(TEXT, b'0{"sid":"x"}') + server_frame(PING, b"p")
    rest = hs.receive(response(hs) + first)
    assert rest == first
    assert FrameParser(BIG).feed(rest) == [(TEXT, '0{"sid":"x"}'), (PING, b"p")]


def test_response_head_split_byte_by_byte() -> None:
    hs = Handshake("h", "/")
    trailing = server_frame(BINARY, b"\x00\x01")
    data = response(hs) + trailing
    head_length = data.index(b"\r\n\r\n") + 4
    results = [hs.receive(data[i : i + 1]) for i in range(head_length)]
    assert results[:-1] == [None] * (head_length - 1)
    assert results[-1] == b""
    # what follows the head, after the handshake completed, is not the handshake's
    assert data[head_length:] == trailing


def test_response_head_split_with_frame_in_last_piece() -> None:
    trailing = server_frame(TEXT, b"hello")
    hs = Handshake("h", "/")
    data = response(hs) + trailing
    cut = data.index(b"\r\n\r\n")
    assert hs.receive(data[:7]) is None
    assert hs.receive(data[7 : cut + 2]) is None
    assert hs.receive(data[cut + 2 :]) == trailing


def test_response_case_insensitive_and_connection_list() -> None:
    hs = Handshake("h", "/")
    headers = [
        ("upgrade", "WebSocket"),
        ("CONNECTION", "keep-alive, Upgrade"),
        ("sec-websocket-accept", "  " + accept_for(hs)),
        ("Server", "test: with a colon"),
    ]
    assert hs.receive(response(None, status_line="HTTP/1.0 101 OK", headers=headers)) == b""


def test_response_accepted_without_reason_phrase() -> None:
    hs = Handshake("h", "/")
    assert hs.receive(response(hs, status_line="HTTP/1.1 101")) == b""


@pytest.mark.parametrize(
    ("status_line", "status", "reason"),
    [
        ("HTTP/1.1 404 Not Found", 404, "Not Found"),
        ("HTTP/1.1 503 Service Unavailable", 503, "Service Unavailable"),
        ("HTTP/1.1 200 OK", 200, "OK"),
        ("HTTP/1.1 400 Bad Request", 400, "Bad Request"),
        ("HTTP/1.1 500", 500, ""),
    ],
)
def test_response_non_101_raises_with_status(status_line: str, status: int, reason: str) -> None:
    hs = Handshake("h", "/")
    data = response(None, status_line=status_line, headers=[("Content-Length", "0")])
    with pytest.raises(HandshakeError) as info:
        hs.receive(data)
    assert info.value.status == status
    assert info.value.reason == reason
    assert str(status) in str(info.value)


def test_response_non_101_split_over_receives() -> None:
    hs = Handshake("h", "/")
    data = response(None, status_line="HTTP/1.1 404 Not Found", headers=[("X", "y")])
    for i in range(len(data) - 1):
        assert hs.receive(data[i : i + 1]) is None
    with pytest.raises(HandshakeError) as info:
        hs.receive(data[-1:])
    assert (info.value.status, info.value.reason) == (404, "Not Found")


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"HTTP/2 101 Switching\r\n\r\n",
        b"HTTP/1.1 abc Weird\r\n\r\n",
        b"hello world\r\n\r\n",
        b"\r\n\r\n",
    ],
)
def test_response_not_http(data: bytes) -> None:
    hs = Handshake("h", "/")
    with pytest.raises(HandshakeError, match="not an HTTP response") as info:
        hs.receive(data)
    assert info.value.status == 0


def test_response_wrong_accept() -> None:
    hs = Handshake("h", "/")
    other = Handshake("h", "/")
    wrong = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_for(other)),
    ]
    with pytest.raises(HandshakeError, match="Accept") as info:
        hs.receive(response(None, headers=wrong))
    assert info.value.status == 101


def test_response_missing_accept() -> None:
    hs = Handshake("h", "/")
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
    with pytest.raises(HandshakeError, match="Accept"):
        hs.receive(response(None, headers=headers))


def test_response_accept_of_the_raw_key_is_wrong() -> None:
    # the digest must be taken over the base64 text of the key plus the GUID
    hs = Handshake("h", "/")
    raw = base64.b64decode(header(hs, "Sec-WebSocket-Key"))
    bad = base64.b64encode(hashlib.sha1(raw + GUID).digest()).decode()
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", bad)]
    with pytest.raises(HandshakeError):
        hs.receive(response(None, headers=headers))


@pytest.mark.parametrize(
    ("drop", "replace", "match"),
    [
        ("Upgrade", None, "upgrade to websocket"),
        ("Upgrade", ("Upgrade", "h2c"), "upgrade to websocket"),
        ("Connection", None, "Connection"),
        ("Connection", ("Connection", "keep-alive"), "Connection"),
    ],
)
def test_response_missing_or_wrong_upgrade_or_connection(
    drop: str, replace: tuple[str, str] | None, match: str
) -> None:
    hs = Handshake("h", "/")
    headers = [
        (n, v)
        for n, v in [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_for(hs)),
        ]
        if n != drop
    ]
    if replace is not None:
        headers.append(replace)
    with pytest.raises(HandshakeError, match=match) as info:
        hs.receive(response(None, headers=headers))
    assert info.value.status == 101


def test_response_with_chosen_extension() -> None:
    hs = Handshake("h", "/")
    data = response(hs, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    with pytest.raises(HandshakeError, match="extension"):
        hs.receive(data)


def test_response_with_chosen_subprotocol() -> None:
    # RFC 6455 4.1: the client fails a subprotocol it did not offer
    hs = Handshake("h", "/")
    data = response(hs, extra=[("Sec-WebSocket-Protocol", "chat")])
    with pytest.raises(HandshakeError, match="subprotocol"):
        hs.receive(data)


def test_response_malformed_header_line() -> None:
    hs = Handshake("h", "/")
    data = response(hs, extra=[("X", "y")]).replace(b"X: y", b"no colon here")
    with pytest.raises(HandshakeError, match="malformed"):
        hs.receive(data)


def test_response_head_longer_than_64k_in_pieces() -> None:
    hs = Handshake("h", "/")
    start = b"HTTP/1.1 101 Switching Protocols\r\nX-Pad: "
    assert hs.receive(start) is None
    sent = len(start)
    with pytest.raises(HandshakeError, match="longer"):  # noqa: PT012
        while sent <= 70 * 1024:
            assert hs.receive(b"a" * 1024) is None
            sent += 1024
    # refused by the read that took the unfinished head past 64 KiB, not before
    assert sent <= 64 * 1024 < sent + 1024


def test_response_head_just_under_64k_is_accepted() -> None:
    hs = Handshake("h", "/")
    base = response(hs, extra=[("X-Pad", "")])
    pad = 64 * 1024 - len(base) - 4
    data = response(hs, extra=[("X-Pad", "a" * pad)])
    assert len(data) <= 64 * 1024
    for i in range(0, len(data), 4096):
        result = hs.receive(data[i : i + 4096])
    assert result == b""


@pytest.mark.parametrize("pieces", [1, 2])
def test_response_head_longer_than_64k_complete(pieces: int) -> None:
    # A complete head over the limit is refused however the reads cut it.
    hs = Handshake("h", "/")
    data = response(hs, extra=[("X-Pad", "a" * (70 * 1024))])
    assert data.index(b"\r\n\r\n") > 64 * 1024
    if pieces == 2:
        assert hs.receive(data[: 60 * 1024]) is None  # under the limit so far, no end yet
        data = data[60 * 1024 :]
    with pytest.raises(HandshakeError, match="longer"):
        hs.receive(data)


# ---------------------------------------------------------------------------------------
# frames: data


@pytest.mark.parametrize("size", SIZES)
def test_binary_whole(size: int) -> None:
    payload = payload_of(size)
    assert FrameParser(BIG).feed(server_frame(BINARY, payload)) == [(BINARY, payload)]


@pytest.mark.parametrize("size", SIZES)
def test_text_whole(size: int) -> None:
    text = text_of(size)
    result = FrameParser(BIG).feed(server_frame(TEXT, text.encode()))
    assert result == [(TEXT, text)]
    assert isinstance(result[0][1], str)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("chunk", [7, 1000, 4096])
def test_binary_split_in_small_feeds(size: int, chunk: int) -> None:
    if size > 70000 and chunk < 1000:
        chunk = 997  # keeps the number of feeds modest for the 1 MiB frame
    payload = payload_of(size)
    data = server_frame(BINARY, payload)
    parser = FrameParser(BIG)
    out = []
    for i in range(0, len(data), chunk):
        got = parser.feed(data[i : i + chunk])
        if i + chunk < len(data):
            assert got == [], "nothing is complete before the last piece"
        out.extend(got)
    assert out == [(BINARY, payload)]


@pytest.mark.parametrize("size", SIZES)
def test_text_split_in_small_feeds(size: int) -> None:
    text = text_of(size)
    data = server_frame(TEXT, text.encode())
    assert feed_in_chunks(FrameParser(BIG), data, 1021) == [(TEXT, text)]


@pytest.mark.parametrize("size", SMALL_SIZES)
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_byte_by_byte(size: int, opcode: int) -> None:
    payload = text_of(size).encode() if opcode == TEXT else payload_of(size)
    expected = payload.decode() if opcode == TEXT else payload
    data = server_frame(opcode, payload) + server_frame(PONG, b"after")
    parser = FrameParser(BIG)
    out = []
    for i in range(len(data)):
        out.extend(parser.feed(data[i : i + 1]))
    assert out == [(opcode, expected), (PONG, b"after")]


def test_multibyte_utf8_split_across_feeds() -> None:
    text = "héllo wörld ✓ 😀" * 10
    data = server_frame(TEXT, text.encode())
    assert feed_in_chunks(FrameParser(BIG), data, 1) == [(TEXT, text)]
    assert feed_in_chunks(FrameParser(BIG), data, 3) == [(TEXT, text)]


def test_several_frames_in_one_feed_in_order() -> None:
    big = payload_of(70000)
    data = b"".join(
        [
            server_frame(TEXT, b"one"),
            server_frame(BINARY, b"\x02"),
            server_frame(PING, b"ping!"),
            server_frame(TEXT, b""),
            server_frame(BINARY, big),
            server_frame(PONG, b""),
            server_frame(TEXT, "dré".encode()),
            server_frame(CLOSE, close_payload(1000, "bye")),
        ]
    )
    expected = [
        (TEXT, "one"),
        (BINARY, b"\x02"),
        (PING, b"ping!"),
        (TEXT, ""),
        (BINARY, big),
        (PONG, b""),
        (TEXT, "dré"),
        (CLOSE, (1000, "bye")),
    ]
    assert FrameParser(BIG).feed(data) == expected
    assert feed_in_chunks(FrameParser(BIG), data, 333) == expected
    assert feed_in_chunks(FrameParser(BIG), data, 65536) == expected


def test_partial_frame_after_whole_ones_is_kept() -> None:
    parser = FrameParser(BIG)
    second = server_frame(BINARY, payload_of(300))
    assert parser.feed(server_frame(TEXT, b"a") + second[:5]) == [(TEXT, "a")]
    assert parser.feed(second[5:100]) == []
    assert parser.feed(second[100:] + server_frame(TEXT, b"b")) == [
        (BINARY, payload_of(300)),
        (TEXT, "b"),
    ]


def test_large_frame_then_small_frame_across_boundary() -> None:
    big = payload_of(MIB)
    data = server_frame(BINARY, big) + server_frame(TEXT, b"tail") + server_frame(PING, b"x")
    boundary = len(server_frame(BINARY, big))
    parser = FrameParser(BIG)
    assert parser.feed(data[:3]) == []
    assert parser.feed(data[3 : boundary - 1]) == []
    assert parser.feed(data[boundary - 1 : boundary + 3]) == [(BINARY, big)]
    assert parser.feed(data[boundary + 3 :]) == [(TEXT, "tail"), (PING, b"x")]


def test_two_large_frames_one_after_another() -> None:
    a, b = payload_of(200_000), bytes(reversed(payload_of(300_001)))
    data = server_frame(BINARY, a) + server_frame(BINARY, b)
    assert feed_in_chunks(FrameParser(BIG), data, 50_000) == [(BINARY, a), (BINARY, b)]
    assert FrameParser(BIG).feed(data) == [(BINARY, a), (BINARY, b)]


def test_empty_feed_returns_nothing() -> None:
    parser = FrameParser(BIG)
    assert parser.feed(b"") == []
    assert parser.feed(server_frame(TEXT, b"x")[:1]) == []
    assert parser.feed(b"") == []
    assert parser.feed(server_frame(TEXT, b"x")[1:]) == [(TEXT, "x")]


def test_parser_keeps_working_across_many_messages() -> None:
    parser = FrameParser(1000)
    for i in range(200):
        body = f"message {i}".encode()
        assert parser.feed(server_frame(TEXT, body)) == [(TEXT, body.decode())]


# ---------------------------------------------------------------------------------------
# frames: fragmentation


def test_fragmented_text() -> None:
    text = "frägmented ✓ text"
    raw = text.encode()
    parts = [raw[:3], raw[3:4], raw[4:9], raw[9:]]  # cuts inside multi-byte characters
    data = (
        server_frame(TEXT, parts[0], fin=False)
        + server_frame(CONTINUATION, parts[1], fin=False)
        + server_frame(CONTINUATION, parts[2], fin=False)
        + server_frame(CONTINUATION, parts[3])
    )
    assert FrameParser(BIG).feed(data) == [(TEXT, text)]
    assert feed_in_chunks(FrameParser(BIG), data, 1) == [(TEXT, text)]


def test_fragmented_binary() -> None:
    payload = payload_of(200_000)
    cuts = [0, 10, 10, 70_000, 140_000, 200_000]  # one empty fragment
    data = b""
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        opcode = BINARY if i == 0 else CONTINUATION
        data += server_frame(opcode, payload[a:b], fin=b == cuts[-1] and i == len(cuts) - 2)
    assert FrameParser(BIG).feed(data) == [(BINARY, payload)]
    assert feed_in_chunks(FrameParser(BIG), data, 8191) == [(BINARY, payload)]


def test_fragment_alone_yields_nothing_until_final() -> None:
    parser = FrameParser(BIG)
    assert parser.feed(server_frame(BINARY, b"ab", fin=False)) == []
    assert parser.feed(server_frame(CONTINUATION, b"cd", fin=False)) == []
    assert parser.feed(server_frame(CONTINUATION, b"ef")) == [(BINARY, b"abcdef")]
    # and a new message may start afterwards
    assert parser.feed(server_frame(TEXT, b"next")) == [(TEXT, "next")]
    assert parser.feed(server_frame(TEXT, b"x", fin=False) + server_frame(CONTINUATION, b"y")) == [
        (TEXT, "xy")
    ]


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_control_frames_interleaved_in_fragmented_message(opcode: int) -> None:
    data = (
        server_frame(opcode, b"first ", fin=False)
        + server_frame(PING, b"are you there")
        + server_frame(CONTINUATION, b"second ", fin=False)
        + server_frame(PONG, b"pong")
        + server_frame(CONTINUATION, b"third")
    )
    message = b"first second third"
    expected_message = (opcode, message.decode() if opcode == TEXT else message)
    expected = [(PING, b"are you there"), (PONG, b"pong"), expected_message]
    assert FrameParser(BIG).feed(data) == expected
    parser = FrameParser(BIG)
    out = []
    for i in range(len(data)):
        out.extend(parser.feed(data[i : i + 1]))
    assert out == expected


def test_close_interleaved_in_fragmented_message_comes_first() -> None:
    data = (
        server_frame(TEXT, b"a", fin=False)
        + server_frame(CLOSE, close_payload(1001, "going"))
        + server_frame(CONTINUATION, b"b")
    )
    assert FrameParser(BIG).feed(data) == [(CLOSE, (1001, "going")), (TEXT, "ab")]


# ---------------------------------------------------------------------------------------
# frames: control


@pytest.mark.parametrize("payload", [b"", b"x", b"\x00\xff" * 10, b"p" * 125])
@pytest.mark.parametrize("opcode", [PING, PONG])
def test_ping_pong_payloads(opcode: int, payload: bytes) -> None:
    result = FrameParser(BIG).feed(server_frame(opcode, payload))
    assert result == [(opcode, payload)]
    assert isinstance(result[0][1], bytes | bytearray)


def test_close_without_payload() -> None:
    assert FrameParser(BIG).feed(server_frame(CLOSE, b"")) == [(CLOSE, (None, ""))]


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1000, ""), (1000, "normal"), (1001, "going away"), (4000, "ünïcode ✓"), (1011, "x" * 123)],
)
def test_close_with_code_and_reason(code: int, reason: str) -> None:
    payload = struct.pack("!H", code) + reason.encode()
    assert len(payload) <= 125
    assert FrameParser(BIG).feed(server_frame(CLOSE, payload)) == [(CLOSE, (code, reason))]


def test_close_with_one_byte_payload() -> None:
    with pytest.raises(FrameError) as info:
        FrameParser(BIG).feed(server_frame(CLOSE, b"\x03"))
    assert info.value.code == 1002


@pytest.mark.parametrize("reason", [b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\xaf"])
def test_close_reason_not_utf8(reason: bytes) -> None:
    with pytest.raises(FrameError) as info:
        FrameParser(BIG).feed(server_frame(CLOSE, b"\x03\xe8" + reason))
    assert info.value.code == 1007


def test_control_frames_do_not_count_towards_max_payload() -> None:
    parser = FrameParser(10)
    assert parser.feed(server_frame(PING, b"p" * 125)) == [(PING, b"p" * 125)]
    assert parser.feed(server_frame(CLOSE, close_payload(1000, "r" * 100))) == [
        (CLOSE, (1000, "r" * 100))
    ]


# ---------------------------------------------------------------------------------------
# frames: errors


def assert_frame_error(data: bytes, code: int, *, max_payload: int = BIG, chunk: int = 0) -> None:
    parser = FrameParser(max_payload)
    with pytest.raises(FrameError) as info:  # noqa: PT012
        if chunk:
            feed_in_chunks(parser, data, chunk)
        else:
            parser.feed(data)
    assert info.value.code == code
    assert info.value.reason
    assert str(info.value) == info.value.reason


@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING, CLOSE])
def test_masked_server_frame(opcode: int) -> None:
    assert_frame_error(server_frame(opcode, b"", mask=b"\x01\x02\x03\x04"), 1002)
    assert_frame_error(server_frame(opcode, b"hi", mask=b"\x01\x02\x03\x04"), 1002)


def test_masked_server_frame_after_good_one() -> None:
    data = server_frame(TEXT, b"ok") + server_frame(TEXT, b"bad", mask=b"abcd")
    assert_frame_error(data, 1002)


@pytest.mark.parametrize("rsv", [1, 2, 4, 7])
@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING])
def test_reserved_bits(rsv: int, opcode: int) -> None:
    assert_frame_error(server_frame(opcode, b"data", rsv=rsv), 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcode(opcode: int) -> None:
    assert_frame_error(server_frame(opcode, b"?"), 1002)
    assert_frame_error(server_frame(opcode, b""), 1002)


@pytest.mark.parametrize("fin", [True, False])
def test_continuation_with_nothing_to_continue(fin: bool) -> None:
    assert_frame_error(server_frame(CONTINUATION, b"orphan", fin=fin), 1002)


def test_continuation_after_finished_message() -> None:
    data = (
        server_frame(TEXT, b"a", fin=False)
        + server_frame(CONTINUATION, b"b")
        + server_frame(CONTINUATION, b"c")
    )
    assert_frame_error(data, 1002)


@pytest.mark.parametrize("first", [TEXT, BINARY])
@pytest.mark.parametrize("second", [TEXT, BINARY])
@pytest.mark.parametrize("fin", [True, False])
def test_new_data_frame_inside_fragmented_message(first: int, second: int, fin: bool) -> None:
    data = server_frame(first, b"part", fin=False) + server_frame(second, b"new", fin=fin)
    assert_frame_error(data, 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_control_frame_longer_than_125(opcode: int) -> None:
    assert_frame_error(server_frame(opcode, b"\x03\xe8" + b"x" * 124), 1002)
    assert_frame_error(server_frame(opcode, b"x" * 70000), 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_control_frame_fragmented(opcode: int) -> None:
    assert_frame_error(server_frame(opcode, b"", fin=False), 1002)
    assert_frame_error(server_frame(opcode, b"\x03\xe8", fin=False), 1002)


@pytest.mark.parametrize(
    "raw", [b"\xff", b"abc\x80", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\x80"]
)
def test_invalid_utf8_text(raw: bytes) -> None:
    assert_frame_error(server_frame(TEXT, raw), 1007)


def test_invalid_utf8_text_fragmented() -> None:
    data = server_frame(TEXT, b"ok", fin=False) + server_frame(CONTINUATION, b"\xc3")
    assert_frame_error(data, 1007)


def test_invalid_utf8_binary_is_fine() -> None:
    assert FrameParser(BIG).feed(server_frame(BINARY, b"\xff\xc3")) == [(BINARY, b"\xff\xc3")]


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("size", [101, 126, 70_000])
def test_message_over_max_payload_single_frame(opcode: int, size: int) -> None:
    data = server_frame(opcode, text_of(size).encode())
    assert_frame_error(data, 1009, max_payload=100)
    assert_frame_error(data, 1009, max_payload=size - 1, chunk=4096)
    # refused as soon as the header is seen, before the payload arrives
    header_only = data[: len(data) - size]
    assert_frame_error(header_only, 1009, max_payload=size - 1)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_message_at_max_payload_is_accepted(opcode: int) -> None:
    payload = text_of(100).encode()
    expected = payload.decode() if opcode == TEXT else payload
    assert FrameParser(100).feed(server_frame(opcode, payload)) == [(opcode, expected)]
    data = server_frame(opcode, payload[:60], fin=False) + server_frame(CONTINUATION, payload[60:])
    assert FrameParser(100).feed(data) == [(opcode, expected)]


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_message_over_max_payload_summed_over_fragments(opcode: int) -> None:
    data = (
        server_frame(opcode, b"a" * 40, fin=False)
        + server_frame(CONTINUATION, b"b" * 40, fin=False)
        + server_frame(CONTINUATION, b"c" * 21)
    )
    assert_frame_error(data, 1009, max_payload=100)
    assert_frame_error(data, 1009, max_payload=100, chunk=1)


def test_max_payload_counter_resets_after_a_message() -> None:
    parser = FrameParser(100)
    for _ in range(5):
        data = server_frame(BINARY, b"a" * 60, fin=False) + server_frame(CONTINUATION, b"b" * 40)
        assert parser.feed(data) == [(BINARY, b"a" * 60 + b"b" * 40)]


def test_huge_64_bit_length() -> None:
    data = bytes((0x82, 127)) + (2**63 - 1).to_bytes(8, "big")
    assert_frame_error(data, 1009)


# ---------------------------------------------------------------------------------------
# encode_frame


@pytest.mark.parametrize(
    ("size", "length_byte", "header_length"),
    [
        (0, 0, 2),
        (1, 1, 2),
        (125, 125, 2),
        (126, 126, 4),
        (65535, 126, 4),
        (65536, 127, 10),
        (MIB, 127, 10),
    ],
)
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_encode_frame_header(opcode: int, size: int, length_byte: int, header_length: int) -> None:
    payload = payload_of(size)
    frame = bytes(encode_frame(opcode, payload))
    assert frame[0] == 0x80 | opcode, "FIN set, no reserved bits"
    assert frame[1] & 0x80, "the mask bit is set"
    assert frame[1] & 0x7F == length_byte
    if length_byte == 126:
        assert struct.unpack("!H", frame[2:4])[0] == size
    elif length_byte == 127:
        assert struct.unpack("!Q", frame[2:10])[0] == size
    assert len(frame) == header_length + 4 + size
    fin, got_opcode, masked, got_header, mask, body = parse_client_frame(frame)
    assert (fin, got_opcode, masked, got_header) == (True, opcode, True, header_length)
    assert len(mask) == 4
    assert body == payload


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_encode_control_frames(opcode: int) -> None:
    payload = close_payload(1000, "bye") if opcode == CLOSE else b"ping data"
    fin, got_opcode, masked, _, _, body = parse_client_frame(bytes(encode_frame(opcode, payload)))
    assert (fin, got_opcode, masked, body) == (True, opcode, True, payload)


def test_encode_frame_masks_the_payload() -> None:
    payload = b"A" * 64
    frames_sent = [bytes(encode_frame(BINARY, payload)) for _ in range(8)]
    masks = {f[2:6] for f in frames_sent}
    assert len(masks) > 1, "masks must vary from frame to frame"
    for frame in frames_sent:
        mask = frame[2:6]
        if mask != b"\x00\x00\x00\x00":
            assert frame[6:] != payload
        assert xor(mask, frame[6:]) == payload


def test_encode_frame_does_not_change_its_input() -> None:
    payload = bytearray(b"do not touch")
    encode_frame(TEXT, payload)
    assert payload == bytearray(b"do not touch")


SIZES_FOR_MASKERS = [0, 1, 2, 3, 4, 5, 7, 8, 125, 126, 127, 1000, 65535, 65536, 65537]


@pytest.mark.parametrize("size", SIZES_FOR_MASKERS)
def test_encode_frame_default_and_python_maskers_agree(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = payload_of(size)
    default_frame = bytes(encode_frame(BINARY, payload))
    monkeypatch.setattr(frames, "mask_payload", _mask_python)
    python_frame = bytes(encode_frame(BINARY, payload))
    default_parsed = parse_client_frame(default_frame)
    python_parsed = parse_client_frame(python_frame)
    assert default_parsed[5] == python_parsed[5] == payload
    assert default_parsed[:4] == python_parsed[:4]
    assert len(default_frame) == len(python_frame)


@pytest.mark.parametrize("size", SIZES_FOR_MASKERS)
def test_maskers_give_identical_bytes(size: int) -> None:
    payload = payload_of(size)
    for mask in (
        b"\x00\x00\x00\x00",
        b"\xff\xff\xff\xff",
        b"\x12\x34\x56\x78",
        b"\xa5\x00\x5a\x01",
    ):
        by_default = bytearray(payload)
        frames.mask_payload(mask, by_default)
        by_python = bytearray(payload)
        _mask_python(mask, by_python)
        expected = xor(mask, payload)
        assert bytes(by_default) == expected
        assert bytes(by_python) == expected
        # masking twice gives the original back
        _mask_python(mask, by_python)
        assert bytes(by_python) == payload


def test_mask_python_known_vector() -> None:
    # RFC 6455 5.7: "Hello" masked with 37 fa 21 3d
    data = bytearray(b"Hello")
    _mask_python(binascii.unhexlify("37fa213d"), data)
    assert bytes(data) == binascii.unhexlify("7f9f4d5158")


def test_encode_frame_roundtrip_through_unmasked_parser() -> None:
    # a client frame, unmasked by the test, reads back through the parser as a server frame
    for opcode, payload in [(TEXT, "ok ✓".encode()), (BINARY, payload_of(70000))]:
        _, _, _, _, _, body = parse_client_frame(bytes(encode_frame(opcode, payload)))
        expected = payload.decode() if opcode == TEXT else payload
        assert FrameParser(BIG).feed(server_frame(opcode, body)) == [(opcode, expected)]


# ---------------------------------------------------------------------------------------
# close_payload


def test_close_payload_none() -> None:
    assert close_payload(None) == b""
    assert close_payload(None, "ignored") == b""


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (1000, "", b"\x03\xe8"),
        (1000, "bye", b"\x03\xe8bye"),
        (1002, "", b"\x03\xea"),
        (1009, "too big", b"\x03\xf1too big"),
        (4999, "é", b"\x13\x87\xc3\xa9"),
    ],
)
def test_close_payload_code_and_reason(code: int, reason: str, expected: bytes) -> None:
    assert close_payload(code, reason) == expected


def test_close_payload_long_ascii_reason_is_cut_to_fit_a_control_frame() -> None:
    payload = close_payload(1000, "x" * 500)
    assert len(payload) == 125
    assert payload == b"\x03\xe8" + b"x" * 123


@pytest.mark.parametrize(
    "reason",
    ["é" * 100, "✓" * 60, "😀" * 40, "a" + "é" * 70],
    ids=["2-byte", "3-byte", "4-byte", "odd-2-byte"],
)
def test_close_payload_long_reason_stays_utf8(reason: str) -> None:
    payload = close_payload(1000, reason)
    assert len(payload) <= 125
    decoded = payload[2:].decode()  # a cut inside a character would make the peer answer 1007
    assert reason.startswith(decoded)
    assert len(decoded.encode()) > 119
    # and the parser on the other side reads it back
    assert FrameParser(BIG).feed(server_frame(CLOSE, payload)) == [(CLOSE, (1000, decoded))]


def test_close_payload_roundtrip_through_parser() -> None:
    for code, reason in [(None, ""), (1000, ""), (1001, "going away"), (3000, "ünïcode")]:
        payload = close_payload(code, reason)
        assert FrameParser(BIG).feed(server_frame(CLOSE, payload)) == [(CLOSE, (code, reason))]


# ---------------------------------------------------------------------------------------
# the exceptions


def test_exception_attributes() -> None:
    error = FrameError(1002, "why")
    assert (error.code, error.reason, str(error)) == (1002, "why", "why")
    plain = HandshakeError("message")
    assert (plain.status, plain.reason, str(plain)) == (0, "", "message")
    full = HandshakeError("HTTP 404 Not Found", 404, "Not Found")
    assert (full.status, full.reason) == (404, "Not Found")
    assert isinstance(error, Exception) and isinstance(full, Exception)
