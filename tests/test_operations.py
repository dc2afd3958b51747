"""The admin operations' one table, and everything that derives from it."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest

import membrane_rtc.runtime.api
from membrane_rtc.ops.admin import AdminClient
from membrane_rtc.config import DEFAULT_ROOM_CLASS

from membrane_rtc.ops.admin_channel import decode_request, encode_request
from membrane_rtc.ops.cli import build_parser
from membrane_rtc.ops.operations import BY_NAME, OPERATIONS, operation_of, request_fields
from membrane_rtc.runtime.admin_actor import REQUESTS
from membrane_rtc.runtime.failover import FOLLOWED
from membrane_rtc.runtime.messages import Request
from membrane_rtc.runtime.messages.admin import (CreateRoom, Drain, KickPeer, ListHosts, ListPeers,
                                                 ListRooms, RestartRoom, StopRoom)
from membrane_rtc.runtime.messages.gateway import ConnectPeer

from .conftest import ServerFactory
from .support.client import Client, refused_status
from .support.waiting import until


OPS = Path(membrane_rtc.runtime.__file__).parent.parent / "ops"


def test_the_operators_tools_reach_the_runtime_only_through_its_face() -> None:
    """ops/ imports the runtime's names from ``membrane_rtc.runtime.api``, not from the modules
    behind it; the one exception is the operations table, which maps each operation to its
    request message and which the admin actor itself imports."""
    for path in OPS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module \
                    and node.module.startswith("runtime"):
                assert node.module == "runtime.api" or \
                    path.name == "operations.py" \
                    and node.module in ("runtime.messages", "runtime.messages.admin"), \
                    f"{path.name} imports {node.module}"
    for name in membrane_rtc.runtime.api.__all__:  # each name of the face is there
        assert getattr(membrane_rtc.runtime.api, name) is not None, name


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
def test_each_operation_is_handled_taken_and_carried(operation) -> None:
    assert operation.request in REQUESTS  # the admin actor lets it through
    fields = {name: f"value-{name}" for name in request_fields(operation)}
    request = operation.request(**fields)
    assert operation_of(request) is operation
    # A supervisor standing by passes it to the one leading, rather than answer it itself.
    assert isinstance(request, FOLLOWED)
    again = decode_request(encode_request(request))  # the embedded admin channel
    assert type(again) is operation.request and again == request
    args = build_parser().parse_args(
        ["admin", operation.name] + [fields[name] for name in request_fields(operation)
                                     if name not in operation.options])
    assert args.operation == operation.name


def test_requests_outside_the_table_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="unknown op 'explode'; one of list, create"):
        decode_request(b'{"op": "explode", "args": {}}')
    with pytest.raises(ValueError, match="bad args for kick"):
        decode_request(b'{"op": "kick", "args": {"room": "a"}}')
    with pytest.raises(ValueError, match="args must be an object"):
        decode_request(b'{"op": "list", "args": {"reply_to": "x"}}')
    with pytest.raises(ValueError, match="is not an admin operation"):
        operation_of(ConnectPeer(1, "r", None, "x:Y"))  # type: ignore[arg-type]
    assert BY_NAME["kick"].request is KickPeer


async def test_each_operation_does_its_job_on_a_running_server(start_server: ServerFactory) -> None:
    """Every row of the table, sent as ``membrane-rtc admin`` sends it (the embedded admin
    channel) to a running server: each is handled, and does what its help says."""
    server = await start_server(drain_timeout=60)
    client = await Client.connect(f"{server.url}/demo")
    done: set[str] = set()
    # The client blocks; the channel is served on this loop: the client runs on a thread.
    admin = await asyncio.to_thread(AdminClient.for_server, server.port)

    async def run(request: Request) -> Any:
        done.add(operation_of(request).name)
        return await asyncio.to_thread(admin.request, request)

    try:
        assert await run(CreateRoom("extra", DEFAULT_ROOM_CLASS)) is None
        assert {room.name for room in await run(ListRooms())} == {"demo", "extra"}
        assert [peer.peer_id for peer in await run(ListPeers("demo"))] == [client.peer_id]
        assert sum(host.rooms for host in await run(ListHosts())) == 2
        await run(KickPeer("demo", client.peer_id))
        assert await client.closed() == 1000
        await run(RestartRoom("extra"))
        again = await Client.connect(f"{server.url}/extra")  # it serves again
        await again.close()
        await run(StopRoom("extra"))
        assert await refused_status(f"{server.url}/extra") == 404
        await run(Drain())
        gateway = server.gateway
        assert gateway is not None

        async def draining() -> bool:
            return gateway.draining

        await until(draining)
        assert await refused_status(f"{server.url}/demo") == 503
    finally:
        await asyncio.to_thread(admin.close)
    assert done == set(BY_NAME)
