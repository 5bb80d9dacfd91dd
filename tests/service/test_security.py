"""Security and abuse protection against a live balancer with real bridges."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest
from media_clients import wait_for

from sfu_balancer import wire
from sfu_balancer.core import Tier
from sfu_balancer.hello_auth import sign_hello
from sfu_balancer.service.auth import create_room_token
from sfu_balancer.service.keys import GUARD

KEY, SECRET = "site", "k" * 40
BRIDGE_SECRET = "bridge-secret-0123456789"
SECURE = {"dev": False, "api_keys": {KEY: SECRET}, "bridge_secret": BRIDGE_SECRET,
          "admin_token": "admin-token"}


def token(room: str, tier: Tier | None = None) -> str:
    return create_room_token(api_key=KEY, secret=SECRET, room=room, identity="someone",
                             valid_for_s=300, tier=tier)


async def first_message(url: str, message: dict[str, object]) -> dict[str, object]:
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}/ws") as ws:
        await ws.send_str(json.dumps(message))
        return json.loads((await ws.receive(timeout=20)).data)  # type: ignore[no-any-return]


async def refusals(url: str) -> str:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bearer admin-token"}
        return await (await http.get(f"{url}/metrics", headers=headers)).text()


async def test_joins_need_a_valid_token_for_the_room(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=1, **SECURE)
    offer = "v=0\r\n"
    tokenless = await first_message(cluster.url, {"type": "join", "room": "ward", "sdp": offer})
    assert tokenless["code"] == "forbidden" and tokenless["fatal"] is True
    wrong_room = await first_message(cluster.url, {"type": "join", "room": "ward",
                                                   "sdp": offer, "token": token("other")})
    assert wrong_room["code"] == "forbidden" and "another room" in str(wrong_room["message"])
    member = await cluster.participant("ward", token=token("ward"))
    await wait_for(lambda: member.bridge is not None, 30, "a tokened join to be placed")
    assert 'sfub_refusals_total{code="forbidden"} 2.0' in await refusals(cluster.url)


async def test_rogue_bridges_are_refused(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=1, **SECURE)
    capacity = wire.Capacity()
    attempts = [
        ("rogue", ""),  # no proof
        ("rogue", sign_hello("rogue", "not-the-secret-at-all", time.time())),  # wrong secret
        ("rogue", sign_hello("b1", BRIDGE_SECRET, time.time())),  # b1's proof for another id
        ("b1", sign_hello("b1", BRIDGE_SECRET, time.time())),  # b1 is still connected
    ]
    async with aiohttp.ClientSession() as http:
        for bridge_id, auth in attempts:
            async with http.ws_connect(f"{cluster.url}/bridge") as ws:
                await ws.send_bytes(wire.encode(wire.Hello(
                    id=bridge_id, host="evil", region="x", version="0", capacity=capacity,
                    pid=1, auth=auth)))
                reply = wire.decode((await ws.receive(timeout=10)).data)
                assert isinstance(reply, wire.Error) and reply.about == "hello"
                closing = await ws.receive(timeout=10)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert set(cluster.router.fleet.entries) == {"b1"}
    assert cluster.router.fleet.entries["b1"].info.host != "evil"
    metrics = await refusals(cluster.url)
    assert 'sfub_refusals_total{code="bridge_auth"} 3.0' in metrics
    assert 'sfub_refusals_total{code="bridge_id_taken"} 1.0' in metrics


async def test_blocked_network_is_refused_before_the_websocket(cluster_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    block = tmp_path / "block.txt"
    block.write_text("# everything local, for the test\n127.0.0.0/8\n::1/128\n")
    cluster = await cluster_factory(bridges=1, limits={"block_cidrs_file": str(block)})
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{cluster.url}/ws")
        assert response.status == 403 and (await response.json())["code"] == "forbidden"
        assert (await http.get(f"{cluster.url}/healthz")).status == 200
    block.write_text("10.0.0.0/8\n")
    cluster.app[GUARD].reload_lists()  # what SIGHUP does
    assert (await first_message(cluster.url, {"type": "ping"}))["type"] == "pong"


async def test_rate_limits_on_connections_joins_and_messages(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=1, limits={
        "connections_per_ip_per_min": 1, "joins_per_ip_per_min": 1, "burst": 2,
        "ws_messages_per_s": 1, "ws_burst": 3})
    async with aiohttp.ClientSession() as http:
        statuses = []
        sockets = []
        for _ in range(3):
            try:
                sockets.append(await http.ws_connect(f"{cluster.url}/ws"))
                statuses.append(101)
            except aiohttp.WSServerHandshakeError as exc:
                statuses.append(exc.status)
        assert statuses == [101, 101, 429]
        ws = sockets[0]
        codes = []
        for _ in range(5):
            await ws.send_str(json.dumps({"type": "ping"}))
            codes.append(json.loads((await ws.receive(timeout=10)).data).get("code", "pong"))
        assert codes[:3] == ["pong"] * 3 and codes[3:] == ["rate_limited"] * 2
        joins = sockets[1]
        replies = []
        for _ in range(3):
            await joins.send_str(json.dumps({"type": "join", "room": "r", "sdp": "v=0"}))
            replies.append(json.loads((await joins.receive(timeout=20)).data)["code"])
        # the first two are refused by the bridge (not real SDP), the third by the join limit
        assert replies[2] == "rate_limited" and "rate_limited" not in replies[:2]
        for s in sockets:
            await s.close()


@pytest.mark.slow
async def test_full_fleet_admits_critical_and_refuses_bulk(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    settings = dict(SECURE) | {"dev": False}
    cluster = await cluster_factory(bridges=0, **settings)
    # a bridge whose CPU capacity is tiny: its idle process already fills it
    await cluster.add_bridge("tiny", "--cpu", "0.0001")
    await wait_for(lambda: cluster.router.fleet.entries["tiny"].report is not None
                   and cluster.router.fleet.entries["tiny"].report.cpu > 0, 30,
                   "a report showing CPU use")
    bulk = await first_message(cluster.url, {"type": "join", "room": "class-5b",
                                             "sdp": "v=0\r\n",
                                             "token": token("class-5b", Tier.BULK)})
    assert bulk["code"] == "capacity" and bulk["fatal"] is True
    patient = await cluster.participant("hospital-ward", token=token("hospital-ward",
                                                                     Tier.CRITICAL))
    await wait_for(lambda: patient.bridge == "tiny", 30, "the critical join to be placed")
    assert not patient.errors


async def test_admin_listen_moves_the_admin_api_off_the_public_port(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    from sfu_balancer.service.admin import create_admin_app

    from .conftest import free_port

    cluster = await cluster_factory(bridges=1, admin_listen="127.0.0.1:1", admin_token="tok")
    runner = web.AppRunner(create_admin_app(cluster.router))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            public = await http.get(f"{cluster.url}/api/v1/bridges",
                                    headers={"Authorization": "Bearer tok"})
            assert public.status == 404
            assert (await http.get(f"{cluster.url}/metrics")).status == 404
            admin = await http.get(f"http://127.0.0.1:{port}/api/v1/bridges",
                                   headers={"Authorization": "Bearer tok"})
            assert admin.status == 200
            assert [b["id"] for b in (await admin.json())["bridges"]] == ["b1"]
    finally:
        await runner.cleanup()


async def test_two_hellos_racing_for_one_id_link_exactly_one(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    cluster = await cluster_factory(bridges=0)
    router = cluster.router
    # hold every hello between the id check and the link, where the balancer awaits the store
    entered: list[int] = []
    gate = asyncio.Event()
    drains = router.store.drains

    async def slow_drains():  # type: ignore[no-untyped-def]
        entered.append(1)
        await gate.wait()
        return await drains()

    router.store.drains = slow_drains  # type: ignore[method-assign]

    def hello(host: str) -> bytes:
        return wire.encode(wire.Hello(id="twin", host=host, region="x", version="0",
                                      capacity=wire.Capacity(), pid=1))

    async with aiohttp.ClientSession() as http:
        first = await http.ws_connect(f"{cluster.url}/bridge")
        second = await http.ws_connect(f"{cluster.url}/bridge")
        await first.send_bytes(hello("first"))
        await wait_for(lambda: len(entered) == 1, 10, "the first hello to reach the store")
        await second.send_bytes(hello("second"))
        reply = asyncio.create_task(second.receive(timeout=10))
        # refused at once, or (the race) waiting at the store like the first
        await wait_for(lambda: reply.done() or len(entered) == 2, 10, "the second hello")
        gate.set()
        answer = await reply
        assert answer.type == aiohttp.WSMsgType.BINARY, f"second hello not refused: {answer}"
        refused = wire.decode(answer.data)
        assert isinstance(refused, wire.Error) and refused.code == wire.ErrorCode.CONFLICT
        assert (await second.receive(timeout=10)).type in (aiohttp.WSMsgType.CLOSE,
                                                            aiohttp.WSMsgType.CLOSED)
        await wait_for(lambda: "twin" in router.fleet.serving(), 10, "the first to link")
        assert router.fleet.entries["twin"].info.host == "first"
        assert router.metrics.refusals.labels("bridge_id_taken")._value.get() == 1
        # the first link is the bridge's: its reports land
        await first.send_bytes(wire.encode(wire.Report(
            cpu=0.1, host_cpu=0.1, bytes_in_per_s=0.0, bytes_out_per_s=0.0,
            packets_in_per_s=0.0, packets_out_per_s=0.0, participants=0, rooms=0,
            relay_streams=0, measured_at=0.0)))
        await wait_for(lambda: router.fleet.entries["twin"].report is not None, 10,
                       "a report on the linked hello")
        assert not router.fleet.reserved
        await first.close()
        await second.close()
