"""The room's rules as plain state, without an actor system."""

from typing import Any

import pytest

from membrane_rtc import AuthData, JoinRefused, Message, Room
from membrane_rtc import protocol
from membrane_rtc.room_state import RoomCallbackError, RoomState


def deliveries_to(deliveries: list, endpoint: str) -> list[Message]:
    return [d.message for d in deliveries if endpoint in d.recipients]


def room_with(*peer_ids: str, room: Room | None = None) -> RoomState[str]:
    state: RoomState[str] = RoomState(room or Room(), "r")
    state.start(None)
    for peer_id in peer_ids:
        state.join(AuthData(peer_id), f"ep-{peer_id}")
    return state


def test_join_authenticates_the_joiner_and_tells_the_others() -> None:
    state = room_with("a")
    deliveries = state.join(AuthData("b"), "ep-b")
    assert deliveries_to(deliveries, "ep-b") == [protocol.authenticated("b")]
    assert deliveries_to(deliveries, "ep-a") == [protocol.joined("b")]
    assert set(state.members) == {"a", "b"}


def test_leave_tells_everyone_left_and_is_idempotent() -> None:
    state = room_with("a", "b", "c")
    deliveries = state.leave("b")
    assert deliveries[0].message == protocol.left("b")
    assert sorted(deliveries[0].recipients) == ["ep-a", "ep-c"]
    assert state.leave("b") == []


def test_all_goes_to_everyone_but_the_sender() -> None:
    state = room_with("a", "b", "c")
    result = state.forward(Message("offer", 1, "a", "all"))
    assert result.status == "ok"
    assert sorted(result.deliveries[0].recipients) == ["ep-b", "ep-c"]


def test_all_from_nobody_goes_to_everyone() -> None:
    state = room_with("a", "b")
    result = state.forward(Message("notice", 1, None, "all"))
    assert sorted(result.deliveries[0].recipients) == ["ep-a", "ep-b"]


def test_list_is_all_or_nothing_and_the_sender_hears_of_missing_peers() -> None:
    state = room_with("a", "b")
    result = state.forward(Message("offer", 1, "a", ["b", "ghost"]))
    assert result.status == "no_such_peer"
    assert result.missing == ["ghost"]
    assert [(d.message, d.recipients) for d in result.deliveries] == [
        (protocol.error("No such peer", ["ghost"], to="a"), ["ep-a"])]


def test_list_reaches_each_addressee() -> None:
    state = room_with("a", "b", "c")
    result = state.forward(Message("offer", 1, "a", ["c", "b"]))
    assert result.status == "ok" and result.deliveries[0].recipients == ["ep-c", "ep-b"]


def test_no_to_reaches_nobody() -> None:
    assert room_with("a", "b").forward(Message("hello", None, "a", None)).deliveries == []


class Moderated(Room):
    def on_init(self, options: Any) -> None:
        self.seen: list[Message] = []

    def on_join(self, auth: AuthData) -> None:
        if auth.credentials.get("banned"):
            raise JoinRefused("banned")

    def on_forward(self, message: Message) -> Message | None:
        self.seen.append(message)
        if message.event == "spam":
            return None
        if message.event == "shout":
            return Message("shout", str(message.data).upper(), message.from_, message.to)
        return message


def test_on_forward_sees_broadcasts_and_may_drop_or_change_messages() -> None:
    room = Moderated()
    state = room_with("a", "b", room=room)
    assert [m.event for m in room.seen] == ["joined", "joined"]
    assert state.forward(Message("spam", 1, "a", "all")).deliveries == []
    assert state.forward(Message("shout", "hi", "a", "all")).deliveries[0].message.data == "HI"


def test_refused_join_changes_nothing() -> None:
    room = Moderated()
    state = room_with("a", room=room)
    with pytest.raises(JoinRefused) as refused:
        state.join(AuthData("b", {"banned": "1"}), "ep-b")
    assert refused.value.reason == "banned"
    assert list(state.members) == ["a"]


class Broken(Room):
    def on_leave(self, peer_id: str) -> None:
        raise KeyError(peer_id)


def test_a_raising_callback_becomes_a_room_crash_with_a_reason() -> None:
    state = room_with("a", room=Broken())
    with pytest.raises(RoomCallbackError) as crash:
        state.leave("a")
    assert crash.value.callback == "on_leave"
    assert "KeyError" in crash.value.reason


def test_on_forward_returning_something_else_is_a_crash() -> None:
    class Wrong(Room):
        def on_forward(self, message: Message) -> Any:
            return {"event": "x"}

    with pytest.raises(RoomCallbackError):
        room_with("a", room=Wrong())
