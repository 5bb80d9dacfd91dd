"""Participant ids belong to whoever the balancer gave them to: a token holder cannot take over
someone else's id (and with it their place in the call), but the owner resumes it from a new
socket with the ``resume`` secret of its ``joined``."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from media_clients import wait_for

from sfu_balancer.service.auth import create_room_token

from ..redis.cluster import FAKE_OFFER

KEY, SECRET = "site", "k" * 40
SECURE = {"dev": False, "api_keys": {KEY: SECRET}, "bridge_secret": "bridge-secret-0123456789",
          "admin_token": "admin-token"}
ROOM = "family-call"


def token(identity: str, room: str = ROOM) -> str:
    return create_room_token(api_key=KEY, secret=SECRET, room=room, identity=identity,
                             valid_for_s=300)


async def request(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send_str(json.dumps(message))
    return json.loads((await ws.receive(timeout=20)).data)  # type: ignore[no-any-return]


def join(identity: str, **fields: Any) -> dict[str, Any]:
    return {"type": "join", "room": ROOM, "sdp": FAKE_OFFER, "token": token(identity)} | fields


async def test_a_participant_id_is_resumed_only_by_its_owner(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0, **SECURE)
    fake = await cluster.add_fake_bridge("f1")
    store = cluster.router.store
    router = cluster.router
    leaves: list[tuple[Any, ...]] = []  # router.leave calls that returned (a socket's end)
    leave = router.leave

    async def counted_leave(*args: Any) -> None:
        await leave(*args)
        leaves.append(args)

    router.leave = counted_leave  # type: ignore[method-assign]

    async with aiohttp.ClientSession() as http:
        alice = await http.ws_connect(f"{cluster.url}/ws")
        joined = await request(alice, join("alice"))
        assert joined["type"] == "joined" and joined["bridge"] == "f1"
        alice_id, secret = joined["participant"], joined["resume"]
        assert isinstance(secret, str) and len(secret) >= 32

        mallory = await http.ws_connect(f"{cluster.url}/ws")
        attempts = [
            join("mallory", participant=alice_id),  # no secret
            join("mallory", participant=alice_id, resume="0" * 32),  # a guessed one
            join("mallory", participant=alice_id, resume=secret),  # alice's, leaked
        ]
        for attempt in attempts:
            reply = await request(mallory, attempt)
            assert (reply["type"], reply["code"], reply["fatal"]) == ("error", "forbidden", True)
        # a secret is for one id in one room: mallory's own is no key to alice's id
        own = await request(mallory, join("mallory"))
        assert own["type"] == "joined" and own["participant"] != alice_id
        stolen = await request(mallory, join("mallory", participant=alice_id,
                                             resume=own["resume"]))
        assert stolen["code"] == "forbidden"

        # alice is untouched: still placed, still allocated, still the session that hears pings
        record = await store.get_participant(ROOM, alice_id)
        assert record is not None and record.bridge == "f1"
        assert (ROOM, alice_id) in fake.allocations and fake.releases == 0
        assert await request(alice, {"type": "ping"}) == {"type": "pong"}
        metrics = cluster.router.metrics.refusals.labels("resume_refused")._value.get()
        assert metrics == 4

        # alice's network drops without a close (her old socket is still open here): she
        # resumes from a new socket with her secret, and the old socket's end is no leave
        alice2 = await http.ws_connect(f"{cluster.url}/ws")
        resumed = await request(alice2, join("alice", participant=alice_id, resume=secret))
        assert resumed["type"] == "joined" and resumed["participant"] == alice_id
        assert fake.releases == 1  # the resume moved the allocation to the new socket
        await alice.close()
        await wait_for(lambda: len(leaves) == 1, 10, "the old socket to end")
        assert await store.get_participant(ROOM, alice_id) is not None
        assert fake.releases == 1 and (ROOM, alice_id) in fake.allocations
        assert await request(alice2, {"type": "ping"}) == {"type": "pong"}

        # a socket that really dropped (alice left the call): she comes back with the same id
        await alice2.close()
        await wait_for(lambda: len(leaves) == 2, 10, "the second socket to end")
        assert await store.get_participant(ROOM, alice_id) is None
        alice3 = await http.ws_connect(f"{cluster.url}/ws")
        back = await request(alice3, join("alice", participant=alice_id, resume=resumed["resume"]))
        assert back["type"] == "joined" and back["participant"] == alice_id
        assert (ROOM, alice_id) in fake.allocations
        # and a rejoin on the socket that holds the id needs no secret (after a `rejoin` hint)
        again = await request(alice3, join("alice", participant=alice_id))
        assert again["type"] == "joined" and again["participant"] == alice_id
        await alice3.close()
        await mallory.close()
