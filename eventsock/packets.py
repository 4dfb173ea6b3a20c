"""Engine.IO and Socket.IO packets as small values.

They are immutable (frozen), except :class:`Event` and :class:`Ack`, the two that every
message makes: a frozen dataclass takes twice as long to build, so these two are plain
slotted dataclasses, to be treated as values all the same (nothing in eventsock changes
a packet after it is made).

Each packet validates its own fields on construction, so a packet that exists is a
packet the protocol allows. The decoder builds packets from untrusted input and turns
the ``ValueError`` a bad field raises into a :class:`~eventsock.ProtocolError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

__all__ = [
    "Ack",
    "Close",
    "Connect",
    "ConnectError",
    "Disconnect",
    "EngineMessage",
    "EnginePacket",
    "Event",
    "Noop",
    "Open",
    "Packet",
    "PacketType",
    "Ping",
    "Pong",
    "RESERVED_EVENTS",
    "STREAM_EVENTS",
]

#: Event names that neither the JS peers nor eventsock will emit.
RESERVED_EVENTS: Final = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

#: The event names streams travel on (eventsock.streams): reserved, like the above.
STREAM_OPEN: Final = "$stream"
STREAM_ITEM: Final = "$item"
STREAM_CREDIT: Final = "$credit"
STREAM_END: Final = "$end"
STREAM_CANCEL: Final = "$cancel"
STREAM_EVENTS: Final = frozenset(
    {STREAM_OPEN, STREAM_ITEM, STREAM_CREDIT, STREAM_END, STREAM_CANCEL}
)

# Ack ids travel as JS numbers; keep them within what every peer represents exactly.
MAX_ACK_ID: Final = 2**53 - 1


class PacketType(IntEnum):
    """Socket.IO v5 packet types usable with the msgpack parser."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4


def _check_namespace(namespace: object) -> None:
    if type(namespace) is not str:
        raise ValueError(f"namespace must be a string, not {type(namespace).__name__}")


def _check_id(ack_id: object) -> None:
    if type(ack_id) is not int or not 0 <= ack_id <= MAX_ACK_ID:
        raise ValueError(f"ack id must be an integer from 0 to 2**53-1, not {ack_id!r}")


@dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT: a client asks to join ``namespace`` (``data`` is its auth), or the
    server accepts (``data`` holds ``sid`` and, with recovery, ``pid``)."""

    namespace: str = "/"
    data: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _check_namespace(self.namespace)
        if self.data is not None and type(self.data) is not dict:
            raise ValueError("CONNECT data must be a map")


@dataclass(frozen=True, slots=True)
class Disconnect:
    """DISCONNECT: either side leaves ``namespace``. It never carries data."""

    namespace: str = "/"

    def __post_init__(self) -> None:
        _check_namespace(self.namespace)


@dataclass(slots=True)
class Event:
    """EVENT: a named event with its arguments; ``id`` is set when an ack is wanted."""

    name: str
    args: tuple[Any, ...] = ()
    namespace: str = "/"
    id: int | None = None

    def __post_init__(self) -> None:
        if type(self.name) is not str:
            raise ValueError("EVENT data must be a non-empty array starting with a string name")
        _check_namespace(self.namespace)
        if self.id is not None:
            _check_id(self.id)


@dataclass(slots=True)
class Ack:
    """ACK: the answer to the EVENT with the same ``id`` on the same namespace."""

    id: int
    args: tuple[Any, ...] = ()
    namespace: str = "/"

    def __post_init__(self) -> None:
        _check_id(self.id)
        _check_namespace(self.namespace)


@dataclass(frozen=True, slots=True)
class ConnectError:
    """CONNECT_ERROR: the server refused a namespace; ``data`` is optional detail."""

    message: str
    data: Any = None
    namespace: str = "/"

    def __post_init__(self) -> None:
        if type(self.message) is not str:
            raise ValueError("CONNECT_ERROR message must be a string")
        _check_namespace(self.namespace)


Packet = Connect | Disconnect | Event | Ack | ConnectError


@dataclass(frozen=True, slots=True)
class Open:
    """Engine.IO open packet, the server's first frame. Durations are in seconds."""

    sid: str
    ping_interval: float
    ping_timeout: float
    max_payload: int


@dataclass(frozen=True, slots=True)
class Ping:
    """Engine.IO ping (server to client only in v4)."""


@dataclass(frozen=True, slots=True)
class Pong:
    """Engine.IO pong (client to server only in v4)."""


@dataclass(frozen=True, slots=True)
class Close:
    """Engine.IO close: the peer is about to close the WebSocket."""


@dataclass(frozen=True, slots=True)
class Noop:
    """Engine.IO noop, only meaningful during a polling upgrade; ignored."""


@dataclass(frozen=True, slots=True)
class EngineMessage:
    """Engine.IO message carrying one encoded Socket.IO packet."""

    payload: bytes


EnginePacket = Open | Ping | Pong | Close | Noop | EngineMessage
