"""A resume presents the client's credentials again and its ``Peer`` checks them: a session
does not outlive its credentials by dropping and resuming (docs/reference/protocol.md,
"Resuming after a drop"). Over real sockets; the JWT ones in both actor-system modes."""

from __future__ import annotations

import asyncio
import time

import pytest

from membrane_rtc import Server
from membrane_rtc.client import SignalingClient

from .conftest import ServerFactory
from .support.client import Client, refused_status
from .support.recording import RECORD
from .support.waiting import until
from .test_jwt_auth import JWT_PEER, SECRET, token
from .test_resume import away, drop, nothing_pending

#: The JWT peer's options here: no leeway, so that a token is expired when its exp is past.
JWT_OPTIONS = {"secret": SECRET, "leeway": 0}


async def dropped(server: Server, url: str, query: str) -> tuple[Client, str]:
    """A client of room ``url`` whose connection dropped (its peer away): it and its resume
    token."""
    client = await Client.connect(url + query)
    await drop(client)
    await away(server, url.rsplit("/", 1)[1], client.peer_id or "")
    return client, client.welcome["resume_token"]


def refusals(server: Server) -> dict[str, float]:
    """The 401s the server answered, by the reason it logged."""
    return {sample.labels["reason"]: sample.value
            for sample in server.metrics.unauthorized.collect()[0].samples
            if sample.name.endswith("_total")}


@pytest.mark.slow
async def test_an_expired_jwt_cannot_resume_and_the_grace_still_ends(
        start_server_each_mode: ServerFactory) -> None:
    grace = 5.0
    server = await start_server_each_mode(peer_class=JWT_PEER, peer_options=JWT_OPTIONS,
                                          resume_grace=grace)
    url = f"{server.url}/demo"
    expires = int(time.time()) + 2
    short = token(exp=expires, iat=int(time.time()))
    a = await Client.connect(f"{url}?access_token={short}")
    b = await Client.connect(f"{url}?access_token={token(sub='bob', name='Bob')}")
    await a.recv_event("joined")
    await drop(a)
    dropped = time.monotonic()
    await away(server, "demo", a.peer_id or "")

    async def expired() -> bool:
        return time.time() >= expires + 0.05

    await until(expired, timeout=5)
    assert time.monotonic() - dropped < grace - 0.5, "too slow to test within the grace"
    status = await refused_status(f"{url}?resume={a.welcome['resume_token']}"
                                  f"&access_token={short}")
    assert status == 401
    assert refusals(server) == {"access token expired": 1}
    left = await b.recv_event("left", timeout=grace + 5)  # not extended: it ends as it would
    assert left["data"]["peer_id"] == a.peer_id
    assert time.monotonic() - dropped >= grace - 0.5  # and not cut short by the refusal
    await b.close()


async def test_a_fresh_jwt_of_the_same_subject_resumes_and_nothing_else_does(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(peer_class=JWT_PEER, peer_options=JWT_OPTIONS)
    url = f"{server.url}/demo"
    a = await Client.connect(f"{url}?access_token={token()}")
    b = await Client.connect(f"{url}?access_token={token(sub='bob', name='Bob')}")
    await a.recv_event("joined")
    stolen = f"{url}?resume={a.welcome['resume_token']}"

    # The resume token alone, while its peer is connected: refused, and the peer stays.
    assert await refused_status(stolen) == 401
    await b.send("offer", 1, [a.peer_id])
    assert (await a.recv_event("offer"))["data"] == 1

    await drop(a)
    await away(server, "demo", a.peer_id or "")
    await b.send("offer", 2, [a.peer_id])
    assert await refused_status(stolen) == 401  # no credentials
    mallory = token(sub="mallory", name="Mallory")
    assert await refused_status(f"{stolen}&access_token={mallory}") == 401  # someone else's
    await away(server, "demo", a.peer_id or "")  # still away, still a member
    assert refusals(server) == {"no access token": 2, "resumed as another identity": 1}

    # Its own client, with a fresh token in the header a non-browser client resends.
    fresh = token(name="Ada Lovelace")
    back = await Client.connect(stolen, authenticate=False,
                                additional_headers={"Authorization": f"Bearer {fresh}"})
    await back.authenticated()
    assert back.peer_id == a.peer_id and back.welcome["resumed"] is True
    assert back.welcome["metadata"] == {"name": "Ada"}  # what b was told in joined
    assert (await back.recv_event("offer"))["data"] == 2
    await nothing_pending(b)  # b saw no left and no joined
    await back.close(), await b.close()


async def test_the_token_peer_refuses_a_resume_without_its_token(
        start_server: ServerFactory) -> None:
    server = await start_server(peer_class="actors.token:TokenPeer",
                                peer_options={"token": "s3cret"})
    url = f"{server.url}/demo"
    a, resume_token = await dropped(server, url, "?token=s3cret")
    assert await refused_status(f"{url}?resume={resume_token}") == 401
    assert await refused_status(f"{url}?resume={resume_token}&token=guess") == 401
    back = await Client.connect(f"{url}?token=s3cret&resume={resume_token}")
    assert back.peer_id == a.peer_id and back.welcome["resumed"] is True
    await back.close()


async def resumes_by_itself(server: Server, alice: SignalingClient, bob: SignalingClient) -> None:
    """Alice's network goes (no close frame); bob sends her an offer; her ``recv`` resumes
    her as the same peer, then reads it."""
    await alice.recv_event("joined")
    me = alice.peer_id
    assert alice._connection is not None
    alice._connection.transport.abort()
    await away(server, "demo", me or "")
    await bob.send("offer", {"n": 1}, [me])
    offer = await alice.recv_event("offer")
    assert (alice.peer_id, alice.resumes, offer.data) == (me, 1, {"n": 1})


async def test_the_python_client_resends_its_query_when_it_resumes(
        start_server: ServerFactory) -> None:
    server = await start_server(peer_class="actors.token:TokenPeer",
                                peer_options={"token": "s3cret"})
    url = f"{server.url}/demo?token=s3cret"
    async with SignalingClient(url) as alice, SignalingClient(url) as bob:
        await resumes_by_itself(server, alice, bob)  # with ?token=


async def test_the_python_client_resends_its_headers_when_it_resumes(
        start_server: ServerFactory) -> None:
    """An ``Authorization`` header given to the client goes with every resume too."""
    server = await start_server(peer_class=JWT_PEER, peer_options=JWT_OPTIONS)
    url = f"{server.url}/demo"
    bearer = {"Authorization": f"Bearer {token(sub='alice')}"}
    async with SignalingClient(url, headers=bearer) as alice, \
            SignalingClient(url, headers={"Authorization": f"Bearer {token(sub='bob')}"}) as bob:
        await resumes_by_itself(server, alice, bob)  # with the header
    assert refusals(server) == {}


async def test_a_resume_runs_a_new_peer_and_ends_the_old_one(
        start_server: ServerFactory) -> None:
    """The callbacks, in order: the resuming connection's own Peer runs on_init (same peer
    id, the new request's credentials); refused, nothing else runs; accepted, the old
    Peer's on_terminate, then the room's on_resume. The idle timeout is the new on_init's."""
    server = await start_server({"rec": ("tests.support.recording:RecordingRoom", None)},
                                peer_class="tests.support.recording:RecordingPeer")
    url = f"{server.url}/rec"
    a, resume_token = await dropped(server, url, "?who=a")
    assert await refused_status(f"{url}?refuse=1&resume={resume_token}") == 401
    back = await Client.connect(f"{url}?idle=0.5&resume={resume_token}")
    assert back.peer_id == a.peer_id
    calls = await RECORD.until(lambda c: ("room:rec", "on_resume", a.peer_id) in c)
    order = [c[:2] for c in calls if c[1] not in ("on_forward", "on_receive")]
    assert order == [("room:rec", "on_init"), ("peer", "on_init"), ("room:rec", "on_join"),
                     ("room:rec", "on_disconnect"), ("peer", "on_init"), ("peer", "on_init"),
                     ("peer", "on_terminate"), ("room:rec", "on_resume")]
    inits = [c for c in calls if c[:2] == ("peer", "on_init")]
    for _, _, context, auth, _ in inits[1:]:
        assert context.peer_id == auth.peer_id == a.peer_id
    assert [i[3].credentials for i in inits] == [{"who": "a"}, {"refuse": "1"}, {"idle": "0.5"}]
    assert await asyncio.wait_for(back.closed(), 5) == 1000  # its own idle timeout
    assert back.connection.close_reason == "idle timeout"
    calls = await RECORD.until(lambda c: ("room:rec", "on_leave", a.peer_id) in c)
    assert [c[1] for c in calls if c[0] == "peer"].count("on_terminate") == 2  # each once
