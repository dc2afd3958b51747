"""What the hardening against hostile clients costs: forwarding msg/s of this tree against the
code from before it (``BASELINE``, a git revision checked out into a temporary worktree), run
alternately in one run, the same load generator for both.

This tree runs with every check on its message path active: the JSON depth check, addressee
de-duplication, per-address connection counting and the per-peer message budget - the last
two with limits high enough that the load generator (far faster than any real client) is
counted but never throttled.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .processes import REPO, Served, free_port, node_loadgen

#: The last commit before the hardening (main on 2026-11-30).
BASELINE = "f5a1967"
#: The baseline's own flags to lift the limits meant for the open internet (it has no
#: per-address connection cap and no per-peer message rate).
BASELINE_LIMITS = ("--joins-per-second", "0", "--max-connections", "0",
                   "--max-peers-per-room", "0")
#: This tree: the same, with the new limits counted but out of reach.
HARDENED_LIMITS = BASELINE_LIMITS + ("--max-connections-per-ip", "100000",
                                     "--peer-messages-per-second", "1000000000",
                                     "--peer-message-burst", "1000000000")
ALTERNATIONS = 3


@contextmanager
def baseline_tree() -> Iterator[Path]:
    """The baseline revision's files in a temporary git worktree (removed after)."""
    with tempfile.TemporaryDirectory(prefix="membrane-rtc-baseline-") as directory:
        tree = Path(directory) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), BASELINE],
                       cwd=REPO, check=True, timeout=60)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                           check=False, timeout=60)


def forward_rate(code: Path, limits: tuple[str, ...], mode: str, seconds: str) -> float:
    """Forwarded msg/s, 20 pairs x 4 in flight (Node load generator), one room."""
    admin = ("--admin-port", str(free_port())) if mode == "multiproc" else ()
    with Served("--actor-system", mode, *admin, "--room", "demo", code=code,
                limits=limits) as server:
        return float(node_loadgen("forward", "--url", f"{server.url}/demo", "--pairs", "20",
                                  "--inflight", "4", "--seconds", seconds)["messages_per_s"])


def measure_hardening(quick: bool) -> dict[str, Any]:
    seconds = "2" if quick else "8"
    rates: dict[str, dict[str, list[float]]] = {}
    with baseline_tree() as baseline:
        for mode in ("embedded", "multiproc"):
            rates[mode] = {"before": [], "after": []}
            for _ in range(ALTERNATIONS):
                rates[mode]["before"].append(forward_rate(baseline, BASELINE_LIMITS, mode,
                                                          seconds))
                rates[mode]["after"].append(forward_rate(REPO, HARDENED_LIMITS, mode,
                                                         seconds))
    return {mode: {label: {"runs": values, "median": statistics.median(values)}
                   for label, values in by_label.items()} for mode, by_label in rates.items()}


def hardening_report(figures: dict[str, Any]) -> str:
    """The hardening section of docs/performance.md."""
    rows = ["| mode | before (msg/s, median) | after | after / before | goal: >= 0.95x |",
            "|---|---|---|---|---|"]
    for mode, by_label in figures.items():
        before, after = by_label["before"]["median"], by_label["after"]["median"]
        ratio = after / before
        rows.append(f"| {mode} | {before:.0f} | {after:.0f} | {ratio:.3f}x | "
                    f"{'yes' if ratio >= 0.95 else '**no**'} |")
    runs = "; ".join(f"{mode}: before {by['before']['runs']}, after {by['after']['runs']}"
                     for mode, by in figures.items())
    return (f"\n## What the hardening against hostile clients costs\n\n"
            f"Forwarding, 20 pairs x 4 in flight (Node load generator), one room: this tree "
            f"against the code before the hardening (`{BASELINE}`), {ALTERNATIONS} runs each, "
            f"alternating, in the same run. This tree counts every check on the message path "
            f"(depth, addressees, connections per address, the per-peer budget), its limits "
            f"out of the load generator's reach.\n\n" + "\n".join(rows) +
            f"\n\nEvery run (msg/s): {runs}.\n")
