"""End to end with real browsers: Debian's chromium, driven by Playwright, on the demo page.

Two pages complete a real WebRTC call through the server (fake camera, no STUN needed on
loopback); a third is kept out of a full room; a closed page is seen to leave.
"""

from __future__ import annotations

import os

import pytest
from playwright.async_api import BrowserContext

from .conftest import ServerFactory
from .support.browser import CONNECTED, WAIT_MS, browser, open_demo  # noqa: F401 (fixture)
from .support.proxy import CuttingProxy

pytestmark = pytest.mark.slow  # drives chromium

async def test_two_pages_complete_a_call_and_see_each_other_leave(
        start_server: ServerFactory, browser: BrowserContext) -> None:
    server = await start_server()
    first = await open_demo(browser, server.port, "demo")
    await first.wait_for_function("() => window.demo && window.demo.peerId", timeout=WAIT_MS)
    second = await open_demo(browser, server.port, "demo")
    for page in (first, second):
        await page.wait_for_function(CONNECTED, timeout=WAIT_MS)
    first_id = await first.evaluate("window.demo.peerId")
    second_id = await second.evaluate("window.demo.peerId")
    assert await first.evaluate("window.demo.peers") == [second_id]
    assert await second.evaluate("window.demo.peers") == [first_id]
    width = await second.evaluate(f"window.demo.remoteWidths['{first_id}']")
    assert width >= 320  # the fake camera's frames really arrived
    if shot := os.environ.get("MEMBRANE_RTC_SCREENSHOT"):
        await first.screenshot(path=shot, full_page=True)
    await second.close()
    await first.wait_for_function(f"() => window.demo.left.includes('{second_id}')",
                                  timeout=WAIT_MS)
    assert await first.evaluate("window.demo.peers") == []
    assert "left" in await first.inner_text("#status")


async def test_a_third_page_is_told_the_room_is_full(start_server: ServerFactory,
                                                     browser: BrowserContext) -> None:
    server = await start_server({"duo": ("actors.capped:CappedRoom", {"max_peers": 2})})
    pages = [await open_demo(browser, server.port, "duo") for _ in range(2)]
    for page in pages:
        await page.wait_for_function("() => window.demo && window.demo.peerId", timeout=WAIT_MS)
    third = await open_demo(browser, server.port, "duo")
    await third.wait_for_function("() => window.demo && window.demo.errors.length > 0",
                                  timeout=WAIT_MS)
    assert await third.inner_text("#status") == "The room is full."
    assert await third.evaluate("window.demo.peerId") is None


async def test_the_gateway_serves_the_client_and_the_demo(start_server: ServerFactory,
                                                           browser: BrowserContext) -> None:
    server = await start_server(demo=False)
    page = await browser.new_page()
    script = await page.goto(f"http://127.0.0.1:{server.port}/client.js")
    assert script is not None and script.status == 200
    assert "export class SignalingClient" in await script.text()
    missing = await page.goto(f"http://127.0.0.1:{server.port}/")
    assert missing is not None and missing.status == 404  # demo=False: no page at /


async def test_the_tutorial_lobby_in_two_tabs(start_server: ServerFactory,
                                              browser: BrowserContext) -> None:
    """docs/tutorial.md, step 4, in a real browser: the room's greeting shows, the call
    connects, and a third tab is kept out."""
    server = await start_server({"lobby": ("docs/tutorial/lobby.py:Lobby", {"max_peers": 2})})
    first = await open_demo(browser, server.port, "lobby")
    await first.wait_for_function("() => window.demo && window.demo.roomSays.length > 0",
                                  timeout=WAIT_MS)
    second = await open_demo(browser, server.port, "lobby")
    for page in (first, second):
        await page.wait_for_function(CONNECTED, timeout=WAIT_MS)
    assert await first.evaluate("window.demo.roomSays") == ["Welcome to lobby! You are the first."]
    assert await second.inner_text("#room-says") == \
        "lobby says: Welcome to lobby! 1 here before you."
    third = await open_demo(browser, server.port, "lobby")
    await third.wait_for_function("() => window.demo && window.demo.errors.length > 0",
                                  timeout=WAIT_MS)
    assert await third.inner_text("#status") == "The room is full."


async def test_a_page_whose_network_drops_resumes_and_its_call_recovers(
        start_server: ServerFactory, browser: BrowserContext) -> None:
    """One page reaches the server through a proxy that then cuts its connection (the server
    sees a reset, the page hears nothing: a network change). The page's keepalive notices,
    it resumes as the same peer, restarts ICE, and the call is connected again; the other
    page never sees it leave."""
    server = await start_server()
    proxy = CuttingProxy(server.port)
    proxy_port = await proxy.start()
    try:
        stays = await open_demo(browser, server.port, "demo")
        await stays.wait_for_function("() => window.demo && window.demo.peerId", timeout=WAIT_MS)
        moves = await browser.new_page()
        await moves.goto(f"http://127.0.0.1:{proxy_port}/?room=demo&keepalive=500")
        for page in (stays, moves):
            await page.wait_for_function(CONNECTED, timeout=WAIT_MS)
        stays_id = await stays.evaluate("window.demo.peerId")
        moves_id = await moves.evaluate("window.demo.peerId")
        assert proxy.cut() >= 1
        await moves.wait_for_function("() => window.demo.resumes === 1", timeout=WAIT_MS)
        assert await moves.evaluate("window.demo.peerId") == moves_id
        assert await moves.evaluate("window.demo.identities") == []
        # The renegotiation after the resume (an ICE restart) completes and connects.
        await moves.wait_for_function(
            f"""() => window.demo.restarts['{stays_id}'] >= 1
                      && window.demo.states['{stays_id}'] === 'connected'
                      && window.demo.connection === 'connected'""", timeout=WAIT_MS)
        await stays.wait_for_function(f"() => window.demo.states['{moves_id}'] === 'connected'",
                                      timeout=WAIT_MS)
        assert await stays.evaluate("window.demo.left") == []
        assert await stays.evaluate("window.demo.peers") == [moves_id]
        assert [(p.peer_id, p.away) for p in await server.list_peers("demo")] == \
            [(stays_id, False), (moves_id, False)]
    finally:
        await proxy.stop()
