"""Logs (one structured line per connection event) and Prometheus metrics, from a real server."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from membrane_rtc import RoomStatus
from membrane_rtc.ops.logs import JsonFormatter, log_event
from membrane_rtc.ops import metrics as metrics_module
from membrane_rtc.ops.metrics import MAX_UNAUTHORIZED_REASONS, Metrics

from .conftest import ServerFactory
from .support.net import free_port
from .support.client import Client, refused_status
from .support.process import ServeProcess, run_cli
from .support.waiting import until


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET /metrics`` like Prometheus (or curl) would: {(sample name, labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_the_traffic(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(metrics_port=free_port(), max_peers_per_room=2)
    assert server.metrics_port is not None
    before = await asyncio.to_thread(scrape, server.metrics_port)
    assert value(before, "membrane_rtc_rooms", state="running") == 1
    assert value(before, "membrane_rtc_peers") == 0

    a = await Client.connect(f"{server.url}/demo")
    b = await Client.connect(f"{server.url}/demo")
    await a.recv_event("joined")
    for n in range(5):
        await a.send("offer", n, to=[b.peer_id])
        await b.recv_event("offer")
    await a.send_text("{not json")
    await a.recv_event("error")
    assert await refused_status(f"{server.url}/nowhere") == 404
    full = await Client.connect(f"{server.url}/demo", authenticate=False)
    await full.recv_event("error")

    after = await asyncio.to_thread(scrape, server.metrics_port)
    assert value(after, "membrane_rtc_peers") == 2
    assert value(after, "membrane_rtc_connections_total") == 3  # a, b and the refused one
    assert value(after, "membrane_rtc_messages_received_total") == 5
    # 5 offers + 2 authenticated + 1 joined + the refused one's error (the gateway's own
    # "Invalid JSON" answer is not a forwarded frame)
    assert value(after, "membrane_rtc_messages_forwarded_total") == 9
    assert value(after, "membrane_rtc_refusals_total", reason="invalid_json") == 1
    assert value(after, "membrane_rtc_refusals_total", reason="no_such_room") == 1
    assert value(after, "membrane_rtc_refusals_total", reason="join_refused") == 1
    assert value(after, "membrane_rtc_room_peers", room="demo") == 2
    assert value(after, "membrane_rtc_outbound_queue_max_bytes") == 0  # every frame was read

    await server.restart_room("demo")
    restarted = await asyncio.to_thread(scrape, server.metrics_port)
    assert value(restarted, "membrane_rtc_room_restarts_total", room="demo") == 1


async def test_a_frame_too_big_is_counted_and_every_room_state_is_shown(
        start_server: ServerFactory) -> None:
    """Two metrics that once stayed silent: the 1009 refusal (the server closes, the client
    may not answer) and the rooms in state ``waiting``."""
    server = await start_server(metrics_port=free_port(), max_message_bytes=1024)
    assert server.metrics_port is not None
    client = await Client.connect(f"{server.url}/demo")
    await client.send("offer", "x" * 2000, "all")
    assert await client.closed() == 1009

    async def counted() -> bool:
        after = await asyncio.to_thread(scrape, server.metrics_port)  # type: ignore[arg-type]
        return value(after, "membrane_rtc_refusals_total", reason="frame_too_big") == 1

    await until(counted)
    samples = await asyncio.to_thread(scrape, server.metrics_port)
    shown = {dict(labels)["state"] for name, labels in samples if name == "membrane_rtc_rooms"}
    assert shown == {state.value for state in RoomStatus}


@pytest.mark.slow  # membrane-rtc serve as a subprocess
async def test_serve_logs_json_lines_and_serves_metrics_on_loopback() -> None:
    metrics_port = free_port()
    server = await ServeProcess.start("--port", "0", "--log-format", "json",
                                      "--metrics-port", str(metrics_port))
    try:
        announced = f"metrics: http://127.0.0.1:{metrics_port}/metrics"
        assert server.process.stdout is not None
        async with asyncio.timeout(5):
            while not any(announced in line for line in server.stdout):
                server.stdout.append((await server.process.stdout.readline()).decode())
        client = await Client.connect(f"{server.url}/demo")
        assert await refused_status(f"{server.url}/nowhere") == 404
        await client.close()
        disconnected = json.loads(await server.log_line('"peer_disconnected"'))
        assert disconnected["peer_id"] == client.peer_id and disconnected["room"] == "demo"
        assert disconnected["code"] == 1000 and disconnected["level"] == "INFO"
        connected = json.loads(await server.log_line('"peer_connected"'))
        assert connected["remote"] == "127.0.0.1" and connected["peer_id"] == client.peer_id
        refused = json.loads(await server.log_line('"peer_refused"'))
        assert refused["status"] == 404 and refused["path"] == "/webrtc/nowhere"
        samples = await asyncio.to_thread(scrape, metrics_port)
        assert value(samples, "membrane_rtc_connections_total") == 1
        assert value(samples, "membrane_rtc_refusals_total", reason="no_such_room") == 1
    finally:
        await server.stop()
    assert any("membrane-rtc stopped" in line for line in server.stdout)
    for line in server.stdout + server.stderr:  # every line is JSON, the banner's too
        json.loads(line)
    status, _, err = await run_cli("serve", "--log-format", "json", "--room", "a/b")
    assert status == 2 and json.loads(err)["message"].startswith("--room: room name 'a/b'")


def test_text_and_json_lines_carry_the_same_fields(caplog) -> None:
    logger = logging.getLogger("membrane_rtc.test")
    with caplog.at_level(logging.INFO, logger="membrane_rtc.test"):
        log_event(logger, logging.INFO, "peer_refused", status=429, remote="127.0.0.1")
    record = caplog.records[-1]
    assert record.getMessage() == "peer_refused status=429 remote='127.0.0.1'"
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["event"], entry["status"], entry["remote"]) == ("peer_refused", 429, "127.0.0.1")


def test_401_reasons_are_counted_by_name_up_to_a_bound() -> None:
    metrics = Metrics()
    for n in range(MAX_UNAUTHORIZED_REASONS + 8):
        metrics.refused_unauthorized(f"reason {n}")
    metrics.refused_unauthorized("reason 0")  # a known one stays itself
    counts = {s.labels["reason"]: s.value for s in metrics.unauthorized.collect()[0].samples
              if s.name.endswith("_total")}
    assert len(counts) == MAX_UNAUTHORIZED_REASONS + 1
    assert counts["other"] == 8 and counts["reason 0"] == 2


def test_the_metrics_port_serves_until_stopped_and_then_is_closed() -> None:
    """The serving thread waits for connections without polling; a stop still ends it and
    closes the port at once (it is woken to see the stop)."""
    metrics = Metrics()
    port = metrics.serve(0)
    assert metrics.address == ("127.0.0.1", port)
    assert ("membrane_rtc_connections_total", ()) in scrape(port)
    serving = [t for t in threading.enumerate() if t.name == "membrane-rtc-metrics"]
    assert len(serving) == 1
    started = time.monotonic()
    metrics.stop()
    assert time.monotonic() - started < 2
    assert metrics.address is None and not serving[0].is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    metrics.stop()  # idempotent


def test_a_half_finished_scrape_blocks_nobody_and_is_closed_after_its_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that sends half a request and waits (or many of them) holds a thread each:
    others still scrape, the server closes it after REQUEST_TIMEOUT, and a stop is not held."""
    monkeypatch.setattr(metrics_module._QuietHandler, "timeout", 0.5)
    metrics = Metrics()
    port = metrics.serve(0)
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    try:
        for connection in stalled:
            connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: x")  # never finished
        assert ("membrane_rtc_connections_total", ()) in scrape(port)
        started = time.monotonic()
        assert stalled[0].recv(1) == b""  # closed by the server, unanswered
        assert time.monotonic() - started < 4
        stalled.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        stalled[-1].sendall(b"GET /met")
        started = time.monotonic()
        metrics.stop()
        assert time.monotonic() - started < 2
    finally:
        for connection in stalled:
            connection.close()
        metrics.stop()
