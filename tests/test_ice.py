"""TURN REST-API credentials and ICE server entries: pure code (coturn itself checks them in
tests/test_turn.py)."""

from __future__ import annotations

from membrane_rtc.ice import IceSettings, turn_credentials


#: A test vector made once with OpenSSL, independently of Python's hmac:
#:   printf '%s' '1800000000:peer-1' | openssl dgst -sha1 -hmac 'secret' -binary | base64
SECRET_PEER_1_VECTOR = "V9o+vg8Pd5SiMIUSAgWS3uGB4mY="


def test_credentials_follow_the_turn_rest_api_scheme() -> None:
    """The username is the expiry and the peer id; the credential base64(HMAC-SHA1(secret,
    username)), as coturn's use-auth-secret recomputes it."""
    username, credential = turn_credentials("secret", "peer-1", 1_800_000_000)
    assert username == "1800000000:peer-1"
    assert credential == SECRET_PEER_1_VECTOR
    assert turn_credentials("secret", "peer-1", 1_800_000_000)[1] == credential
    assert turn_credentials("other", "peer-1", 1_800_000_000)[1] != credential
    assert turn_credentials("secret", "peer-2", 1_800_000_000)[1] != credential


def test_servers_hold_turn_with_credentials_then_stun() -> None:
    settings = IceSettings("secret", ("turn:a", "turns:b"), 60, ("stun:c",))
    turn, stun = settings.servers("p", now=1000.9)
    assert turn["urls"] == ["turn:a", "turns:b"] and turn["username"] == "1060:p"
    assert stun == {"urls": ["stun:c"]}
    assert IceSettings(stun_urls=("stun:c",)).servers("p", 0) == [{"urls": ["stun:c"]}]
    assert not IceSettings() and IceSettings().servers("p", 0) == []
