"""TURN credentials from the server, checked by a real coturn: two Chromium pages that may use
only relayed candidates (``iceTransportPolicy: "relay"``) connect through it with nothing but
what ``authenticated.data.ice_servers`` gave them; with another secret on coturn they do not."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest
from playwright.async_api import BrowserContext, Page

from .conftest import ServerFactory
from .support.browser import CONNECTED, WAIT_MS, browser, open_demo  # noqa: F401 (fixture)
from .support.coturn import Coturn

pytestmark = pytest.mark.slow  # starts coturn and WebRTC peers

SECRET = "the-shared-secret"

#: The kinds of local candidate each connection's selected pair uses (from getStats).
SELECTED_CANDIDATE_TYPES = """async () => {
  const types = [];
  for (const pc of window.demo.call.connections.values()) {
    const stats = await pc.getStats();
    for (const report of stats.values()) {
      if (report.type === "transport" && report.selectedCandidatePairId) {
        const pair = stats.get(report.selectedCandidatePairId);
        types.push(stats.get(pair.localCandidateId).candidateType);
      }
    }
  }
  return types;
}"""

#: Every connection has finished gathering candidates and none is connected.
GATHERED_NOTHING_USABLE = """() => {
  const pcs = [...window.demo.call.connections.values()];
  return pcs.length > 0 && pcs.every((pc) => pc.iceGatheringState === "complete")
    && Object.values(window.demo.states).every((s) => s !== "connected");
}"""


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[Callable[[str], Awaitable[Coturn]]]:
    started: list[Coturn] = []

    async def start(secret: str) -> Coturn:
        server = Coturn(tmp_path / f"coturn{len(started)}", secret)
        started.append(server)
        await server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            await server.stop()


async def two_relay_pages(browser: BrowserContext, port: int) -> tuple[Page, Page]:
    first = await open_demo(browser, port, "demo", "&relay=1")
    await first.wait_for_function("() => window.demo && window.demo.peerId", timeout=WAIT_MS)
    second = await open_demo(browser, port, "demo", "&relay=1")
    await second.wait_for_function("() => window.demo && window.demo.peerId", timeout=WAIT_MS)
    return first, second


async def test_relay_only_pages_connect_with_the_servers_turn_credentials(
        start_server: ServerFactory, browser: BrowserContext,
        coturn: Callable[[str], Awaitable[Coturn]]) -> None:
    turn = await coturn(SECRET)
    server = await start_server(turn_secret=SECRET, turn_urls=[turn.url])
    pages = await two_relay_pages(browser, server.port)
    for page in pages:
        await page.wait_for_function(CONNECTED, timeout=WAIT_MS)
        assert await page.evaluate(SELECTED_CANDIDATE_TYPES) == ["relay"]


async def test_with_another_secret_on_the_turn_server_they_do_not_connect(
        start_server: ServerFactory, browser: BrowserContext,
        coturn: Callable[[str], Awaitable[Coturn]]) -> None:
    turn = await coturn("not-" + SECRET)
    server = await start_server(turn_secret=SECRET, turn_urls=[turn.url])
    pages = await two_relay_pages(browser, server.port)
    for page in pages:
        await page.wait_for_function(GATHERED_NOTHING_USABLE, timeout=WAIT_MS)
    assert "Cannot find credentials of user" in turn.log()  # coturn refused them
