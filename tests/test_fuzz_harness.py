"""The atheris harness under tests/fuzz/ runs (a short run here; long runs by hand, see it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .support.process import REPO


def test_the_atheris_decoder_harness_runs_clean() -> None:
    pytest.importorskip("atheris")  # wheels exist for x86_64 Linux only
    result = subprocess.run(
        [sys.executable, "tests/fuzz/fuzz_decoder.py", "-dict=tests/fuzz/json.dict",
         "-runs=20000", "-seed=1"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done 20000 runs" in result.stderr
