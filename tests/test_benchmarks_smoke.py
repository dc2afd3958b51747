"""The benchmark load generators run, with tiny numbers, against a real server.

No timing is asserted (the figures live in docs/performance.md): only that each scenario
completes, counts what it should, and loses nothing.
"""

from __future__ import annotations

import shutil

import pytest

from benchmarks.processes import REPO, IdlePeers, Served, loadgen, node_loadgen

from .support.tools import require

NODE_WS = REPO / "benchmarks" / ".peerjs" / "node_modules" / "ws"


@pytest.fixture(scope="module")
def served():
    with Served("--room", "demo", "--room", "r0", "--room", "r1") as server:
        yield server


def test_python_loadgen_scenarios(served: Served) -> None:
    url = f"{served.url}/demo"
    forward = loadgen("forward", "--url", url, "--pairs", "2", "--inflight", "2",
                      "--seconds", "0.3")
    assert forward["forwarded"] > 0 and forward["forwarded"] % 2 == 0
    assert 0 < forward["p50_ms"] <= forward["p99_ms"] <= forward["max_ms"]
    paced = loadgen("paced", "--url", url, "--pairs", "2", "--rate", "100", "--seconds", "0.3")
    assert paced["messages_per_s"] > 0
    joins = loadgen("join", "--url", url, "--peers", "5")
    assert joins["peers"] == 5 and joins["joins_per_s"] > 0
    idle = IdlePeers(url, 20)
    try:
        seconds = idle.ready.pop("seconds")
        assert idle.ready == {"scenario": "idle", "peers": 20, "ready": True}
        assert 0 < seconds < 60
        assert len(served.admin("peers", "demo")) == 20
    finally:
        idle.close()


def test_node_loadgen_scenarios(served: Served) -> None:
    require(shutil.which("node") and NODE_WS.exists(),
            "needs node and benchmarks/.peerjs (python -m benchmarks installs them)")
    base = served.url
    forward = node_loadgen("forward", "--url", f"{base}/r0,{base}/r1", "--pairs", "2",
                           "--inflight", "2", "--seconds", "0.3")
    assert forward["rooms"] == 2 and forward["forwarded"] > 0
    rooms = node_loadgen("rooms", "--url", f"{base}/r{{room}}", "--rooms", "2", "--peers", "3",
                         "--rate", "100", "--seconds", "0.5")
    assert rooms["sent"] == 50 and rooms["lost"] == 0
    # half to one room-mate, half to "all" (two room-mates each)
    assert rooms["expected"] == 25 * 1 + 25 * 2 == rooms["received"]


def test_resume_scenario() -> None:
    with Served("--room-class", "actors.presence:PresenceRoom", "--room", "p") as server:
        resume = loadgen("resume", "--url", f"{server.url}/p", "--rounds", "3",
                         "--frames", "5")
    assert resume["rounds"] == 3 and resume["resumed"] == 3 and resume["lost"] == 0
    assert 0 < resume["p50_ms"] <= resume["max_ms"]
