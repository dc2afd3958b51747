"""``membrane-rtc new room NAME``: what it writes passes its own test; a name that could not
work is refused in one line, before anything is written."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from .support.process import run_cli

pytestmark = pytest.mark.slow  # membrane-rtc as subprocesses


async def pytest_in(directory: Path, *args: str) -> tuple[int | None, str]:
    """``python -m pytest ARGS`` as a user runs it there (no plugins of this suite's own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, cwd=directory, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    return process.returncode, out.decode()


@pytest.mark.parametrize("name", ["town_hall", "match", "room2", "class_room"])
async def test_a_good_name_gives_a_room_whose_test_passes(tmp_path: Path, name: str) -> None:
    """``match`` is a soft keyword: a fine module name."""
    status, out, err = await run_cli("new", "room", name, cwd=tmp_path)
    assert status == 0, err
    assert out.splitlines()[0] == f"wrote {name}.py and test_{name}.py"
    assert {p.name for p in tmp_path.iterdir()} == {f"{name}.py", f"test_{name}.py"}
    exit_status, report = await pytest_in(tmp_path, f"test_{name}.py")
    assert exit_status == 0 and "1 passed" in report, report


@pytest.mark.parametrize("name, why", [
    ("class", "'class' is a Python keyword: 'from class import ...' would not parse; "
              "pick another name (e.g. class_room)"),
    ("import", "'import' is a Python keyword"),
    ("json", "'json' is a standard-library module: json.py would shadow it; "
             "pick another name (e.g. json_room)"),
    ("test", "'test' is a standard-library module"),  # not in sys.stdlib_module_names
    ("pytest", "'pytest' is an installed module ("),
    ("membrane_rtc", "'membrane_rtc' is an installed module ("),
    ("actors", "'actors' is the name of membrane-rtc's ready actors"),
    ("Lobby", "'Lobby' is not a lower-case Python module name"),
    ("video-call", "'video-call' is not a lower-case Python module name"),
    ("_lobby", "'_lobby' is not a lower-case Python module name starting with a letter"),
    ("2lobby", "'2lobby' is not a lower-case Python module name"),
])
async def test_a_name_that_cannot_work_is_refused_in_one_line(
        tmp_path: Path, name: str, why: str) -> None:
    status, out, err = await run_cli("new", "room", name, cwd=tmp_path)
    assert status == 2 and out == ""
    assert err.startswith(f"membrane-rtc: error: {why}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


async def test_a_package_of_that_name_in_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "lobby").mkdir()
    (tmp_path / "lobby" / "__init__.py").write_text("")
    status, _, err = await run_cli("new", "room", "lobby", cwd=tmp_path)
    assert status == 2 and f"'lobby' is a module in {tmp_path} already" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lobby"]
