"""The package type-checks under ``mypy --strict`` (setup.cfg): its users' checkers rely on
the hints it ships (py.typed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .support.process import REPO

#: Seconds one mypy run may take (a cold cache checks the whole package).
MYPY_TIMEOUT = 300
#: The test's own: mypy's timeout answers first, with its output.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(MYPY_TIMEOUT + 30)]


def test_the_package_passes_mypy_strict() -> None:
    assert (REPO / "membrane_rtc" / "py.typed").exists()
    result = subprocess.run([sys.executable, "-m", "mypy", "-p", "membrane_rtc"], cwd=REPO,
                            capture_output=True, text=True, timeout=MYPY_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_the_docs_listings_and_ready_actors_type_check(tmp_path: Path) -> None:
    """What users copy from (the docs' listings, actors/, examples/) type-checks as users'
    own code would be checked, mypy's defaults."""
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nignore_missing_imports = True\n")  # aiortc, Thespian: no hints
    listings = [str(p.relative_to(REPO)) for folder in ("docs/tutorial", "docs/howto", "actors",
                                                       "examples")
                for p in sorted((REPO / folder).rglob("*.py"))]
    assert len(listings) >= 8
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config),
                             "--cache-dir", str(tmp_path / "cache"), *listings], cwd=REPO,
                            capture_output=True, text=True, timeout=MYPY_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
