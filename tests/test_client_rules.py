"""The shipped clients keep the protocol's rules as the server states them: ``/client.js``
cannot import Python, so its literals (close codes, event names, the gateway's error texts,
ping/pong) are read from its source and its ``received`` count is run in node, both against
:mod:`membrane_rtc.protocol` and :mod:`membrane_rtc.client`: a drift fails here, no browser.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from membrane_rtc import client, protocol

from .support.process import REPO
from .support.scripted_server import ScriptedServer, frame
from .support.tools import require

CLIENT_JS = REPO / "membrane_rtc" / "static" / "client.js"
#: Seconds node may take to load client.js and feed it a few frames.
NODE_TIMEOUT = 30


def _js_set(name: str) -> set[Any]:
    """The literals of client.js's ``const NAME = new Set([...])``, as JSON reads them."""
    found = re.search(rf"^const {name} = new Set\(\[(.*?)\]\);$", CLIENT_JS.read_text(), re.M)
    assert found, f"client.js defines no {name} set"
    return set(json.loads(f"[{found.group(1)}]"))


def test_client_js_literals_are_the_protocols() -> None:
    assert _js_set("FINAL_CLOSE_CODES") == {int(code) for code in client.FINAL_CLOSE_CODES}
    assert _js_set("SERVER_EVENTS") == protocol.SERVER_EVENTS
    assert _js_set("GATEWAY_ANSWERS") == protocol.GATEWAY_ANSWERS
    source = CLIENT_JS.read_text()
    assert re.findall(r'event\.data === "(\w+)"', source) == [protocol.PONG]
    assert re.findall(r'\.send\("(\w+)"\)', source) == [protocol.PING]


#: What a client reads on a fresh session, and its ``received`` count after each frame
#: (docs/reference/protocol.md, "Losing nothing").
FRESH = [
    (frame("authenticated", {"peer_id": "me", "resume_token": "t", "resumed": False}), 1),
    (frame("offer", {"sdp": "x"}, "p2", ["me"]), 2),
    (protocol.PONG, 2),  # the gateway's answer to our ping
    (frame("error", {"description": protocol.INVALID_JSON, "details": "{"}), 2),
    (frame("error", {"description": protocol.INVALID_MESSAGE, "details": None}), 2),
    (frame("error", {"description": protocol.INVALID_JSON, "details": None}, "p2"), 3),  # forged
    (frame("error", {"description": protocol.NO_SUCH_PEER, "details": "p9"}), 4),
    (frame("left", {"peer_id": "p3"}, "p2", "all"), 5),  # forged: dropped, still numbered
    (frame("authenticated", {"peer_id": "me", "resumed": False}), 6),  # not the connection's
    (frame("joined", {"peer_id": "p3"}, "p3", "all"), 7),
    ("not json", 7),  # no JSON frame: not counted (docs: "every JSON frame")
]
#: A resume, having said ``received=5``: its ``authenticated`` is none of the session's.
RESUMED = [
    (frame("authenticated", {"peer_id": "me", "resume_token": "t", "resumed": True}), 5),
    (frame("offer", {"sdp": "x"}, "p2", ["me"]), 6),
    (frame("error", {"description": protocol.INVALID_MESSAGE, "details": None}), 6),
    (frame("answer", {"sdp": "y"}, "p2", ["me"]), 7),
]


def _python_counts(frames: list[str], received: int) -> list[int]:
    """``received`` after each frame, by :func:`protocol.received_after` as client.py reads
    a connection: ``pong`` skipped, the first frame its ``authenticated``."""
    counts = []
    for index, text in enumerate(frames):
        if text != protocol.PONG:
            try:
                message: protocol.Message | None = protocol.decode_server_frame(text)
            except protocol.ProtocolError:
                message = None
            received = protocol.received_after(received, message, first=index == 0)
        counts.append(received)
    return counts


#: Loads client.js with a WebSocket that only replays frames, and prints ``received`` after
#: each one (JSON); argv: client.js's path, the frames, the count before them.
NODE_DRIVER = """
const [path, frames, before] = process.argv.slice(1);
let socket = null;
globalThis.WebSocket = class extends EventTarget {
  static OPEN = 1;
  constructor(url) { super(); this.url = url; this.readyState = 1; socket = this; }
  send() {}
  close() {}
};
const { SignalingClient } = await import(path);
const client = new SignalingClient("ws://127.0.0.1:1/webrtc/r", { keepalive: 0 });
client.connect().catch(() => {});
client.received = Number(before);
const counts = [];
for (const data of JSON.parse(frames)) {
  socket.dispatchEvent(Object.assign(new Event("message"), { data }));
  counts.push(client.received);
}
console.log(JSON.stringify(counts));
process.exit(0);
"""


def _js_counts(frames: list[str], received: int) -> list[int]:
    node = shutil.which("node")
    require(node, "needs node (apt-get install nodejs)")
    assert node is not None
    result = subprocess.run(
        [node, "--input-type=module", "-e", NODE_DRIVER, CLIENT_JS.as_uri(), json.dumps(frames),
         str(received)], capture_output=True, text=True, timeout=NODE_TIMEOUT)
    assert result.returncode == 0, result.stderr
    counts: list[int] = json.loads(result.stdout)
    return counts


@pytest.mark.parametrize(("script", "before"), [(FRESH, 0), (RESUMED, 5)],
                         ids=["fresh", "resumed"])
def test_both_clients_count_received_by_one_rule(script: list[tuple[str, int]],
                                                 before: int) -> None:
    frames = [text for text, _ in script]
    expected = [count for _, count in script]
    assert _python_counts(frames, before) == expected
    assert _js_counts(frames, before) == expected


async def test_the_python_client_counts_by_that_rule() -> None:
    """The real client, on a real socket: it reads the script, then a last message."""
    marker = frame("marker", None, "p2", ["me"])
    server = ScriptedServer([text for text, _ in FRESH] + [marker])
    url = await server.start()
    try:
        signaling = client.SignalingClient(url, resume=False)
        await signaling.connect()
        await signaling.recv_event("marker")
        assert signaling.received == FRESH[-1][1] + 1
        await signaling.close()
    finally:
        await server.stop()
