"""Start servers and load generators as real processes, and measure what they cost."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SERVE_URL = re.compile(r"serving (ws://\S+)/<room>")
#: All load comes from 127.0.0.1, the idle scenario holds thousands of peers in one room, and
#: a load generator sends far faster than any real client: lift the limits meant for the open
#: internet (per-address join rate and connections, connections, peers per room, messages per
#: peer). The per-client outbound queue limit stays on.
LOAD_TEST_LIMITS = ("--joins-per-second", "0", "--max-connections", "0",
                    "--max-connections-per-ip", "0", "--max-peers-per-room", "0",
                    "--peer-messages-per-second", "0")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """``membrane-rtc serve`` in a subprocess; use as a context manager (always stopped)."""

    def __init__(self, *args: str, timeout: float = 30, ready: str | None = None,
                 code: Path = REPO, limits: tuple[str, ...] = LOAD_TEST_LIMITS) -> None:
        self.args = args
        self.timeout = timeout
        self.ready = ready  # a line that says a server without a gateway is up
        #: The source tree whose ``membrane_rtc`` runs (another revision's, to compare).
        self.code = code
        self.limits = limits
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> "Served":
        command = [sys.executable, "-m", "membrane_rtc", "serve", "--port", "0",
                   "--log-level", "WARNING", *self.limits, *self.args]
        # ``-m`` imports from the working directory first: that tree's code runs. The package
        # itself, not a module in it: older trees (the hardening's baseline) lay out differently.
        self.process = subprocess.Popen(command, cwd=self.code, stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited: {command}")
            if match := SERVE_URL.search(line):
                self.url = match.group(1)
                return self
            if self.ready is not None and self.ready in line:
                return self
        raise RuntimeError("server did not start in time")

    def __exit__(self, *exc_info: Any) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])

    def admin(self, *args: str, admin_port: int | None = None) -> Any:
        """``membrane-rtc admin --json ARGS`` against this server (or a leader's admin port)."""
        where = ["--admin-port", str(admin_port)] if admin_port else ["--port", str(self.port)]
        out = subprocess.run([sys.executable, "-m", "membrane_rtc", "admin", *where,
                              "--json", *args], cwd=REPO, check=True,
                             capture_output=True, text=True, timeout=self.timeout).stdout
        return json.loads(out)

    def processes(self) -> set[int]:
        """The server process and, in the multi-process mode, its actor system's processes."""
        assert self.process is not None
        pids = {self.process.pid}
        rooms = self.admin("list")
        groups = {os.getpgid(r["pid"]) for r in rooms if r.get("pid") and r["pid"] != self.process.pid}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if fields[0] != "Z" and int(fields[2]) in groups:
                    pids.add(int(entry.name))
        return pids


def memory_kib(pids: set[int]) -> dict[str, int]:
    """Total RSS and USS (private memory) of some processes, in KiB."""
    rss = uss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = {k: int(v.split()[0]) for k, v in
                  (line.split(":", 1) for line in text.splitlines()[1:] if ":" in line)}
        rss += fields.get("Rss", 0)
        uss += fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"rss_kib": rss, "uss_kib": uss}


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU time used so far by some processes."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class Background:
    """Any server as a subprocess (the bare relay, PeerJS server), stopped on exit."""

    def __init__(self, command: list[str], ready_text: str, cwd: Path = REPO,
                 timeout: float = 30) -> None:
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"exited before it was ready: {command}")
            if ready_text in line:
                return
        raise RuntimeError(f"not ready in time: {command}")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def loadgen(*args: str, timeout: float = 300) -> dict[str, Any]:
    """Run the load generator in its own process; return its JSON result."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.loadgen", *args], cwd=REPO,
                         check=True, capture_output=True, text=True, timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


def node_loadgen(scenario: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``benchmarks/loadgen.mjs`` (Node) in its own process; return its JSON result."""
    out = subprocess.run(["node", str(REPO / "benchmarks" / "loadgen.mjs"), scenario, *args],
                         cwd=REPO, check=True, capture_output=True, text=True,
                         timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


class LoadgenInBackground:
    """The Python load generator running while something else is measured."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.loadgen", *args],
                                        cwd=REPO, stdout=subprocess.PIPE, text=True)

    def result(self, timeout: float = 300) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])


class SlowReceiver:
    """A webhook receiver that takes ``seconds`` to answer each POST (a thread per request,
    as the standard library's threading server does)."""

    def __init__(self, seconds: float) -> None:
        delay = seconds
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay)  # the slow receiver being measured, not a wait in a test
                receiver.received += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class IdlePeers:
    """Hold N idle peers from a load-generator process while we measure memory."""

    def __init__(self, url: str, peers: int, timeout: float = 600,
                 protocol: str = "membrane", rooms: int = 1) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.loadgen", "idle", "--url", url,
             "--peers", str(peers), "--rooms", str(rooms), "--protocol", protocol],
            cwd=REPO, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.ready = json.loads(self.process.stdout.readline())
        self.timeout = timeout

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(self.timeout)
