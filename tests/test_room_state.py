"""The room's rules as plain state, without an actor system."""

from contextlib import nullcontext
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


class Greeter(Room):
    """Greets each joiner, announces leaves with a count, and answers "who" with the members."""

    def on_init(self, options: Any) -> None:
        self.members: list[str] = []

    def on_join(self, auth: AuthData) -> None:
        if auth.credentials.get("refuse"):
            self.send(Message("never", None, to="all"))
            raise JoinRefused("no")
        self.members.append(auth.peer_id)
        self.send(Message("welcome", {"here": len(self.members)}, to=[auth.peer_id]))

    def on_leave(self, peer_id: str) -> None:
        self.members.remove(peer_id)
        self.send(Message("count", len(self.members), to="all"))

    def on_forward(self, message: Message) -> Message | None:
        if message.event == "who":
            self.send(Message("members", sorted(self.members), to=[message.from_]))
            return None
        if message.event == "loop":
            self.send(Message("loop", None, to=None))
        return message


def test_room_send_greets_the_joiner_after_its_authenticated() -> None:
    state = room_with("a", room=Greeter())
    deliveries = state.join(AuthData("b"), "ep-b")
    assert deliveries_to(deliveries, "ep-b") == [
        protocol.authenticated("b"), Message("welcome", {"here": 2}, None, ["b"])]
    assert deliveries_to(deliveries, "ep-a") == [protocol.joined("b")]


def test_room_send_from_leave_and_forward_is_routed_from_the_room() -> None:
    state = room_with("a", "b", "c", room=Greeter())
    assert deliveries_to(state.leave("c"), "ep-a")[-1] == Message("count", 2, None, "all")
    result = state.forward(Message("who", None, "a", None))
    assert [(d.message, d.recipients) for d in result.deliveries] == [
        (Message("members", ["a", "b"], None, ["a"]), ["ep-a"])]


def test_a_refused_join_sends_nothing_it_queued() -> None:
    state = room_with("a", room=Greeter())
    with pytest.raises(JoinRefused):
        state.join(AuthData("x", {"refuse": "1"}), "ep-x")
    assert state.forward(Message("hi", None, "a", ["a"])).deliveries[0].message.event == "hi"


def test_a_room_that_sends_forever_from_on_forward_crashes() -> None:
    state = room_with("a", room=Greeter())
    with pytest.raises(RoomCallbackError, match="more than 100 rounds"):
        state.forward(Message("loop", None, "a", None))


def test_max_peers_refuses_before_on_join_is_asked() -> None:
    state: RoomState[str] = RoomState(Greeter(), "r", max_peers=1)
    state.start(None)
    state.join(AuthData("a"), "ep-a")
    with pytest.raises(JoinRefused) as refused:
        state.join(AuthData("b"), "ep-b")
    assert refused.value.reason == "room_is_full" and state.room.members == ["a"]


def test_the_time_limit_wraps_every_callback_and_a_timeout_is_a_crash() -> None:
    from contextlib import contextmanager

    seen: list[tuple[str, float]] = []
    armed: list[bool] = []

    @contextmanager
    def limit(callback: str, seconds: float):
        seen.append((callback, seconds))
        yield
        if armed:  # what the runtime's watchdog raises for an interrupted callback
            raise TimeoutError(f"no answer within {seconds:g} s")

    class Forwarding(Room):
        def on_forward(self, message: Message) -> Message | None:
            return message

    state: RoomState[str] = RoomState(Forwarding(), "r", callback_timeout=2.5,
                                      time_limit=limit)
    state.start(None)
    state.join(AuthData("a"), "ep-a")
    armed.append(True)
    with pytest.raises(RoomCallbackError, match="no answer within 2.5 s"):
        state.forward(Message("x", None, "a", "all"))
    assert seen[:2] == [("room 'r' on_init", 2.5), ("room 'r' on_join", 2.5)]
    assert seen[-1] == ("room 'r' on_forward", 2.5)


def test_the_default_on_forward_is_not_called_and_the_message_still_goes() -> None:
    seen: list[str] = []

    def limit(callback: str, seconds: float):
        seen.append(callback)
        return nullcontext()

    state: RoomState[str] = RoomState(Room(), "r", callback_timeout=2.5, time_limit=limit)
    state.join(AuthData("a"), "ep-a")
    state.join(AuthData("b"), "ep-b")
    seen.clear()
    result = state.forward(Message("x", None, "a", "all"))
    assert deliveries_to(result.deliveries, "ep-b") == [Message("x", None, "a", "all")]
    assert seen == []  # no time limit armed: no callback of the user's ran


class Watchful(Room):
    """Tells the room when a peer drops and comes back."""

    def on_disconnect(self, peer_id: str) -> None:
        self.send(Message("dropped", peer_id, to="all"))

    def on_resume(self, peer_id: str) -> None:
        self.send(Message("back", peer_id, to="all"))


def test_a_dropped_member_stays_and_the_room_hears_of_it_and_of_its_return() -> None:
    state = room_with("a", "b", room=Watchful())
    assert [m.event for m in deliveries_to(state.disconnect("a"), "ep-b")] == ["dropped"]
    assert set(state.members) == {"a", "b"}  # no left: a may come back
    deliveries = state.resume("a", "ep-a2")
    assert state.members["a"] == "ep-a2"
    assert [(m.event, m.data) for m in deliveries_to(deliveries, "ep-a2")] == [("back", "a")]
    assert state.disconnect("gone") == []


def test_welcome_fields_and_public_metadata_go_in_authenticated_and_joined() -> None:
    state = room_with("a")
    deliveries = state.join(AuthData("b", public_metadata={"name": "Bo"}), "ep-b",
                            {"resumed": False})
    assert deliveries_to(deliveries, "ep-b")[0].data == {"peer_id": "b", "resumed": False}
    assert deliveries_to(deliveries, "ep-a")[0].data == {"peer_id": "b",
                                                          "metadata": {"name": "Bo"}}


class OwnInitRoom(Room):
    """A room with its own ``__init__`` that does not call ``super().__init__()``."""

    def __init__(self) -> None:
        self.fired: list[str] = []

    def on_init(self, options: Any) -> None:
        self.send(Message("hello", None, None, "all"))
        self.call_later(1.0, lambda: self.fired.append("kept"))
        self.cancel_timer(self.call_later(2.0, lambda: self.fired.append("cancelled")))


def test_a_room_that_skips_super_init_still_sends_sets_and_cancels_timers() -> None:
    """What a room asks for reaches the state through ``Room._outbox()``, which needs
    nothing from ``Room.__init__``: its message is routed, its timers armed once, the
    cancelled one does not fire."""
    room = OwnInitRoom()
    state: RoomState[str] = RoomState(room, "r")
    assert state.start(None) == []  # nobody to send to yet, but the message was taken
    timers = state.take_timers()
    assert [delay for _, delay in timers] == [1.0, 2.0]
    assert state.take_timers() == []
    for timer_id, _ in timers:
        state.fire(timer_id)
    assert room.fired == ["kept"]
    assert room._outbox().sent == []
