"""eventsock: asyncio event RPC over WebSocket, wire-compatible with Socket.IO v5
(msgpack parser)."""

from .client import Client
from .exceptions import (
    AckTimeout,
    ClusterUnavailable,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionRefused,
    EncodeError,
    EventsockError,
    InternalError,
    InvalidArguments,
    InvalidHandler,
    InvalidResult,
    NotConnected,
    ProtocolError,
    RemoteError,
    SendBufferFull,
    UnknownEvent,
)
from .handlers import Namespace
from .recovery import Recovery
from .server import Server, Session, SessionInfo

__all__ = [
    "AckTimeout",
    "Client",
    "ClusterUnavailable",
    "ConnectionClosed",
    "ConnectionFailed",
    "ConnectionRefused",
    "EncodeError",
    "EventsockError",
    "InternalError",
    "InvalidArguments",
    "InvalidHandler",
    "InvalidResult",
    "Namespace",
    "NotConnected",
    "ProtocolError",
    "Recovery",
    "RemoteError",
    "SendBufferFull",
    "Server",
    "Session",
    "SessionInfo",
    "UnknownEvent",
]

__version__ = "0.1.0"
