"""Tests that need a tool from outside Python: skip with one line here, fail under CI."""

from __future__ import annotations

import os
import shutil

import pytest


def require(found: object, missing: str) -> None:
    """Go on if ``found``; else skip with ``missing`` (one line saying what to install), or
    fail when ``CI=true``: .ci/run installs every tool, so a missing one there is a bug."""
    if found:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: {missing}", pytrace=False)
    pytest.skip(missing)


def chromium() -> str:
    """The Chromium to drive: Debian's, wherever it is on PATH."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path, "needs Debian's chromium: apt-get install chromium")
    assert path is not None
    return path
