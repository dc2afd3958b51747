"""examples/webapp end to end, as docs/howto/webapp.md runs it: membrane-rtc with JWTPeer and
the app's origin allowed, the FastAPI app, and two Chromium pages that log in, get their
tokens, join the room and chat over a WebRTC data channel."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shlex
import sys
from pathlib import Path
from typing import AsyncIterator

import httpx
import jwt
import pytest
from playwright.async_api import BrowserContext, Page

from .support.browser import WAIT_MS, browser  # noqa: F401 (fixture)
from .support.client import Client, refused_status
from .support.docs import console_commands, listings
from .support.net import free_port
from .support.process import REPO, ServeProcess
from .support.tools import require

pytestmark = pytest.mark.slow  # drives chromium against the example app (uvicorn)

APP = REPO / "examples" / "webapp" / "app.py"


class Running:
    """The how-to's commands, running: the signaling server and the app."""

    def __init__(self, server: ServeProcess, app: asyncio.subprocess.Process, url: str,
                 secret: str) -> None:
        self.server, self.app, self.url, self.secret = server, app, url, secret


@pytest.fixture
async def running(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    require(importlib.util.find_spec("fastapi") and importlib.util.find_spec("uvicorn"),
            "needs FastAPI and uvicorn: pip install '.[examples]'")
    export, serve, run_app = console_commands("howto/webapp.md")
    variable, _, secret = export.removeprefix("export ").partition("=")
    monkeypatch.setenv(variable, secret)  # both terminals have it
    app_port = free_port()
    words = shlex.split(serve)
    assert words[:2] == ["membrane-rtc", "serve"]
    origin = words.index("--allowed-origin") + 1
    assert words[origin] == "http://127.0.0.1:8000"  # the app's address as the page shows it
    words[origin] = f"http://127.0.0.1:{app_port}"
    server = await ServeProcess.start(*words[2:], "--port", "0")
    app_words = shlex.split(run_app)
    assert app_words[:2] == ["python", "examples/webapp/app.py"]
    app = await asyncio.create_subprocess_exec(
        sys.executable, *app_words[1:], "--port", str(app_port), "--signaling-url", server.url,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert app.stdout is not None and app.stderr is not None
        line = (await asyncio.wait_for(app.stdout.readline(), 30)).decode()
        assert line == f"chat on http://127.0.0.1:{app_port}/ (signaling: {server.url}/chat)\n", \
            line + (await app.stderr.read()).decode()
        yield Running(server, app, f"http://127.0.0.1:{app_port}", secret)
    finally:
        if app.returncode is None:
            app.terminate()
        await asyncio.wait_for(app.wait(), 30)
        await server.stop()


async def log_in(browser: BrowserContext, url: str, name: str, password: str) -> Page:  # noqa: F811
    page = await browser.new_page()
    await page.goto(url + "/")
    await page.fill("#username", name)
    await page.fill("#password", password)
    await page.click("#login button")
    return page


async def test_two_users_log_in_and_chat_over_a_data_channel(
        running: Running, browser: BrowserContext) -> None:  # noqa: F811
    alice = await log_in(browser, running.url, "alice", "wonderland")
    # the name the server read in her token, not the one she typed
    await alice.wait_for_function("() => document.getElementById('me').textContent === 'alice'",
                                  timeout=WAIT_MS)
    assert await alice.inner_text("#state") == "connected"
    bob = await log_in(browser, running.url, "bob", "builder")
    for page in (alice, bob):  # the data channel is open, both ways
        await page.wait_for_function("() => document.getElementById('count').textContent === '1'",
                                     timeout=WAIT_MS)
    assert await bob.inner_text("#me") == "bob"

    await alice.fill("#text", "hello bob")
    await alice.click("#say button")
    await bob.wait_for_function(
        "() => [...document.querySelectorAll('#log li')].some((li) => li.textContent === 'alice: hello bob')",
        timeout=WAIT_MS)
    await bob.fill("#text", "hi alice")
    await bob.press("#text", "Enter")
    await alice.wait_for_function(
        "() => [...document.querySelectorAll('#log li')].some((li) => li.textContent === 'bob: hi alice')",
        timeout=WAIT_MS)
    assert await alice.eval_on_selector_all("#log li", "(items) => items.map((i) => i.textContent)") \
        == ["alice: hello bob", "bob: hi alice"]

    # A wrong password gets no token, and the page says so.
    eve = await log_in(browser, running.url, "alice", "guess")
    await eve.wait_for_function(
        "() => document.getElementById('status').textContent === 'Wrong name or password.'",
        timeout=WAIT_MS)
    assert await eve.is_hidden("#chat")


async def test_the_token_admits_to_the_room_from_the_apps_origin_only(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.url) as http:
        assert (await http.post("/login", json={"username": "bob", "password": "nope"})
                ).status_code == 401
        assert (await http.post("/login", json={"username": "mallory", "password": "x"})
                ).status_code == 401
        answer = (await http.post("/login", json={"username": "alice",
                                                  "password": "wonderland"})).json()
        script = await http.get("/client.js")
    assert script.status_code == 200 and "export class SignalingClient" in script.text
    assert answer["url"] == f"{running.server.url}/chat" and answer["name"] == "alice"
    claims = jwt.decode(answer["token"], running.secret, algorithms=["HS256"])
    assert (claims["sub"], claims["name"], claims["room"]) == ("alice", "alice", "chat")
    assert claims["exp"] - claims["iat"] == 15 * 60
    with_token = f"{answer['url']}?access_token={answer['token']}"
    client = await Client.connect(with_token, origin=running.url)
    assert client.welcome["metadata"] == {"name": "alice"}
    await client.close()
    assert await refused_status(with_token, origin="https://elsewhere.example") == 403
    assert await refused_status(answer["url"], origin=running.url) == 401  # no token
    other_room = answer["url"].removesuffix("/chat") + "/lobby"
    assert await refused_status(f"{other_room}?access_token={answer['token']}",
                                origin=running.url) in (401, 404)


def test_the_readme_shows_the_how_tos_commands() -> None:
    readme = (REPO / "examples" / "webapp" / "README.md").read_text()
    shown = [line[2:] for line in readme.splitlines() if line.startswith("$ ")]
    assert shown == console_commands("howto/webapp.md")
    assert [item.info for item in listings("howto/webapp.md")][1:] == [
        "{literalinclude} ../../examples/webapp/app.py",
        "{literalinclude} ../../examples/webapp/static/index.html"]
    assert Path(APP).exists()
