"""The documentation: it builds without a warning, and what it shows readers runs.

Every listing on every page (``docs/**/*.md``) is run by a test here or elsewhere in the suite,
read from the page itself so that a page and its test cannot drift apart: commands from
``console`` blocks (the lines starting with ``$ ``), code from ``python``, ``html`` and the
others. ``LISTINGS`` names the test that runs each one; the few that cannot run here (a
diagram, root on a server, three machines, a host on the internet) are in ``NOT_RUN_HERE`` with
the reason and what checks them instead. A listing in neither fails
``test_every_listing_is_run_by_a_test``.
"""

from __future__ import annotations

import asyncio
import base64
import configparser
import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext

from membrane_rtc.ops.cli import build_parser, config_from_args
from membrane_rtc.events import EventKind, new_event
from membrane_rtc.ops.webhooks import signature

from .conftest import ServerFactory
from .support.browser import WAIT_MS, browser  # noqa: F401 (fixture)
from .support.client import Client, http_get, refused_status
from .support.docs import DOCS, UUID, console_commands, listing, listings, run_session
from .support.net import free_port
from .support.pages import PageServer
from .support.process import REPO, ServeProcess, run_cli
from .support.tools import require
from .support.waiting import until

pytestmark = pytest.mark.slow  # Sphinx, and every listing run (servers, venvs, chromium)

#: Each listing, as (page, its first line - a directive: its info string), and the test that
#: runs it.
LISTINGS = {
    ("index.md", "from membrane_rtc import AuthData, JoinRefused, Room"):
        "test_the_index_room_holds_two_as_served",
    ("index.md", "$ membrane-rtc serve --room call --room-class two.py:TwoPeople"):
        "test_the_index_room_holds_two_as_served",
    ("tutorial.md", "$ membrane-rtc serve --room demo"):
        "test_the_tutorial_demo_server_starts_as_shown",
    ("tutorial.md", "membrane-rtc serving ws://127.0.0.1:8080/webrtc/<room> (rooms: demo; "
                    "actor system: embedded; event loop: asyncio); Ctrl-C to stop"):
        "test_the_tutorial_demo_server_starts_as_shown",  # its output
    ("tutorial.md", "# docs/tutorial/lobby.py"): "test_the_tutorial_lobby_greets_and_holds_two",
    ("tutorial.md", "$ membrane-rtc serve --room lobby --room-class docs/tutorial/lobby.py:Lobby "
                    "--room-options '{\"max_peers\": 2}'"):
        "test_the_tutorial_lobby_greets_and_holds_two",
    ("tutorial.md", "# docs/tutorial/greet_me.py"): "test_the_tutorial_lobby_greets_and_holds_two",
    ("tutorial.md", "$ python docs/tutorial/greet_me.py"):
        "test_the_tutorial_lobby_greets_and_holds_two",
    ("tutorial.md", "my peer id: 6f1b3c0e-..."):
        "test_the_tutorial_lobby_greets_and_holds_two",  # its output
    ("tutorial.md", "$ membrane-rtc new room town_hall"):
        "test_the_tutorial_scaffold_passes_its_test_in_a_fresh_venv_and_serves",
    ("tutorial.md", "$ pip install 'membrane-rtc[reload]'"):
        "test_the_tutorial_scaffold_passes_its_test_in_a_fresh_venv_and_serves",
    ("howto/test-a-room.md", "$ membrane-rtc new room town_hall"):
        "test_the_how_to_test_commands_are_the_tutorials",
    ("howto/test-a-room.md", "from membrane_rtc import JoinRefused"):
        "test_the_how_to_test_listings_pass_under_pytest",
    ("howto/test-a-room.md", "from membrane_rtc.actors.capped import CappedRoom"):
        "test_the_how_to_test_listings_pass_under_pytest",
    ("howto/authenticate.md", "$ membrane-rtc serve --room demo --peer-class "
                              "actors.token:TokenPeer --peer-options '{\"token\": \"s3cret\"}'"):
        "test_the_token_peer_command_works",
    ("howto/authenticate.md", "{literalinclude} ../../actors/token.py"):
        "test_the_token_peer_command_works",
    ("howto/authenticate.md", "{literalinclude} cookie_peer.py"):
        "test_the_cookie_peer_lets_in_a_signed_session_only",
    ("howto/authenticate.md", "$ membrane-rtc serve --room demo --peer-class "
                              "docs/howto/cookie_peer.py:CookiePeer --peer-options "
                              "'{\"secret\": \"change me\"}'"):
        "test_the_cookie_peer_lets_in_a_signed_session_only",
    ("howto/authenticate.md", "$ export MEMBRANE_RTC_JWT_SECRET=change-me-to-a-long-random-secret"):
        "test_the_jwt_commands_work_as_shown",
    ("howto/moderate.md", "{literalinclude} moderated_room.py"):
        "test_the_moderated_room_keeps_guests_and_signaling_only",
    ("howto/moderate.md", "$ membrane-rtc serve --room standup --room-class "
                          "docs/howto/moderated_room.py:ModeratedRoom --room-options "
                          "'{\"guests\": [\"ada\", \"grace\"], \"max_peers\": 2}'"):
        "test_the_moderated_room_keeps_guests_and_signaling_only",
    ("howto/clients.md", "<!doctype html>"): "test_the_clients_page_calls_another_in_a_browser",
    ("howto/clients.md", "import asyncio"): "test_the_python_client_listing_runs",
    ("howto/clients.md", "{literalinclude} ../../examples/aiortc_datachannel.py"):
        "test_the_aiortc_example_runs_as_shown",
    ("howto/clients.md", "$ python examples/aiortc_datachannel.py"):
        "test_the_aiortc_example_runs_as_shown",
    ("howto/webapp.md", "$ export MEMBRANE_RTC_JWT_SECRET=change-me-to-a-long-random-secret"):
        "test_two_users_log_in_and_chat_over_a_data_channel",  # tests/test_webapp.py
    ("howto/webapp.md", "{literalinclude} ../../examples/webapp/app.py"):
        "test_two_users_log_in_and_chat_over_a_data_channel",
    ("howto/webapp.md", "{literalinclude} ../../examples/webapp/static/index.html"):
        "test_two_users_log_in_and_chat_over_a_data_channel",
    ("howto/embed.md", "{literalinclude} embedded_server.py"): "test_the_embedding_example_runs",
    ("howto/embed.md", "$ python docs/howto/embedded_server.py"): "test_the_embedding_example_runs",
    ("howto/operate.md", "$ membrane-rtc admin list"): "test_the_operator_commands_run_as_shown",
    ("howto/multiproc.md", "$ membrane-rtc serve --room demo --room lobby --actor-system "
                           "multiproc --admin-port 1900"):
        "test_the_multiproc_command_serves_its_rooms",
    ("howto/scale-out.md", "$ membrane-rtc admin --admin-port 1900 hosts"):
        "test_the_guides_one_machine_commands_as_shown",  # tests/test_scaleout.py
    ("howto/scale-out.md", "$ export MEMBRANE_RTC_ACTOR_KEY=try-it-on-one-machine-only"):
        "test_the_guides_one_machine_commands_as_shown",
    ("howto/deploy.md", "{literalinclude} nginx.conf"):
        "test_wss_through_the_guides_nginx_to_the_guides_server",  # tests/test_deploy.py
    ("howto/deploy.md", "{literalinclude} membrane-rtc.service"):
        "test_wss_through_the_guides_nginx_to_the_guides_server",  # tests/test_deploy.py
    ("howto/deploy.md", "containers:"): "test_the_kubernetes_probes_shown_answer",
    ("howto/deploy.md", "{literalinclude} membrane-rtc.toml"):
        "test_the_unit_runs_the_shipped_configuration_file_and_nothing_else",  # test_deploy.py
    ("reference/configuration.md", "{literalinclude} ../howto/membrane-rtc.toml"):
        "test_the_unit_runs_the_shipped_configuration_file_and_nothing_else",
    ("reference/configuration.md", "membrane-rtc: error: prod.toml: unknown setting 'prot' "
                                   "(did you mean 'port'?)"):
        "test_a_bad_file_is_one_line_naming_it",  # tests/test_settings.py, its exact line
    ("reference/configuration.md", "membrane-rtc: error: --peer-options: JWTPeer: no secret: "
                                   "give 'secret', 'secret_env' or $MEMBRANE_RTC_JWT_SECRET"):
        "test_a_class_refusing_its_options_stops_the_start_in_one_line",  # test_start_up.py
    ("reference/protocol.md", '{"urls": ["turn:turn.example.com:3478?transport=udp"],'):
        "test_the_turn_credentials_shown_are_what_a_peer_gets",
    ("reference/webhooks.md", '{"id": "6f1c0d7e8b0e4c5f9a3b2d1e0f9a8b7c", "event": '
                              '"peer_joined", "time": 1764110000.123456,'):
        "test_the_webhook_event_shown_and_its_check_run",
    ("reference/webhooks.md", "import hashlib, hmac"):
        "test_the_webhook_event_shown_and_its_check_run",
    ("howto/scale-out.md", "$ THESPIAN_BASE_IPADDR=10.0.0.1 membrane-rtc serve --role leader "
                           "--role gateway --convention 10.0.0.1:1900 --convention "
                           "10.0.0.3:1900 --admin-port 1900 --host 0.0.0.0 --room lobby"):
        "test_the_operator_and_scale_out_commands_shown_are_valid",  # run: test_failover.py
    ("howto/scale-out.md", "# /etc/wireguard/wg0.conf on 10.0.0.1"):
        "test_the_guides_wireguard_tunnel_joins_the_hosts_its_commands_name",
}

#: Listings no test here can run, why, and what checks them instead.
NOT_RUN_HERE = {
    ("howto/deploy.md", "$ sudo install -d /etc/membrane-rtc && sudo cp "
                        "docs/howto/membrane-rtc.toml /etc/membrane-rtc/"):
        "root on a server; the file it installs is run by tests/test_deploy.py "
        "(test_the_unit_runs_the_shipped_configuration_file_and_nothing_else)",
    ("tutorial.md", "$ python3 -m venv .venv"):
        "the install: .ci/run does it from nothing before the suite (and "
        "test_the_tutorial_scaffold_passes_its_test_in_a_fresh_venv_and_serves in a fresh venv)",
    ("explanation/architecture.md", " browser ──ws──▶ Gateway (asyncio, websockets)        "
                                    "no room logic, holds the sockets"):
        "a diagram, not code",
    ("howto/deploy.md", "$ sudo useradd --system --home /srv/membrane-rtc membrane-rtc"):
        "root on a server, a clone over the network",
    ("howto/deploy.md", "$ sudo systemctl daemon-reload"):
        "root and systemd; the unit's command is checked by "
        "test_the_systemd_unit_runs_a_valid_serve_command, the unit run by tests/test_deploy.py",
    ("howto/deploy.md", "# /etc/turnserver.conf"):
        "coturn's configuration, with a certificate for turn.example.com; "
        "test_the_coturn_configurations_shown_are_coturns checks coturn knows every option, "
        "tests/test_turn.py runs coturn with the same auth options",
    ("reference/protocol.md", "use-auth-secret"):
        "coturn's configuration: test_the_coturn_configurations_shown_are_coturns",
    ("howto/deploy.md", "$ MEMBRANE_RTC_TURN_SECRET=LONG-RANDOM-SECRET membrane-rtc serve "
                        "--turn-url 'turn:turn.example.com:3478?transport=udp' --turn-url "
                        "'turns:turn.example.com:5349?transport=tcp' --stun-url "
                        "stun:turn.example.com:3478"):
        "a TURN server on the internet: test_the_turn_command_shown_gives_every_peer_turn_and_stun "
        "checks the configuration it makes, tests/test_turn.py runs the flags with a local coturn",
    ("howto/scale-out.md", "$ THESPIAN_BASE_IPADDR=10.0.0.1 membrane-rtc serve --role leader "
                           "--role gateway --convention 10.0.0.1:1900 --admin-port 1900 --host "
                           "0.0.0.0 --room lobby"):
        "three machines: test_the_operator_and_scale_out_commands_shown_are_valid parses them; "
        "the same deployment on one machine is the page's next listing, which runs",
    ("reference/webhooks.md", "$ MEMBRANE_RTC_WEBHOOK_SECRET=change-me membrane-rtc serve "
                              "--webhook-url https://app.example.com/rtc-events"):
        "posts to a host on the internet: test_the_webhook_command_shown_is_valid checks it, "
        "tests/test_webhooks.py delivers to a local receiver",
}
#: The first commands of the tutorial, which the suite does not run, and why.
INSTALL = ["python3 -m venv .venv", ".venv/bin/pip install .", "source .venv/bin/activate"]


def user_env() -> dict[str, str]:
    """This environment without what pytest sets for itself (a user's shell has none of it)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}


async def serve_as_shown(command: str) -> ServeProcess:
    """Run a page's ``membrane-rtc serve ...`` on a free port instead of 8080."""
    words = shlex.split(command)
    assert words[:2] == ["membrane-rtc", "serve"], command
    return await ServeProcess.start(*words[2:], "--port", "0")


#: Seconds a Sphinx build may take (a cold one here takes about half a minute).
SPHINX_TIMEOUT = 300


@pytest.mark.timeout(SPHINX_TIMEOUT + 30)  # the build's own timeout answers first, clearly
def test_the_docs_build_without_a_warning(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(DOCS), str(tmp_path / "html")],
        cwd=REPO, capture_output=True, text=True, timeout=SPHINX_TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    cli_page = (tmp_path / "html" / "reference" / "cli.html").read_text()
    for flag in ("--max-peers-per-room", "--actor-system", "--metrics-port", "--json"):
        assert flag in cli_page  # generated from the parser


def test_every_listing_is_run_by_a_test() -> None:
    found = [item.key for item in listings()]
    assert len(found) == len(set(found)), "two listings of a page start alike: tell them apart"
    missing = [key for key in found if key not in LISTINGS and key not in NOT_RUN_HERE]
    assert not missing, f"listings no test runs (add them to LISTINGS with the test): {missing}"
    gone = [key for key in (*LISTINGS, *NOT_RUN_HERE) if key not in found]
    assert not gone, f"listings named here that the pages no longer show: {gone}"
    assert not set(LISTINGS) & set(NOT_RUN_HERE)
    sources = "".join(path.read_text() for path in (REPO / "tests").glob("test_*.py"))
    for test in set(LISTINGS.values()):
        assert re.search(rf"^(async )?def {test}\(", sources, re.M), test
    assert len(NOT_RUN_HERE) <= 10  # the exceptions stay few


def test_every_tutorial_command_is_run_here() -> None:
    commands = console_commands("tutorial.md")
    assert commands[:3] == INSTALL
    assert [c.split()[0] for c in commands[3:]] == ["membrane-rtc", "membrane-rtc", "python",
                                                     "membrane-rtc", "python", "membrane-rtc",
                                                     "pip", "membrane-rtc"]


#: Seconds for one step of the fresh-venv test: making the venv, one pip install (a cold
#: one builds wheels), one command of the tutorial.
VENV_TIMEOUT, PIP_TIMEOUT, STEP_TIMEOUT = 120, 600, 120


# Its steps' own timeouts in turn (the venv, two installs, three commands, two servers started)
# and a margin: each step's timeout answers first, naming the step.
@pytest.mark.timeout(VENV_TIMEOUT + 2 * PIP_TIMEOUT + 3 * STEP_TIMEOUT + 2 * 20 + 60)
async def test_the_tutorial_scaffold_passes_its_test_in_a_fresh_venv_and_serves(
        tmp_path: Path) -> None:
    """Section 5 as a new user runs it: a fresh venv with membrane-rtc and pytest installed,
    the scaffold written, its test run, the room served; then the reload extra installed as
    the page says, and the room served with --reload."""
    new, test, serve, install, reload = console_commands("tutorial.md")[6:11]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=VENV_TIMEOUT)
    setup = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(REPO), "pytest"],
                           capture_output=True, text=True, timeout=PIP_TIMEOUT)
    assert setup.returncode == 0, setup.stderr[-2000:]
    work = tmp_path / "work"  # a fresh directory of the user's own, not the clone
    work.mkdir()
    bin_dir = str(venv / "bin")
    env = {**user_env(), "PATH": f"{bin_dir}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}

    def run(command: str, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        words = shlex.split(command)  # as the activated venv's PATH finds them
        return subprocess.run([str(venv / "bin" / words[0]), *words[1:]], cwd=work, env=env,
                              capture_output=True, text=True, timeout=timeout)

    printed = []
    for command in (new, test):
        result = run(command)
        assert result.returncode == 0, result.stdout + result.stderr
        printed.append(result.stdout)
    assert "1 passed" in result.stdout
    # what `new` prints is what the tutorial shows next
    assert f"test it:  {test}" in printed[0] and f"serve it: {serve}" in printed[0]
    words = shlex.split(serve)
    process = await ServeProcess.start(*words[2:], "--port", "0", cwd=work,
                                       executable=venv / "bin" / "membrane-rtc")
    try:
        a = await Client.connect(f"{process.url}/town_hall")
        b = await Client.connect(f"{process.url}/town_hall")
        assert (await a.recv_event("joined"))["data"]["peer_id"] == b.peer_id
    finally:
        await process.stop()
    # --reload without its extra: one line saying what to install - what the page says
    assert reload == f"{serve} --reload"
    result = run(f"{reload} --port 0")
    assert result.returncode == 2, result.stderr
    assert f"needs watchfiles: {install}" in result.stderr
    assert "Traceback" not in result.stderr
    # the page's install, from the fresh directory, then the room served with --reload
    result = run(install, timeout=PIP_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    process = await ServeProcess.start(*shlex.split(reload)[2:], "--port", "0", cwd=work,
                                       executable=venv / "bin" / "membrane-rtc")
    try:
        assert str(work / "town_hall.py") in await process.log_line("reload: watching")
        assert (await Client.connect(f"{process.url}/town_hall")).peer_id
    finally:
        await process.stop()


async def test_the_tutorial_demo_server_starts_as_shown() -> None:
    demo = console_commands("tutorial.md")[3]
    server = await serve_as_shown(demo)
    try:
        shown = (DOCS / "tutorial.md").read_text()
        first_line = re.sub(r":\d+/", ":8080/", server.stdout[-1].strip())
        # The tutorial installs plain membrane-rtc: asyncio's loop. With uvloop installed (the
        # test extra has it) the line says so, and the page says that it does.
        if "event loop: uvloop" in first_line:
            assert re.search(r"With uvloop installed.*the first line says\s+`event loop: uvloop`",
                             shown, re.S)
            first_line = first_line.replace("event loop: uvloop", "event loop: asyncio")
        assert first_line in shown, first_line
        a, b = await Client.connect(f"{server.url}/demo"), await Client.connect(f"{server.url}/demo")
        assert (await a.recv_event("joined"))["data"]["peer_id"] == b.peer_id
    finally:
        await server.stop()


async def test_the_tutorial_lobby_greets_and_holds_two() -> None:
    lobby, greet = console_commands("tutorial.md")[4:6]
    server = await serve_as_shown(lobby)
    try:
        url = f"{server.url}/lobby"
        # python docs/tutorial/greet_me.py, pointed at this server's port
        process = await asyncio.create_subprocess_exec(
            sys.executable, *shlex.split(greet)[1:], url, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()
        lines = out.decode().splitlines()
        assert lines[0].startswith("my peer id: ")
        assert lines[1] == "the room says: Welcome to lobby! You are the first."
        # then two "tabs"; a third is kept out, as the page says
        first = await Client.connect(url)
        assert (await first.recv_event("greeting"))["data"]["text"] == \
            "Welcome to lobby! You are the first."
        second = await Client.connect(url)
        assert (await second.recv_event("greeting"))["data"] == \
            {"text": "Welcome to lobby! 1 here before you."}
        third = await Client.connect(url, authenticate=False)
        assert (await third.recv_event("error"))["data"]["details"] == "room_is_full"
    finally:
        await server.stop()


# -- how-to guides -----------------------------------------------------------------------------

async def test_the_cookie_peer_lets_in_a_signed_session_only() -> None:
    sys.path.insert(0, str(DOCS / "howto"))
    try:
        from cookie_peer import sign  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DOCS / "howto"))
    command = next(c for c in console_commands("howto/authenticate.md") if "CookiePeer" in c)
    server = await serve_as_shown(command)
    try:
        url = f"{server.url}/demo"
        good = await Client.connect(url, additional_headers={
            "Cookie": f"session={sign('ada', 'change me')}"})
        assert good.peer_id
        assert await refused_status(url) == 401
        forged = f"session=ada.{'0' * 64}"
        with pytest.raises(Exception, match="401"):
            await Client.connect(url, additional_headers={"Cookie": forged})
    finally:
        await server.stop()


async def test_the_token_peer_command_works() -> None:
    command = next(c for c in console_commands("howto/authenticate.md") if "TokenPeer" in c)
    server = await serve_as_shown(command)
    try:
        assert await refused_status(f"{server.url}/demo?token=nope") == 401
        assert (await Client.connect(f"{server.url}/demo?token=s3cret")).peer_id
    finally:
        await server.stop()


async def test_the_jwt_commands_work_as_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    export, serve, mint = [c for c in console_commands("howto/authenticate.md")
                           if "JWT" in c or "jwt" in c or c.startswith("membrane-rtc token")]
    variable, _, secret = export.removeprefix("export ").partition("=")
    monkeypatch.setenv(variable, secret)
    server = await serve_as_shown(serve)
    try:
        status, out, err = await run_cli(*shlex.split(mint)[1:])
        assert status == 0, err
        client = await Client.connect(f"{server.url}/demo?access_token={out.strip()}")
        assert client.welcome["metadata"] == {"name": "Ada"}
        await client.close()
        assert await refused_status(f"{server.url}/demo?access_token=forged") == 401
    finally:
        await server.stop()


async def test_the_moderated_room_keeps_guests_and_signaling_only() -> None:
    command = console_commands("howto/moderate.md")[0]
    server = await serve_as_shown(command)
    try:
        url = f"{server.url}/standup"
        stranger = await Client.connect(f"{url}?user=eve", authenticate=False)
        assert (await stranger.recv_event("error"))["data"]["details"] == "not_on_the_guest_list"
        ada = await Client.connect(f"{url}?user=ada")
        grace = await Client.connect(f"{url}?user=grace")
        await ada.recv_event("joined")
        await ada.send("chat", "hello", to="all")
        assert (await ada.recv_event("error"))["data"] == {"description": "Not allowed",
                                                           "details": "chat"}
        await ada.send("offer", {"sdp": "v=0"}, to="all")  # offers are not broadcast
        await ada.send("offer", {"sdp": "v=0"}, to=[grace.peer_id])
        frame = await grace.recv()
        assert frame["event"] == "offer" and frame["to"] == [grace.peer_id], frame
    finally:
        await server.stop()


async def test_the_embedding_example_runs() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "docs/howto/embedded_server.py", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    lines = []
    try:
        async with asyncio.timeout(30):
            while not lines or not lines[-1].startswith("rooms:"):
                line = (await process.stdout.readline()).decode()
                assert line, (await process.stderr.read()).decode()  # type: ignore[union-attr]
                lines.append(line.strip())
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    assert lines[1] == "bot was greeted: Welcome to lobby! You are the first."
    assert lines[2] == "rooms: ['lobby', 'side']"
    assert process.returncode == 0


def test_the_systemd_unit_runs_a_valid_serve_command() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read_string((DOCS / "howto" / "membrane-rtc.service").read_text())
    words = shlex.split(unit["Service"]["ExecStart"])
    assert words[0].endswith("/membrane-rtc") and words[1] == "serve"
    at = words.index("--config") + 1  # the file it names is shipped next to the unit
    words[at] = str(DOCS / "howto" / Path(words[at]).name)
    config = config_from_args(build_parser().parse_args(words[1:]))
    assert config.allowed_origins == ["https://rtc.example.com"]
    assert config.metrics_port == 9100 and config.host == "127.0.0.1"


def test_the_operator_and_scale_out_commands_shown_are_valid(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # scale-out.md: every host has the shared key in its environment (never on the command line)
    monkeypatch.setenv("MEMBRANE_RTC_ACTOR_KEY", "a-key-of-16-chars-or-more")
    for page in ("howto/operate.md", "howto/scale-out.md", "howto/multiproc.md"):
        for command in console_commands(page):
            if command.startswith("export "):
                continue
            words = [w for w in shlex.split(command) if not re.match(r"^[A-Z_]+=", w)]
            assert words[0] == "membrane-rtc", command
            args = build_parser().parse_args(words[1:])  # argparse exits on a bad one
            if args.command == "serve":
                config_from_args(args)  # and the serve flags make sense together


def test_the_turn_command_shown_gives_every_peer_turn_and_stun(
        monkeypatch: pytest.MonkeyPatch) -> None:
    [command] = [c for c in console_commands("howto/deploy.md") if "--turn-url" in c]
    variable, _, secret = shlex.split(command)[0].partition("=")
    monkeypatch.setenv(variable, secret)  # the secret comes from the environment, not argv
    words = shlex.split(command)[1:]
    config = config_from_args(build_parser().parse_args(words[1:]))
    assert config.turn_secret == secret and len(config.turn_urls) == 2 and config.stun_urls


def test_the_tutorial_shows_its_files_as_they_are() -> None:
    """The tutorial's listings are written out (they read the same on the forge as in the
    built docs); each must be the file it names, which the tests run."""
    shown = re.findall(r"```python\n# (docs/tutorial/\w+\.py)\n(.*?)```",
                       (DOCS / "tutorial.md").read_text(), re.S)
    assert [path for path, _ in shown] == ["docs/tutorial/lobby.py", "docs/tutorial/greet_me.py"]
    for path, code in shown:
        assert code == (REPO / path).read_text(), path


# -- every other listing -----------------------------------------------------------------------

async def test_the_index_room_holds_two_as_served(tmp_path: Path) -> None:
    """The front page's room, saved as two.py and served as the page says, from its folder."""
    (tmp_path / "two.py").write_text(listing("index.md", "python"))
    [command] = console_commands("index.md")
    words = shlex.split(command)
    assert words[:2] == ["membrane-rtc", "serve"]
    server = await ServeProcess.start(*words[2:], "--port", "0", cwd=tmp_path)
    try:
        url = f"{server.url}/call"
        first, second = await Client.connect(url), await Client.connect(url)
        assert (await first.recv_event("joined"))["data"]["peer_id"] == second.peer_id
        third = await Client.connect(url, authenticate=False)
        assert (await third.recv_event("error"))["data"]["details"] == "room_is_full"
    finally:
        await server.stop()


def test_the_how_to_test_commands_are_the_tutorials() -> None:
    """test-a-room.md shows the tutorial's section 5, which runs in a fresh venv."""
    assert console_commands("howto/test-a-room.md") == console_commands("tutorial.md")[6:9]


async def test_the_how_to_test_listings_pass_under_pytest(tmp_path: Path) -> None:
    """Both listings of test-a-room.md, as a user saves them (the first next to the tutorial's
    lobby.py), run by pytest: every test in them passes."""
    (tmp_path / "lobby.py").write_text((DOCS / "tutorial" / "lobby.py").read_text())
    (tmp_path / "test_lobby.py").write_text(listing("howto/test-a-room.md", "python", 0))
    (tmp_path / "test_capped.py").write_text(listing("howto/test-a-room.md", "python", 1))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_lobby.py",
        "test_capped.py", cwd=tmp_path, env=user_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, out.decode()
    assert "2 passed" in out.decode(), out.decode()


async def test_the_python_client_listing_runs(start_server: ServerFactory,
                                              tmp_path: Path) -> None:
    """clients.md's bot, pointed at this server: it waits for someone, offers, and prints the
    answer it gets."""
    server = await start_server()
    code = listing("howto/clients.md", "python")
    assert code.count("ws://127.0.0.1:8080/webrtc/demo") == 1
    (tmp_path / "bot.py").write_text(code.replace("ws://127.0.0.1:8080/webrtc/demo",
                                                  f"{server.url}/demo"))
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "bot.py", cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert bot.stdout is not None
        first = (await asyncio.wait_for(bot.stdout.readline(), 30)).decode()
        assert re.fullmatch(rf"I am ({UUID.pattern})\n", first), first
        bot_id = first.split()[-1]
        me = await Client.connect(f"{server.url}/demo")
        offer = await me.recv_event("offer")
        assert (offer["from"], offer["data"]) == (bot_id, {"sdp": "..."})
        await me.send("answer", {"sdp": "v=0"}, [bot_id])
        out, err = await asyncio.wait_for(bot.communicate(), 30)
        assert bot.returncode == 0, err.decode()
        assert out.decode() == f"answer from {me.peer_id} {{'sdp': 'v=0'}}\n"
    finally:
        if bot.returncode is None:
            bot.kill()
            await bot.wait()


async def test_the_aiortc_example_runs_as_shown(start_server: ServerFactory) -> None:
    """``python examples/aiortc_datachannel.py``, given this server's URL instead of 8080's."""
    server = await start_server()
    [command] = console_commands("howto/clients.md")
    words = shlex.split(command)
    assert words[0] == "python"
    process = await asyncio.create_subprocess_exec(
        sys.executable, *words[1:], f"{server.url}/demo", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode()
    assert out.decode() == "hello from alice\n"


async def test_the_clients_page_calls_another_in_a_browser(
        start_server: ServerFactory, browser: BrowserContext) -> None:  # noqa: F811
    """clients.md's page at the signaling server's origin (tests/support/pages.py), in two
    tabs: each shows that it is connected and the other's (fake) camera, and says who it is;
    the JS line the page quotes is in it."""
    server = await start_server()
    page_html = listing("howto/clients.md", "html")
    quoted = re.search(r"`(client\.addEventListener\(\"state\".*?)`",
                       (DOCS / "howto" / "clients.md").read_text())
    assert quoted and quoted.group(1) in page_html
    origin = PageServer(server.port, {"/call.html": page_html})
    port = await origin.start()
    said: list[str] = []
    try:
        pages = []
        for _ in range(2):
            page = await browser.new_page()
            page.on("console", lambda message: said.append(message.text))
            await page.goto(f"http://127.0.0.1:{port}/call.html")
            pages.append(page)
        for page in pages:
            await page.wait_for_function(
                """() => document.getElementById("banner").textContent === "connected"
                         && document.getElementById("remote").videoWidth > 0""",
                timeout=WAIT_MS)

        async def both_said_who_they_are() -> bool:
            return len([line for line in said if line.startswith("I am ")]) == 2
        await until(both_said_who_they_are, timeout=10)
        peers = {peer.peer_id for peer in await server.list_peers("demo")}
        assert sorted(line for line in said if line.startswith("I am ")) == \
            sorted(f"I am {peer}" for peer in peers)
    finally:
        await origin.stop()


async def test_the_operator_commands_run_as_shown() -> None:
    """operate.md's session against a real server with two peers, one of them away: every
    command as shown (with this server's --port), printing what the page shows but for
    pids, peer ids, addresses and the machine's name."""
    server = await ServeProcess.start("--room", "demo", "--port", "0")
    port = server.url.rsplit(":", 1)[1].split("/")[0]
    try:
        url = f"{server.url}/demo"
        connected, away = await Client.connect(url), await Client.connect(url)
        await connected.recv_event("joined")
        away.connection.transport.abort()  # its network goes: it stays, away, to resume
        [block] = [item.body for item in listings("howto/operate.md")
                   if item.language == "console"]

        def here(command: str) -> list[str]:
            words = shlex.split(command)
            assert words[:2] == ["membrane-rtc", "admin"], command
            return [*words[1:], "--port", port]
        await run_session(block, here)
        assert await connected.closed() == 1000  # kicked
    finally:
        await server.stop()


async def test_the_multiproc_command_serves_its_rooms() -> None:
    [command] = console_commands("howto/multiproc.md")
    words = shlex.split(command)[2:]
    for attempt in (1, 2, 3):  # a free port may be taken before the server binds it: another
        words[words.index("--admin-port") + 1] = str(free_port())
        try:
            server = await ServeProcess.start(*words, "--port", "0")
            break
        except AssertionError as exc:
            if attempt == 3 or "is in use" not in str(exc):
                raise
    try:
        for room in ("demo", "lobby"):
            a, b = await Client.connect(f"{server.url}/{room}"), \
                await Client.connect(f"{server.url}/{room}")
            assert (await a.recv_event("joined"))["data"]["peer_id"] == b.peer_id
            await a.close(), await b.close()
    finally:
        await server.stop()


async def test_the_kubernetes_probes_shown_answer() -> None:
    """deploy.md's container spec: its args start a server whose probe paths answer 200."""
    spec = listing("howto/deploy.md", "yaml")
    args = json.loads(re.search(r"args: (\[.*\])", spec).group(1))  # type: ignore[union-attr]
    paths = re.findall(r"httpGet: \{path: (\S+), port: 8080\}", spec)
    assert args[:2] == ["serve", "--config"] and paths == ["/healthz", "/readyz"]
    # The ConfigMap is the shipped file; here the server listens on loopback, on free ports
    # (flags win over the file and the pod's environment: tests/test_deploy.py checks those).
    shipped = REPO / "docs" / "howto" / Path(args[2]).name
    server = await ServeProcess.start(
        "--config", str(shipped), "--host", "127.0.0.1", "--port", "0",
        "--metrics-port", str(free_port()))
    try:
        base = server.url.replace("ws://", "http://").removesuffix("/webrtc")
        for path in paths:
            assert (await http_get(base + path))[0] == 200, path
    finally:
        await server.stop()


def test_the_coturn_configurations_shown_are_coturns() -> None:
    """Every option the guides put in turnserver.conf is one coturn knows, and the auth
    options are the ones tests/test_turn.py gives coturn."""
    require(shutil.which("turnserver"), "needs coturn: apt-get install coturn")
    known = subprocess.run(["turnserver", "--help"], capture_output=True, text=True,
                           timeout=30)
    options = set(re.findall(r"--([a-z][a-z0-9-]*)", known.stdout + known.stderr))
    auth = {"use-auth-secret", "static-auth-secret", "realm"}
    for page, index in (("howto/deploy.md", 0), ("reference/protocol.md", 0)):
        config = [item.body for item in listings(page) if item.info == ""][index]
        names = {line.split("=")[0] for line in config.splitlines()
                 if line and not line.startswith("#")}
        assert names <= options, (page, names - options)
        assert auth <= names, page
    used = (REPO / "tests" / "support" / "coturn.py").read_text()
    assert all(f"--{name}" in used for name in auth)


async def test_the_turn_credentials_shown_are_what_a_peer_gets(
        start_server: ServerFactory) -> None:
    """protocol.md's ICE server entry: a peer of a server given a secret and that TURN URL gets
    those keys, a username of expiry and peer id, and base64(HMAC-SHA1(secret, username))."""
    shown = json.loads(listing("reference/protocol.md", "json"))
    secret = "a TURN secret"
    server = await start_server(turn_secret=secret, turn_urls=shown["urls"])
    client = await Client.connect(f"{server.url}/demo")
    [turn] = client.welcome["ice_servers"]
    assert turn.keys() == shown.keys() and turn["urls"] == shown["urls"]
    assert re.fullmatch(r"\d+:" + UUID.pattern, shown["username"])
    expires, peer_id = turn["username"].split(":")
    assert peer_id == client.peer_id and abs(int(expires) - time.time() - 86_400) < 60
    digest = hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()
    await client.close()


def test_the_webhook_event_shown_and_its_check_run() -> None:
    """webhooks.md: the event shown has the keys of a real one, and ``genuine`` as shown
    accepts what the server signs and nothing else."""
    shown = json.loads(listing("reference/webhooks.md", "json"))
    real = new_event(EventKind.PEER_JOINED, "demo", peer_id=shown["peer_id"],
                     identity="ada", metadata={"name": "Ada"})
    assert shown.keys() == real.keys()
    assert {k: type(v) for k, v in shown.items()} == {k: type(v) for k, v in real.items()}
    namespace: dict[str, object] = {}
    exec(compile(listing("reference/webhooks.md", "python"), "webhooks.md", "exec"), namespace)
    genuine = namespace["genuine"]
    body = json.dumps(real).encode()
    assert genuine(body, signature("change-me", body), "change-me")  # type: ignore[operator]
    assert not genuine(body + b" ", signature("change-me", body), "change-me")  # type: ignore
    assert not genuine(body, signature("another", body), "change-me")  # type: ignore[operator]


def test_the_webhook_command_shown_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    [command] = console_commands("reference/webhooks.md")
    variable, _, secret = shlex.split(command)[0].partition("=")
    monkeypatch.setenv(variable, secret)
    config = config_from_args(build_parser().parse_args(shlex.split(command)[2:]))
    assert config.webhook_secret == secret
    assert config.webhook_urls == ["https://app.example.com/rtc-events"]
