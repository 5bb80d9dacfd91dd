"""Bad input never hurts anyone else: refusals carry a reason, media keeps flowing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiortc import RTCRtpSender
from conftest import Harness, Member
from media_clients import Publisher, rate, wait_for

from bridges import aiortc_adapter
from bridges.sfu.sdp import BridgeError
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
    return aiortc_adapter.pause_reading(member.subscriber.pc)


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
