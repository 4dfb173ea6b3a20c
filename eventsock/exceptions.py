"""The exceptions eventsock raises, all under one root.

```
EventsockError
├── ProtocolError          a peer sent bytes that break the wire protocol
├── EncodeError            (also TypeError) an argument cannot be encoded as msgpack
├── InvalidHandler         (also TypeError) a handler's signature does not fit its event
├── ConnectionFailed       the WebSocket could not be opened (refused, HTTP error, timeout)
│   └── CertificatePinMismatch  the server's TLS certificate matched none of the pins
├── ConnectionRefused      the server answered CONNECT with CONNECT_ERROR
├── ConnectionClosed       the connection or namespace ended while an operation needed it
│   └── NotConnected       an operation named a namespace that is not connected
├── SendBufferFull         emit() while reconnecting found the send buffer full
├── LimitExceeded          a limit of this side refused the operation (calls in flight)
├── ClusterUnavailable     a cluster-wide request could not reach the other server nodes
├── AckTimeout             (also TimeoutError) no acknowledgement arrived within the timeout
├── InvalidResult          (also TypeError) an ack does not fit the result type call() asked for
└── RemoteError            the peer's handler answered a call with an error (code, message, data)
    ├── InvalidArguments   the call's arguments do not fit the handler
    ├── UnknownEvent       no handler for the event on the peer
    ├── RateLimited        the peer's rate limit refused the call
    ├── TooManyCalls       the peer is already handling as many calls as it takes
    └── InternalError      the peer's handler failed unexpectedly
```
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AckTimeout",
    "CertificatePinMismatch",
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
    "NotConnected",
    "ProtocolError",
    "RateLimited",
    "RemoteError",
    "SendBufferFull",
    "TooManyCalls",
    "UnknownEvent",
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


class CertificatePinMismatch(ConnectionFailed):
    """Raised by ``Client.connect(..., pin=...)`` when the server's certificate matches
    none of the pins; the TLS handshake stopped there, before any HTTP request was sent.

    Attributes:
        expected: the pins, as text.
        certificate: the certificate pin of what the server sent (``"AB:CD:..."``), or
            ``""`` if it sent no certificate.
        public_key: its public-key pin (``"sha256/..."``), or ``""`` if it sent no
            certificate or its public key could not be read.
    """

    def __init__(
        self, message: str, *, expected: tuple[str, ...], certificate: str, public_key: str
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.certificate = certificate
        self.public_key = public_key


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


class LimitExceeded(EventsockError):
    """Raised by ``call()`` when this side already has ``max_pending_calls`` calls
    waiting for their acks on the connection."""


class ClusterUnavailable(EventsockError):
    """Raised by ``Server.call`` when the session is not on this node and the backend
    cannot reach the other nodes (Redis is down)."""


class AckTimeout(EventsockError, TimeoutError):
    """Raised by ``call()`` when the peer's acknowledgement does not arrive in time."""


class InvalidResult(EventsockError, TypeError):
    """Raised by ``call(..., result=T)`` when the peer's answer does not fit ``T``.

    Attributes:
        value: the answer as it arrived.
    """

    def __init__(self, message: str, value: Any) -> None:
        super().__init__(message)
        self.value = value


class RemoteError(EventsockError):
    """A call answered with an error instead of a result.

    Raise it (or a subclass) in a handler to answer the caller with an error: the
    caller's ``call()`` raises the same class with the same ``code``, ``message`` and
    ``data``. On the wire it is an ordinary ack holding one error object, documented
    in the errors guide, which any Socket.IO client can recognise.

    Attributes:
        code: a short machine-readable string (``"not_found"``); each subclass has its
            own, and a plain ``RemoteError`` defaults to ``"error"``.
        message: words for a person.
        data: any msgpack value with details, or ``None``.
    """

    #: The code of errors of this class; the built-in ones are reserved for them.
    default_code: ClassVar[str] = "error"

    def __init__(self, message: str = "", *, code: str | None = None, data: Any = None) -> None:
        self.code = code if code is not None else self.default_code
        self.message = message
        self.data = data
        super().__init__(f"{self.code}: {message}" if message else self.code)


class InvalidArguments(RemoteError):
    """The call's arguments do not fit the handler's parameters."""

    default_code = "invalid_arguments"


class UnknownEvent(RemoteError):
    """The peer has no handler for the event called."""

    default_code = "unknown_event"


class RateLimited(RemoteError):
    """The peer's rate limit refused the call; ``data["retry_after"]`` says in how many
    seconds it takes one again."""

    default_code = "rate_limited"


class TooManyCalls(RemoteError):
    """The peer was already handling as many of this connection's calls as it takes
    at once (its ``max_incoming_calls``)."""

    default_code = "too_many_calls"


class InternalError(RemoteError):
    """The peer's handler raised an unexpected exception (its details stay there, in
    its log, unless the peer runs with ``debug=True``)."""

    default_code = "internal_error"
