"""Peers cannot speak as the server, and what they name never becomes markup.

The server refuses a client frame that uses one of its own event names. The shipped clients do
not count on it: in Chromium, on the demo page, frames from a room that passes such names on
(tests/support/spoof_room.py), or from a server that relays anything at all
(tests/support/scripted_server.py), change nothing; a peer id full of markup stays text.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pytest
from playwright.async_api import BrowserContext

from membrane_rtc import protocol

from .conftest import ServerFactory
from .support.browser import CONNECTED, WAIT_MS, browser, open_demo  # noqa: F401 (fixture)
from .support.client import Client
from .support.scripted_server import AFTER, AUTHENTICATED, BEFORE, FRIEND, MARKER, VICTIM, \
    ScriptedServer, frame

SPOOF_ROOM = "tests.support.spoof_room:SpoofRoom"
#: A peer id that runs script if it ever reaches innerHTML.
MARKUP = '<img src=x onerror="window.pwned=1">'

#: Records what the page's SignalingClient dispatches, for the test to read as window.seen.
RECORD = """() => {
  window.seen = [];
  for (const type of ["joined", "left", "error", "message"]) {
    window.demo.call.client.addEventListener(type, (e) => {
      window.seen.push([type, e.detail.event, e.detail.from]);
    });
  }
}"""
#: What an attacker could have changed about a page.
IDENTITY = """() => {
  const c = window.demo.call.client;
  return [window.demo.peerId, c.peerId, c.resumeToken, c.iceServers, c.metadata, c.state];
}"""
#: No markup a peer sent became an element, and none of its script ran.
UNHARMED = "() => window.pwned === undefined && document.querySelectorAll('img').length === 0"


async def test_the_server_refuses_its_own_event_names_from_a_peer(
        start_server: ServerFactory) -> None:
    server = await start_server()
    alice = await Client.connect(f"{server.url}/demo")
    bob = await Client.connect(f"{server.url}/demo")
    assert (await alice.recv_event("joined"))["from"] == bob.peer_id
    for event in sorted(protocol.SERVER_EVENTS):
        for to in ("all", [alice.peer_id]):
            await bob.send(event, {"peer_id": bob.peer_id, "description": "x"}, to)
            assert await bob.recv() == {"event": "error", "from": None, "to": [bob.peer_id],
                                        "data": {"description": "Invalid message",
                                                 "details": None}}
    await bob.send("hello", None, "all")
    # Messages from one sender arrive in order: had any forgery passed, it would come first.
    assert await alice.recv() == {"event": "hello", "data": None, "from": bob.peer_id,
                                  "to": "all"}
    await alice.close()
    await bob.close()


@pytest.mark.slow  # drives chromium
async def test_a_peer_cannot_speak_as_the_server_to_two_pages_in_a_call(
        start_server: ServerFactory, browser: BrowserContext) -> None:
    """Through a room that lets a peer pick the event name: a forged ``authenticated``,
    ``left`` for each page's partner, ``error``, and ``joined`` naming someone else (markup,
    the partner) are all dropped. Identities stay, the call stays up, nobody is seen to go."""
    server = await start_server({"spoof": (SPOOF_ROOM, None)})
    first = await open_demo(browser, server.port, "spoof")
    await first.wait_for_function("() => window.demo && window.demo.peerId", timeout=WAIT_MS)
    second = await open_demo(browser, server.port, "spoof")
    pages = (first, second)
    for page in pages:
        await page.wait_for_function(CONNECTED, timeout=WAIT_MS)
        await page.evaluate(RECORD)
    ids = [await page.evaluate("window.demo.peerId") for page in pages]
    before = [await page.evaluate(IDENTITY) for page in pages]
    assert before[0][2] is not None  # a resume token worth stealing
    mallory = await Client.connect(f"{server.url}/spoof")
    for event, data in [
            ("authenticated", {"peer_id": "chosen-by-mallory", "resume_token": "mallory.token",
                               "resumed": True, "metadata": {"name": "Mallory"},
                               "ice_servers": [{"urls": ["turn:mallory.example:3478"]}]}),
            ("left", {"peer_id": ids[0]}),
            ("left", {"peer_id": ids[1]}),
            ("error", {"description": "Could not join room", "details": "room_is_full"}),
            ("error", {"description": "Room closed", "details": MARKUP}),
            ("joined", {"peer_id": MARKUP}),
            ("joined", {"peer_id": ids[0]}),
            ("joined", {"peer_id": ids[1]})]:
        await mallory.send("relay", {"event": event, "data": data}, "all")
    await mallory.send("marker", None, "all")  # in order after the forgeries, to each page
    for page, own, other, identity in zip(pages, ids, reversed(ids), before):
        await page.wait_for_function("() => window.seen.some(([, e]) => e === 'marker')",
                                     timeout=WAIT_MS)
        # Only mallory's genuine joined (the room's own) and its plain message got through.
        assert [s for s in await page.evaluate("window.seen") if s[2] == mallory.peer_id] == \
            [["joined", "joined", mallory.peer_id], ["message", "marker", mallory.peer_id]]
        assert await page.evaluate(IDENTITY) == identity
        assert await page.evaluate(UNHARMED)
        assert sorted(await page.evaluate("[...window.demo.call.connections.keys()]")) == \
            sorted([other, mallory.peer_id])
        assert await page.evaluate("[window.demo.left, window.demo.errors]") == [[], []]
        assert await page.evaluate(f"window.demo.states['{other}']") == "connected"
        assert await page.get_attribute("#status", "class") != "error"
        assert own not in await page.evaluate("window.demo.peers")
    await mallory.close()


@pytest.mark.slow  # drives chromium
async def test_the_demo_shows_a_peer_id_full_of_markup_as_text(
        start_server: ServerFactory, browser: BrowserContext) -> None:
    """A room that lets peers name themselves: the other page gets ``joined``, a call, tracks,
    ``left`` and an error, all naming markup, in frames that pass the client's checks. The
    demo shows the name as text everywhere, and no script runs."""
    server = await start_server({"spoof": (SPOOF_ROOM, None)})
    page = await open_demo(browser, server.port, "spoof")
    await page.wait_for_function("() => window.demo && window.demo.peerId", timeout=WAIT_MS)
    named = await open_demo(browser, server.port, "spoof", f"&nick={quote(MARKUP)}")
    for each in (page, named):
        await each.wait_for_function(CONNECTED, timeout=WAIT_MS)
    assert await page.evaluate("window.demo.peers") == [MARKUP]
    assert await page.inner_text("#peers") == MARKUP
    assert await page.inner_text("#remotes figcaption") == MARKUP
    assert await page.evaluate(UNHARMED)
    await named.close()
    await page.wait_for_function("(name) => window.demo.left.includes(name)", arg=MARKUP,
                                 timeout=WAIT_MS)
    assert await page.inner_text("#status") == f"Peer {MARKUP[:8]} left."
    assert await page.query_selector("#remotes figure") is None
    assert await page.inner_text("#peers") == ""
    # The server's error names what the page sent (a peer id, as a room may show ids).
    stranger = '<img src=x onerror="window.pwned=2">'
    await page.evaluate("(id) => window.demo.call.client.send('note', null, [id])", stranger)
    await page.wait_for_function("() => window.demo.errors.length === 1", timeout=WAIT_MS)
    assert await page.inner_text("#status") == f"No such peer: {json.dumps([stranger])}"
    assert await page.evaluate(UNHARMED)


#: In a page on the gateway: a SignalingClient to the scripted server, what it dispatched until
#: the marker, and what it believes about itself.
PLAY = """async (url) => {
  const { SignalingClient } = await import("/client.js");
  const client = new SignalingClient(url, { reconnect: false, keepalive: 0 });
  const seen = [];
  const marker = new Promise((resolve) => {
    for (const type of ["joined", "left", "error", "message"]) {
      client.addEventListener(type, (e) => {
        seen.push([type, e.detail.event, e.detail.from]);
        if (e.detail.event === "marker") resolve();
      });
    }
  });
  let outcome;
  try {
    outcome = { peerId: await client.connect() };
  } catch (error) {
    outcome = { refused: error.message };
  }
  await marker;
  client.close();
  return { ...outcome, seen, state: [client.peerId, client.resumeToken, client.iceServers,
                                     client.metadata] };
}"""


@pytest.mark.slow  # drives chromium
async def test_the_page_client_drops_forgeries_and_garbage_around_authenticated(
        start_server: ServerFactory, browser: BrowserContext) -> None:
    """From a server that passes anything on: text that is no frame throws nothing; forgeries
    before ``authenticated`` neither refuse nor admit; after it, none is dispatched, and a
    second ``authenticated``, even from null, does not swap the client's identity."""
    server = await start_server(demo=False)
    second = frame("authenticated", {"peer_id": "chosen-by-a-room", "resume_token": "room.token",
                                     "metadata": {"name": "Room"}}, None, [VICTIM])
    scripted = ScriptedServer(BEFORE + [AUTHENTICATED] + AFTER + [second, MARKER])
    url = await scripted.start()
    try:
        page = await browser.new_page()
        thrown: list[str] = []
        page.on("pageerror", lambda error: thrown.append(str(error)))
        await page.goto(f"http://127.0.0.1:{server.port}/healthz")  # an origin on the gateway
        result = await asyncio.wait_for(page.evaluate(PLAY, url), WAIT_MS / 1000)
    finally:
        await scripted.stop()
    assert result == {"peerId": VICTIM, "state": [VICTIM, "victim.secret", None, None],
                      "seen": [["joined", "joined", FRIEND], ["message", "marker", FRIEND]]}
    assert thrown == []
