"""Plain HTTP, the requests that ask for no websocket: the liveness and readiness probes
(``/healthz``, ``/readyz``), the JS client at ``/client.js`` and, with ``demo``, the demo page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from importlib import resources
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Response

from ..seam import READY_TIMEOUT, Runtime
from .websocket import WebSocket

_TEXT = "text/plain; charset=utf-8"


def _response(status: int, body: bytes, content_type: str) -> Response:
    """A complete plain HTTP answer (the connection closes after it)."""
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-cache"), ("Connection", "close")])
    return Response(status, HTTPStatus(status).phrase, headers, body)


def _static(name: str, content_type: str) -> tuple[bytes, str]:
    return (resources.files("membrane_rtc").joinpath("static", name).read_bytes(), content_type)


_STATIC = {
    "client.js": _static("client.js", "text/javascript; charset=utf-8"),
    "demo.html": _static("demo.html", "text/html; charset=utf-8"),
}


class PlainHttp:
    """Answers the requests that ask for no websocket; readiness answers wait on the runtime,
    the others are answered at once."""

    def __init__(self, runtime: Runtime, demo: bool, draining: Callable[[], bool]) -> None:
        self.runtime = runtime
        self.demo = demo
        self.draining = draining
        self._tasks: set[asyncio.Task[None]] = set()  # readiness answers under way

    def answer(self, ws: WebSocket, target: str) -> None:
        """Answer the request for ``target`` (its path and query)."""
        path = urlsplit(target).path
        if path == "/readyz":
            task = asyncio.ensure_future(_answer_readiness(ws, self.runtime, self.draining))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            ws.respond(_serve_file(path, self.runtime, self.demo))

    def stop(self) -> None:
        """Drop the readiness answers still waiting (the server stops)."""
        for task in list(self._tasks):
            task.cancel()


def _serve_file(path: str, runtime: Runtime, demo: bool) -> Response:
    """``/healthz``, the JS client at ``/client.js`` and, with ``demo``, the demo page at
    ``/`` (``path`` without its query); a real local page is what lets browsers open a camera
    and a loopback socket."""
    if path == "/healthz":  # the process serves: the question a liveness probe asks
        if not runtime.alive():  # its actor system is gone: restart it
            return _response(503, b"actor system gone\n", _TEXT)
        return _response(200, b"ok\n", _TEXT)
    name = {"/client.js": "client.js", "/": "demo.html" if demo else None}.get(path)
    if name is None:
        return _response(404, b"Not Found\n", _TEXT)
    body, content_type = _STATIC[name]
    return _response(200, body, content_type)


async def _answer_readiness(ws: WebSocket, runtime: Runtime,
                           draining: Callable[[], bool]) -> None:
    """``/readyz``: 200 when the rooms can be reached (asked of the runtime, bounded), 503
    when not or while draining: a load balancer then sends new clients elsewhere."""
    ready = False
    if not draining():
        try:
            ready = await asyncio.wait_for(runtime.ready(), READY_TIMEOUT)
        except (asyncio.TimeoutError, OSError):
            ready = False
    if ws.transport is not None and not ws.transport.is_closing():
        status = 200 if ready and not draining() else 503
        ws.respond(_response(status, b"ready\n" if status == 200 else
                             (b"draining\n" if draining() else b"not ready\n"), _TEXT))
