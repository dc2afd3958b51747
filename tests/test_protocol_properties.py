"""Property tests of the decoder (hypothesis): anything in gives a message or the protocol's
own error, never another exception; and what it accepts agrees with an oracle written from
docs/reference/protocol.md, independent of msgspec."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from membrane_rtc import protocol
from membrane_rtc.protocol import InvalidJSON, InvalidMessage, Message, ProtocolError, decode_client_frame

SENDER = "sender-id"

json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text())
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
#: Objects shaped like messages, right and wrong: the keys that matter, any values.
message_like = st.fixed_dictionaries({}, optional={
    "event": st.text() | json_values,
    "data": json_values,
    "from": json_values,
    "to": st.just("all") | st.lists(st.text(), max_size=3) | json_values,
    "extra": json_values,
})


def oracle(value: Any) -> Message | None:
    """What the protocol says a decoded JSON value is: a message from SENDER, or None when
    the answer is "Invalid message"."""
    if not isinstance(value, dict) or not isinstance(value.get("event"), str):
        return None
    if value["event"] in protocol.SERVER_EVENTS or depth(value) > protocol.MAX_DEPTH:
        return None  # only the server says these; deeper data is refused
    to = value.get("to")
    if not (to is None or to == "all"
            or (isinstance(to, list) and all(isinstance(pid, str) for pid in to))):
        return None
    if isinstance(to, list):
        if len(to) > protocol.MAX_ADDRESSEES:
            return None
        to = [pid for n, pid in enumerate(to) if pid not in to[:n]]  # each id once, in order
    return Message(value["event"], value.get("data"), SENDER, to)


def depth(value: Any) -> int:
    """How deep objects and arrays nest in a JSON value (a scalar: 0)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def decode(frame: str | bytes) -> Message | ProtocolError:
    try:
        return decode_client_frame(frame, SENDER)
    except ProtocolError as error:  # anything else fails the test
        return error


@given(st.text())
def test_any_text_is_a_message_or_a_protocol_error(text: str) -> None:
    result = decode(text)
    if isinstance(result, InvalidJSON):
        assert result.details == text  # Membrane echoes the raw text
        assert result.to_message("p").data == {"description": "Invalid JSON", "details": text}
    elif isinstance(result, Message):
        assert result.from_ == SENDER


@given(st.binary())
def test_any_bytes_are_a_message_or_a_protocol_error(data: bytes) -> None:
    decode(data)


@given(json_values | message_like)
@example({"event": "", "to": ["", "b", ""]})  # the same addressee twice: once
@example({"event": "joined", "data": None})  # a server event, from a client
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_decoded_json_agrees_with_the_oracle(value: Any) -> None:
    result = decode(json.dumps(value))
    expected = oracle(value)
    if expected is None:
        assert isinstance(result, InvalidMessage), (value, result)
    else:
        assert result == expected


valid_to = st.none() | st.just("all") | st.lists(st.text(), max_size=3)
#: Good messages whose ``from`` is anything at all.
spoofing = st.fixed_dictionaries({"event": st.text(), "from": json_values},
                                  optional={"data": json_values, "to": valid_to})


@given(spoofing, st.text(min_size=1))
def test_from_is_always_the_sender_whatever_the_client_says(value: dict, sender: str) -> None:
    assert decode_client_frame(json.dumps(value), sender).from_ == sender


@given(json_values | message_like, st.integers(0, 200))
def test_a_cut_frame_is_invalid_json(value: Any, cut: int) -> None:
    text = json.dumps({"event": "e", "data": value})
    truncated = text[:cut % len(text)]
    assert isinstance(decode(truncated), InvalidJSON)


@given(st.text(), json_values, st.none() | st.text(), valid_to)
def test_server_frames_round_trip_with_all_four_keys(event: str, data: Any, sender: str | None,
                                                      to: Any) -> None:
    message = Message(event, data, sender, to)
    encoded = protocol.encode(message)
    assert set(json.loads(encoded)) == {"event", "data", "from", "to"}
    assert protocol.decode_server_frame(encoded) == message
