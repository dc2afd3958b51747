"""No secret in any log: when a message fails inside an actor, Thespian logs it whole (in the
operator's log and in its own log file), so the messages that carry secrets show none in their
repr, and Thespian's own file lives in a directory only the server's user can enter."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import uuid
from pathlib import Path

import pytest
import websockets

from membrane_rtc.ice import IceSettings
from membrane_rtc.peer import PeerRequest
from membrane_rtc.protocol import Message
from membrane_rtc.redact import REDACTED
from membrane_rtc.room import AuthData
from membrane_rtc.runtime.messages import Batch
from membrane_rtc.runtime.messages.admin import ConfigureSupervisor, CreateRoom, ForwardMessage
from membrane_rtc.runtime.messages.gateway import ClientMessage, ConnectPeer, Deliver
from membrane_rtc.runtime.messages.rooms import StartRoom
from membrane_rtc.runtime.ordering import Sequenced
from membrane_rtc.sessions import SessionSettings

from .conftest import record_actor_group
from .support.net import free_port
from .support.process import ServeProcess, run_cli

pytestmark = pytest.mark.slow  # servers as subprocesses, Thespian's log files

SECRET = "s3cr3t-value"


def shows_no_secret(text: str) -> bool:
    return SECRET not in text and REDACTED in text


def test_connect_peer_shows_no_credential_header_option_or_token() -> None:
    auth = AuthData("p1", {"token": SECRET}, {"headers": {"authorization": f"Bearer {SECRET}",
                                                          "cookie": f"session={SECRET}"},
                                              "remote_address": ("127.0.0.1", 5)})
    message = ConnectPeer(1, "demo", auth, "x:Peer", {"api_key": SECRET}, None, f"p1.{SECRET}")
    text = repr(message)
    assert shows_no_secret(text) and text == str(message)
    assert "'token'" in text and "'api_key'" in text  # names help; values never
    assert SECRET not in repr(Batch([message])) and SECRET not in str(Sequenced("c", 0, message))
    # A batch shows the kinds it carries, in order, each once: Thespian formats every message
    # it sends or receives, so this stays cheap however long the batch.
    assert repr(Batch([message, message, auth])) == "Batch(3: ConnectPeer x2, AuthData x1)"
    assert repr(ConnectPeer(1, "demo", AuthData("p1"), "x:Peer")).endswith(
        "peer_options=None, gateway=None, resume_token=None, received=None)")  # None shown


def test_auth_data_and_the_upgrade_request_show_no_credential() -> None:
    auth = AuthData("p1", {"token": SECRET}, {"cookie": SECRET}, {"name": "Ada"}, "ada")
    assert shows_no_secret(repr(auth)) and "'Ada'" in repr(auth) and "'ada'" in repr(auth)
    request = PeerRequest(f"/webrtc/demo?token={SECRET}", {"authorization": SECRET})
    assert shows_no_secret(repr(request)) and "/webrtc/demo?" in repr(request)


def test_the_turn_secret_stays_out_of_the_supervisors_and_rooms_settings() -> None:
    sessions = SessionSettings(ice=IceSettings(SECRET, ("turn:turn.example.com",)))
    configure = ConfigureSupervisor(3, 5.0, sessions=sessions,
                                    auto_create=("x:Room", {"password": SECRET}))
    assert shows_no_secret(repr(configure)) and "'x:Room'" in repr(configure)
    assert "turn:turn.example.com" in repr(configure)
    assert shows_no_secret(repr(StartRoom("r", "x:Room", {"password": SECRET},
                                          sessions=sessions)))


def test_room_options_and_what_clients_send_and_get_show_no_value() -> None:
    assert shows_no_secret(repr(CreateRoom("r", "x:Room", {"password": SECRET})))
    offer = Message("offer", {"sdp": f"a=ice-pwd:{SECRET}"}, "p1", ["p2"])
    for message in (ClientMessage(offer), ForwardMessage(offer, "r")):
        assert shows_no_secret(repr(message)) and "'offer'" in repr(message)
    frames = Deliver([(1, f'{{"event":"authenticated","resume_token":"{SECRET}"}}'.encode())])
    assert SECRET not in repr(frames) and "1 frame(s)" in repr(frames)


async def test_a_message_that_fails_in_an_actor_leaves_no_secret_in_any_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer connects with secrets in its query, headers and the peer options; its room
    actor fails on the ConnectPeer (the room crashes, its traceback logged). No
    secret is in the server's output, in Thespian's log file (in a 0700 directory), or in any
    file under the server's $TMPDIR or state directory."""
    secrets = {name: f"{name}-{uuid.uuid4().hex}" for name in
               ("query", "authorization", "cookie", "peer-option", "turn")}
    state, tmpdir = tmp_path / "state", tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("MEMBRANE_RTC_STATE_DIR", str(state))
    monkeypatch.setenv("TMPDIR", str(tmpdir))  # where Thespian's file would go by default
    monkeypatch.setenv("MEMBRANE_RTC_TURN_SECRET", secrets["turn"])
    admin_port = free_port()
    server = await ServeProcess.start(
        "--port", "0", "--actor-system", "multiproc", "--admin-port", str(admin_port),
        "--peer-class", "tests.support.failing_peer:FailingPeer",
        "--peer-options", f'{{"api_key": "{secrets["peer-option"]}"}}',
        "--turn-url", "turn:turn.example.com:3478", "--log-level", "DEBUG")
    try:
        port = server.url.split(":")[2].split("/")[0]
        status, out, err = await run_cli("admin", "--port", port, "--json", "list")
        assert status == 0, err
        record_actor_group(json.loads(out)[0]["pid"])
        attempt = asyncio.ensure_future(websockets.connect(
            f"{server.url}/demo?token={secrets['query']}", additional_headers={
                "Authorization": f"Bearer {secrets['authorization']}",
                "Cookie": f"session={secrets['cookie']}"}))
        try:
            # The room actor's guard takes the failure (Thespian would otherwise log the whole
            # message, retry it, and bounce it): a crash of the room, its traceback logged.
            await server.log_line("crashed: handling ConnectPeer raised", timeout=30)
            # And something for Thespian's own log file: bytes without the key's signature.
            reader, writer = await asyncio.open_connection("127.0.0.1", admin_port)
            writer.write(b"5>junk!")
            await asyncio.wait_for(reader.read(100), 30)  # its "bad data" answer
            writer.close()
        finally:
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
    finally:
        assert await server.signal_and_wait() == 0

    logs = {"stdout": "".join(server.stdout), "stderr": "".join(server.stderr)}
    directory = state / "thespian"
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert (directory / "thespian.log").exists()  # Thespian wrote there, and only there
    for root in (state, tmpdir):
        for path in root.rglob("*"):
            if path.is_file():
                logs[str(path)] = path.read_text(errors="replace")
    assert not any(path.name.startswith("thespian") for path in tmpdir.rglob("*"))
    leaks = {(name, where) for name, value in secrets.items() for where, text in logs.items()
             if value in text}
    assert leaks == set(), leaks
