"""Resume tokens and the frames kept for a resume: plain state, no sockets."""

from __future__ import annotations

from membrane_rtc.config import ServerConfig
from membrane_rtc.sessions import ResumeTokens, Sent, SessionSettings


def test_a_token_is_good_once_and_for_its_peer_only() -> None:
    tokens = ResumeTokens()
    first, other = tokens.issue("a"), tokens.issue("b")
    assert first != other and first.startswith("a.")
    assert len(first.partition(".")[2]) >= 22  # >= 128 bits of randomness, urlsafe base64
    assert tokens.claim("b." + first.partition(".")[2]) is None  # a's secret, b's id
    assert tokens.claim(first + "x") is None
    assert tokens.claim("no-dot") is None
    assert tokens.claim(first) == "a"
    assert tokens.claim(first) is None  # spent
    renewed = tokens.issue("b")
    assert tokens.claim(other) is None  # replaced by a newer one
    tokens.forget("b")
    assert tokens.claim(renewed) is None  # b has left


def test_frames_since_a_drop_are_kept_in_order_up_to_the_bound() -> None:
    sent = Sent(limit=10)
    assert sent.add(b"authenticated") and sent.frames is None  # frame 1: never kept
    sent.pin()
    assert sent.add(b"12345") and sent.add(b"6789")
    assert sent.since_drop() == [b"12345", b"6789"]
    assert not sent.add(b"ab")  # 11 bytes since the drop: past the bound


def test_frames_are_numbered_and_the_most_recent_kept_within_the_bound() -> None:
    sent = Sent(limit=10)
    assert sent.add(b"authenticated") and sent.after(1) == [] and sent.after(0) == []
    for frame in (b"1111", b"2222", b"3333", b"4444"):
        assert sent.add(frame)  # connected: older frames make room
    assert sent.count == 5 and sent.first == 4 and sent.size <= 10
    assert sent.after(3) == [b"3333", b"4444"] and sent.after(5) == []
    assert sent.after(2) is None  # frame 3 is gone
    sent.pin()  # a drop: frames before it still make room for those after it
    assert sent.add(b"55555") and sent.first == 5 and sent.since_drop() == [b"55555"]
    assert not sent.add(b"666666")  # the frames since the drop alone pass 10 bytes
    sent.unpin()
    assert sent.add(b"x" * 11) and sent.size == 0 and sent.count == 8  # too big to keep
    assert sent.frames is not None and not any(sent.frames)  # none held on to


def test_frames_made_room_for_are_let_go_at_once() -> None:
    """What counts is what stays referenced: big frames that made room are not held until
    the list is compacted."""
    sent = Sent(limit=100_000)
    sent.add(b"authenticated")
    for n in range(50):
        assert sent.add(bytes([n]) * 60_000)  # each one makes room for the next
        assert sum(map(len, sent.frames or [])) == sent.size <= 100_000
    assert sent.after(50) == [bytes([49]) * 60_000] and sent.after(49) is None  # 1 + 50 sent


def test_settings_come_from_the_server_config() -> None:
    settings = SessionSettings.from_config(ServerConfig(
        resume_grace=0, turn_secret="s", turn_urls=["turn:t"], stun_urls=["stun:s"]))
    assert not settings.resumable and settings.ice
    assert settings.ice.turn_urls == ("turn:t",) and settings.ice.stun_urls == ("stun:s",)
    assert SessionSettings().resumable and not SessionSettings().ice


def test_looking_a_token_up_does_not_spend_it() -> None:
    """A resume that its Peer refuses looks the token up only: it stays good for the client
    that holds the credentials too."""
    tokens = ResumeTokens()
    token = tokens.issue("a")
    assert tokens.holder(token) == "a" and tokens.holder(token) == "a"
    assert tokens.holder(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert tokens.claim(token) == "a"
    assert tokens.holder(token) is None  # spent
