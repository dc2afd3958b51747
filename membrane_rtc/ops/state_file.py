"""Where a running server tells local operators how to reach its admin side.

``membrane-rtc serve`` writes ``server-<port>.json`` (the websocket port) into a directory only
its user can enter, the file itself readable by that user alone (0600): the admin mode, port and
the secret that admits the holder: the embedded mode's admin channel token, the multi-process
actor system's key. ``membrane-rtc admin --port <port>`` reads it.
The directory is ``$MEMBRANE_RTC_STATE_DIR``, else ``$XDG_RUNTIME_DIR/membrane-rtc``, else
``~/.local/state/membrane-rtc``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["AdminEndpoint", "state_dir", "write_endpoint", "read_endpoint", "remove_endpoint",
           "forget_if_stale", "find_multiproc", "make_state_dir"]


@dataclass
class AdminEndpoint:
    """How to reach one server's admin: ``mode`` is "embedded" or "multiproc"."""

    mode: str
    admin_port: int
    pid: int
    token: str | None = None
    #: multiproc: the IP address the actor system listens on (its admin port's address).
    actor_address: str | None = None
    #: multiproc: the key every message to the actor system must be signed with.
    actor_key: str | None = None


def state_dir() -> Path:
    if "MEMBRANE_RTC_STATE_DIR" in os.environ:
        return Path(os.environ["MEMBRANE_RTC_STATE_DIR"])
    if "XDG_RUNTIME_DIR" in os.environ:
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "membrane-rtc"
    return Path.home() / ".local" / "state" / "membrane-rtc"


def make_state_dir() -> Path:
    """The state directory, made if need be so that only this user can enter it (0700)."""
    directory = state_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _path(port: int) -> Path:
    return state_dir() / f"server-{port}.json"


def write_endpoint(port: int, endpoint: AdminEndpoint) -> Path:
    """Write the file for the server on ``port``, readable by this user only."""
    make_state_dir()
    path = _path(port)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(endpoint), out)
    os.replace(temporary, path)
    return path


def read_endpoint(port: int) -> AdminEndpoint:
    """The admin endpoint of the server on ``port``; FileNotFoundError if none runs there."""
    with _path(port).open() as source:
        return AdminEndpoint(**json.load(source))


def find_multiproc(admin_port: int) -> AdminEndpoint | None:
    """The endpoint of this user's running multi-process server whose Thespian admin port is
    ``admin_port``, if its state file is here (None if not, or not readable)."""
    try:
        paths = sorted(state_dir().glob("server-*.json"))
    except OSError:
        return None
    for path in paths:
        try:
            with path.open() as source:
                endpoint = AdminEndpoint(**json.load(source))
        except (OSError, ValueError, TypeError):
            continue
        if endpoint.mode == "multiproc" and endpoint.admin_port == admin_port \
                and _running(endpoint.pid):
            return endpoint
    return None


def forget_if_stale(port: int, endpoint: AdminEndpoint) -> bool:
    """Whether the server that wrote this file has ended without removing it (killed); the
    stale file is removed then."""
    if _running(endpoint.pid):
        return False
    _path(port).unlink(missing_ok=True)
    return True


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (a killed server whose parent has not reaped
    it yet is gone for our purpose)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc to ask: it exists
    return state != "Z"


def remove_endpoint(port: int) -> None:
    """Remove the file, if it is this process's."""
    try:
        if read_endpoint(port).pid == os.getpid():
            _path(port).unlink()
    except (FileNotFoundError, ValueError, TypeError):
        pass
