"""The documentation's listings, read from the pages themselves, so a page and the test that
runs what it shows cannot drift apart."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from .process import REPO, run_cli
from .waiting import until

DOCS = REPO / "docs"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)
#: MyST directives that are no listing of their own (a table of contents, generated reference).
NOT_LISTINGS = ("{toctree}", "{eval-rst}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Listing:
    page: str  # relative to docs/, e.g. "howto/clients.md"
    info: str  # the fence's info string: "python", "console", "{literalinclude} x.py", ""
    body: str

    @property
    def key(self) -> tuple[str, str]:
        """How the tests name it: its page and its first line (a directive: its info string)."""
        if self.info.startswith("{"):
            return self.page, self.info
        return self.page, self.body.splitlines()[0] if self.body else ""

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info else ""


def listings(page: str | None = None) -> list[Listing]:
    """Every fenced listing of every page (or of one), in order."""
    pages = [DOCS / page] if page else sorted(p for p in DOCS.rglob("*.md")
                                              if "_build" not in p.parts)
    found = []
    for path in pages:
        for match in FENCE.finditer(path.read_text()):
            info = match.group(1).strip()
            if not info.startswith(NOT_LISTINGS):
                found.append(Listing(str(path.relative_to(DOCS)), info, match.group(2)))
    return found


def listing(page: str, language: str, index: int = 0) -> str:
    """The text of a page's ``index``-th listing in ``language``."""
    return [item.body for item in listings(page) if item.language == language][index]


def console_commands(page: str) -> list[str]:
    """The ``$ `` lines of a page's ``console`` blocks, in order."""
    return [command for item in listings(page) if item.language == "console"
            for command, _ in session(item.body)]


def session(block: str) -> list[tuple[str, list[str]]]:
    """A ``console`` block as (command, the output lines shown after it)."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return steps


def cells(line: str) -> list[str]:
    """A row of ``membrane-rtc admin``'s tables: cells are apart by two spaces or more."""
    return re.split(r"\s{2,}", line.strip())


#: Table columns whose values are the machine's, not the page's: what each must look like.
VARYING = {"PID": r"\d+", "PEER ID": UUID.pattern, "REMOTE ADDRESS": r"127\.0\.0\.1:\d+",
           "HOST": r"\S+"}


def output_matches(shown: list[str], printed: str, varying: dict[str, str] = VARYING,
                   ids: dict[str, str] | None = None) -> bool:
    """``printed`` is what the page shows, but for the columns in ``varying`` (pids, peer ids,
    addresses, the machine's name), which need only look like it. Each shown peer id is
    recorded in ``ids`` with the one printed in its place (for the commands that follow)."""
    lines = printed.rstrip("\n").splitlines()
    if len(lines) != len(shown):
        return False
    if len(shown) == 1 or not shown:  # "ok", or nothing
        return lines == shown
    header = cells(shown[0])
    if cells(lines[0]) != header:
        return False
    seen: dict[str, str] = {}
    for expected, actual in zip(shown[1:], lines[1:]):
        want, got = cells(expected), cells(actual)
        if len(want) != len(got):
            return False
        for column, a, b in zip(header, want, got):
            if column in varying:
                if not re.fullmatch(varying[column], b):
                    return False
                if column == "PEER ID":
                    seen[a] = b
            elif a != b:
                return False
    if ids is not None:
        ids.update(seen)
    return True


async def run_session(block: str, arguments: Callable[[str], list[str]],
                      varying: dict[str, str] = VARYING, timeout: float = 30) -> None:
    """Run a ``console`` block of ``membrane-rtc`` commands, each until it prints what the page
    shows (``output_matches``; a server may take a moment to get there), in order.

    ``arguments`` turns a command as shown into the arguments to run here (this server's
    ports); peer ids shown are replaced by the ones printed in their place."""
    ids: dict[str, str] = {}
    for command, shown in session(block):
        for shown_id, real_id in ids.items():
            command = command.replace(shown_id, real_id)
        args = arguments(command)
        printed: list[str] = []

        async def as_shown() -> bool:
            status, out, err = await run_cli(*args)
            printed[:] = [f"exit status {status}", out, err]
            return status == 0 and output_matches(shown, out, varying, ids=ids)
        try:
            await until(as_shown, timeout=timeout)
        except AssertionError:
            raise AssertionError(f"$ {command}\nshown:\n" + "\n".join(shown) +
                                 "\nprinted:\n" + "\n".join(printed)) from None
