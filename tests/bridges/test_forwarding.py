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


async def test_room_of_four_everyone_receives_everyone_at_frame_rate(harness: Harness) -> None:
    fps = 15
    members = [
        await harness.join("r4", f"p{i}", width=160, height=120, fps=fps) for i in range(4)
    ]
    pairs = [(a, b) for a in members for b in members if a is not b]
    for a, b in pairs:
        await wait_for(
            lambda a=a, b=b: a.subscriber.video[b.id].frames >= 5, 30, f"{a.id} <- {b.id}"
        )
    before = {(a.id, b.id): a.subscriber.video[b.id].frames for a, b in pairs}
    sent0 = {m.id: m.publisher.video.sent for m in members if m.publisher.video}
    t0 = time.monotonic()
    await wait_for(lambda: time.monotonic() - t0 >= 4, 10, "measurement window")
    sent = {m.id: m.publisher.video.sent - sent0[m.id] for m in members if m.publisher.video}
    for a, b in pairs:
        got = a.subscriber.video[b.id].frames - before[(a.id, b.id)]
        assert abs(got - sent[b.id]) <= 0.1 * sent[b.id], f"{a.id} <- {b.id}: {got}/{sent[b.id]}"
        assert a.subscriber.video[b.id].size == (160, 120)
        assert a.subscriber.video[b.id].first_packet_keyframe is True
    # every subscriber got audio from every other member, too
    for a, b in pairs:
        assert a.subscriber.audio_frames[b.id] > 0


async def test_leave_renegotiates_subscribers_and_slot_is_reused(harness: Harness) -> None:
    viewer = await harness.join("rl", "viewer", video=False)
    alice = await harness.join("rl", "alice", width=160, height=120)
    await wait_for(lambda: viewer.subscriber.video["alice"].frames >= 3, 20, "alice's video")
    offers_before = len(viewer.subscriber.offers)
    alice_mids = {t.mid for t in viewer.subscriber.offers[-1].tracks if t.participant == "alice"}
    await harness.leave(alice)
    await wait_for(
        lambda: len(viewer.subscriber.offers) > offers_before
        and all(viewer.subscriber.directions()[m] == "inactive" for m in alice_mids),
        15, "renegotiation after leave",
    )
    assert all(t.participant == "" for t in viewer.subscriber.offers[-1].tracks)
    bob = await harness.join("rl", "bob", width=160, height=120)
    await wait_for(lambda: viewer.subscriber.video["bob"].frames >= 3, 20, "bob's video")
    assert bob.id == "bob"
    # bob took over alice's m-lines: no new m-line was added
    assert {t.mid for t in viewer.subscriber.offers[-1].tracks} == alice_mids
    assert viewer.subscriber.video["bob"].first_packet_keyframe is True
