"""The documentation's tables that restate the code stay in step with it.

Each test reads a list the code defines once (the package's modules, ``ServerConfig``'s fields,
``gateway.ADMISSION_CHECKS``, ``connections.READY_TIMEOUT``) and the page that shows it, so
neither can change without the other.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path, PurePosixPath

from membrane_rtc.config import BY_FIELD, ServerConfig
from membrane_rtc.connections import READY_TIMEOUT
from membrane_rtc.gateway import ADMISSION_CHECKS

from .support.docs import DOCS
from .support.process import REPO

PACKAGE = REPO / "membrane_rtc"


def table_rows(page: Path, header: str) -> list[list[str]]:
    """The cells of each row of the table whose header line is ``header``."""
    lines = page.read_text().splitlines()
    start = lines.index(header) + 2  # the header, then its |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def modules_named(cell: str) -> list[str]:
    """The modules a module-table cell names: ``membrane_rtc/a.py``, then ``b.py`` for one in
    the same folder."""
    named: list[str] = []
    folder = PurePosixPath("membrane_rtc")
    for name in re.findall(r"`([^`]+\.py)`", cell):
        path = PurePosixPath(name)
        if len(path.parts) > 1:
            folder = path.parent
        else:
            path = folder / name
        named.append(str(path))
    return named


def test_the_architecture_module_table_names_every_module_once() -> None:
    """docs/explanation/architecture.md's "one idea, one place" table has a row for every
    module of the package and names no module that is gone."""
    rows = table_rows(DOCS / "explanation" / "architecture.md", "| module | job |")
    named = [module for row in rows for module in modules_named(row[0])]
    assert len(named) == len(set(named)), sorted(m for m in named if named.count(m) > 1)
    present = {str(path.relative_to(REPO)) for path in PACKAGE.rglob("*.py")}
    assert present - set(named) == set(), "modules the architecture page does not name"
    assert set(named) - present == set(), "modules the architecture page names that are gone"


def test_the_configuration_page_shows_every_field_with_its_flag() -> None:
    """Each ServerConfig field has a setting, and docs/reference/configuration.md a row for
    it with its flag (the page says every setting has one)."""
    text = (DOCS / "reference" / "configuration.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `--")]
    for field in dataclasses.fields(ServerConfig):
        setting = BY_FIELD[field.name]
        assert [row for row in rows if row.startswith(f"| `{setting.flag}`")], field.name


def test_the_admission_table_lists_the_checks_in_the_gateways_order() -> None:
    """docs/reference/protocol.md's "checked in this order" table: one row per check, in the
    order of gateway.ADMISSION_CHECKS."""
    rows = table_rows(DOCS / "reference" / "protocol.md",
                      "| check | case (checked in this order) | answer |")
    assert [row[0].strip("`") for row in rows] == list(ADMISSION_CHECKS)


def test_the_readiness_probe_wait_shown_is_the_codes() -> None:
    """The /readyz row says how long the probe waits: READY_TIMEOUT."""
    [row] = [line for line in (DOCS / "reference" / "protocol.md").read_text().splitlines()
             if line.startswith("| `/readyz` |")]
    waits = re.findall(r"within (\d+(?:\.\d+)?) s", row)
    assert waits == [f"{READY_TIMEOUT:g}"], row
