"""--auto-create and --empty-timeout: rooms a client's first connection creates, stopped once
empty a while; rooms named at start-up stay."""

from __future__ import annotations

from urllib.parse import quote

from membrane_rtc import Server

from .conftest import ServerFactory
from .support.client import Client, refused_status
from .support.waiting import until


async def room_names(server: Server) -> set[str]:
    return {room.name for room in await server.list_rooms()}


async def test_a_first_connection_creates_the_room_and_it_goes_when_empty(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(auto_create=True, empty_timeout=0.5,
                                          auto_room_class="actors.capped:CappedRoom",
                                          auto_room_options={"max_peers": 1})
    first = await Client.connect(f"{server.url}/team-42")
    assert await room_names(server) == {"demo", "team-42"}
    [team] = [r for r in await server.list_rooms() if r.name == "team-42"]
    assert team.room_class == "actors.capped:CappedRoom"  # the configured class and options
    second = await Client.connect(f"{server.url}/team-42", authenticate=False)
    assert (await second.recv_event("error"))["data"]["details"] == "room_is_full"
    await first.close()

    async def gone() -> bool:
        return await room_names(server) == {"demo"}  # the named room stays
    await until(gone)
    again = await Client.connect(f"{server.url}/team-42")  # created afresh
    await again.close()


async def test_only_safe_names_and_only_within_the_room_limit(
        start_server: ServerFactory) -> None:
    server = await start_server(auto_create=True, max_rooms=2)
    for name in ("has space", ".hidden", "x" * 65, "ünïcode"):
        assert await refused_status(f"{server.url}/{quote(name)}") == 404, name
    client = await Client.connect(f"{server.url}/second")  # demo + this one: the limit
    assert await refused_status(f"{server.url}/third") == 503
    assert await room_names(server) == {"demo", "second"}
    await client.close()


async def test_without_auto_create_an_unknown_room_is_404(start_server: ServerFactory) -> None:
    server = await start_server()
    assert await refused_status(f"{server.url}/team-42") == 404
    assert await room_names(server) == {"demo"}
