"""The benchmark load generators run, with tiny numbers, against a real server.

No timing is asserted (the figures live in docs/performance.md): only that each scenario
completes, counts what it should, and loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import websockets

from benchmarks.__main__ import MINIMAL, PACED_RUNS, SANSIO, relay
from benchmarks.processes import REPO, IdlePeers, Served, loadgen, node_loadgen

from .support.tools import require

pytestmark = pytest.mark.slow  # servers and load generators as subprocesses

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


async def exchange(url: str) -> list[dict[str, object]]:
    """Two peers: A offers to B, B answers "all"; every frame each receives, ids masked."""
    a = await websockets.connect(url, compression=None)
    b = await websockets.connect(url, compression=None)
    try:
        hello_a = json.loads(await asyncio.wait_for(a.recv(), 10))
        hello_b = json.loads(await asyncio.wait_for(b.recv(), 10))
        ids = {hello_a["data"]["peer_id"]: "A", hello_b["data"]["peer_id"]: "B"}
        await a.send(json.dumps({"event": "offer", "to": [hello_b["data"]["peer_id"]],
                                 "data": {"sdp": "x"}}))
        offer = json.loads(await asyncio.wait_for(b.recv(), 10))
        await b.send(json.dumps({"event": "answer", "to": "all", "data": {"sdp": "y"}}))
        answer = json.loads(await asyncio.wait_for(a.recv(), 10))
    finally:
        await a.close()
        await b.close()

    def masked(frame: dict[str, object]) -> dict[str, object]:
        text = json.dumps(frame)
        for peer_id, name in ids.items():
            text = text.replace(peer_id, name)
        return json.loads(text)  # type: ignore[no-any-return]
    return [masked(frame) for frame in (hello_a, hello_b, offer, answer)]


async def test_sansio_relay_speaks_as_the_minimal_relay() -> None:
    """Same frames for the same exchange: the baseline relays the same protocol."""
    frames = {}
    for module in ("benchmarks.relay", "benchmarks.sansio_relay"):
        with relay(module) as target:
            frames[module] = await exchange(target.url.replace("/demo", "/pair"))
    assert frames["benchmarks.sansio_relay"] == frames["benchmarks.relay"]
    assert frames["benchmarks.relay"][2] == {"event": "offer", "to": ["B"],
                                             "data": {"sdp": "x"}, "from": "A"}
    assert frames["benchmarks.relay"][3]["from"] == "B"


def test_sansio_relay_scenarios() -> None:
    with relay("benchmarks.sansio_relay") as target:
        forward = loadgen("forward", "--url", target.url, "--pairs", "2", "--inflight", "2",
                          "--seconds", "0.3")
        assert forward["forwarded"] > 0 and forward["forwarded"] % 2 == 0
        joins = loadgen("join", "--url", target.url, "--peers", "5")
        assert joins["peers"] == 5
        idle = IdlePeers(target.url.replace("/demo", "/i{room}"), 20, rooms=2)
        try:
            assert idle.ready["peers"] == 20 and idle.ready["ready"]
        finally:
            idle.close()
        require(shutil.which("node") and NODE_WS.exists(),
                "needs node and benchmarks/.peerjs (python -m benchmarks installs them)")
        rooms = node_loadgen("rooms", "--url", target.url.replace("/demo", "/r{room}"),
                             "--rooms", "2", "--peers", "3", "--rate", "100", "--seconds", "0.5")
        assert rooms["expected"] == rooms["received"] and rooms["lost"] == 0


@pytest.mark.timeout(300)
def test_smoke_run_reports_the_sansio_relay_and_issue_22_goals(tmp_path: Path) -> None:
    """The whole benchmark path (every scenario, table, goals, notes), with tiny numbers."""
    require(shutil.which("node") and NODE_WS.exists(),
            "needs node and benchmarks/.peerjs (python -m benchmarks installs them)")
    output = tmp_path / "performance.md"
    subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--targets",
                    "membrane-rtc embedded", "membrane-rtc multiproc", SANSIO,
                    "--output", str(output)], cwd=REPO, check=True, capture_output=True,
                   timeout=280)
    text = output.read_text()
    assert "| | membrane-rtc embedded | membrane-rtc multiproc | sans-I/O relay |" in text
    goals = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()
             if line.startswith("| ") and line.endswith((" yes |", " **no** |"))}
    for goal in ("embedded >= 0.9x the sans-I/O relay's msg/s",
                 "multiproc >= 0.6x embedded msg/s (4 rooms)",
                 "multiproc p99 round trip <= 25 ms at 20 pairs x 4 in flight (4 rooms)",
                 f"multiproc p99 one-way < 20 ms at 1,000 msg/s in {PACED_RUNS} runs out of "
                 f"{PACED_RUNS}"):
        assert goal in goals, goal
    # One goal, one row: the ones issue 22 superseded are gone, and the minimal relay's rows
    # are left out with its target.
    assert "multiproc >= 0.5x embedded msg/s (4 rooms)" not in goals
    assert not [goal for goal in goals if MINIMAL in goal or "minimal relay" in goal]
    paced = goals[f"multiproc p99 one-way < 20 ms at 1,000 msg/s in {PACED_RUNS} runs out of "
                  f"{PACED_RUNS}"]
    assert paced.split(" | ")[1].count(" ms") == PACED_RUNS  # every run's p99
    assert "The sans-I/O relay (`benchmarks/sansio_relay.py`)" in text


def test_targets_without_embedded_are_refused_in_one_line() -> None:
    """Every goal and note is a ratio against the embedded mode: a run without it is refused
    before anything starts, instead of crashing after minutes of measuring."""
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--targets", SANSIO],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith(
        "--targets must include 'membrane-rtc embedded': every goal and note is measured "
        "against it")
