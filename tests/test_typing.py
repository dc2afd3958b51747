"""The package type-checks under ``mypy --strict`` (setup.cfg): its users' checkers rely on
the hints it ships (py.typed)."""

from __future__ import annotations

import subprocess
import sys

from .support.process import REPO


def test_the_package_passes_mypy_strict() -> None:
    assert (REPO / "membrane_rtc" / "py.typed").exists()
    result = subprocess.run([sys.executable, "-m", "mypy", "-p", "membrane_rtc"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
