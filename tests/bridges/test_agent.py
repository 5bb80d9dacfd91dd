"""The agent's link to a balancer: hello, reports, commands, refusals, reconnection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import msgpack
import pytest
from fake_balancer import BridgeConn, FakeBalancer
from media_clients import Publisher, Subscriber, wait_for

from bridges.agent import Agent, AgentConfig, bridge_url
from bridges.sfu.worker import Worker
from sfu_balancer import wire


class Running:
    def __init__(self, balancer: FakeBalancer, agent: Agent, task: asyncio.Task[None]) -> None:
        self.balancer, self.agent, self.task = balancer, agent, task
        self.stop = asyncio.Event()

    async def conn(self) -> BridgeConn:
        await wait_for(lambda: "b1" in self.balancer.bridges, 10, "bridge hello")
        return self.balancer.bridges["b1"]


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    balancer = FakeBalancer()
    await balancer.start()
    config = AgentConfig(
        bridge_id="b1", host="h1", region="eu", version="t",
        capacity=wire.Capacity(cpu=1.0, egress_mbps=100.0, ingress_mbps=50.0),
        balancers=[balancer.url], report_interval=0.2,
    )
    agent = Agent(config, Worker())
    run = Running(balancer, agent, asyncio.get_running_loop().create_task(asyncio.sleep(0)))
    run.task = asyncio.get_running_loop().create_task(agent.run(run.stop, drain_timeout=0.5))
    try:
        yield run
    finally:
        run.stop.set()
        await asyncio.wait_for(run.task, 15)
        await balancer.stop()


def test_bridge_url() -> None:
    assert bridge_url("http://b:8080") == "ws://b:8080/bridge"
    assert bridge_url("https://b") == "wss://b/bridge"
    assert bridge_url("ws://b:1/custom") == "ws://b:1/custom"
    assert bridge_url("b:1") == "ws://b:1/bridge"


async def test_hello_then_reports(running: Running) -> None:
    conn = await running.conn()
    assert conn.hello is not None
    assert (conn.hello.host, conn.hello.region) == ("h1", "eu")
    assert conn.hello.capacity == wire.Capacity(cpu=1.0, egress_mbps=100.0, ingress_mbps=50.0)
    assert conn.hello.pid > 0
    assert isinstance(conn.frames[0], wire.Hello)
    await wait_for(lambda: len(conn.reports) >= 3, 10, "three reports")
    report = conn.reports[-1]
    assert report.state == "serving" and report.rooms == 0 and report.cpu >= 0
    assert 0 <= report.host_cpu <= 1


async def test_bad_frames_get_errors_and_the_link_survives(running: Running) -> None:
    conn = await running.conn()
    await conn.send_raw(b"\xc1garbage")
    await conn.send_raw("a text frame")
    await conn.send_raw(msgpack.packb({"v": 99, "t": "allocate", "req": 5}))
    await conn.send_raw(msgpack.packb({"v": 1, "t": "teleport", "req": 6}))
    await conn.send(wire.Report(
        cpu=0, host_cpu=0, bytes_in_per_s=0, bytes_out_per_s=0, packets_in_per_s=0,
        packets_out_per_s=0, participants=0, rooms=0, relay_streams=0, measured_at=0,
    ))
    await wait_for(lambda: len(conn.errors) >= 5, 10, "five error replies")
    codes = [e.code for e in conn.errors]
    assert codes[:4] == ["malformed", "malformed", "version", "unknown_type"]
    assert conn.errors[2].req == 5 and conn.errors[3].req == 6
    reply = await conn.request(wire.Allocate(req=7, room="r", participant="p", sdp="nope"))
    assert isinstance(reply, wire.Error) and reply.code == "bad_sdp" and reply.req == 7
    assert not conn.closed.is_set()
    # ... and it still serves a real allocation on the same link
    pub = Publisher(width=64, height=48)
    reply = await conn.request(
        wire.Allocate(req=8, room="r", participant="p", sdp=await pub.offer())
    )
    assert isinstance(reply, wire.Allocated) and reply.sdp.startswith("v=0")
    await pub.accept(reply.sdp)
    await wait_for(lambda: conn.reports[-1].participants == 1, 10, "report with 1 participant")
    await pub.close()


async def test_lost_link_reconnects_without_interrupting_media(running: Running) -> None:
    conn = await running.conn()
    viewer = Subscriber()

    async def answer(c: BridgeConn, offer: wire.Offer) -> None:
        if offer.participant != "viewer":
            return
        sdp = await viewer.handle_offer(offer)
        await running.balancer.bridges["b1"].send(
            wire.Answer(room=offer.room, participant=offer.participant, sdp=sdp, seq=offer.seq)
        )

    running.balancer.on_offer = answer
    pub, vpub = Publisher(width=64, height=48), Publisher(video=False)
    for req, pid, p in ((1, "alice", pub), (2, "viewer", vpub)):
        reply = await conn.request(wire.Allocate(req=req, room="r", participant=pid,
                                                 sdp=await p.offer()))
        assert isinstance(reply, wire.Allocated)
        await p.accept(reply.sdp)
    await wait_for(lambda: viewer.video["alice"].frames >= 3, 20, "video through the bridge")
    await running.balancer.drop_all()
    await conn.closed.wait()
    during = viewer.video["alice"].frames
    await wait_for(lambda: len(running.balancer.connections) >= 2
                   and running.balancer.connections[-1].hello is not None, 15, "reconnection")
    assert viewer.video["alice"].frames > during  # media kept flowing while the link was down
    new = running.balancer.connections[-1]
    await wait_for(lambda: len(new.reports) >= 1 and new.reports[-1].participants == 2, 10,
                   "reports on the new link")
    await pub.close()
    await vpub.close()
    await viewer.close()


async def test_drain_refuses_new_rooms_and_reports_draining(running: Running) -> None:
    conn = await running.conn()
    await conn.send(wire.Drain(deadline_s=30))
    await wait_for(lambda: conn.reports and conn.reports[-1].state == "draining", 10, "draining")
    pub = Publisher(video=False)
    reply = await conn.request(wire.Allocate(req=3, room="new", participant="p",
                                             sdp=await pub.offer()))
    assert isinstance(reply, wire.Error) and reply.code == "draining"
    await pub.close()


async def test_drain_deadline_releases_everyone_left(running: Running) -> None:
    conn = await running.conn()
    pubs = [Publisher(width=64, height=48), Publisher(video=False)]
    for req, (pid, pub) in enumerate(zip(("alice", "bob"), pubs, strict=True), 1):
        reply = await conn.request(wire.Allocate(req=req, room="r", participant=pid,
                                                 sdp=await pub.offer()))
        assert isinstance(reply, wire.Allocated), reply
        await pub.accept(reply.sdp)
    await wait_for(lambda: conn.reports[-1].participants == 2 and conn.reports[-1].rooms == 1,
                   10, "a report with the room")
    deadline_s = 2.0
    n = len(conn.reports)
    t0 = time.monotonic()  # the agent runs in this process: reports' measured_at is comparable
    await conn.send(wire.Drain(deadline_s=deadline_s))
    await wait_for(lambda: any(r.rooms == 0 for r in conn.reports[n:]), deadline_s + 10,
                   "a report with no room left after the drain deadline")
    after = conn.reports[n:]
    early = [r for r in after if r.state == "draining" and r.measured_at < t0 + deadline_s - 0.5]
    assert early and all(r.participants == 2 and r.rooms == 1 for r in early), early
    emptied = next(r for r in after if r.rooms == 0)
    # released at the deadline, not before it, and not much later
    assert t0 + deadline_s <= emptied.measured_at < t0 + deadline_s + 3, emptied.measured_at - t0
    assert emptied.participants == 0 and emptied.state == "draining"
    assert isinstance(running.agent.worker, Worker) and not running.agent.worker.rooms
    for pub in pubs:
        await pub.close()


async def test_relay_open_and_close_through_the_agent(running: Running) -> None:
    conn = await running.conn()
    pub = Publisher(width=64, height=48)
    reply = await conn.request(wire.Allocate(req=1, room="r", participant="alice",
                                             sdp=await pub.offer()))
    assert isinstance(reply, wire.Allocated)
    await pub.accept(reply.sdp)
    opened = await conn.request(wire.RelayOpen(req=2, room="r", relay="R1", peer="b2"))
    assert isinstance(opened, wire.RelayAccept) and opened.kind == "offer", opened
    assert "m=video" in opened.sdp  # carries alice's local tracks
    solo = await conn.request(wire.RelayOpen(req=3, room="solo", relay="R2", peer="b2"))
    assert isinstance(solo, wire.RelayAccept) and solo.sdp == ""  # nothing local to carry yet
    worker = running.agent.worker
    assert isinstance(worker, Worker)
    assert set(worker.rooms["r"].relays) == {"R1"} and set(worker.rooms["solo"].relays) == {"R2"}
    await wait_for(lambda: conn.reports[-1].rooms == 2, 10, "a report with the relay-only room")

    await conn.send(wire.RelayClose(room="solo", relay="R2"))
    await wait_for(lambda: "solo" not in worker.rooms and conn.reports[-1].rooms == 1, 10,
                   "the relay-only room gone")
    await conn.send(wire.RelayClose(room="r", relay="R1"))
    await wait_for(lambda: not worker.rooms["r"].relays, 10, "relay R1 closed")
    assert set(worker.rooms["r"].participants) == {"alice"}  # the room itself stays
    await conn.send(wire.RelayClose(room="r", relay="R1"))  # again: refused with a reason
    await wait_for(lambda: any(e.about == "relay_close" for e in conn.errors), 10, "an error")
    error = next(e for e in conn.errors if e.about == "relay_close")
    assert error.code == "unknown_participant" and "R1" in error.reason
    await pub.close()
