"""Settings from flags, the environment and a ``--config`` TOML file, against the installed
``membrane-rtc``: precedence, lists, unknown keys and bad values, ``--print-config``, and the
configuration reference, all derived from the one declaration per setting."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from membrane_rtc.config import SETTINGS
from membrane_rtc.ops.setting_sources import reference_table

from .support.client import Client, http_get
from .support.net import free_port
from .support.process import REPO, ServeProcess, run_cli
from .support.settings import effective

pytestmark = pytest.mark.slow  # membrane-rtc serve --print-config as a subprocess per case

REFERENCE = REPO / "docs" / "reference" / "configuration.md"


async def print_config(*args: str, env: dict[str, str] | None = None,
                       file: str | None = None, tmp_path: Path | None = None
                       ) -> dict[str, tuple[str, str]]:
    """``serve [--config FILE] ARGS --print-config``: the effective settings."""
    config: list[str] = []
    if file is not None:
        assert tmp_path is not None
        (tmp_path / "prod.toml").write_text(file)
        config = ["--config", str(tmp_path / "prod.toml")]
    status, out, err = await run_cli("serve", *config, *args, "--print-config", env=env)
    assert status == 0, err
    return effective(out)


async def one_error(*args: str, env: dict[str, str] | None = None) -> str:
    """Run ``serve ARGS``, which must refuse to start: its one error line."""
    status, out, err = await run_cli("serve", *args, env=env)
    assert status == 2, (out, err)
    assert "Traceback" not in err and "serving" not in out
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_the_reference_lists_every_setting_once_as_declared() -> None:
    """docs/reference/configuration.md has the table the declarations make: one line per
    setting (every ServerConfig field among them), with its flag, variable and default."""
    text = REFERENCE.read_text()
    assert reference_table() in text, (
        "docs/reference/configuration.md is out of date: paste the output of "
        "python -c 'from membrane_rtc.ops.setting_sources import reference_table; "
        "print(reference_table())' between its settings markers")
    for setting in SETTINGS:
        rows = [line for line in text.splitlines() if line.startswith(f"| `{setting.flag}`")]
        assert len(rows) == 1, setting.key
        assert f"`{setting.variable}`" in rows[0]


async def test_a_flag_wins_over_the_environment_over_the_file_over_the_default(
        tmp_path: Path) -> None:
    file = "port = 9001\nidle-timeout = 30\n"
    env = {"MEMBRANE_RTC_PORT": "9002", "MEMBRANE_RTC_MAX_ROOMS": "7"}
    settings = await print_config("--port", "9003", file=file, env=env, tmp_path=tmp_path)
    assert settings["port"] == ("9003", "--port")
    assert settings["max-rooms"] == ("7", "MEMBRANE_RTC_MAX_ROOMS")
    assert settings["idle-timeout"] == ("30.0", str(tmp_path / "prod.toml"))
    assert settings["join-burst"] == ("40", "default")
    settings = await print_config(file=file, env=env, tmp_path=tmp_path)
    assert settings["port"] == ("9002", "MEMBRANE_RTC_PORT")
    settings = await print_config(file=file, tmp_path=tmp_path)
    assert settings["port"] == ("9001", str(tmp_path / "prod.toml"))
    assert (await print_config())["port"] == ("8080", "default")
    # MEMBRANE_RTC_CONFIG names the file when --config does not; an empty variable is unset.
    settings = await print_config(env={"MEMBRANE_RTC_CONFIG": str(tmp_path / "prod.toml"),
                                       "MEMBRANE_RTC_IDLE_TIMEOUT": ""})
    assert settings["idle-timeout"] == ("30.0", str(tmp_path / "prod.toml"))


async def test_lists_options_and_switches_from_each_source(tmp_path: Path) -> None:
    rooms = '["lobby", "standup"]'
    file = ('room = ["lobby", "standup"]\nroom-class = "actors.capped:CappedRoom"\n'
            'room-options = { max_peers = 3 }\nauto-create = true\n')
    from_file = await print_config(file=file, tmp_path=tmp_path)
    assert from_file["room"][0] == rooms
    assert from_file["room-options"][0] == '{"max_peers" = 3}'
    assert from_file["auto-room-options"] == ('{"max_peers" = 3}', "as room-options")
    assert from_file["auto-create"][0] == "true"
    from_env = await print_config(env={
        "MEMBRANE_RTC_ROOM": "lobby, standup", "MEMBRANE_RTC_ROOM_CLASS":
        "actors.capped:CappedRoom", "MEMBRANE_RTC_ROOM_OPTIONS": '{"max_peers": 3}',
        "MEMBRANE_RTC_AUTO_CREATE": "yes", "MEMBRANE_RTC_DEMO": "false"})
    assert from_env["room"] == (rooms, "MEMBRANE_RTC_ROOM")
    assert from_env["room-options"][0] == '{"max_peers" = 3}'
    assert from_env["auto-create"][0] == "true" and from_env["demo"][0] == "false"
    from_flags = await print_config("--room", "lobby", "--room", "standup", "--no-demo")
    assert from_flags["room"] == (rooms, "--room") and from_flags["demo"][0] == "false"


async def test_rooms_from_the_file_and_the_environment_are_served(tmp_path: Path) -> None:
    """Not only printed: a server started from a file with only its port changed by a flag
    serves the file's rooms; MEMBRANE_RTC_ROOM replaces them."""
    (tmp_path / "prod.toml").write_text(
        'room = ["lobby", "standup"]\nroom-class = "actors.capped:CappedRoom"\n'
        'room-options = { max_peers = 1 }\n')
    server = await ServeProcess.start("--config", str(tmp_path / "prod.toml"), "--port", "0")
    try:
        assert "rooms: lobby, standup" in "".join(server.stdout)
        first = await Client.connect(f"{server.url}/standup")
        second = await Client.connect(f"{server.url}/standup", authenticate=False)
        assert (await second.recv_event("error"))["data"]["details"] == "room_is_full"
        await first.close()
    finally:
        await server.stop()


@pytest.mark.parametrize("file, words", [
    ("prot = 9000\n", "prod.toml: unknown setting 'prot' (did you mean 'port'?)"),
    ("idle_timeout = 30\n", "unknown setting 'idle_timeout' (did you mean 'idle-timeout'?)"),
    ("[server]\nport = 1\n", "prod.toml: unknown setting 'server'"),
    ('port = "9000"\n', "prod.toml: port: expected a whole number, not '9000'"),
    ("idle-timeout = -1\n", "prod.toml: idle-timeout: must be positive"),
    ('actor-system = "threads"\n', "prod.toml: actor-system: 'threads' is not one of embedded"),
    ("room = [1]\n", "prod.toml: room: expected a string, not 1"),
    ("demo = 1\n", "prod.toml: demo: expected true or false, not 1"),
    ('room-class = "nowhere:Room"\n', "prod.toml: room-class: cannot import module 'nowhere'"),
    ("port = \n", "prod.toml: not valid TOML"),
])
async def test_a_bad_file_is_one_line_naming_it(tmp_path: Path, file: str, words: str) -> None:
    (tmp_path / "prod.toml").write_text(file)
    line = await one_error("--config", str(tmp_path / "prod.toml"))
    assert words in line.replace(str(tmp_path) + "/", ""), line


@pytest.mark.parametrize("variable, value, words", [
    ("MEMBRANE_RTC_PORT", "abc", "MEMBRANE_RTC_PORT: not a whole number: 'abc'"),
    ("MEMBRANE_RTC_IDLE_TIMEOUT", "soon", "MEMBRANE_RTC_IDLE_TIMEOUT: not a number: 'soon'"),
    ("MEMBRANE_RTC_IDLE_TIMEOUT", "0", "MEMBRANE_RTC_IDLE_TIMEOUT: must be positive"),
    ("MEMBRANE_RTC_AUTO_CREATE", "maybe", "MEMBRANE_RTC_AUTO_CREATE: not true or false"),
    ("MEMBRANE_RTC_ROOM_OPTIONS", "{max: 2", "MEMBRANE_RTC_ROOM_OPTIONS: not valid JSON"),
    ("MEMBRANE_RTC_ROLE", "leader,cook", "MEMBRANE_RTC_ROLE: 'cook' is not one of leader"),
    ("MEMBRANE_RTC_TRUSTED_PROXY", "10.0.0.0/8,nginx",
     "MEMBRANE_RTC_TRUSTED_PROXY: 'nginx' is not an IP address or CIDR block"),
])
async def test_a_bad_variable_is_one_line_naming_it(variable: str, value: str,
                                                    words: str) -> None:
    assert words in await one_error(env={variable: value})


async def test_the_config_file_itself_must_be_there() -> None:
    assert "--config: no such file: /nonexistent/prod.toml" in await one_error(
        "--config", "/nonexistent/prod.toml")


async def test_print_config_masks_secrets_and_a_misspelt_variable_is_warned_of() -> None:
    secret = "a-turn-secret-nobody-should-see"
    status, out, err = await run_cli(
        "serve", "--turn-url", "turn:turn.example.com:3478", "--print-config",
        env={"MEMBRANE_RTC_TURN_SECRET": secret, "MEMBRANE_RTC_PROT": "9000"})
    assert status == 0, err
    assert secret not in out + err
    assert effective(out)["turn-secret"] == ('"********"', "MEMBRANE_RTC_TURN_SECRET")
    assert "MEMBRANE_RTC_PROT is not a setting (did you mean MEMBRANE_RTC_PORT?)" in err
    # Every line is TOML but the comments: the output can be used as a --config file.
    assert all(" = " in line or line.startswith("#") for line in out.splitlines())


async def test_the_new_flags_metrics_host_connect_timeout_and_auto_room_class() -> None:
    """Settings that had no flag: metrics on another address (127.0.0.2 here: Prometheus in
    another pod needs 0.0.0.0), the connect timeout, and rooms on demand of their own class."""
    metrics = free_port()
    server = await ServeProcess.start(
        "--port", "0", "--metrics-port", str(metrics), "--metrics-host", "127.0.0.2",
        "--connect-timeout", "3", "--auto-create", "--auto-room-class",
        "actors.capped:CappedRoom", "--auto-room-options", '{"max_peers": 1}')
    try:
        status, body = await http_get(f"http://127.0.0.2:{metrics}/metrics")
        assert status == 200 and "membrane_rtc" in body
        with pytest.raises(httpx.ConnectError):  # there, and only there
            await http_get(f"http://127.0.0.1:{metrics}/metrics")
        alone = await Client.connect(f"{server.url}/made-on-demand")
        refused = await Client.connect(f"{server.url}/made-on-demand", authenticate=False)
        assert (await refused.recv_event("error"))["data"]["details"] == "room_is_full"
        pair = [await Client.connect(f"{server.url}/demo") for _ in range(2)]  # DefaultRoom
        for client in (alone, *pair):
            await client.close()
    finally:
        await server.stop()
    settings = await print_config("--connect-timeout", "3")
    assert settings["connect-timeout"] == ("3.0", "--connect-timeout")
    assert json.loads(settings["auto-room-class"][0]) == "actors.default:DefaultRoom"
