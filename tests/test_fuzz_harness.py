"""The atheris harness under tests/fuzz/ runs (a short run here; long runs by hand, see it)."""

from __future__ import annotations

import importlib.util
import platform
import subprocess
import sys

import pytest

from .support.process import REPO
from .support.tools import require

pytestmark = pytest.mark.slow  # runs the atheris harness as a subprocess


#: Seconds the harness's 20,000 runs may take (a few seconds here).
HARNESS_TIMEOUT = 120


@pytest.mark.timeout(HARNESS_TIMEOUT + 30)  # the run's own timeout answers first
def test_the_atheris_decoder_harness_runs_clean() -> None:
    if platform.machine() != "x86_64":  # setup.cfg installs it there only: nothing missing
        pytest.skip("atheris has wheels for x86_64 Linux only")
    # Where the test extra installs it, its absence is a broken install: fails under CI.
    require(importlib.util.find_spec("atheris"), "needs atheris: pip install -e '.[test]'")
    result = subprocess.run(
        [sys.executable, "tests/fuzz/fuzz_decoder.py", "-dict=tests/fuzz/json.dict",
         "-runs=20000", "-seed=1"],
        cwd=REPO, capture_output=True, text=True, timeout=HARNESS_TIMEOUT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done 20000 runs" in result.stderr
