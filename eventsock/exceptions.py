"""The exceptions eventsock raises, all under one root.

```
EventsockError
├── ProtocolError          a peer sent bytes that break the wire protocol
├── EncodeError            (also TypeError) an argument cannot be encoded as msgpack
├── InvalidHandler         (also TypeError) a handler's signature does not fit its event
├── ConnectionFailed       the WebSocket could not be opened (refused, HTTP error, timeout)
├── ConnectionRefused      the server answered CONNECT with CONNECT_ERROR
├── ConnectionClosed       the connection or namespace ended while an operation needed it
│   └── NotConnected       an operation named a namespace that is not connected
├── SendBufferFull         emit() while reconnecting found the send buffer full
├── ClusterUnavailable     a cluster-wide request could not reach the other server nodes
└── AckTimeout             (also TimeoutError) no acknowledgement arrived within the timeout
```
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AckTimeout",
    "ClusterUnavailable",
    "ConnectionClosed",
    "ConnectionFailed",
    "ConnectionRefused",
    "EncodeError",
    "EventsockError",
    "InvalidHandler",
    "NotConnected",
    "ProtocolError",
    "SendBufferFull",
]


class EventsockError(Exception):
    """Root of every exception eventsock raises on purpose."""


class ProtocolError(EventsockError):
    """Raised when a peer sends something the protocol does not allow.

    The connection that carried it is closed; ``reason`` says why in words fit for a log.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EncodeError(EventsockError, TypeError):
    """Raised when an event or ack argument cannot be encoded as msgpack."""


class InvalidHandler(EventsockError, TypeError):
    """Raised at registration when a handler's signature cannot receive its event."""


class ConnectionFailed(EventsockError):
    """Raised by ``Client.connect`` when the WebSocket itself cannot be opened."""


class ConnectionRefused(EventsockError):
    """The server refused a namespace connection (a CONNECT_ERROR packet).

    Raise it from a server ``connect`` handler to refuse a client; the client's
    ``connect()`` raises it with the same ``message`` and ``data``.
    """

    def __init__(self, message: str = "Connection refused", *, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class ConnectionClosed(EventsockError):
    """Raised when the connection (or the namespace) ends while an operation needs it.

    A ``call()`` in flight when the connection drops fails at once with this error;
    its event may or may not have been handled by the peer.
    """

    def __init__(self, reason: str = "connection closed") -> None:
        super().__init__(reason)
        self.reason = reason


class NotConnected(ConnectionClosed):
    """Raised when emitting or calling on a namespace that is not connected."""


class SendBufferFull(EventsockError):
    """Raised by ``Client.emit`` while reconnecting when the send buffer is full and
    the client was made with ``buffer_overflow="raise"``."""


class ClusterUnavailable(EventsockError):
    """Raised by ``Server.call`` when the session is not on this node and the backend
    cannot reach the other nodes (Redis is down)."""


class AckTimeout(EventsockError, TimeoutError):
    """Raised by ``call()`` when the peer's acknowledgement does not arrive in time."""
