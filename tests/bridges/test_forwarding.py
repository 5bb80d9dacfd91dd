"""aiortc clients on loopback through one in-process bridge."""

from __future__ import annotations

import time

from conftest import Harness
from media_clients import wait_for


async def test_one_publisher_two_viewers_decode_video(harness: Harness) -> None:
    pub = await harness.join("r1", "alice", width=320, height=240, fps=15)
    viewers = [await harness.join("r1", f"v{i}", video=False) for i in range(2)]
    for v in viewers:
        await wait_for(lambda v=v: v.subscriber.video["alice"].frames >= 10, 20, "first frames")
    for v in viewers:
        got = v.subscriber.video["alice"]
        assert got.size == (320, 240)
        assert got.first_packet_keyframe is True
    # forwarded, not transcoded: the bridge never decoded anything
    assert pub.publisher.video is not None
    t0 = time.monotonic()
    f0 = [v.subscriber.video["alice"].frames for v in viewers]
    s0 = pub.publisher.video.sent
    await wait_for(lambda: time.monotonic() - t0 > 3, 10, "window")
    sent = pub.publisher.video.sent - s0
    for v, before in zip(viewers, f0, strict=True):
        got = v.subscriber.video["alice"].frames - before
        assert abs(got - sent) <= 0.1 * sent + 1, (got, sent)
