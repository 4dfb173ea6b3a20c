"""The client side of RFC 6455 WebSockets, Sans-I/O: the opening handshake and frames.

The client's WebSocket (in :mod:`eventsock.transport`) feeds this module the bytes it
reads and writes the bytes it gets back; nothing here does I/O. Only what eventsock's
client needs is here: no extensions are offered (so none are negotiated, and a frame
with a reserved bit set is an error), frames it sends are whole and masked, and frames
it receives may be fragmented but must not be masked.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import struct
from collections.abc import Callable, Iterable
from typing import Final

__all__ = [
    "FrameError",
    "FrameParser",
    "Handshake",
    "HandshakeError",
    "encode_frame",
]

# opcodes
CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA

# close codes this module answers with
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_INVALID_DATA: Final = 1007
CLOSE_TOO_BIG: Final = 1009

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HEAD: Final = 64 * 1024  # the response head a server may send before its body
_LEN2: Final = struct.Struct("!BBH")
_LEN8: Final = struct.Struct("!BBQ")
_UNPACK2: Final = struct.Struct("!H").unpack_from
_UNPACK8: Final = struct.Struct("!Q").unpack_from


class HandshakeError(Exception):
    """The server did not accept the upgrade; ``status`` is its HTTP status (0 when
    the response was not HTTP at all)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class FrameError(Exception):
    """The peer broke the framing; ``code`` is the close code that answers it."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Handshake:
    """One opening handshake: the request to send, then the response to check."""

    __slots__ = ("_buffer", "_key", "request")

    def __init__(self, host: str, target: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._key = base64.b64encode(os.urandom(16))
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        for name, value in headers:
            text = f"{name}{value}"
            if "\r" in text or "\n" in text or not name or ":" in name:
                raise ValueError(f"invalid HTTP header {name!r}: {value!r}")
            lines.append(f"{name}: {value}")
        #: The bytes of the request.
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._buffer = bytearray()

    def receive(self, data: bytes) -> bytes | None:
        """Take bytes of the response; returns ``None`` until its head is complete,
        then the bytes that followed it (the first frames, perhaps).

        Raises:
            HandshakeError: the response is not a valid acceptance of the upgrade.
        """
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0 and len(buffer) <= _MAX_HEAD:
            return None
        if end < 0 or end + 4 > _MAX_HEAD:  # however the reads were cut
            raise HandshakeError(f"the response head is longer than {_MAX_HEAD} bytes")
        head = bytes(buffer[:end]).decode("latin-1")
        rest = bytes(buffer[end + 4 :])
        buffer.clear()
        status_line, _, header_text = head.partition("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HandshakeError(f"not an HTTP response: {status_line[:80]!r}")
        status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        if status != 101:
            raise HandshakeError(f"HTTP {status} {reason}", status, reason)
        headers: dict[str, str] = {}
        for line in header_text.split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep:
                raise HandshakeError(f"malformed header line {line[:80]!r}", status, reason)
            headers[name.strip().lower()] = value.strip()
        if headers.get("upgrade", "").lower() != "websocket":
            raise HandshakeError("the response does not upgrade to websocket", status, reason)
        if "upgrade" not in headers.get("connection", "").lower():
            raise HandshakeError("the response's Connection is not upgrade", status, reason)
        digest = hashlib.sha1(self._key + _GUID, usedforsecurity=False).digest()
        expected = base64.b64encode(digest).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise HandshakeError("the response's Sec-WebSocket-Accept is wrong", status, reason)
        if headers.get("sec-websocket-extensions"):
            raise HandshakeError("the server chose an extension none was offered", status, reason)
        if headers.get("sec-websocket-protocol"):
            raise HandshakeError("the server chose a subprotocol none was offered", status, reason)
        return rest


def _mask_python(mask: bytes, data: bytearray) -> None:
    """XOR ``data`` with the 4-byte ``mask``, in place."""
    size = len(data)
    if size:
        key = int.from_bytes((mask * (size // 4 + 1))[:size], "little")
        data[:] = (int.from_bytes(data, "little") ^ key).to_bytes(size, "little")


# the transport module hands in a faster masker when it has one
mask_payload: Callable[[bytes, bytearray], None] = _mask_python
# masks need not be secret (RFC 6455 10.3: unpredictable to the page script)
_bits = random.Random().getrandbits  # noqa: S311


def encode_frame(opcode: int, payload: bytes) -> bytes | bytearray:
    """One whole, masked client frame."""
    size = len(payload)
    first = 0x80 | opcode
    if size < 126:
        header = bytes((first, 0x80 | size))
    elif size < 65536:
        header = _LEN2.pack(first, 0xFE, size)
    else:
        header = _LEN8.pack(first, 0xFF, size)
    mask = _bits(32).to_bytes(4, "little")
    data = bytearray(payload)
    mask_payload(mask, data)
    return header + mask + data


def close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a close frame."""
    if code is None:
        return b""
    encoded = reason.encode()
    if len(encoded) > 123:  # a control frame's payload is 125 bytes at most
        encoded = encoded[:123].decode(errors="ignore").encode()  # whole characters only
    return struct.pack("!H", code) + encoded


# What the parser yields: (opcode, payload) with TEXT's payload decoded to str, and
# CLOSE's to (code, reason).
Frame = tuple[int, object]


class FrameParser:
    """Turns the bytes a server sends into whole messages and control frames."""

    __slots__ = (
        "_buffer",
        "_fragments",
        "_fragments_size",
        "_held",
        "_held_size",
        "_need",
        "_opcode",
        "max_payload",
    )

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self._buffer = b""
        # a large frame arriving in many reads: its parts wait here, joined once whole
        self._held: list[bytes] = []
        self._held_size = 0
        self._need = 0
        self._opcode = 0  # of the fragmented message in progress
        self._fragments: list[bytes] = []
        self._fragments_size = 0

    def feed(self, data: bytes) -> list[Frame]:
        """Take bytes; returns the frames they complete, in order.

        Raises:
            FrameError: the bytes break RFC 6455 (or a message exceeds max_payload).
        """
        if self._need:
            self._held.append(data)
            self._held_size += len(data)
            if self._held_size < self._need:
                return []
            data = b"".join(self._held)
            self._held = []
            self._held_size = self._need = 0
        buffer = self._buffer + data if self._buffer else data
        out: list[Frame] = []
        position = 0
        end = len(buffer)
        while end - position >= 2:
            first = buffer[position]
            second = buffer[position + 1]
            if second & 0x80:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "a server frame must not be masked")
            if first & 0x70:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set with no extension")
            size = second & 0x7F
            start = position + 2
            if size == 126:
                if end - position < 4:
                    break
                size = _UNPACK2(buffer, start)[0]
                start += 2
            elif size == 127:
                if end - position < 10:
                    break
                size = _UNPACK8(buffer, start)[0]
                start += 8
            opcode = first & 0x0F
            if opcode >= CLOSE:
                if size > 125 or not first & 0x80:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "a fragmented or long control frame")
            elif size + self._fragments_size > self.max_payload:
                raise FrameError(CLOSE_TOO_BIG, f"a message of more than {self.max_payload} bytes")
            if end - start < size:
                if size > 65536:  # wait for the whole frame before copying it again
                    self._need = start + size - position
                    self._held = [buffer[position:]]
                    self._held_size = end - position
                    self._buffer = b""
                    return out
                break
            payload = buffer[start : start + size]
            position = start + size
            if opcode >= CLOSE:
                out.append(self._control(opcode, payload))
                continue
            if opcode == CONTINUATION:
                if not self._opcode:
                    raise FrameError(
                        CLOSE_PROTOCOL_ERROR, "a continuation with nothing to continue"
                    )
            elif self._opcode:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "a new message inside a fragmented one")
            elif opcode not in (TEXT, BINARY):
                raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
            if not first & 0x80:  # a fragment: more follow
                if not self._opcode:
                    self._opcode = opcode
                self._fragments.append(payload)
                self._fragments_size += size
                continue
            if self._opcode:
                opcode = self._opcode
                self._fragments.append(payload)
                payload = b"".join(self._fragments)
                self._opcode = 0
                self._fragments = []
                self._fragments_size = 0
            if opcode == TEXT:
                try:
                    out.append((TEXT, payload.decode()))
                except UnicodeDecodeError:
                    raise FrameError(CLOSE_INVALID_DATA, "a text frame that is not UTF-8") from None
            else:
                out.append((BINARY, payload))
        self._buffer = buffer[position:] if position < end else b""
        return out

    @staticmethod
    def _control(opcode: int, payload: bytes) -> Frame:
        if opcode == CLOSE:
            if not payload:
                return CLOSE, (None, "")
            if len(payload) == 1:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "a close frame with a 1-byte payload")
            code = (payload[0] << 8) | payload[1]
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise FrameError(CLOSE_INVALID_DATA, "a close reason that is not UTF-8") from None
            return CLOSE, (code, reason)
        if opcode in (PING, PONG):
            return opcode, payload
        raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown control opcode {opcode}")
