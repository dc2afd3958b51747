"""actors.jwt_auth:JWTPeer against a real server, with tokens minted by PyJWT; and the
``membrane-rtc token`` command."""

from __future__ import annotations

import base64
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from actors.jwt_auth import JWTPeer
from membrane_rtc import AuthData, PeerContext, Server, ServerConfig, Unauthorized
from membrane_rtc.config_checks import ConfigError

from .conftest import ServerFactory
from .support.client import Client, refusal
from .support.process import run_cli
from .support.recording import RECORD

SECRET = "a-shared-secret-of-some-length-0123456789"
JWT_PEER = "actors.jwt_auth:JWTPeer"


def token(room: str = "demo", key: Any = SECRET, algorithm: str = "HS256",
          **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "ada", "room": room, "exp": now + 60, "name": "Ada", **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


async def refused(url: str, **kwargs: Any) -> int:
    return (await refusal(url, **kwargs)).response.status_code


async def test_a_valid_token_admits_and_names_the_peer(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(peer_class=JWT_PEER, peer_options={"secret": SECRET})
    url = f"{server.url}/demo"
    ada = await Client.connect(f"{url}?access_token={token()}")
    assert ada.welcome["metadata"] == {"name": "Ada"}
    bob = await Client.connect(url, additional_headers={
        "Authorization": f"Bearer {token(sub='bob', name=None, metadata={'name': 'Bob'})}"})
    joined = await ada.recv_event("joined")
    assert joined["data"] == {"peer_id": bob.peer_id, "metadata": {"name": "Bob"}}
    anywhere = await Client.connect(f"{url}?access_token={token(room='*', sub='eve')}")
    for client in (ada, bob, anywhere):
        await client.close()


@pytest.mark.parametrize("make, reason", [
    (lambda: token(exp=int(time.time()) - 60), "access token expired"),
    (lambda: token(room="elsewhere"), "access token is not for this room"),
    (lambda: token(key="another-secret-of-some-length-0123456789"), "InvalidSignatureError"),
    (lambda: token(exp=None), "MissingRequiredClaimError"),
    (lambda: token(nbf=int(time.time()) + 600), "access token not valid yet"),
    (lambda: jwt.encode({"sub": "x", "room": "demo", "exp": int(time.time()) + 60}, None,
                        algorithm="none"), "InvalidAlgorithmError"),
    (lambda: _tampered(token()), "InvalidSignatureError"),
    (lambda: "not.a.jwt", "DecodeError"),
    (lambda: "", "no access token"),
])
async def test_every_bad_token_is_401_with_a_reason_logged_and_never_the_token(
        start_server: ServerFactory, caplog: pytest.LogCaptureFixture, make: Any,
        reason: str) -> None:
    server = await start_server(peer_class=JWT_PEER, peer_options={"secret": SECRET})
    bad = make()
    with caplog.at_level(logging.INFO):
        assert await refused(f"{server.url}/demo?access_token={bad}") == 401
    assert any(reason in record.getMessage() for record in caplog.records)
    if bad:
        assert not any(bad in record.getMessage() for record in caplog.records)
    refusals = server.metrics.refusals.labels("unauthorized")._value.get()
    assert refusals == 1
    by_reason = {sample.labels["reason"]: sample.value
                 for sample in server.metrics.unauthorized.collect()[0].samples
                 if sample.name.endswith("_total")}
    assert len(by_reason) == 1 and reason in next(iter(by_reason))  # the reason, counted


def _tampered(good: str) -> str:
    """The same token with its claims changed (another room) and the old signature."""
    header, claims, signature = good.split(".")
    forged = base64.urlsafe_b64encode(b'{"sub":"mallory","room":"*","exp":9999999999}')
    return f"{header}.{forged.decode().rstrip('=')}.{signature}"


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_tokens_signed_with_a_private_key_are_checked_with_its_public_key(
        start_server: ServerFactory, tmp_path: Path, algorithm: str) -> None:
    private = rsa.generate_private_key(65537, 2048) if algorithm == "RS256" \
        else ec.generate_private_key(ec.SECP256R1())
    public = tmp_path / "public.pem"
    public.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    server = await start_server({"demo": ("tests.support.recording:RecordingRoom", None)},
                                peer_class=JWT_PEER,
                                peer_options={"public_key_file": str(public)})
    url = f"{server.url}/demo"
    ada = await Client.connect(f"{url}?access_token={token(key=private, algorithm=algorithm)}")
    [join] = [c for c in RECORD.calls if c[1] == "on_join"]
    assert join[2].identity == "ada" and join[2].public_metadata == {"name": "Ada"}
    assert "authorization" not in join[2].metadata["headers"]
    # An HMAC token keyed with the public key's text: the classic confusion, refused.
    confused = jwt.encode({"sub": "x", "room": "demo", "exp": int(time.time()) + 60},
                          SECRET, algorithm="HS256")
    assert await refused(f"{url}?access_token={confused}") == 401
    await ada.close()


@pytest.mark.slow  # membrane-rtc token as a subprocess
async def test_the_token_command_mints_what_the_peer_accepts(
        start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOM_SECRET", SECRET)
    server = await start_server(peer_class=JWT_PEER, peer_options={"secret_env": "ROOM_SECRET"})
    monkeypatch.setenv("MEMBRANE_RTC_JWT_SECRET", SECRET)
    status, out, err = await run_cli("token", "--room", "demo", "--sub", "ada", "--ttl", "60",
                                     "--name", "Ada")
    assert status == 0, err
    minted = out.strip()
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["room"], claims["name"]) == ("ada", "demo", "Ada")
    assert 55 <= claims["exp"] - time.time() <= 61
    client = await Client.connect(f"{server.url}/demo?access_token={minted}")
    assert client.welcome["metadata"] == {"name": "Ada"}
    await client.close()
    monkeypatch.delenv("MEMBRANE_RTC_JWT_SECRET")
    status, _, err = await run_cli("token", "--room", "demo", "--sub", "ada")
    assert status == 2 and "--secret: give one" in err


def admit(options: dict[str, Any], access_token: str) -> JWTPeer:
    """JWTPeer's on_init alone, as a room runs it for a client of room ``demo``."""
    peer = JWTPeer()
    peer.on_init(PeerContext("p", "demo"), AuthData("p", {"access_token": access_token}),
                 options)
    return peer


def test_max_lifetime_refuses_long_lived_tokens_and_tokens_without_iat() -> None:
    options = {"secret": SECRET, "max_lifetime": 3600}
    now = int(time.time())
    assert admit(options, token(iat=now, exp=now + 3600)).identity == "ada"  # just within
    with pytest.raises(Unauthorized, match="^access token lives longer than max_lifetime$"):
        admit(options, token(iat=now, exp=now + 3601))
    with pytest.raises(Unauthorized, match="lives longer"):  # issued long ago, still valid
        admit(options, token(iat=now - 7200, exp=now + 60))
    with pytest.raises(Unauthorized, match="^access token has no iat"):
        admit(options, token(exp=now + 60))
    assert admit({"secret": SECRET}, token(exp=now + 86400)).identity == "ada"  # not set
    for bad in ("1h", 0, -5, True):
        with pytest.raises(ValueError, match="max_lifetime must be a positive number"):
            admit({"secret": SECRET, "max_lifetime": bad}, token(iat=now))


def short_key_token(key: str) -> str:
    """A token signed with a short key (newer PyJWTs warn; JWTPeer refuses the key)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return token(key=key)


def test_a_short_hmac_secret_is_refused_by_the_check_and_by_every_connection() -> None:
    short = "s" * 31
    with pytest.raises(ValueError, match="HS256 secret is 31 bytes long, shorter than 32") \
            as caught:
        JWTPeer.check_options({"secret": short})
    assert short not in str(caught.value)
    with pytest.raises(ValueError, match="HS256 secret is 31 bytes long"):  # belt and braces
        admit({"secret": short}, short_key_token(short))
    JWTPeer.check_options({"secret": "s" * 32})
    assert admit({"secret": "s" * 32}, token(key="s" * 32)).identity == "ada"


@pytest.mark.parametrize("options, words", [
    (None, "no secret: give 'secret', 'secret_env' or $MEMBRANE_RTC_JWT_SECRET"),
    ({"secret_env": "NO_SUCH_VARIABLE_HERE"}, "no secret"),
    ({"public_key_file": "/nonexistent/key.pem"}, "cannot read public_key_file "
                                                  "/nonexistent/key.pem: No such file"),
    ({"secret": SECRET, "max_lifetime": "1h"}, "max_lifetime must be a positive number"),
    ({"secret": SECRET, "leeway": -1}, "leeway must be seconds >= 0"),
    ({"secret": SECRET, "audiense": "x"}, "JWTPeer has no option 'audiense'"),
    ("s3cret", "JWTPeer's options are an object"),
])
def test_options_that_could_admit_nobody_are_refused_by_the_check(
        options: Any, words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMBRANE_RTC_JWT_SECRET", raising=False)
    with pytest.raises(ValueError, match="JWTPeer") as caught:
        JWTPeer.check_options(options)
    assert words in str(caught.value)


async def test_a_server_with_a_short_secret_does_not_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: it started, and answered every client 401. Now Server.start() refuses, before
    the actor system starts."""
    monkeypatch.setenv("SHORT_SECRET", "change-me")
    server = Server(ServerConfig(port=0, peer_class=JWT_PEER,
                                 peer_options={"secret_env": "SHORT_SECRET"}))
    with pytest.raises(ConfigError, match="9 bytes long, shorter than 32") as caught:
        await server.start()
    assert caught.value.field == "peer_options"
    assert server.bridge.loop is None and server.gateway is None  # nothing started


@pytest.mark.slow  # membrane-rtc token as a subprocess
async def test_the_token_command_refuses_a_short_secret_in_one_line() -> None:
    status, out, err = await run_cli("token", "--secret", "short", "--room", "demo",
                                     "--sub", "ada")
    assert (status, out) == (2, "")
    assert err.splitlines() == ["membrane-rtc: error: --secret: 5 bytes is too short for "
                                "HS256: give at least 32 (JWTPeer refuses shorter secrets)"]
