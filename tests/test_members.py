"""The session core (membrane_rtc/members.py) as plain state: no actors, no sockets, a fake
clock. Connections are plain strings here; what each event returns is asserted effect by
effect, in order."""

from __future__ import annotations

from typing import Any

from actors.presence import PresenceRoom
from membrane_rtc import JoinRefused, Message, Room, protocol
from membrane_rtc.events import EventKind
from membrane_rtc.ice import IceSettings
from membrane_rtc.members import Members
from membrane_rtc.outcomes import (Accept, Close, Frame, Grace, Left, Notify, Occupancy, Outcome,
                                   Refuse)
from membrane_rtc.room import AuthData
from membrane_rtc.room_state import RoomState
from membrane_rtc.sessions import SessionSettings

from .support.faulty_room import FaultyRoom
from .support.keyed_peer import KeyedPeer
from .support.recording import RecordingPeer

KEY = {"key": "k"}


class Clock:
    """Wall time, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def core(room: Room | None = None, max_peers: int = 0, **settings: Any) -> Members[str]:
    state: RoomState[Any] = RoomState(room or PresenceRoom(), "r", max_peers)
    members: Members[str] = Members(state, SessionSettings(**settings), Clock())
    assert members.start(None).crash is None
    return members


def join(members: Members[str], name: str, credentials: dict[str, str] | None = None,
         ) -> Outcome[str]:
    """Connection ``name`` joins as peer ``name`` with KeyedPeer."""
    return members.join(name, AuthData(name, dict(credentials or KEY)), KeyedPeer, KEY)


def frames(outcome: Outcome[str], conn: str | None = None) -> list[tuple[str, Any]]:
    """(connection, decoded message) of each frame, in order."""
    return [(e.conn, protocol.decode_server_frame(e.frame)) for e in outcome.effects
            if isinstance(e, Frame) and conn in (None, e.conn)]


def kinds(outcome: Outcome[str]) -> list[str]:
    return [type(e).__name__ for e in outcome.effects]


def token(outcome: Outcome[str], conn: str) -> str:
    hello = next(m for c, m in frames(outcome, conn) if m.event == "authenticated")
    return str(hello.data["resume_token"])


def test_a_join_is_accepted_welcomed_announced_counted_and_reported() -> None:
    members = core()
    first = join(members, "a")
    assert kinds(first) == ["Accept", "Frame", "Occupancy", "Notify"]
    assert first.effects[0] == Accept("a", "a", None)
    assert first.effects[2] == Occupancy(1)
    assert first.effects[3] == Notify(EventKind.PEER_JOINED,
                                      {"peer_id": "a", "identity": None, "metadata": None})
    second = join(members, "b", {**KEY, "name": "Bob"})
    (_, hello), (to, joined) = frames(second)
    assert hello.data["metadata"] == {"name": "Bob"} and hello.data["resumed"] is False
    assert to == "a" and joined.data == {"peer_id": "b", "metadata": {"name": "Bob"}}


def test_a_peer_that_refuses_is_a_401_and_the_room_still_reports_its_occupancy() -> None:
    members = core()
    refused = join(members, "a", {"key": "wrong"})
    assert kinds(refused) == ["Refuse", "Occupancy"]
    assert refused.effects[0] == Refuse("a", 401, "bad key", refused.effects[0].error)
    assert refused.effects[1] == Occupancy(0) and not members.members


def test_a_peer_class_that_cannot_be_made_is_a_500() -> None:
    def broken() -> KeyedPeer:
        raise ImportError("no such class")

    outcome = core().join("a", AuthData("a", {}), broken, None)
    assert kinds(outcome) == ["Refuse"]
    assert outcome.effects[0] == Refuse("a", 500, "cannot create peer",
                                        outcome.effects[0].error)


def test_a_room_that_refuses_tells_the_client_and_closes_it() -> None:
    members = core(max_peers=1)
    join(members, "a")
    refused = join(members, "b")
    assert kinds(refused) == ["Accept", "Frame", "Close", "Occupancy"]
    assert isinstance(refused.refusal, JoinRefused) and refused.refusal.reason == "room_is_full"
    assert frames(refused)[0][1].data == {"description": "Could not join room",
                                          "details": "room_is_full"}
    assert refused.effects[2] == Close("b", 1000, "could not join room", "join_refused")
    assert list(members.members) == ["a"]


def test_a_drop_keeps_the_peer_away_with_a_grace_and_its_frames() -> None:
    members = core()
    a_token = token(join(members, "a"), "a")
    join(members, "b")
    dropped = members.disconnected("a", "a", resumable=True)
    assert [e for e in dropped.effects if isinstance(e, Grace)] == [Grace(20.0, "a", 1)]
    assert [m.event for _, m in frames(dropped)] == ["peer_away"]  # to b
    kept = members.receive("b", Message("offer", 1, "b", ["a"]))
    assert kept.effects == [] and members.members["a"].away is not None

    # A resume its Peer refuses changes nothing: still away, the token still good.
    refused = members.resume(a_token, "a2", AuthData("a", {}), KeyedPeer, KEY)
    assert refused is not None and kinds(refused) == ["Refuse"]
    assert members.members["a"].conn == "a" and members.members["a"].away is not None

    back = members.resume(a_token, "a2", AuthData("a", dict(KEY)), KeyedPeer, KEY)
    assert back is not None and back.effects[0] == Accept("a2", "a", None, resumed=True)
    assert [(c, m.event) for c, m in frames(back)] == [
        ("a2", "authenticated"), ("a2", "offer"), ("b", "peer_back")]
    assert frames(back)[0][1].data["resumed"] is True
    assert members.grace_over("a", 1).effects == []  # the grace of an absence that is over
    assert members.resume(a_token, "a3", AuthData("a", dict(KEY)), KeyedPeer, KEY) is None


def test_the_grace_ends_in_a_leave() -> None:
    members = core(resume_grace=5)
    join(members, "a"), join(members, "b")
    members.disconnected("a", "a", resumable=True)
    over = members.grace_over("a", 1)
    assert kinds(over) == ["Left", "Frame", "Occupancy", "Notify"]
    assert over.effects[0] == Left("a", "a") and frames(over)[0][1].event == "left"
    assert over.effects[3] == Notify(EventKind.PEER_LEFT, {"peer_id": "a"})


def test_without_resuming_a_drop_is_a_leave_and_no_token_is_issued() -> None:
    members = core(resume_grace=0)
    assert "resume_token" not in frames(join(members, "a"))[0][1].data
    assert kinds(members.disconnected("a", "a", resumable=True))[0] == "Left"


def test_an_old_connection_ending_changes_nothing() -> None:
    members = core()
    join(members, "a")
    assert members.disconnected("a", "elsewhere", resumable=False).effects == []
    assert members.disconnected("ghost", "a", resumable=False).effects == []


def test_frames_past_the_bound_end_the_grace() -> None:
    members = core(resume_queue_bytes=100)
    join(members, "a"), join(members, "b")
    members.disconnected("a", "a", resumable=True)
    assert members.receive("b", Message("x", "y" * 20, "b", ["a"])).effects == []
    over = members.receive("b", Message("x", "y" * 80, "b", ["a"]))
    assert Left("a", "a") in over.effects and "a" not in members.members


def test_a_resume_on_a_half_open_connection_closes_the_old_one() -> None:
    members = core()
    a_token = token(join(members, "a"), "a")
    back = members.connect("a2", AuthData("x", dict(KEY)), KeyedPeer, KEY, a_token)
    assert back.effects[0] == Close("a", 1000, "resumed on another connection")
    assert members.members["a"].conn == "a2"


def test_a_resume_with_an_unknown_token_is_a_join() -> None:
    members = core()
    outcome = members.connect("n", AuthData("n", dict(KEY)), KeyedPeer, KEY, "ghost.secret")
    assert outcome.effects[0] == Accept("n", "n", None)


def test_a_raising_room_callback_is_the_outcomes_crash() -> None:
    members: Members[str] = Members(RoomState(FaultyRoom(), "r"), SessionSettings(), Clock())
    members.start({"raise_in": "on_forward"})
    join(members, "a")
    crashed = members.receive("a", Message("boom", None, "a", "all"))
    assert crashed.crash is not None and "on_forward failure" in crashed.crash.reason

    leaving: Members[str] = Members(RoomState(FaultyRoom(), "r"), SessionSettings(), Clock())
    leaving.start({"raise_in": "on_leave"})
    join(leaving, "a")
    gone = leaving.leave("a")
    assert gone.crash is not None and gone.effects == [Left("a", "a")]


def test_a_raising_peer_is_closed_with_1011_and_leaves() -> None:
    members = core()
    members.join("a", AuthData("a", {}), RecordingPeer, None)
    outcome = members.receive("a", Message("crash", None, "a", "all"))
    assert outcome.effects[:2] == [Close("a", 1011, "internal error"), Left("a", "a")]


def test_a_kick_closes_and_leaves_and_an_unknown_peer_is_none() -> None:
    members = core()
    join(members, "a")
    assert members.kick("ghost") is None
    kicked = members.kick("a")
    assert kicked is not None and kicked.effects[:2] == [Close("a", 1000, "kicked"),
                                                         Left("a", "a")]


def test_terminate_ends_peers_before_the_room_once() -> None:
    members = core()
    join(members, "a")
    peer = members.members["a"].peer_state.peer
    assert members.terminate() is None and peer.terminated  # type: ignore[attr-defined]
    assert members.terminate() is None


def test_turn_credentials_are_fresh_as_of_the_clock() -> None:
    state: RoomState[Any] = RoomState(PresenceRoom(), "r")
    clock = Clock()
    members: Members[str] = Members(state, SessionSettings(ice=IceSettings(
        "s", ("turn:t",), 600)), clock)
    members.start(None)
    clock.now = 5000.0
    hello = frames(join(members, "a"))[0][1]
    assert hello.data["ice_servers"][0]["username"] == "5600:a"


def test_forward_reports_its_status() -> None:
    members = core()
    join(members, "a")
    assert members.forward(Message("x", None, None, ["ghost"])).status == "no_such_peer"
    assert members.forward(Message("x", None, None, "all")).status == "ok"
