"""The Sans-I/O state of one Engine.IO + Socket.IO connection, either side.

Frames in (``str`` for WebSocket text frames, ``bytes`` for binary ones), packets out,
and bytes to send back. No asyncio and no sockets: ``session.py`` drives these objects,
and the tests drive two of them against each other with no network.

Namespace states, per connection::

    server:  (none) --CONNECT--> pending --accept()--> connected --DISCONNECT/disconnect()--> (none)
                                         --refuse()--> (none)
    client:  (none) --connect()--> connecting --CONNECT--> connected --DISCONNECT--> (none)
                                              --CONNECT_ERROR--> (none)

A packet that does not fit these states is a :class:`~eventsock.ProtocolError`; the
session closes the connection that sent it, and only that one.
"""

from __future__ import annotations

from typing import Any, Final

from .codec import decode_open, decode_packet, decode_text_frame, encode_packet
from .exceptions import ProtocolError
from .packets import (
    Ack,
    Close,
    Connect,
    ConnectError,
    Disconnect,
    EngineMessage,
    Event,
    Noop,
    Open,
    Packet,
    Ping,
    Pong,
)

__all__ = ["ClientProtocol", "ServerProtocol"]

# Events that arrive for a namespace whose CONNECT reply is still pending (recovery
# replays them first) are held; more than this many is a misbehaving server.
MAX_EARLY_EVENTS: Final = 10_000


class _Base:
    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self.connected: set[str] = set()
        self._ack_ids: dict[str, int] = {}

    def next_ack_id(self, namespace: str) -> int:
        """A fresh ack id for an EVENT sent on ``namespace``; ids start at 0."""
        ack_id = self._ack_ids.get(namespace, 0)
        self._ack_ids[namespace] = ack_id + 1
        return ack_id

    def _payload(self, frame: str | bytes) -> bytes | None:
        """The Engine.IO message payload in a frame, or ``None`` for control frames."""
        if type(frame) is bytes:
            payload = frame
        else:
            assert isinstance(frame, str)
            if len(frame) > self.max_payload:
                raise ProtocolError(f"frame of {len(frame)} bytes exceeds max_payload")
            packet = decode_text_frame(frame)
            if type(packet) is not EngineMessage:
                return None
            payload = packet.payload
        if len(payload) > self.max_payload:
            raise ProtocolError(f"message of {len(payload)} bytes exceeds max_payload")
        return payload


class ServerProtocol(_Base):
    """Server side of one connection: validates what the client sends."""

    def __init__(self, *, max_payload: int) -> None:
        super().__init__(max_payload)
        self.pending: set[str] = set()
        # Namespaces the server left: late packets for them are dropped, not errors.
        # Made on first use: most connections never need it.
        self._left: set[str] | None = None

    def receive(self, frame: str | bytes) -> Packet | Pong | Close | None:
        """Take one frame from the client.

        Returns:
            The Socket.IO packet it carried, ``Pong``/``Close`` for those control
            frames, or ``None`` when there is nothing to act on.

        Raises:
            ProtocolError: the frame is malformed or not allowed in this state.
        """
        if type(frame) is bytes:  # a message: the usual case
            if len(frame) > self.max_payload:
                raise ProtocolError(f"message of {len(frame)} bytes exceeds max_payload")
            packet = decode_packet(frame)
        else:
            assert isinstance(frame, str)
            if len(frame) < 2:
                control = decode_text_frame(frame)
                if type(control) is Ping:
                    raise ProtocolError(
                        "ping from the client: in Engine.IO v4 only the server pings"
                    )
                if type(control) is Noop:
                    return None
                if type(control) in (Pong, Close):
                    return control  # type: ignore[return-value]
            payload = self._payload(frame)
            if payload is None:
                return None
            packet = decode_packet(payload)
        namespace = packet.namespace
        if namespace in self.connected:
            if type(packet) is Connect:
                raise ProtocolError(f"second CONNECT for namespace {namespace!r}")
            if type(packet) is ConnectError:
                raise ProtocolError("CONNECT_ERROR sent by a client")
            if type(packet) is Disconnect:
                self.connected.discard(namespace)
            return packet
        if type(packet) is Connect:
            if namespace in self.pending:
                raise ProtocolError(f"second CONNECT for namespace {namespace!r}")
            self.pending.add(namespace)
            if self._left is not None:
                self._left.discard(namespace)
            return packet
        if self._left is not None and namespace in self._left:
            return None
        if type(packet) is Disconnect and namespace in self.pending:
            self.pending.discard(namespace)
            return packet
        raise ProtocolError(
            f"{packet_kind(packet)} for namespace {namespace!r}, which is not connected"
        )

    def accept(self, namespace: str, sid: str, extra: dict[str, Any] | None = None) -> bytes:
        """Accept a pending CONNECT; returns the CONNECT reply to send."""
        if namespace not in self.pending:
            raise ValueError(f"no CONNECT is pending for {namespace!r}")
        self.pending.discard(namespace)
        self.connected.add(namespace)
        data = {"sid": sid} if extra is None else {"sid": sid, **extra}
        return encode_packet(Connect(namespace, data))

    def refuse(self, namespace: str, message: str, data: Any = None) -> bytes:
        """Refuse a pending CONNECT; returns the CONNECT_ERROR to send."""
        self.pending.discard(namespace)
        return encode_packet(ConnectError(message, data, namespace))

    def disconnect(self, namespace: str) -> bytes:
        """Leave a connected namespace; returns the DISCONNECT to send."""
        self.connected.discard(namespace)
        if self._left is None:
            self._left = set()
        self._left.add(namespace)
        return encode_packet(Disconnect(namespace))


ClientItem = Open | Ping | Close | Packet


class ClientProtocol(_Base):
    """Client side of one connection: validates what the server sends."""

    def __init__(self, *, max_payload: int) -> None:
        super().__init__(max_payload)
        self.opened: Open | None = None
        self.connecting: set[str] = set()
        self._early: dict[str, list[Event]] = {}

    def receive(self, frame: str | bytes) -> list[ClientItem]:
        """Take one frame from the server; returns what it means, in order.

        Events that arrive for a namespace whose CONNECT reply is pending are held and
        returned right after that reply.

        Raises:
            ProtocolError: the frame is malformed or not allowed in this state.
        """
        if self.opened is None:
            if type(frame) is not str:
                raise ProtocolError("binary frame before the Engine.IO open packet")
            self.opened = decode_open(frame)
            return [self.opened]
        if type(frame) is bytes:  # a message: the usual case
            if len(frame) > self.max_payload:
                raise ProtocolError(f"message of {len(frame)} bytes exceeds max_payload")
            packet = decode_packet(frame)
            if packet.namespace in self.connected and (
                type(packet) is Ack or type(packet) is Event
            ):
                return [packet]
            return self._receive_packet(packet)
        assert isinstance(frame, str)
        if len(frame) < 2:
            control = decode_text_frame(frame)
            if type(control) is Ping:
                return [control]
            if type(control) is Close:
                return [control]
            if type(control) is Noop:
                return []
            raise ProtocolError(f"unexpected Engine.IO packet {frame!r} from the server")
        payload = self._payload(frame)
        if payload is None:
            return []
        return self._receive_packet(decode_packet(payload))

    def _receive_packet(self, packet: Packet) -> list[ClientItem]:
        namespace = packet.namespace
        if namespace in self.connected:
            if type(packet) is Disconnect:
                self.connected.discard(namespace)
            elif type(packet) is not Event and type(packet) is not Ack:
                return []  # a stray CONNECT or CONNECT_ERROR for a live namespace
            return [packet]
        if namespace in self.connecting:
            if type(packet) is Event:
                early = self._early.setdefault(namespace, [])
                if len(early) >= MAX_EARLY_EVENTS:
                    raise ProtocolError("too many events before the CONNECT reply")
                early.append(packet)
                return []
            if type(packet) is Connect:
                sid = packet.data.get("sid") if packet.data is not None else None
                if type(sid) is not str:
                    raise ProtocolError("CONNECT reply without a string 'sid'")
                self.connecting.discard(namespace)
                self.connected.add(namespace)
                return [packet, *self._early.pop(namespace, ())]
            if type(packet) is ConnectError or type(packet) is Disconnect:
                self.connecting.discard(namespace)
                self._early.pop(namespace, None)
                return [packet]
        return []  # packets for namespaces we are not in are dropped, as the JS client does

    def connect(self, namespace: str, auth: dict[str, Any] | None = None) -> bytes:
        """Ask to join ``namespace``; returns the CONNECT to send."""
        if namespace in self.connecting or namespace in self.connected:
            raise ValueError(f"namespace {namespace!r} is already connecting or connected")
        self.connecting.add(namespace)
        return encode_packet(Connect(namespace, auth))

    def disconnect(self, namespace: str) -> bytes:
        """Leave ``namespace``; returns the DISCONNECT to send."""
        self.connected.discard(namespace)
        self.connecting.discard(namespace)
        self._early.pop(namespace, None)
        return encode_packet(Disconnect(namespace))


def packet_kind(packet: Packet) -> str:
    """A packet's type name as the protocol spells it, for logs."""
    return {
        Connect: "CONNECT",
        Disconnect: "DISCONNECT",
        Event: "EVENT",
        Ack: "ACK",
        ConnectError: "CONNECT_ERROR",
    }[type(packet)]
