"""Resume tokens and the away queue: plain state, no sockets."""

from __future__ import annotations

from membrane_rtc.config import ServerConfig
from membrane_rtc.sessions import Away, ResumeTokens, SessionSettings


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


def test_away_keeps_frames_in_order_up_to_its_bound() -> None:
    away = Away(limit=10, absence=1)
    assert away.hold(b"12345") and away.hold(b"6789")
    assert away.frames == [b"12345", b"6789"]
    assert not away.hold(b"ab")  # 11 bytes: past the bound
    assert away.frames == [b"12345", b"6789"]


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
