"""A relay (cascade) between two ``sfu-bridge`` processes, driven by a fake balancer."""

from __future__ import annotations

import asyncio
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
from fake_balancer import BridgeConn, FakeBalancer
from media_clients import Publisher, Subscriber, wait_for

from sfu_balancer import wire

pytestmark = pytest.mark.slow

DRAIN_TIMEOUT_S = 1.0
EXIT_MARGIN_S = 4.0  # after the drain deadline: release everyone, bye, close, interpreter exit


def _spawn_bridge(
    balancer: FakeBalancer, bridge_id: str, logs: pathlib.Path
) -> subprocess.Popen[bytes]:
    with open(logs / f"{bridge_id}.log", "wb") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [
                sys.executable, "-m", "bridges", "--balancer", balancer.url, "--id", bridge_id,
                "--ice-address", "127.0.0.1", "--report-interval", "0.3",
                "--drain-timeout", str(DRAIN_TIMEOUT_S),
                "--log-level", "WARNING",
            ],
            stdout=subprocess.DEVNULL, stderr=log,
        )


class Cluster:
    """Two bridge processes and the balancer-side glue: offers to subscribers or to the peer."""

    def __init__(self, balancer: FakeBalancer) -> None:
        self.balancer = balancer
        self.viewers: dict[tuple[str, str], Subscriber] = {}
        self.peer: dict[str, str] = {}
        balancer.on_offer = self._on_offer

    def bridge(self, bridge_id: str) -> BridgeConn:
        return self.balancer.bridges[bridge_id]

    async def _on_offer(self, conn: BridgeConn, offer: wire.Offer) -> None:
        if offer.participant.startswith("relay:"):  # renegotiation of a relay's outgoing side
            relay = offer.participant.removeprefix("relay:")
            peer = self.bridge(self.peer[conn.id])
            reply = await peer.request(wire.RelayOpen(
                req=next(self.balancer.req), room=offer.room, relay=relay, peer=conn.id,
                sdp=offer.sdp,
            ))
            assert isinstance(reply, wire.RelayAccept), reply
            sdp = reply.sdp
        else:
            sdp = await self.viewers[(offer.room, offer.participant)].handle_offer(offer)
        await conn.send(wire.Answer(room=offer.room, participant=offer.participant, sdp=sdp,
                                    seq=offer.seq))

    async def join(self, bridge_id: str, room: str, pid: str, publisher: Publisher) -> Subscriber:
        viewer = Subscriber()
        self.viewers[(room, pid)] = viewer
        reply = await self.bridge(bridge_id).request(wire.Allocate(
            req=next(self.balancer.req), room=room, participant=pid, sdp=await publisher.offer(),
        ))
        assert isinstance(reply, wire.Allocated), reply
        await publisher.accept(reply.sdp)
        return viewer

    async def open_relay(self, room: str, relay: str, a: str, b: str) -> None:
        """Both directions: each side's outgoing PC offers, the other side answers."""
        self.peer[a], self.peer[b] = b, a
        for src, dst in ((a, b), (b, a)):
            opened = await self.bridge(src).request(wire.RelayOpen(
                req=next(self.balancer.req), room=room, relay=relay, peer=dst,
            ))
            assert isinstance(opened, wire.RelayAccept) and opened.kind == "offer", opened
            if not opened.sdp:
                continue  # nothing local to send yet: the offer will come as `offer`
            answered = await self.bridge(dst).request(wire.RelayOpen(
                req=next(self.balancer.req), room=room, relay=relay, peer=src, sdp=opened.sdp,
            ))
            assert isinstance(answered, wire.RelayAccept) and answered.kind == "answer"
            await self.bridge(src).send(wire.Answer(
                room=room, participant=f"relay:{relay}", sdp=answered.sdp, seq=opened.seq,
            ))


@pytest.fixture
async def cluster(
    tmp_path: pathlib.Path,
) -> AsyncIterator[tuple[Cluster, list[subprocess.Popen[bytes]]]]:
    balancer = FakeBalancer()
    await balancer.start()
    procs = [_spawn_bridge(balancer, b, tmp_path) for b in ("b1", "b2")]
    try:
        await wait_for(lambda: {"b1", "b2"} <= set(balancer.bridges), 30, "both bridges' hello")
        yield Cluster(balancer), procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        await balancer.stop()


async def test_relay_across_two_bridge_processes(
    cluster: tuple[Cluster, list[subprocess.Popen[bytes]]],
) -> None:
    c, procs = cluster
    alice, bob = Publisher(width=96, height=64, fps=15), Publisher(width=128, height=96, fps=15)
    carol = Publisher(video=False)
    try:
        alice_view = await c.join("b1", "room", "alice", alice)
        bob_view = await c.join("b2", "room", "bob", bob)
        await c.open_relay("room", "R1", "b1", "b2")
        carol_view = await c.join("b2", "room", "carol", carol)  # joins after the relay opened
        await wait_for(lambda: bob_view.video["alice"].frames >= 10, 30, "bob <- alice (relay)")
        await wait_for(lambda: alice_view.video["bob"].frames >= 10, 30, "alice <- bob (relay)")
        await wait_for(lambda: carol_view.video["alice"].frames >= 10, 30, "carol <- alice")
        await wait_for(lambda: carol_view.video["bob"].frames >= 10, 30, "carol <- bob (local)")
        assert bob_view.video["alice"].size == (96, 64)
        assert alice_view.video["bob"].size == (128, 96)
        assert bob_view.video["alice"].first_packet_keyframe is True
        assert alice_view.audio_frames["bob"] > 0 and bob_view.audio_frames["carol"] > 0
        b2 = c.bridge("b2")
        await wait_for(lambda: b2.reports and b2.reports[-1].relay_streams >= 4, 10,
                       "relay streams in b2's report")
        assert b2.reports[-1].participants == 2 and b2.reports[-1].rooms == 1
        n = len(b2.reports)  # while media flows, every report counts traffic both ways
        await wait_for(lambda: len(b2.reports) >= n + 3, 10, "three more reports from b2")
        for r in b2.reports[n:]:
            assert r.packets_out_per_s > 0 and r.bytes_out_per_s > 0, r
            assert r.packets_in_per_s > 0 and r.bytes_in_per_s > 0, r
        # a relayed participant leaving reaches the far side: b1 renegotiates b1 -> b2
        await c.bridge("b1").send(wire.Release(room="room", participant="alice"))
        await wait_for(
            lambda: any(t.participant == "" for t in carol_view.offers[-1].tracks), 20,
            "carol renegotiated after alice left bridge b1",
        )
        # SIGTERM while bob and carol are still connected (and the relay open): both bridges
        # report draining, wait --drain-timeout for rooms that will not empty, then release
        # everyone, say bye and exit 0.
        n = len(b2.reports)
        t0 = time.monotonic()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = await asyncio.gather(*(
            asyncio.to_thread(p.wait, DRAIN_TIMEOUT_S + EXIT_MARGIN_S) for p in procs
        ))
        elapsed = time.monotonic() - t0
        assert codes == [0, 0]
        assert DRAIN_TIMEOUT_S <= elapsed < DRAIN_TIMEOUT_S + EXIT_MARGIN_S, elapsed
        draining = [r for r in b2.reports[n:] if r.state == "draining"]
        assert draining and draining[0].participants == 2, b2.reports[n:]
        assert any(r.state == "draining" for r in c.bridge("b1").reports)
        assert all(conn.byes for conn in c.balancer.bridges.values())
    finally:
        for p in (alice, bob, carol):
            await p.close()
        for v in c.viewers.values():
            await v.close()
