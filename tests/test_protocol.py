"""The wire protocol core, without sockets."""

import json

import pytest

from membrane_rtc import protocol
from membrane_rtc.protocol import InvalidJSON, InvalidMessage, Message, decode_client_frame


def test_decodes_a_message_and_sets_from_to_the_sender() -> None:
    message = decode_client_frame('{"event":"offer","data":{"sdp":"v=0"},"to":["b"]}', "a")
    assert message == Message("offer", {"sdp": "v=0"}, "a", ["b"])


def test_client_cannot_spoof_from() -> None:
    message = decode_client_frame('{"event":"offer","from":"somebody-else","to":"all"}', "a")
    assert message.from_ == "a"
    assert message.to == "all"


@pytest.mark.parametrize("to", [None, "all", [], ["x", "y"]])
def test_accepts_every_valid_to(to: object) -> None:
    frame = json.dumps({"event": "e", "to": to})
    assert decode_client_frame(frame, "a").to == to


def test_to_and_data_may_be_absent() -> None:
    assert decode_client_frame('{"event":"e"}', "a") == Message("e", None, "a", None)


@pytest.mark.parametrize("frame", [
    "[1, 2]", "42", '"text"', "null", "{}", '{"data": 1}', '{"event": 5}',
    '{"event": "e", "to": "bob"}', '{"event": "e", "to": [1]}', '{"event": "e", "to": {}}',
])
def test_json_that_is_not_a_message_is_invalid_message(frame: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        decode_client_frame(frame, "a")
    assert caught.value.to_message("a") == Message(
        "error", {"description": "Invalid message", "details": None}, None, ["a"])


@pytest.mark.parametrize("frame", ["hello", "{", '{"event": "e",}', "\u00e9t\u00e9"])
def test_text_that_is_not_json_is_invalid_json_with_the_raw_text(frame: str) -> None:
    with pytest.raises(InvalidJSON) as caught:
        decode_client_frame(frame, "a")
    error = caught.value.to_message("a")
    assert error.data == {"description": "Invalid JSON", "details": frame}


def test_encoding_always_has_the_four_keys_with_wire_names() -> None:
    encoded = json.loads(protocol.encode(Message("e")))
    assert encoded == {"event": "e", "data": None, "from": None, "to": None}


def test_built_in_messages_match_membrane() -> None:
    assert json.loads(protocol.encode(protocol.authenticated("p"))) == {
        "event": "authenticated", "data": {"peer_id": "p"}, "from": None, "to": ["p"]}
    assert json.loads(protocol.encode(protocol.joined("p"))) == {
        "event": "joined", "data": {"peer_id": "p"}, "from": "p", "to": "all"}
    assert json.loads(protocol.encode(protocol.left("p"))) == {
        "event": "left", "data": {"peer_id": "p"}, "from": None, "to": "all"}
    assert json.loads(protocol.encode(protocol.error("Room closed", "boom", to="p"))) == {
        "event": "error", "data": {"description": "Room closed", "details": "boom"},
        "from": None, "to": ["p"]}


def test_round_trip_keeps_unicode_and_nesting() -> None:
    original = Message("candidate", {"c": "caf\u00e9 \U0001F600", "n": [1, {"x": None}]}, "a", "all")
    assert decode_client_frame(protocol.encode(original), "a") == original


@pytest.mark.parametrize("event", sorted(protocol.SERVER_EVENTS))
def test_a_client_cannot_send_the_servers_own_events(event: str) -> None:
    with pytest.raises(protocol.InvalidMessage):
        protocol.decode_client_frame(json.dumps({"event": event, "to": "all"}), "me")


def test_nesting_up_to_the_limit_and_not_one_level_more() -> None:
    def frame(depth: int) -> str:  # the frame object itself is one level
        inner = depth - 1
        return '{"event":"x","data":' + "[" * inner + "]" * inner + "}"

    assert protocol.decode_client_frame(frame(protocol.MAX_DEPTH), "me").event == "x"
    for depth in (protocol.MAX_DEPTH + 1, 100_000):
        with pytest.raises(protocol.InvalidMessage):
            protocol.decode_client_frame(frame(depth), "me")
    # Brackets inside strings are text, not nesting (escaped quotes included).
    text = '{"event":"x","data":"\\"' + "[" * 5000 + '"}'
    assert protocol.decode_client_frame(text, "me").data == '"' + "[" * 5000


def test_addressees_are_kept_once_each_and_at_most_a_thousand() -> None:
    message = protocol.decode_client_frame(json.dumps({"event": "x", "to": ["a", "b", "a"] * 300}),
                                           "me")
    assert message.to == ["a", "b"]
    ids = [f"p{n}" for n in range(protocol.MAX_ADDRESSEES)]
    assert protocol.decode_client_frame(json.dumps({"event": "x", "to": ids}), "me").to == ids
    with pytest.raises(protocol.InvalidMessage):
        protocol.decode_client_frame(json.dumps({"event": "x", "to": ids + ["one more"]}), "me")
