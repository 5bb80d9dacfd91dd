"""aiortc clients for bridge tests: a publisher of synthetic video (+ silence) and a subscriber
that decodes what the bridge forwards and counts frames and resolution per remote participant.

Everything runs on 127.0.0.1 (conftest restricts ICE gathering to loopback).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import (
    AudioStreamTrack,
    MediaStreamError,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)

from bridges import aiortc_adapter
from bridges.sfu.rtp import vp8_keyframe_start
from bridges.sfu.session import close_pc
from sfu_balancer import wire

VIDEO_CLOCK = 90000


def _frames(width: int, height: int, count: int = 30) -> list[av.VideoFrame]:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, size=(height + 64, width + 64, 3), dtype=np.uint8)
    frames = []
    for i in range(count):
        img = np.ascontiguousarray(base[i % 32 : i % 32 + height, i % 48 : i % 48 + width])
        frames.append(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p"))
    return frames


class SyntheticVideo(VideoStreamTrack):
    """Camera-like video at a fixed size and rate; ``sent`` counts frames handed to the encoder."""

    def __init__(self, width: int = 320, height: int = 240, fps: float = 15.0) -> None:
        super().__init__()
        self._frames = _frames(width, height)
        self.fps = fps
        self.sent = 0
        self._t0: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        else:
            delay = self._t0 + self.sent / self.fps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        frame = self._frames[self.sent % len(self._frames)]
        frame.pts = int(self.sent * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.sent += 1
        return frame


class Publisher:
    """The publish side of a participant: offers, the bridge answers."""

    def __init__(self, *, video: bool = True, audio: bool = True, **video_args: Any) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # loopback: no STUN
        self.video = SyntheticVideo(**video_args) if video else None
        if self.video is not None:
            self.pc.addTransceiver(self.video, direction="sendonly")
        if audio:
            self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def close(self) -> None:
        await close_pc(self.pc)


@dataclass
class Received:
    """What one subscriber got from one remote participant's video."""

    frames: int = 0
    size: tuple[int, int] | None = None
    first_frame_at: float | None = None
    first_packet_keyframe: bool | None = None  # was the first RTP packet a VP8 keyframe start


@dataclass(frozen=True)
class Arrival:
    """One RTP packet as the subscriber's receiver got it (RTX repairs: the repaired packet)."""

    at: float  # time.time(), the clock of aiortc's RTCP stats timestamps
    seq: int  # media sequence number (for an RTX packet, the original one it carries)
    payload: int  # media payload bytes, padding excluded
    ssrc: int  # the media SSRC (for an RTX packet, the SSRC it repairs is unknown: 0)


@dataclass
class Subscriber:
    """The subscribe side: answers the bridge's offers, decodes every video track."""

    # MAX_BUNDLE: with aiortc's default (balanced) an answerer given several m-lines of one kind
    # in a single offer leaves the extra ones on a discarded transport (aiortc 1.16 quirk).
    pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(
            RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE, iceServers=[])
        )
    )
    video: dict[str, Received] = field(default_factory=lambda: defaultdict(Received))
    audio_frames: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    owner: dict[str, str] = field(default_factory=dict)  # mid -> participant ("" = idle)
    offers: list[wire.Offer] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Set before the first offer to log every RTP packet per mid (audio too): ``rtp``.
    log_rtp: bool = False
    rtp: dict[str, list[Arrival]] = field(default_factory=lambda: defaultdict(list))
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        @self.pc.on("track")  # type: ignore[misc]
        def on_track(track: Any) -> None:
            transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
            mid = str(transceiver.mid)
            if track.kind == "video" or self.log_rtp:
                aiortc_adapter.install_receive_tap(
                    transceiver.receiver,
                    lambda p, _ms, mid=mid, t=transceiver: self._inspect(mid, t, p), decode=True,
                )
            self._tasks.append(asyncio.get_running_loop().create_task(self._consume(mid, track)))

    async def handle_offer(self, offer: wire.Offer) -> str:
        self.offers.append(offer)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.owner = {t.mid: t.participant for t in offer.tracks}
        self.changed.set()
        return str(self.pc.localDescription.sdp)

    def _inspect(self, mid: str, transceiver: Any, packet: Any) -> None:
        rtx = packet.payload_type in aiortc_adapter.rtx_payload_types(transceiver)
        if self.log_rtp:
            payload = packet.payload
            if not rtx:
                self.rtp[mid].append(Arrival(time.time(), packet.sequence_number, len(payload),
                                             packet.ssrc))
            elif len(payload) > 2:  # not a padding-only probe
                self.rtp[mid].append(Arrival(time.time(), (payload[0] << 8) | payload[1],
                                             len(payload) - 2, 0))
        if transceiver.kind != "video" or rtx:
            return
        got = self.video[self.owner.get(mid, "")]
        if got.first_packet_keyframe is None and packet.payload:
            got.first_packet_keyframe = vp8_keyframe_start(packet.payload)

    def directions(self) -> dict[str, str | None]:
        return {str(t.mid): t.currentDirection for t in self.pc.getTransceivers()}

    async def _consume(self, mid: str, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                who = self.owner.get(mid, "")
                if isinstance(frame, av.AudioFrame):
                    self.audio_frames[who] += 1
                    continue
                got = self.video[who]
                got.frames += 1
                got.size = (frame.width, frame.height)
                if got.first_frame_at is None:
                    got.first_frame_at = time.monotonic()
        except MediaStreamError:
            return

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await close_pc(self.pc)


async def wait_for(
    predicate: Callable[[], bool], limit_s: float, what: str, step: float = 0.05
) -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``limit_s`` seconds."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s:.0f} s waiting for {what}")
        await asyncio.sleep(step)


async def rate(
    counter: Callable[[], int], seconds: float
) -> float:
    """Events per second of ``counter`` over a window of ``seconds``."""
    c0, t0 = counter(), time.monotonic()
    await asyncio.sleep(seconds)
    return (counter() - c0) / (time.monotonic() - t0)


Answerer = Callable[[wire.Offer], Awaitable[None]]
