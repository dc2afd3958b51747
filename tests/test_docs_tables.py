"""The documentation's tables that restate the code stay in step with it.

Each test reads a list the code defines once (the package's modules, ``ServerConfig``'s fields,
``gateway.admission.ADMISSION_CHECKS``, ``seam.READY_TIMEOUT``) and the page that shows
it, so neither can change without the other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path, PurePosixPath

from membrane_rtc.config import BY_FIELD, ServerConfig
from membrane_rtc.seam import READY_TIMEOUT
from membrane_rtc.gateway.admission import ADMISSION_CHECKS

from .conftest import ServerFactory
from .support.client import WAIT
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
    order of gateway.admission.ADMISSION_CHECKS."""
    rows = table_rows(DOCS / "reference" / "protocol.md",
                      "| check | case (checked in this order) | answer |")
    assert [row[0].strip("`") for row in rows] == list(ADMISSION_CHECKS)


def test_the_readiness_probe_wait_shown_is_the_codes() -> None:
    """The /readyz row says how long the probe waits: READY_TIMEOUT."""
    [row] = [line for line in (DOCS / "reference" / "protocol.md").read_text().splitlines()
             if line.startswith("| `/readyz` |")]
    waits = re.findall(r"within (\d+(?:\.\d+)?) s", row)
    assert waits == [f"{READY_TIMEOUT:g}"], row


async def answer_status(port: int, path: str, *headers: str, upgrade: bool = True) -> int:
    """Send one HTTP request by hand (so it can break any rule) and return the answer's status."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *headers]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = await asyncio.wait_for(reader.readline(), WAIT)
    finally:
        writer.close()
    return int(status_line.split()[1])


async def test_a_request_failing_two_checks_gets_the_earlier_ones_answer(
        start_server: ServerFactory) -> None:
    """ADMISSION_CHECKS is the gateway's order, not only the page's: for neighbours in it that
    answer differently, a request failing both gets the first one's answer."""
    order = {check: index for index, check in enumerate(ADMISSION_CHECKS)}
    server = await start_server(allowed_origins=["https://good.example"], joins_per_second=0.001,
                                join_burst=1, peer_class="actors.token:TokenPeer",
                                peer_options={"token": "s3cret"})
    port, room = server.port, "/webrtc/demo?token=s3cret"
    assert order["room"] < order["on-init"]
    assert await answer_status(port, "/webrtc/nowhere?token=wrong") == 404  # the burst: spent
    assert order["allowed-origin"] < order["joins-per-second"]
    assert await answer_status(port, room, "Origin: https://evil.example") == 403
    assert await answer_status(port, room) == 429
    assert order["joins-per-second"] < order["websocket-handshake"]
    no_key = ("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13")
    assert await answer_status(port, room, *no_key, upgrade=False) == 429
    assert order["request-target"] < order["plain-http"]
    assert await answer_status(port, "/healthz", "Host: other", upgrade=False) == 400
    assert order["plain-http"] < order["draining"] < order["allowed-origin"]
    assert server.gateway is not None
    await server.gateway.drain_and_close()  # no client is left: it returns at once, draining
    assert await answer_status(port, "/healthz", upgrade=False) == 200
    assert await answer_status(port, room, "Origin: https://evil.example") == 503
