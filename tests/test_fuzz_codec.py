"""Property tests of the codec and the protocol state machines (hypothesis).

Any bytes or text fed to the decoders either give a packet or raise ProtocolError,
never another exception; encoding then decoding a valid packet gives it back.

CI runs the default profile (300 cases per property). For longer runs:

    EVENTSOCK_FUZZ=long python -m pytest tests/test_fuzz_codec.py    # 100,000 cases each
    EVENTSOCK_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz_codec.py
"""

from __future__ import annotations

import os
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventsock.codec import decode_packet, decode_text_frame, encode_ack, encode_event
from eventsock.exceptions import ProtocolError
from eventsock.packets import Ack, Event
from eventsock.protocol import ClientProtocol, ServerProtocol

LONG = os.environ.get("EVENTSOCK_FUZZ") == "long"
settings.register_profile(
    "eventsock",
    max_examples=100_000 if LONG else int(os.environ.get("EVENTSOCK_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("eventsock")
pytestmark = pytest.mark.timeout(3600 if LONG else 120)

# msgpack values the codec must carry: what the peers send
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=50),
    st.binary(max_size=100),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=10), inner, max_size=5),
    ),
    max_leaves=20,
)
namespaces = st.sampled_from(["/", "/chat", "/a/b"])
names = st.text(min_size=1, max_size=20)


def decodes_or_refuses(data: bytes) -> None:
    try:
        decode_packet(data)
    except ProtocolError:
        pass


@given(st.binary(max_size=512))
def test_any_bytes_decode_or_are_refused(data: bytes) -> None:
    decodes_or_refuses(data)


@given(st.dictionaries(st.sampled_from(["type", "nsp", "data", "id", "x"]), values, max_size=5))
def test_any_map_decodes_or_is_refused(obj: dict[str, Any]) -> None:
    decodes_or_refuses(msgpack.packb(obj, use_bin_type=True))


@given(st.text(max_size=64))
def test_any_text_frame_decodes_or_is_refused(text: str) -> None:
    try:
        decode_text_frame(text)
    except ProtocolError:
        pass


@given(
    names,
    st.lists(values, max_size=4).map(tuple),
    namespaces,
    st.one_of(st.none(), st.integers(min_value=0, max_value=2**53 - 1)),
)
def test_events_round_trip(
    name: str, args: tuple[Any, ...], namespace: str, ack_id: int | None
) -> None:
    packet = decode_packet(encode_event(name, args, namespace, ack_id))
    assert packet == Event(name, args, namespace, ack_id)


@given(
    st.integers(min_value=0, max_value=2**53 - 1),
    st.lists(values, max_size=4).map(tuple),
    namespaces,
)
def test_acks_round_trip(ack_id: int, args: tuple[Any, ...], namespace: str) -> None:
    assert decode_packet(encode_ack(ack_id, args, namespace)) == Ack(ack_id, args, namespace)


frames = st.one_of(st.binary(max_size=256), st.text(max_size=32))


@given(st.lists(frames, max_size=12))
def test_the_server_protocol_refuses_or_accepts_any_sequence(sequence: list[str | bytes]) -> None:
    protocol = ServerProtocol(max_payload=1000)
    for frame in sequence:
        try:
            protocol.receive(frame)
        except ProtocolError:
            return  # the connection would close here


@given(st.lists(frames, max_size=12))
def test_the_client_protocol_refuses_or_accepts_any_sequence(sequence: list[str | bytes]) -> None:
    protocol = ClientProtocol(max_payload=1000)
    for frame in sequence:
        try:
            protocol.receive(frame)
        except ProtocolError:
            return


def test_deep_nesting_is_refused_never_a_crash() -> None:
    # found while writing these tests: an `undefined` at the bottom of deeply nested
    # arrays made the decoder's walk hit Python's recursion limit (RecursionError)
    header = (
        b"\x83"
        + msgpack.packb("type")
        + b"\x02"
        + msgpack.packb("nsp")
        + msgpack.packb("/")
        + msgpack.packb("data")
        + b"\x92"
        + msgpack.packb("e")
    )

    def nested(depth: int) -> bytes:
        return header + b"\x91" * depth + b"\xd4\x00\x00"  # [[[...undefined...]]]

    assert isinstance(decode_packet(nested(100)), Event)
    with pytest.raises(ProtocolError, match="nested too deeply"):
        decode_packet(nested(1000))  # fine for msgpack, too deep for Python's stack
    with pytest.raises(ProtocolError, match="invalid msgpack"):
        decode_packet(nested(5000))  # too deep for msgpack itself
