"""Sphinx configuration: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tutorial's and how-tos' listings import from the checkout

import membrane_rtc  # noqa: E402

project = "membrane-rtc"
author = "the membrane-rtc developers"
copyright = "2026, the membrane-rtc developers"
release = version = membrane_rtc.__version__

extensions = [
    "myst_parser",          # the pages are Markdown
    "sphinx.ext.autodoc",   # the API reference comes from the docstrings and type hints
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",        # the CLI reference comes from the argparse parser itself
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "tutorial/*.py", "howto/*.py"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_class_signature = "separated"

html_theme = "furo"
html_title = f"membrane-rtc {release}"
html_static_path: list[str] = []
