"""Side by side in one run: ``python -m benchmarks [--quick]`` writes docs/performance.md.

Targets: membrane-rtc embedded and multi-process (``membrane-rtc serve``), a bare websockets
relay of the same protocol (``benchmarks/relay.py``: the Python limit) and PeerJS server (npm
``peer``, installed here into benchmarks/.peerjs on first use). Same load generator
(``benchmarks/loadgen.py``, its own process), same machine, loopback only, bounded.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .processes import (REPO, Background, IdlePeers, Served, cpu_seconds, free_port, loadgen,
                        memory_kib)

PEERJS_DIR = REPO / "benchmarks" / ".peerjs"
PEERJS_VERSION = "1.0.2"


@dataclass
class Running:
    url: str
    protocol: str
    pids: Any  # () -> set[int]: the server's processes, measured for memory and CPU


@dataclass
class Result:
    name: str
    figures: dict[str, Any] = field(default_factory=dict)


@contextmanager
def membrane(mode: str) -> Iterator[Running]:
    args = ["--actor-system", mode]
    if mode == "multiproc":
        args += ["--admin-port", str(free_port())]
    with Served(*args) as server:
        yield Running(f"{server.url}/demo", "membrane", server.processes)


@contextmanager
def relay() -> Iterator[Running]:
    port = free_port()
    server = Background([sys.executable, "-m", "benchmarks.relay", str(port)], "relay serving")
    try:
        yield Running(f"ws://127.0.0.1:{port}/webrtc/demo", "membrane",
                      lambda: {server.process.pid})
    finally:
        server.close()


@contextmanager
def peerjs() -> Iterator[Running]:
    binary = PEERJS_DIR / "node_modules" / ".bin" / "peerjs"
    if not binary.exists():
        PEERJS_DIR.mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", str(PEERJS_DIR),
                        f"peer@{PEERJS_VERSION}"], check=True, timeout=600)
    port = free_port()
    server = Background([str(binary), "--port", str(port), "--host", "127.0.0.1"],
                        "Started PeerServer")
    try:
        yield Running(f"ws://127.0.0.1:{port}/peerjs", "peerjs", lambda: {server.process.pid})
    finally:
        server.close()


TARGETS = {
    "membrane-rtc embedded": lambda: membrane("embedded"),
    "membrane-rtc multiproc": lambda: membrane("multiproc"),
    "bare websockets relay": relay,
    "PeerJS server": peerjs,
}


def measure(name: str, quick: bool) -> Result:
    seconds = "2" if quick else "8"
    idle = {"membrane-rtc multiproc": 100}.get(name, 1000) // (4 if quick else 1)
    result = Result(name)
    with TARGETS[name]() as target:
        common = ["--url", target.url, "--protocol", target.protocol]
        result.figures["one"] = loadgen("forward", *common, "--pairs", "1", "--inflight", "1",
                                        "--seconds", seconds)
        cpu_before = cpu_seconds(target.pids())
        many = loadgen("forward", *common, "--pairs", "20", "--inflight", "4",
                       "--seconds", seconds)
        cpu = cpu_seconds(target.pids()) - cpu_before
        many["cpu_ms_per_1k"] = round(1000 * cpu / max(1, many["forwarded"]) * 1000, 1)
        result.figures["many"] = many
        result.figures["paced"] = loadgen("paced", *common, "--pairs", "10", "--rate", "1000",
                                          "--seconds", seconds)
        result.figures["joins"] = loadgen("join", *common, "--peers", "50" if quick else "100")
        before = memory_kib(target.pids())
        peers = IdlePeers(target.url, idle, protocol=target.protocol)
        try:
            during = memory_kib(target.pids())
        finally:
            peers.close()
        result.figures["idle"] = {
            "peers": idle,
            "uss_kib_per_peer": round((during["uss_kib"] - before["uss_kib"]) / idle, 1),
            "rss_kib_per_peer": round((during["rss_kib"] - before["rss_kib"]) / idle, 1)}
    return result


def goals(results: dict[str, Result]) -> list[tuple[str, str, bool]]:
    """DESIGN/issue goals as ratios measured in this run: (goal, measured, met)."""
    rate = {name: r.figures["many"]["messages_per_s"] for name, r in results.items()}
    embedded = rate["membrane-rtc embedded"]
    rows = []
    if "bare websockets relay" in rate:
        ratio = embedded / rate["bare websockets relay"]
        rows.append(("embedded >= 0.5x bare relay msg/s", f"{ratio:.2f}x", ratio >= 0.5))
    if "PeerJS server" in rate:
        ratio = embedded / rate["PeerJS server"]
        rows.append(("embedded >= 1.0x PeerJS server msg/s",
                     f"{ratio:.2f}x (no verdict yet: the load generator, not PeerJS, is the "
                     "limit)", ratio >= 1.0))
    if "membrane-rtc multiproc" in rate:
        value = rate["membrane-rtc multiproc"]
        rows.append(("multiproc >= 5,000 msg/s", f"{value:,.0f}/s", value >= 5000))
    p99 = results["membrane-rtc embedded"].figures["paced"]["p99_ms"]
    rows.append(("embedded p99 one-way < 2 ms at 1,000 msg/s", f"{p99} ms", p99 < 2))
    per_peer = results["membrane-rtc embedded"].figures["idle"]["uss_kib_per_peer"]
    rows.append(("embedded idle peer < 20 KB (USS)", f"{per_peer} KiB", per_peer < 20))
    return rows


def report(results: dict[str, Result], quick: bool) -> str:
    names = list(results)
    rows = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label: str, value: Any) -> None:
        rows.append(f"| {label} | " + " | ".join(str(value(results[n].figures)) for n in names) + " |")

    row("forwarded msg/s, 20 pairs x 4 in flight", lambda f: f["many"]["messages_per_s"])
    row("round trip p50 / p99 / max ms (20x4)",
        lambda f: f'{f["many"]["p50_ms"]} / {f["many"]["p99_ms"]} / {f["many"]["max_ms"]}')
    row("server CPU ms per 1k messages", lambda f: f["many"]["cpu_ms_per_1k"])
    row("forwarded msg/s, 1 pair, 1 in flight", lambda f: f["one"]["messages_per_s"])
    row("round trip p50 / p99 ms (1 pair)", lambda f: f'{f["one"]["p50_ms"]} / {f["one"]["p99_ms"]}')
    row("one-way latency at 1,000 msg/s, p50 / p99 / max ms",
        lambda f: f'{f["paced"]["p50_ms"]} / {f["paced"]["p99_ms"]} / {f["paced"]["max_ms"]}')
    row("joins/s (sequential)", lambda f: f["joins"]["joins_per_s"])
    row("memory per idle peer, USS / RSS KiB",
        lambda f: f'{f["idle"]["uss_kib_per_peer"]} / {f["idle"]["rss_kib_per_peer"]}')
    row("idle peers held for that", lambda f: f["idle"]["peers"])
    goal_rows = ["| goal | measured | met |", "|---|---|---|"] + [
        f"| {goal} | {value} | {'yes' if met else '**no**'} |"
        for goal, value, met in goals(results)]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return "\n".join([
        "# Performance: membrane-rtc side by side (measured)",
        "",
        f"One run of `python -m benchmarks{' --quick' if quick else ''}` on "
        f"{time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, Node {node}, PeerJS server {PEERJS_VERSION}. Each server "
        "in its own process; the load generator (`benchmarks/loadgen.py`, asyncio websockets) "
        "in another; 400-byte offers, each answered by its addressee; loopback only.",
        "",
        *rows,
        "",
        "## Goals",
        "",
        *goal_rows,
        "",
        "## Read with care",
        "",
        "- The load generator is one Python process on a 2-core machine shared with the server: "
        "for the fastest target (PeerJS) it is the bottleneck, so PeerJS's figure here is a floor "
        "(FIELD-NOTES measured ~35,600 msg/s with a Node `ws` load generator).",
        "- Runs on this machine vary by tens of percent; compare ratios within one run.",
        "",
    ])


def plot(results: dict[str, Result], path: Path) -> bool:
    """Bar charts of throughput and CPU cost per target, if matplotlib is installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install '.[bench]'): no plot", file=sys.stderr)
        return False
    names = list(results)
    rates = [results[n].figures["many"]["messages_per_s"] for n in names]
    costs = [results[n].figures["many"]["cpu_ms_per_1k"] for n in names]
    labels = [n.replace("membrane-rtc ", "membrane-rtc\n").replace(" server", "\nserver")
              .replace("websockets relay", "websockets\nrelay") for n in names]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.bar(labels, rates, color="#3f7cac")
    left.set_title("forwarded messages/s (20 pairs x 4 in flight)")
    right.bar(labels, costs, color="#b5651d")
    right.set_title("server CPU ms per 1,000 messages (lower is better)")
    for axis in (left, right):
        axis.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small numbers, about a minute")
    parser.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--output", default=str(REPO / "docs" / "performance.md"))
    args = parser.parse_args()
    if "PeerJS server" in args.targets and not shutil.which("node"):
        parser.error("PeerJS server needs node and npm; leave it out with --targets")
    results = {name: measure(name, args.quick) for name in args.targets}
    text = report(results, args.quick)
    picture = Path(args.output).with_suffix(".png")
    if plot(results, picture):
        text += f"\n![Throughput and CPU cost per target]({picture.name})\n"
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
