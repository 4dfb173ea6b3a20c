"""The Sans-I/O state machines, wired to each other with no network."""

from __future__ import annotations

import pytest

from eventsock import ProtocolError
from eventsock.codec import encode_open, encode_packet
from eventsock.packets import (
    Ack,
    Close,
    Connect,
    ConnectError,
    Disconnect,
    Event,
    Open,
    Ping,
    Pong,
)
from eventsock.protocol import ClientProtocol, ServerProtocol


class Pair:
    """A client and a server protocol joined back to back."""

    def __init__(self) -> None:
        self.server = ServerProtocol(max_payload=1000)
        self.client = ClientProtocol(max_payload=1000)
        assert self.client.receive(encode_open(Open("e", 25.0, 20.0, 1000))) == [
            Open("e", 25.0, 20.0, 1000)
        ]

    def join(self, namespace: str = "/", sid: str = "s") -> None:
        assert self.server.receive(self.client.connect(namespace)) == Connect(namespace)
        reply = self.server.accept(namespace, sid)
        assert self.client.receive(reply)[0] == Connect(namespace, {"sid": sid})


def test_connect_event_ack_round_trip() -> None:
    pair = Pair()
    pair.join("/", "sid1")
    ack_id = pair.client.next_ack_id("/")
    assert ack_id == 0  # ids start at 0
    event = pair.server.receive(encode_packet(Event("add", (1, 2), "/", ack_id)))
    assert event == Event("add", (1, 2), "/", 0)
    assert pair.client.receive(encode_packet(Ack(0, (3,), "/"))) == [Ack(0, (3,), "/")]
    assert pair.client.next_ack_id("/") == 1


def test_ack_ids_are_per_namespace() -> None:
    pair = Pair()
    assert [pair.client.next_ack_id("/a") for _ in range(3)] == [0, 1, 2]
    assert pair.client.next_ack_id("/b") == 0


def test_server_refuses_event_before_connect() -> None:
    server = ServerProtocol(max_payload=1000)
    with pytest.raises(ProtocolError, match="EVENT for namespace '/'"):
        server.receive(encode_packet(Event("x")))


def test_server_refuses_packets_for_other_namespaces_and_pending_ones() -> None:
    pair = Pair()
    pair.join("/")
    with pytest.raises(ProtocolError, match="'/other'"):
        pair.server.receive(encode_packet(Ack(0, (), "/other")))
    assert pair.server.receive(encode_packet(Connect("/p"))) == Connect("/p")
    with pytest.raises(ProtocolError, match="not connected"):
        pair.server.receive(encode_packet(Event("x", (), "/p")))


def test_server_refuses_second_connect() -> None:
    pair = Pair()
    pair.join("/")
    with pytest.raises(ProtocolError, match="second CONNECT"):
        pair.server.receive(encode_packet(Connect("/")))
    server = ServerProtocol(max_payload=1000)
    server.receive(encode_packet(Connect("/a")))
    with pytest.raises(ProtocolError, match="second CONNECT"):
        server.receive(encode_packet(Connect("/a")))


def test_server_refuses_client_ping_and_text_messages() -> None:
    server = ServerProtocol(max_payload=1000)
    with pytest.raises(ProtocolError, match="only the server pings"):
        server.receive("2")
    with pytest.raises(ProtocolError, match="JSON parser"):
        server.receive("40")
    server.receive(encode_packet(Connect("/")))
    server.accept("/", "s")
    with pytest.raises(ProtocolError, match="CONNECT_ERROR"):
        server.receive(encode_packet(ConnectError("no", None, "/")))


def test_server_control_frames() -> None:
    server = ServerProtocol(max_payload=1000)
    assert server.receive("3") == Pong()
    assert server.receive("1") == Close()
    assert server.receive("6") is None


def test_server_size_limit() -> None:
    server = ServerProtocol(max_payload=100)
    with pytest.raises(ProtocolError, match="exceeds max_payload"):
        server.receive(encode_packet(Event("x", (b"a" * 200,))))


def test_late_packets_after_server_disconnect_are_dropped() -> None:
    pair = Pair()
    pair.join("/a")
    assert pair.client.receive(pair.server.disconnect("/a")) == [Disconnect("/a")]
    # An event the client sent before it saw our DISCONNECT is dropped, not an error.
    assert pair.server.receive(encode_packet(Event("late", (), "/a"))) is None
    # ...until the client joins again.
    pair.join("/a")
    assert pair.server.receive(encode_packet(Event("x", (), "/a"))) == Event("x", (), "/a")


def test_client_disconnect_clears_state() -> None:
    pair = Pair()
    pair.join("/")
    assert pair.server.receive(pair.client.disconnect("/")) == Disconnect("/")
    assert "/" not in pair.server.connected
    with pytest.raises(ProtocolError):
        pair.server.receive(encode_packet(Event("x")))


def test_refused_namespace() -> None:
    pair = Pair()
    pair.server.receive(pair.client.connect("/x"))
    refusal = pair.server.refuse("/x", "Invalid namespace")
    assert pair.client.receive(refusal) == [ConnectError("Invalid namespace", None, "/x")]
    assert "/x" not in pair.client.connecting
    assert "/x" not in pair.server.pending


def test_client_holds_events_until_connect_reply() -> None:
    pair = Pair()
    pair.server.receive(pair.client.connect("/"))
    # A recovering server replays events before its CONNECT reply.
    assert pair.client.receive(encode_packet(Event("tick", (1,)))) == []
    assert pair.client.receive(encode_packet(Event("tick", (2,)))) == []
    items = pair.client.receive(pair.server.accept("/", "s"))
    assert items == [Connect("/", {"sid": "s"}), Event("tick", (1,)), Event("tick", (2,))]


def test_client_drops_packets_for_unknown_namespaces() -> None:
    pair = Pair()
    assert pair.client.receive(encode_packet(Event("x", (), "/nobody"))) == []


def test_client_requires_sid_in_connect_reply() -> None:
    pair = Pair()
    pair.client.connect("/")
    with pytest.raises(ProtocolError, match="sid"):
        pair.client.receive(encode_packet(Connect("/", {})))


def test_client_requires_open_first() -> None:
    client = ClientProtocol(max_payload=1000)
    with pytest.raises(ProtocolError, match="open packet"):
        client.receive(encode_packet(Connect("/")))
    with pytest.raises(ProtocolError):
        ClientProtocol(max_payload=1000).receive("2")


def test_client_ping_and_unexpected_pong() -> None:
    pair = Pair()
    assert pair.client.receive("2") == [Ping()]
    with pytest.raises(ProtocolError):
        pair.client.receive("3")


def test_server_accept_requires_pending() -> None:
    server = ServerProtocol(max_payload=1000)
    with pytest.raises(ValueError, match="no CONNECT is pending"):
        server.accept("/", "s")
