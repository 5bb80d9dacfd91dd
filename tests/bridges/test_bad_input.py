"""Bad input never hurts anyone else: refusals carry a reason, media keeps flowing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from conftest import Harness, Member
from media_clients import Publisher, rate, wait_for

from bridges import aiortc_adapter as adapter
from bridges.counters import TrafficCounters
from bridges.sfu.forwarder import Source
from bridges.sfu.sdp import BridgeError
from bridges.sfu.session import SubscribeSession, close_pc
from sfu_balancer import wire
from sfu_balancer.wire import ErrorCode


async def _serving(harness: Harness) -> tuple[Member, Member]:
    alice = await harness.join("ok", "alice", width=160, height=120, fps=15)
    viewer = await harness.join("ok", "viewer", video=False)
    await wait_for(lambda: viewer.subscriber.video["alice"].frames >= 5, 20, "alice's video")
    return alice, viewer


def _h264_only(publisher: Publisher) -> None:
    caps = RTCRtpSender.getCapabilities("video").codecs
    for t in publisher.pc.getTransceivers():
        if t.kind == "video":
            t.setCodecPreferences([c for c in caps if c.mimeType.lower() == "video/h264"])


async def _refused(coro: Any) -> BridgeError:
    with pytest.raises(BridgeError) as info:
        await coro
    assert info.value.reason
    return info.value


async def test_refusals_carry_reasons_and_others_keep_receiving(harness: Harness) -> None:
    _, viewer = await _serving(harness)
    worker = harness.worker
    before = viewer.subscriber.video["alice"].frames

    err = await _refused(worker.allocate("ok", "x1", "this is not sdp"))
    assert err.code == ErrorCode.BAD_SDP
    err = await _refused(worker.allocate("ok", "x2", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"))
    assert err.code == ErrorCode.BAD_SDP and "no audio or video" in err.reason

    h264 = Publisher(width=64, height=48)
    _h264_only(h264)
    err = await _refused(worker.allocate("ok", "x3", await h264.offer()))
    assert err.code == ErrorCode.UNSUPPORTED_CODEC and "VP8" in err.reason
    await h264.close()

    good = Publisher(width=64, height=48)
    offer = await good.offer()
    simulcast = offer.replace("a=mid:0\r\n", "a=mid:0\r\na=rid:h send\r\na=simulcast:send h\r\n")
    err = await _refused(worker.allocate("ok", "x4", simulcast))
    assert err.code == ErrorCode.UNSUPPORTED_CODEC and "simulcast" in err.reason
    no_ice = "\r\n".join(
        line for line in offer.split("\r\n") if not line.startswith(("a=ice-ufrag", "a=ice-pwd"))
    )
    err = await _refused(worker.allocate("ok", "x5", no_ice))
    assert err.code == ErrorCode.BAD_SDP
    await good.close()

    err = await _refused(worker.allocate("ok", "alice", "v=0\r\n"))
    assert err.code == ErrorCode.CONFLICT
    err = await _refused(worker.release("ok", "nobody"))
    assert err.code == ErrorCode.UNKNOWN_PARTICIPANT
    err = await _refused(worker.release("nowhere", "alice"))
    assert err.code == ErrorCode.UNKNOWN_ROOM
    err = await _refused(worker.answer("ok", "viewer", 999, "v=0\r\n"))
    assert err.code == ErrorCode.CONFLICT
    err = await _refused(worker.allocate("", "p", "v=0"))
    assert err.code == ErrorCode.MALFORMED

    # nothing half-built was left behind, and media never stopped
    assert set(worker.rooms["ok"].participants) == {"alice", "viewer"}
    assert set(worker.rooms) == {"ok"}
    await wait_for(
        lambda: viewer.subscriber.video["alice"].frames >= before + 15, 10, "frames after refusals"
    )


def _stop_reading(member: Member) -> int:
    """Freeze the subscriber's UDP sockets: the kernel buffer fills and packets pile up there."""
    return adapter.pause_reading(member.subscriber.pc)


async def test_a_subscriber_that_stops_reading_never_slows_the_others(harness: Harness) -> None:
    alice, viewer = await _serving(harness)
    stuck = await harness.join("ok", "stuck", video=False)
    await wait_for(lambda: stuck.subscriber.video["alice"].frames >= 5, 20, "stuck's first video")
    assert _stop_reading(stuck) >= 1
    frozen_at = stuck.subscriber.video["alice"].frames
    assert alice.publisher.video is not None
    sent_fps = await rate(lambda: alice.publisher.video.sent if alice.publisher.video else 0, 1.0)
    t0 = time.monotonic()
    got_fps = await rate(lambda: viewer.subscriber.video["alice"].frames, 4.0)
    assert time.monotonic() - t0 < 6
    assert got_fps >= 0.9 * sent_fps, (got_fps, sent_fps)
    assert stuck.subscriber.video["alice"].frames <= frozen_at + 2


# -- the same, one level down: a leg whose socket cannot drain, in front of the packet loop ------


@dataclass
class Fanout:
    """One synthetic video source forwarded to ``n`` loopback subscriber connections."""

    counters: TrafficCounters
    source: Source
    sessions: list[SubscribeSession]
    clients: list[RTCPeerConnection]
    received: list[int]  # RTP packets each client's receiver got
    seq: int = 0

    def push(self, count: int, keyframe: bool = False) -> None:
        for _ in range(count):
            payload = bytes([0x10, 0x00 if keyframe else 0x01]) + bytes(900)
            self.source.on_packet(adapter.RtpPacket(
                payload_type=96, sequence_number=self.seq, timestamp=self.seq * 3000,
                ssrc=777, payload=payload,
            ), 0)
            self.seq += 1


@pytest.fixture
async def fanout() -> AsyncIterator[Fanout]:
    counters = TrafficCounters()
    source = Source(key="pub:0", participant="pub", kind="video", origin="local",
                    rtx_payload_types=frozenset(), counters=counters, send_pli=lambda ssrc: None)
    f = Fanout(counters, source, [], [], [0, 0, 0])
    tasks: set[asyncio.Task[None]] = set()

    def sink_for(i: int) -> Callable[[str, int, list[wire.TrackInfo]], None]:
        async def answer(sdp: str, seq: int) -> None:
            client = f.clients[i]
            await client.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await client.setLocalDescription(await client.createAnswer())
            for t in client.getTransceivers():
                adapter.install_receive_tap(
                    t.receiver, lambda p, ms: f.received.__setitem__(i, f.received[i] + 1))
            await f.sessions[i].answer(seq, client.localDescription.sdp)

        def sink(sdp: str, seq: int, tracks: list[wire.TrackInfo]) -> None:
            task = asyncio.get_running_loop().create_task(answer(sdp, seq))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        return sink

    for i in range(len(f.received)):
        f.clients.append(RTCPeerConnection(RTCConfiguration(
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE, iceServers=[])))
        f.sessions.append(SubscribeSession(name=f"s{i}", counters=counters,
                                           wants=lambda s: True, send_offer=sink_for(i)))
        f.sessions[i].update([source])
    try:
        await wait_for(lambda: len(source.legs) == 3
                       and all(leg.sender.ready for leg in source.legs), 30, "3 connected legs")
        yield f
    finally:
        for session in f.sessions:
            await session.close()
        for client in f.clients:
            await close_pc(client)
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_leg_whose_socket_cannot_drain_drops_its_own_packets_only(
    fanout: Fanout, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = fanout
    f.push(1, keyframe=True)  # every leg starts
    await wait_for(lambda: all(r >= 1 for r in f.received), 10, "the keyframe on every leg")
    full = adapter.udp_transports(f.sessions[0].pc)  # the bridge side of subscriber 0
    assert full and not set(full) & {
        t for s in f.sessions[1:] for t in adapter.udp_transports(s.pc)
    }
    for transport in full:  # as if 0 stopped reading long ago: asyncio's buffer is past the cap
        monkeypatch.setattr(transport, "get_write_buffer_size",
                            lambda: adapter.MAX_WRITE_BUFFER + 1)
    before = list(f.received)
    dropped, sent = f.counters.dropped_out, f.counters.packets_out
    for _ in range(10):
        f.push(10)
        await asyncio.sleep(0.005)  # let the receivers read
    assert f.counters.dropped_out - dropped == 100  # every packet for leg 0, nothing else
    assert f.counters.packets_out - sent == 200  # legs 1 and 2 got all of theirs
    await wait_for(lambda: all(f.received[i] >= before[i] + 95 for i in (1, 2)), 10,
                   "legs 1 and 2 still receiving")
    assert f.received[0] == before[0]
    monkeypatch.undo()  # the socket drains again: leg 0 resumes, the others never noticed
    f.push(20)
    await wait_for(lambda: f.received[0] >= before[0] + 15, 10, "leg 0 again")
    assert f.counters.dropped_out - dropped == 100
