"""eventsock: asyncio event RPC over WebSocket, wire-compatible with Socket.IO v5
(msgpack parser)."""

from .client import Client
from .exceptions import (
    AckTimeout,
    CertificatePinMismatch,
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
    LimitExceeded,
    NotConnected,
    ProtocolError,
    RateLimited,
    RemoteError,
    SendBufferFull,
    TooManyCalls,
    UnknownEvent,
)
from .handlers import Namespace
from .limits import Backpressure, RateLimit, Stats
from .pinning import Pin
from .recovery import Recovery
from .server import Server, Session, SessionInfo

__all__ = [
    "AckTimeout",
    "Backpressure",
    "CertificatePinMismatch",
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
    "LimitExceeded",
    "Namespace",
    "NotConnected",
    "Pin",
    "ProtocolError",
    "RateLimit",
    "RateLimited",
    "Recovery",
    "RemoteError",
    "SendBufferFull",
    "Server",
    "Session",
    "SessionInfo",
    "Stats",
    "TooManyCalls",
    "UnknownEvent",
]

__version__ = "0.1.0"
