"""The balancer against fake bridges (tests/redis/fake_bridge.py: canned SDP, synthetic load):
bandwidth-bound placement, a drain with a real deadline, a bridge sending garbage, and tiered
admission on a full fleet. Participants speak /ws like the join page, without media."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
import msgpack
from media_clients import wait_for

from sfu_balancer import wire
from sfu_balancer.core import Tier
from sfu_balancer.service.auth import create_room_token

from ..redis.cluster import FAKE_OFFER
from ..redis.fake_bridge import CANNED_ANSWER


class Signaling:
    """One /ws socket and one participant on it, rejoining (same id) when told to."""

    def __init__(self, url: str, room: str, token: str | None = None) -> None:
        self.url, self.room, self.token = url, room, token
        self.id: str | None = None
        self.bridge: str | None = None
        self.messages: list[dict[str, Any]] = []
        self.rejoins: list[tuple[float, str]] = []  # (monotonic time, reason)
        self.replied = asyncio.Event()  # joined or error, for the join in flight
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "error"]

    async def join(self) -> dict[str, Any]:
        """Open the socket (once), join, and return the reply (joined or error)."""
        if self._ws is None:
            self._session = aiohttp.ClientSession()
            self._ws = await self._session.ws_connect(f"{self.url}/ws")
            self._reader = asyncio.create_task(self._read())
        await self._send_join()
        await asyncio.wait_for(self.replied.wait(), 20)
        return self.messages[-1]

    async def _send_join(self) -> None:
        assert self._ws is not None
        self.replied.clear()
        message: dict[str, Any] = {"type": "join", "room": self.room, "sdp": FAKE_OFFER}
        if self.token is not None:
            message["token"] = self.token
        if self.id is not None:
            message["participant"] = self.id  # this socket holds it: no resume needed
        await self._ws.send_str(json.dumps(message))

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            if message["type"] == "rejoin":
                self.rejoins.append((time.monotonic(), message["reason"]))
                await self._send_join()
                continue
            self.messages.append(message)
            if message["type"] == "joined":
                self.id, self.bridge = message["participant"], message["bridge"]
            if message["type"] in ("joined", "error"):
                self.replied.set()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        if self._session is not None:
            await self._session.close()


async def connected(url: str, room: str, token: str | None = None) -> Signaling:
    participant = Signaling(url, room, token)
    reply = await participant.join()
    assert reply["type"] == "joined", reply
    return participant


async def test_a_bridge_with_its_nic_full_gets_no_new_room(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0)
    nic = await cluster.add_fake_bridge("nic", capacity_cpu=4.0, nic_mbps=100.0)
    other = await cluster.add_fake_bridge("other", capacity_cpu=4.0, nic_mbps=100.0)
    nic.skew[cluster.url] = 0.2  # 5 % of its CPU: on CPU alone, the better bridge
    other.skew[cluster.url] = 1.2  # 30 % of its CPU, its NIC idle
    fleet = cluster.router.fleet
    thresholds = cluster.router.config.thresholds

    def reported(bridge: str, cpu: float, egress: float) -> bool:
        report = fleet.entries[bridge].report
        return report is not None and (report.cpu, report.bytes_out_per_s) == (cpu, egress)

    await wait_for(lambda: reported("nic", 0.2, 0.0) and reported("other", 1.2, 0.0), 10,
                   "both bridges' CPU in their reports")
    members = [await connected(cluster.url, "before")]
    try:
        assert members[0].bridge == "nic"  # the control: with its NIC quiet, it wins
        nic.bytes_out_per_s = 0.97 * 100e6 / 8  # 97 Mbps of its 100
        await wait_for(lambda: reported("nic", 0.2, nic.bytes_out_per_s), 10,
                       "the egress in its reports")
        assert (fleet.stress("nic", thresholds) or 0) > 1.2  # 0.97 / 0.8 bandwidth threshold
        assert fleet.entries["nic"].report.host_cpu < 0.1  # type: ignore[union-attr]
        for i in range(6):
            members.append(await connected(cluster.url, f"room-{i}"))
        assert [m.bridge for m in members[1:]] == ["other"] * 6
        assert set(nic.rooms()) == {"before"}  # the room already there stays (sticky)
    finally:
        for m in members:
            await m.close()


async def test_drain_with_a_deadline_moves_everyone_at_the_deadline(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0)
    source = await cluster.add_fake_bridge("source")
    members = [await connected(cluster.url, "lesson") for _ in range(3)]
    assert {m.bridge for m in members} == {"source"}
    target = await cluster.add_fake_bridge("target")
    newcomers: list[Signaling] = []
    deadline_s = 3.0
    try:
        async with aiohttp.ClientSession() as http:
            asked = time.monotonic()
            response = await http.post(f"{cluster.url}/api/v1/bridges/source/drain",
                                       json={"deadline_s": deadline_s})
            assert response.status == 200 and (await response.json())["state"] == "draining"
        # meanwhile: new rooms go elsewhere, and nobody on the bridge is moved yet
        for i in range(3):
            newcomers.append(await connected(cluster.url, f"new-{i}"))
        assert time.monotonic() - asked < deadline_s, "too slow to check before the deadline"
        assert [n.bridge for n in newcomers] == ["target"] * 3
        assert all(not m.rejoins for m in members)
        assert len(source.allocations) == 3
        await wait_for(lambda: all(m.bridge == "target" for m in members), deadline_s + 10,
                       "everyone to be moved at the deadline")
        # nobody was told to move before the deadline (the request came a little after `asked`)
        told = [at - asked for m in members for at, _ in m.rejoins]
        assert len(told) == 3 and min(told) >= deadline_s - 0.05, told
        assert all(reason == "drain" for m in members for _, reason in m.rejoins)
        assert all(not m.errors for m in members)
        await wait_for(lambda: not source.allocations, 10, "the source to be released")
        assert len(target.allocations) == 6
        assert {r.bridge for r in await cluster.router.store.room_participants("lesson")} == \
            {"target"}
    finally:
        for p in members + newcomers:
            await p.close()


async def test_a_bridge_sending_garbage_is_answered_and_keeps_its_link(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0)
    good = await cluster.add_fake_bridge("good")
    member = await connected(cluster.url, "calm")
    assert member.bridge == "good"
    router = cluster.router

    def report(cpu: float) -> bytes:
        return wire.encode(wire.Report(
            cpu=cpu, host_cpu=0.01, bytes_in_per_s=0.0, bytes_out_per_s=0.0,
            packets_in_per_s=0.0, packets_out_per_s=0.0, participants=0, rooms=0,
            relay_streams=0, measured_at=time.monotonic()))

    garbage: list[tuple[str, bytes | str]] = [
        ("undecodable", b"\xc1\xff\x00 not msgpack"),
        ("not a map", msgpack.packb([1, 2, 3])),
        ("unknown type", msgpack.packb({"v": wire.PROTOCOL_VERSION, "t": "teleport"})),
        ("wrong version", msgpack.packb({"v": 99, "t": "report"})),
        ("bad field", msgpack.packb({"v": wire.PROTOCOL_VERSION, "t": "report", "cpu": "x"})),
        ("not for a balancer", wire.encode(wire.Allocate(req=1, room="r", participant="p",
                                                         sdp="v=0"))),
        ("text frame", "hello, balancer"),
    ]
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{cluster.url}/bridge") as ws:
        await ws.send_bytes(wire.encode(wire.Hello(
            id="noisy", host="127.0.0.1", region="x", version="0", capacity=wire.Capacity(),
            pid=1)))
        first = await ws.receive(timeout=10)  # accepted: the balancer syncs (holds nobody)
        assert wire.decode(first.data) == wire.Sync(participants=[]), first
        await ws.send_bytes(report(0.1))
        await wait_for(lambda: router.fleet.entries.get("noisy") is not None
                       and router.fleet.entries["noisy"].report is not None, 10,
                       "the noisy bridge to link")
        for what, frame in garbage:
            if isinstance(frame, str):
                await ws.send_str(frame)
            else:
                await ws.send_bytes(frame)
            reply = await ws.receive(timeout=10)
            assert reply.type == aiohttp.WSMsgType.BINARY, (what, reply)
            error = wire.decode(reply.data)
            assert isinstance(error, wire.Error) and error.code and error.reason, (what, error)
        # the link survives: it is still the bridge's, and its next report lands
        assert "noisy" in router.fleet.serving()
        await ws.send_bytes(report(0.3))
        await wait_for(lambda: router.fleet.entries["noisy"].report.cpu == 0.3, 10,  # type: ignore[union-attr]
                       "a report after the garbage")
        # the other bridge and its participant never noticed
        assert "good" in router.fleet.serving()
        assert (await cluster.router.store.get_participant("calm", member.id or "")) is not None
        assert ("calm", member.id) in good.allocations and good.releases == 0
        assert not member.rejoins and not member.errors
        other = await connected(cluster.url, "calm")  # the room's bridge still takes joins
        assert other.bridge == "good"
        await other.close()
    await member.close()


KEY, SECRET = "site", "k" * 40
SECURE = {"dev": False, "api_keys": {KEY: SECRET}, "bridge_secret": "bridge-secret-0123456789",
          "admin_token": "admin-token"}


def token(room: str, tier: Tier | None = None, tenant: str | None = None) -> str:
    return create_room_token(api_key=KEY, secret=SECRET, room=room, identity=f"user-{room}",
                             valid_for_s=300, tier=tier, tenant=tenant)


async def refused(url: str, room: str, tok: str) -> dict[str, Any]:
    participant = Signaling(url, room, tok)
    try:
        reply = await participant.join()
    finally:
        await participant.close()
    assert reply["type"] == "error", reply
    return reply


async def test_room_rules_admit_critical_on_a_full_fleet_and_quotas_hold(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    routing = {"room_tiers": {"hospital-*": "critical"}, "tenant_quotas": {"district": 2}}
    cluster = await cluster_factory(bridges=0, routing=routing, **SECURE)
    fake = await cluster.add_fake_bridge("only", capacity_cpu=1.0)
    members: list[Signaling] = []
    try:
        # a tenant at its quota is refused with quota, others are not
        for i in range(2):
            members.append(await connected(cluster.url, f"lesson-{i}",
                                           token(f"lesson-{i}", tenant="district")))
        over = await refused(cluster.url, "lesson-9", token("lesson-9", tenant="district"))
        assert (over["code"], over["fatal"]) == ("quota", True)
        members.append(await connected(cluster.url, "lesson-x",
                                       token("lesson-x", tenant="elsewhere")))

        # the fleet fills up (one bridge of 1 core, at the 0.8 CPU threshold); reserves:
        # bulk 15 %, standard 5 %, critical none. A room rule only raises a token's tier.
        gauge = cluster.router.metrics.bridge_stress.labels("only")
        fake.skew[cluster.url] = 0.72  # 90 %: bulk is refused, standard still admitted
        await wait_for(lambda: abs(gauge._value.get() - 0.9) < 1e-6, 10, "a 90 % report")
        bulk = await refused(cluster.url, "class-5b", token("class-5b", Tier.BULK))
        assert (bulk["code"], bulk["fatal"]) == ("capacity", True)
        members.append(await connected(cluster.url, "lesson-y", token("lesson-y")))
        fake.skew[cluster.url] = 0.79  # 99 %: standard is refused, critical still admitted
        await wait_for(lambda: abs(gauge._value.get() - 0.9875) < 1e-6, 10, "a 99 % report")
        standard = await refused(cluster.url, "lesson-z", token("lesson-z"))
        assert standard["code"] == "capacity"
        # no tier in the token: the hospital-* rule makes it critical
        patient = await connected(cluster.url, "hospital-ward-3", token("hospital-ward-3"))
        assert patient.bridge == "only"
        members.append(patient)
        refusals = cluster.router.metrics.refusals
        assert refusals.labels("quota")._value.get() == 1
        assert refusals.labels("capacity")._value.get() == 2
    finally:
        for m in members:
            await m.close()


async def test_rejoins_the_balancer_asks_for_are_not_charged_to_the_join_rate(
        cluster_factory) -> None:  # type: ignore[no-untyped-def]
    # a school behind one address: its joins spend the whole burst, then its bridge drains
    cluster = await cluster_factory(bridges=0, limits={"joins_per_ip_per_min": 1, "burst": 4,
                                                       "connections_per_ip_per_min": 0})
    await cluster.add_fake_bridge("source")
    members = [await connected(cluster.url, "class") for _ in range(4)]
    late = Signaling(cluster.url, "class")
    try:
        assert (await late.join())["code"] == "rate_limited"  # the limit is really spent
        await cluster.add_fake_bridge("target")
        await cluster.router.drain("source", 0.0)
        await wait_for(lambda: all(m.bridge == "target" for m in members), 20,
                       "everyone to rejoin on the other bridge")
        assert all(not m.errors for m in members)
        # a join nobody asked for, from the same socket, still counts
        await late._send_join()
        await asyncio.wait_for(late.replied.wait(), 20)
        assert late.messages[-1]["code"] == "rate_limited"
    finally:
        for p in [*members, late]:
            await p.close()


async def test_an_allocation_confirmed_too_late_is_released(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    """A bridge that answers ``allocate`` after the balancer gave up (join refused with
    bridge_error) must not keep that participant: the balancer releases it."""
    cluster = await cluster_factory(bridges=0, allocate_timeout_s=0.3)
    slow = await cluster.add_fake_bridge("slow")
    slow.allocate_delay_s = 1.0
    participant = Signaling(cluster.url, "late")
    try:
        reply = await participant.join()
        assert reply["type"] == "error" and reply["code"] == "bridge_error", reply
        assert len(slow.allocations) == 1  # allocated at once, confirmed a second later
        await wait_for(lambda: not slow.allocations, 10, "the late allocation to be released")
        assert slow.releases == 1
        slow.allocate_delay_s = 0.0
        reply = await participant.join()  # the page's retry: placed and kept
        assert reply["type"] == "joined", reply
        assert list(slow.allocations) == [("late", participant.id)]
    finally:
        await participant.close()


async def test_a_late_allocation_of_a_participant_placed_again_is_kept(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0)
    fake = await cluster.add_fake_bridge("f1")
    participant = await connected(cluster.url, "again")
    try:
        link = cluster.router.fleet.link("f1")
        assert link is not None and participant.id is not None
        # A stale confirmation of this participant, now placed on f1 by a later join:
        await cluster.router.on_bridge_message(link, wire.Allocated(
            req=10**6, room="again", participant=participant.id, sdp=CANNED_ANSWER))
        # ...and one of a participant the balancer does not know, which is released.
        fake.allocations[("again", "ghost")] = cluster.url
        await cluster.router.on_bridge_message(link, wire.Allocated(
            req=10**6 + 1, room="again", participant="ghost", sdp=CANNED_ANSWER))
        await wait_for(lambda: ("again", "ghost") not in fake.allocations, 10, "ghost released")
        assert ("again", participant.id) in fake.allocations
    finally:
        await participant.close()
