"""What a room may be called: one rule for the gateway's URLs, start-up, ``admin create`` and
rooms created on demand.

A room lives at ``/webrtc/<name>`` (URL-decoded), so a name is one path segment: not empty, no
``/``, printable. Rooms created on demand (``--auto-create``) take any client's word for a
name, so theirs is stricter: letters, digits, ``_``, ``.`` and ``-``, up to 64, starting with a
letter or digit.
"""

from __future__ import annotations

import re

__all__ = ["room_name_problem", "may_auto_create", "MAX_ROOM_NAME"]

#: Longest room name, in characters.
MAX_ROOM_NAME = 200
#: Names a client may bring a room into being with (``--auto-create``).
AUTO_CREATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def room_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a room (None: it can), in a few words."""
    if not name:
        return "a room name cannot be empty"
    if "/" in name:
        return f"room name {name!r} contains '/' (a room is one URL path segment)"
    if len(name) > MAX_ROOM_NAME:
        return f"room name is longer than {MAX_ROOM_NAME} characters"
    if not name.isprintable():
        return f"room name {name!r} contains control characters"
    return None


def may_auto_create(name: str) -> bool:
    """A client's first connection may create a room of this name (``--auto-create``)."""
    return AUTO_CREATE_NAME.fullmatch(name) is not None
