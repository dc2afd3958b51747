"""Reading ``membrane-rtc serve --print-config``."""

from __future__ import annotations

import re


def effective(printed: str) -> dict[str, tuple[str, str]]:
    """Its setting lines: key -> (the value as TOML, where it came from). Unset settings
    (comment lines) are left out."""
    settings = {}
    for line in printed.splitlines():
        if match := re.match(r"([a-z-]+) = (.*?)\s+# (.*)$", line):
            settings[match.group(1)] = (match.group(2), match.group(3))
    return settings
