"""Signed webhooks to a real local HTTP receiver: every event once with a valid signature; a
receiver that is down then up gets the retried events; one that hangs slows nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any, AsyncIterator, Callable

import pytest

from membrane_rtc import Server

from .conftest import ServerFactory
from .support.client import Client
from .support.net import free_port
from .support.receiver import Receiver
from .support.waiting import until

SECRET = "webhook-secret"
FAULTY = "tests.support.faulty_room:FaultyRoom"


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        await asyncio.to_thread(receiver.stop)


def events(receiver: Receiver) -> list[dict[str, Any]]:
    """What arrived, each checked against its signature (as a receiver must), in the order
    the events happened (several requests are in flight at once: they may arrive in
    another)."""
    checked = []
    for delivery in receiver.deliveries:
        expected = "sha256=" + hmac.new(SECRET.encode(), delivery.body,
                                        hashlib.sha256).hexdigest()
        assert hmac.compare_digest(delivery.headers["X-Membrane-Signature"], expected)
        assert delivery.headers["Content-Type"] == "application/json"
        checked.append(json.loads(delivery.body))
    return sorted(checked, key=lambda event: event["time"])


async def arrived(receiver: Receiver, predicate: Callable[[list[dict[str, Any]]], bool]) -> None:
    await asyncio.to_thread(receiver.wait_for, lambda r: predicate(events(r)))


def kinds(received: list[dict[str, Any]], room: str | None = None) -> list[str]:
    return [e["event"] for e in received if room is None or e["room"] == room]


async def test_every_event_arrives_once_signed(
        start_server_each_mode: ServerFactory, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers()
    server = await start_server_each_mode(
        {"demo": ("actors.default:DefaultRoom", None),
         "crashy": (FAULTY, {"raise_in": "on_forward"})},
        webhook_urls=[receiver.url], webhook_secret=SECRET, max_restarts=1,
        restart_window=60, peer_class="tests.support.named_peer:NamedPeer")
    await arrived(receiver, lambda e: sorted(kinds(e)) == ["room_started", "room_started"])
    ada = await Client.connect(f"{server.url}/demo?name=Ada")
    await ada.close()
    await arrived(receiver, lambda e: kinds(e, "demo")[-1:] == ["peer_left"])
    for _ in range(2):  # the first crash restarts it, the second is past the budget
        victim = await Client.connect(f"{server.url}/crashy")
        await victim.send("boom", None, "all")
        await victim.closed()
        await arrived(receiver, lambda e: "room_crashed" in kinds(e, "crashy"))
    await arrived(receiver, lambda e: "room_failed" in kinds(e, "crashy"))
    await server.stop_room("demo")
    await arrived(receiver, lambda e: "room_stopped" in kinds(e, "demo"))

    received = events(receiver)
    assert len({e["id"] for e in received}) == len(received)  # each once
    assert kinds(received, "demo") == ["room_started", "peer_joined", "peer_left",
                                       "room_stopped"]
    assert kinds(received, "crashy") == [
        "room_started", "peer_joined", "room_crashed", "room_started", "peer_joined",
        "room_crashed", "room_failed"]
    joined = next(e for e in received if e["event"] == "peer_joined" and e["room"] == "demo")
    assert joined["peer_id"] == ada.peer_id and joined["metadata"] == {"name": "Ada"}
    crashed = next(e for e in received if e["event"] == "room_crashed")
    assert crashed["reason"] == "room_crashed"  # no exception text, as for clients
    assert all(isinstance(e["time"], float) for e in received)


@pytest.mark.slow  # waits out retry back-offs
async def test_a_receiver_down_then_up_gets_the_retried_events(
        start_server: ServerFactory, receivers: Callable[..., Receiver]) -> None:
    port = free_port()  # nothing listens there yet
    server = await start_server(webhook_urls=[f"http://127.0.0.1:{port}/hooks"],
                                webhook_secret=SECRET)

    async def retried() -> bool:
        return server.metrics.webhooks.labels("retried")._value.get() >= 1
    await until(retried)  # room_started could not be delivered, and is being retried
    receiver = receivers(port=port)
    await arrived(receiver, lambda e: kinds(e) == ["room_started"])

    async def sent() -> bool:
        return server.metrics.webhooks.labels("sent")._value.get() == 1
    await until(sent)


@pytest.mark.slow  # waits out a hanging receiver
async def test_a_hanging_receiver_slows_nothing_and_a_full_queue_drops_visibly(
        start_server: ServerFactory, receivers: Callable[..., Receiver],
        caplog: pytest.LogCaptureFixture) -> None:
    receiver = receivers(hang=True)
    server: Server = await start_server(
        {"demo": ("actors.default:DefaultRoom", None),
         "busy": ("actors.default:DefaultRoom", None)},
        webhook_urls=[receiver.url], webhook_secret=SECRET, webhook_queue=5)
    url = f"{server.url}/demo"
    a, b = await Client.connect(url), await Client.connect(url)
    await a.recv_event("joined")
    with caplog.at_level(logging.WARNING, logger="membrane_rtc.ops.webhooks"):
        for _ in range(20):  # 40 events: 8 requests hang, 5 wait, the rest are dropped
            extra = await Client.connect(f"{server.url}/busy")
            await extra.close()
        for n in range(200):  # signaling goes on at full speed meanwhile
            await a.send("offer", n, [b.peer_id])
            assert (await b.recv_event("offer"))["data"] == n
    await asyncio.to_thread(receiver.wait_for, lambda r: r.requests >= 8)
    dropped = server.metrics.webhooks.labels("dropped")._value.get()
    assert dropped >= 20
    assert any("webhook queue for http://127.0.0.1" in r.getMessage() for r in caplog.records)
    await a.close(), await b.close()


@pytest.mark.slow  # waits out retry back-offs
async def test_a_5xx_is_retried_and_a_4xx_is_not(
        start_server: ServerFactory, receivers: Callable[..., Receiver]) -> None:
    failing = receivers(status=503)
    refusing = receivers(status=400)
    server = await start_server(webhook_urls=[failing.url, refusing.url], webhook_secret=SECRET)
    outcomes = server.metrics.webhooks

    async def retried_and_refused() -> bool:
        return outcomes.labels("retried")._value.get() >= 1 and \
            outcomes.labels("failed")._value.get() >= 1  # the 400: given up at once
    await until(retried_and_refused)
    assert refusing.requests == 1  # room_started, asked once
    failing.status = 200  # the receiver is back: the next attempt gets through
    await arrived(failing, lambda e: kinds(e) == ["room_started"])
    assert failing.requests >= 2
