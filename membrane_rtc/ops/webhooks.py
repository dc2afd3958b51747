"""Signed webhooks: each event is POSTed as JSON to every ``--webhook-url``.

The body is signed with ``--webhook-secret``: header ``X-Membrane-Signature: sha256=<hex>``,
the HMAC-SHA256 of the exact body, so that a receiver can tell our events from forgeries.
Delivery never slows a room: events wait in a bounded queue per URL (full: the event is
dropped, counted and logged), a few requests per URL are in flight at once, and a failed one
(a connection error, a timeout or a 5xx answer) is retried with exponential backoff a few
times before it is given up (counted). httpx does the HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..config import DEFAULT_WEBHOOK_QUEUE
from .metrics import Metrics

__all__ = ["Webhooks", "signature", "SIGNATURE_HEADER"]

log = logging.getLogger(__name__)

#: The header that carries the body's signature.
SIGNATURE_HEADER = "X-Membrane-Signature"
#: Requests in flight per URL (a slow receiver holds this many workers, no more).
CONCURRENCY = 8
#: Attempts per event (the first and the retries), and the first retry's delay (seconds;
#: doubled each time: 0.5, 1, 2, 4).
ATTEMPTS = 5
FIRST_RETRY = 0.5
#: Seconds one request may take.
REQUEST_TIMEOUT = 10.0
#: Seconds the server waits, when it stops, for the events still queued to go out.
FLUSH_TIMEOUT = 2.0


def signature(secret: str, body: bytes) -> str:
    """The ``X-Membrane-Signature`` value of a body: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    """Delivers events to the URLs, from a bounded queue each, with retries."""

    def __init__(self, urls: list[str], secret: str, metrics: Metrics,
                 queue_size: int = DEFAULT_WEBHOOK_QUEUE) -> None:
        self.urls = list(urls)
        self.secret = secret
        self.metrics = metrics
        self.queues: dict[str, asyncio.Queue[bytes]] = {
            url: asyncio.Queue(queue_size) for url in self.urls}
        self._client: httpx.AsyncClient | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._dropped_since_logged = 0

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT, follow_redirects=False,
            limits=httpx.Limits(max_connections=CONCURRENCY * len(self.urls)))
        self._workers = [asyncio.ensure_future(self._work(url))
                         for url in self.urls for _ in range(CONCURRENCY)]

    def post(self, event: dict[str, Any]) -> None:
        """Queue an event for every URL (never waits)."""
        body = json.dumps(event, separators=(",", ":")).encode()
        for url, queue in self.queues.items():
            try:
                queue.put_nowait(body)
            except asyncio.QueueFull:
                self.metrics.webhooks.labels("dropped").inc()
                self._dropped_since_logged += 1
                if self._dropped_since_logged in (1, 100) or \
                        self._dropped_since_logged % 1000 == 0:
                    log.warning("webhook queue for %s is full: %d events dropped so far",
                                _shown(url), self._dropped_since_logged)

    async def stop(self) -> None:
        """Give what is queued a moment to go out, then stop."""
        if self._client is None:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self.queues.values())),
                                   FLUSH_TIMEOUT)
        except asyncio.TimeoutError:
            left = sum(q.qsize() for q in self.queues.values())
            log.warning("stopping with %d webhook events undelivered", left)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self._client.aclose()
        self._client = None

    async def _work(self, url: str) -> None:
        queue = self.queues[url]
        while True:
            body = await queue.get()
            try:
                await self._deliver(url, body)
            finally:
                queue.task_done()

    async def _deliver(self, url: str, body: bytes) -> None:
        assert self._client is not None
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: signature(self.secret, body)}
        delay = FIRST_RETRY
        problem = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            else:
                if response.status_code < 300:
                    self.metrics.webhooks.labels("sent").inc()
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the receiver refuses this event: asking again will not help
            if attempt < ATTEMPTS:
                self.metrics.webhooks.labels("retried").inc()
                await asyncio.sleep(delay)
                delay *= 2
        self.metrics.webhooks.labels("failed").inc()
        log.warning("webhook to %s given up: %s", _shown(url), problem)


def _shown(url: str) -> str:
    """A URL for the logs: no user:password, no query (where receivers put their tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
