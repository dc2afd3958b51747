"""A real HTTP server that receives webhooks (the standard library's threading server): it
records each POST, and may answer with an error or hang, as receivers do."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, port: int = 0, status: int = 200, hang: bool = False) -> None:
        self.status = status
        self.hang = hang
        self.deliveries: list[Delivery] = []
        self.requests = 0  # POSTs begun, hanging ones included
        self._changed = threading.Condition()
        self._release = threading.Event()  # lets hanging requests go (at stop)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._changed:
                    receiver.requests += 1
                    receiver._changed.notify_all()
                if receiver.hang:
                    receiver._release.wait(60)
                    return
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if receiver.status < 300:
                    with receiver._changed:
                        receiver.deliveries.append(Delivery(dict(self.headers), body))
                        receiver._changed.notify_all()

            def log_message(self, *args: Any) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 15) -> None:
        """Block (a test's worker thread) until ``predicate(self)`` holds."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"timed out; {self.requests} requests, "
                                     f"{len(self.deliveries)} delivered")
