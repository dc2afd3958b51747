"""The documentation: it builds without a warning, and what it tells readers to run works.

Commands are read from the pages themselves (``console`` blocks, lines starting with ``$ ``),
so a page and its test cannot drift apart.
"""

from __future__ import annotations

import asyncio
import configparser
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from membrane_rtc.cli import build_parser, config_from_args

from .support.client import Client, refused_status
from .support.process import REPO, ServeProcess, run_cli

DOCS = REPO / "docs"
#: Commands the pages show that this suite does not run, and why.
NOT_RUN_HERE = {
    "python3 -m venv .venv": "the install: .ci/run does it from nothing before the suite",
    ".venv/bin/pip install .": "the install: .ci/run does it from nothing before the suite",
    "source .venv/bin/activate": "puts the venv on PATH; the suite runs inside it",
}


def console_commands(page: str) -> list[str]:
    """The ``$ `` lines of a page's ``console`` blocks, in order."""
    text = (DOCS / page).read_text()
    blocks = re.findall(r"```console\n(.*?)```", text, re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


async def serve_as_shown(command: str) -> ServeProcess:
    """Run a page's ``membrane-rtc serve ...`` on a free port instead of 8080."""
    words = shlex.split(command)
    assert words[:2] == ["membrane-rtc", "serve"], command
    return await ServeProcess.start(*words[2:], "--port", "0")


def test_the_docs_build_without_a_warning(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(DOCS), str(tmp_path / "html")],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    cli_page = (tmp_path / "html" / "reference" / "cli.html").read_text()
    for flag in ("--max-peers-per-room", "--actor-system", "--metrics-port", "--json"):
        assert flag in cli_page  # generated from the parser


def test_every_tutorial_command_is_run_here() -> None:
    commands = console_commands("tutorial.md")
    assert commands[:3] == list(NOT_RUN_HERE)
    assert [c.split()[0] for c in commands[3:]] == ["membrane-rtc", "membrane-rtc", "python",
                                                     "membrane-rtc", "python", "membrane-rtc"]


async def test_the_tutorial_scaffold_passes_its_test_in_a_fresh_venv_and_serves(
        tmp_path: Path) -> None:
    """Section 5 as a new user runs it: a fresh venv with membrane-rtc and pytest installed,
    the scaffold written, its test run, the room served (with --reload) and joined."""
    new, test, serve = console_commands("tutorial.md")[6:9]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(REPO), "pytest"],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    bin_dir = str(venv / "bin")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    printed = []
    for command in (new, test):
        words = shlex.split(command)
        result = subprocess.run([str(venv / "bin" / words[0]), *words[1:]], cwd=work, env=env,
                                capture_output=True, text=True, timeout=120)
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
    # --reload without its extra: one line saying which to install
    words = shlex.split(serve)
    result = subprocess.run([str(venv / "bin" / words[0]), *words[1:], "--reload", "--port", "0"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "needs watchfiles: pip install 'membrane-rtc[reload]'" in result.stderr
    assert "Traceback" not in result.stderr


async def test_the_tutorial_demo_server_starts_as_shown() -> None:
    demo = console_commands("tutorial.md")[3]
    server = await serve_as_shown(demo)
    try:
        shown = (DOCS / "tutorial.md").read_text()
        first_line = re.sub(r":\d+/", ":8080/", server.stdout[-1].strip())
        # The tutorial installs plain membrane-rtc: asyncio's loop; the test extra has uvloop.
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


def test_the_operator_and_scale_out_commands_shown_are_valid() -> None:
    for page in ("howto/operate.md", "howto/scale-out.md", "howto/multiproc.md"):
        for command in console_commands(page):
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
