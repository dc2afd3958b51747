"""Another local user cannot run code as a multi-process server.

Thespian's admin port and every actor's port take pickles, and loading a pickle runs code: any
process that could deliver bytes there could run code as the server. Each message must now be
signed with the actor system's key (``membrane_rtc.runtime.transport``), which only the
server's user can read. Here ``nobody`` tries, against a real ``membrane-rtc serve --actor-system
multiproc`` run by this user, both through ``membrane-rtc admin`` and with raw bytes; the
operator's own commands still work. Needs root (setpriv): skipped outside CI without it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from .conftest import record_actor_group
from .support.net import free_port
from .support.other_user import (ATTACK, nobodys_directory, require_nobody_runs_python,
                                 require_root, run_as_nobody)
from .support.procfs import listening_addresses, live_processes_in_group
from .support.process import CONSOLE_SCRIPT, ServeProcess, run_cli

pytestmark = pytest.mark.slow  # runs attacks as another user against a multi-process server

#: nobody's room class: loading its file leaves a marker (whoever loads it).
EVIL_ROOM = '''
import pathlib
pathlib.Path({marker!r}).write_text("evil.py ran")
from membrane_rtc import Room


class R(Room):
    pass
'''


@pytest.fixture
def home() -> Iterator[Path]:
    """nobody's own directory (world-readable, under /tmp); root needed."""
    require_root()
    yield from nobodys_directory()


async def admin(*args: str) -> list[dict[str, object]] | str:
    """``membrane-rtc admin ARGS`` as this user (the server's): its parsed answer."""
    status, out, err = await run_cli("admin", *args)
    assert status == 0, err
    return json.loads(out) if "--json" in args else out.strip()


async def test_another_user_cannot_make_the_server_load_its_room_class(home: Path) -> None:
    """``nobody``'s ``admin create x --room-class its/evil.py:R``: refused in one line, with no
    key and with a guessed one; ``evil.py`` never runs; the operator's commands work."""
    await require_nobody_runs_python(home)
    marker = home / "evil-ran"
    evil = home / "evil.py"
    evil.write_text(EVIL_ROOM.format(marker=str(marker)))
    evil.chmod(0o644)
    admin_port = free_port()
    server = await ServeProcess.start("--port", "0", "--actor-system", "multiproc",
                                      "--admin-port", str(admin_port))
    try:
        command = (str(CONSOLE_SCRIPT), "admin", "--admin-port", str(admin_port), "--timeout",
                   "10", "create", "x", "--room-class", f"{evil}:R")
        status, out, err = await run_as_nobody(*command, home=home)
        assert (status, out) == (2, ""), err
        assert err.count("\n") == 1 and err.startswith(
            f"membrane-rtc: error: no key for the actor system on admin port {admin_port}"), err
        # A key of its own: what it sends is dropped unread, and it is told so in one line.
        status, out, err = await run_as_nobody(*command, home=home,
                                               MEMBRANE_RTC_ACTOR_KEY="a-guess-of-nobody-s-own")
        assert (status, out) == (2, ""), err
        assert err.count("\n") == 1 and err.startswith(
            f"membrane-rtc: error: the actor system on admin port {admin_port} did not "
            "answer"), err

        # The operator, the server's own user, still operates it through the same port.
        assert await admin("--admin-port", str(admin_port), "create", "y") == "ok"
        rooms = await admin("--admin-port", str(admin_port), "--json", "list")
        assert sorted(room["name"] for room in rooms) == ["demo", "y"]  # type: ignore[index]
        for room in rooms:
            record_actor_group(room["pid"])  # type: ignore[index, arg-type]
        assert not marker.exists()
    finally:
        assert await server.signal_and_wait() == 0
    assert not marker.exists()  # nor while stopping (every socket read by then)


#: Seconds the attack script, run as nobody, may take to try every actor port.
ATTACK_TIMEOUT = 300


@pytest.mark.timeout(ATTACK_TIMEOUT + 60)  # the attack's own timeout answers first
async def test_another_user_cannot_run_code_through_any_actor_port(home: Path) -> None:
    """``nobody`` sends a pickle that would run code to every port the server and its actor
    system listen on: the admin port and the room's port answer "bad data" without loading it,
    nothing runs (the other ports are read at the latest when the server stops), and the
    server goes on serving."""
    await require_nobody_runs_python(home)
    markers = home / "markers"
    markers.mkdir()
    markers.chmod(0o777)  # whoever ran the pickle could leave its marker
    attack = home / "attack.py"
    attack.write_text(ATTACK)
    attack.chmod(0o644)
    admin_port = free_port()
    server = await ServeProcess.start("--port", "0", "--actor-system", "multiproc",
                                      "--admin-port", str(admin_port))
    try:
        port = int(server.url.split(":")[2].split("/")[0])
        [room] = await admin("--port", str(port), "--json", "list")  # type: ignore[misc]
        record_actor_group(room["pid"])
        actor_system = live_processes_in_group(os.getpgid(room["pid"]))
        targets = {p for _, p in listening_addresses(actor_system | {server.pid})} - {port}
        # The room's own socket: forked processes also hold sockets inherited from above.
        others = actor_system - {room["pid"]} | {server.pid}
        room_ports = {p for _, p in listening_addresses({room["pid"]})} - \
            {p for _, p in listening_addresses(others)}
        answering = room_ports | {admin_port}
        assert admin_port in targets and len(room_ports) == 1 and room_ports <= targets, targets
        # The admin and the room read at once; other sockets (the gateway's sending handle)
        # only when their process next runs Thespian's receiving side: no answer to wait for.
        status, out, err = await run_as_nobody(
            sys.executable, str(attack), str(markers),
            *(f"127.0.0.1:{p}:{30 if p in answering else 2}" for p in sorted(targets)),
            home=home, timeout=ATTACK_TIMEOUT)
        assert status == 0, err
        answers = json.loads(out)
        for p in answering:
            for variant in ("bare", "guessed-tag"):
                assert "ACK+DATAERR" in answers[f"{p}-{variant}"], (p, answers)
        assert list(markers.iterdir()) == []
        # Nothing broke: the same room, the same process, answers the operator.
        [after] = await admin("--port", str(port), "--json", "list")  # type: ignore[misc]
        assert (after["state"], after["pid"]) == ("running", room["pid"])
    finally:
        assert await server.signal_and_wait() == 0
    assert list(markers.iterdir()) == []
