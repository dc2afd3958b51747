"""Real browsers for end-to-end tests: Debian's chromium, driven by Playwright."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

from .tools import chromium

FLAGS = ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         "--disable-gpu", "--disable-sync"]
WAIT_MS = 30_000


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    executable = chromium()  # skips (fails under CI) with one line when there is none
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=executable, headless=True, args=FLAGS)
        try:
            yield context
        finally:
            await context.close()


async def open_demo(browser: BrowserContext, port: int, room: str, query: str = "") -> Page:
    """A new page on the demo, joined to ``room`` (``query``: more of the page's URL)."""
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{port}/?room={room}{query}")
    return page


CONNECTED = """() => Object.values(window.demo.states).includes("connected")
                 && Object.values(window.demo.remoteWidths).some((w) => w > 0)"""
