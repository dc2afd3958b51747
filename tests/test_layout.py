"""The package's layout keeps the architecture's promises: which layer may import which, no
import cycle, and modules and functions small enough to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

from .support.process import REPO

PACKAGE = REPO / "membrane_rtc"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80

#: The plain-state core: rules without I/O, tested without sockets or actors.
CORE = ("seam", "room_state", "peer_state", "members", "outcomes", "supervision", "protocol",
        "limits", "sessions", "ice", "names", "events", "room", "peer", "redact")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """The package's modules ``path`` imports, anywhere in it (type-checking and deferred
    imports included: a cycle hidden in a function is still a cycle for the reader)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & MODULES.keys()
            found |= submodules or ({target} & MODULES.keys())
    found.discard(name)
    return found


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def test_the_layers_import_only_what_they_may() -> None:
    """The gateway knows no actors; the core knows no runtime, gateway or operators' tools;
    ready actors use only the public API."""
    for name in CORE:
        imports = _imports(PACKAGE / f"{name}.py")
        outer = {i for i in imports if i.split(".")[1] in ("runtime", "gateway", "ops")}
        assert not outer, f"{name} imports {outer}"
        assert "thespian" not in (PACKAGE / f"{name}.py").read_text(), name
    for path in (PACKAGE / "gateway").glob("*.py"):
        imports = _imports(path)
        assert not {i for i in imports if ".runtime" in i}, path.name
        assert "thespian" not in path.read_text(), path.name
    for ready in (REPO / "actors").glob("*.py"):
        tree = ast.parse(ready.read_text())
        used = {node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and "membrane_rtc" in (node.module or "")}
        assert used <= {"membrane_rtc"}, ready.name


def _cycle_from(start: str) -> list[str] | None:
    """A path of imports from ``start`` back to itself, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for nxt in GRAPH[name]:
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_no_module_imports_itself_through_others() -> None:
    cycles = [" -> ".join(cycle) for name in MODULES if (cycle := _cycle_from(name))]
    assert not cycles, cycles


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for name, path in MODULES.items():
        source = path.read_text()
        if source.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long, too_long


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself can fail: two modules importing each other are found."""
    GRAPH["membrane_rtc.protocol"].add("membrane_rtc.names")
    GRAPH["membrane_rtc.names"].add("membrane_rtc.protocol")
    try:
        assert _cycle_from("membrane_rtc.names") == [
            "membrane_rtc.names", "membrane_rtc.protocol", "membrane_rtc.names"]
    finally:
        GRAPH["membrane_rtc.protocol"].discard("membrane_rtc.names")
        GRAPH["membrane_rtc.names"].discard("membrane_rtc.protocol")
