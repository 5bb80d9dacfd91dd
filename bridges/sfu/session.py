"""The bridge-offered side of a connection: a participant's subscribe PC, or a relay's outgoing PC.

State rules (one renegotiation at a time, per session):
- ``update(sources)`` records what the session should carry and wakes the negotiation task.
- The task turns the wish into m-line changes, offers, and waits for the answer (``answer``).
  Changes made while an offer is out are batched into the next offer.
- aiortc has no removeTrack and never recycles m-lines, so each m-line is a ``Slot`` that is
  reused: a departed source's slot is offered ``inactive`` once (that is the renegotiation the
  subscriber sees), then it is ``free`` and the next source of the same kind takes it
  (``sendonly`` again, same SSRC, sequence numbers continuing). The number of m-lines is
  therefore bounded by the most sources ever carried at once, not by churn.
- A leg forwards only once the answer is applied (payload types and extension ids are known).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from bridges import aiortc_adapter as adapter
from bridges.counters import TrafficCounters
from bridges.sfu.forwarder import Leg, Source
from bridges.sfu.rtp import ExtensionLayout, OutStream
from bridges.sfu.sdp import BridgeError
from sfu_balancer.wire import ErrorCode, TrackInfo

log = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 15.0
MAX_UNANSWERED = 3  # after this many offers time out in a row, wait for the next change
CLOCK_RATE = {"audio": 48000, "video": 90000}
FORWARDED_MIME = {"audio": ("audio/opus",), "video": ("video/vp8", "video/rtx")}

OfferSink = Callable[[str, int, list[TrackInfo]], None]


def bridge_config() -> RTCConfiguration:
    # One ICE/DTLS transport per connection, whatever the number of m-lines. No STUN server:
    # a bridge is reachable at its host addresses (aiortc would otherwise query Google's STUN
    # server for every connection). MAX_BUNDLE also avoids an aiortc 1.16 answerer quirk that
    # strands extra m-lines of one kind on a discarded transport under the balanced policy.
    return RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE, iceServers=[])


async def close_pc(pc: RTCPeerConnection) -> None:
    """Close ``pc`` and make sure no sender or receiver task outlives it.

    aiortc 1.16 race: a connect step already past its checks when ``close()`` runs can start a
    sender or receiver afterwards, whose RTCP task then loops forever on a dead transport (and
    pins the connection in memory). Once the transports are closed no new start can happen, so
    one more stop pass after ``close()`` catches those. ``stop()`` is idempotent.
    """
    await pc.close()
    for transceiver in pc.getTransceivers():
        await transceiver.sender.stop()
        await transceiver.receiver.stop()


def restrict_codecs(transceiver: RTCRtpTransceiver) -> None:
    """Opus for audio; VP8 (+RTX) for video: what the bridge forwards without transcoding."""
    wanted = FORWARDED_MIME[transceiver.kind]
    caps = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() in wanted])


@dataclass(eq=False)
class Slot:
    transceiver: RTCRtpTransceiver
    kind: str
    state: str = "pending"  # pending -> active -> releasing -> free -> pending ... | rejected
    source: Source | None = None
    leg: Leg | None = None


class SubscribeSession:
    def __init__(
        self, *, name: str, counters: TrafficCounters, wants: Callable[[Source], bool],
        send_offer: OfferSink, answer_timeout: float = ANSWER_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.pc = RTCPeerConnection(bridge_config())
        self.slots: list[Slot] = []
        self.seq = 0  # number of the latest offer
        self.negotiations = 0  # answers applied
        self._counters = counters
        self._wants = wants
        self._send_offer = send_offer
        self._answer_timeout = answer_timeout
        self._desired: dict[str, Source] = {}
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._waiting: tuple[int, asyncio.Future[None]] | None = None
        self._unanswered = 0
        self._closed = False
        self.idle = asyncio.Event()  # set whenever no negotiation is running or pending
        self.idle.set()

    # -- public -------------------------------------------------------------------------------

    def update(self, sources: Iterable[Source]) -> None:
        self._desired = {s.key: s for s in sources if self._wants(s)}
        self._dirty = True
        if not self._closed and (self._task is None or self._task.done()):
            self.idle.clear()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def answer(self, seq: int, sdp: str) -> None:
        waiting = self._waiting
        if waiting is None or waiting[0] != seq:
            raise BridgeError(
                ErrorCode.CONFLICT, f"{self.name}: answer {seq} does not match an open offer"
            )
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            raise BridgeError(ErrorCode.BAD_SDP, f"{self.name}: answer refused: {exc}") from None
        if not waiting[1].done():
            waiting[1].set_result(None)

    def tracks(self) -> list[TrackInfo]:
        return [
            TrackInfo(
                mid=s.transceiver.mid or "", kind=s.kind,
                participant=s.source.participant if s.source is not None else "",
            )
            for s in self.slots if s.state != "rejected"
        ]

    @property
    def active_legs(self) -> int:
        return sum(1 for s in self.slots if s.state == "active")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for slot in self.slots:
            if slot.leg is not None:
                slot.leg.detach()
        await close_pc(self.pc)
        self.idle.set()

    # -- negotiation --------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self._dirty and not self._closed:
                self._dirty = False
                await self._negotiate_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Closing mid-negotiation is expected, not a failure: by us, or by aiortc when the
            # client closed its side first (a participant told to rejoin elsewhere does that
            # before the balancer's release arrives).
            if self._closed or self.pc.connectionState == "closed":
                log.info("%s: connection closed during renegotiation", self.name)
            else:
                log.exception("%s: renegotiation failed", self.name)
        finally:
            self.idle.set()

    def _apply_wish(self) -> bool:
        changed = False
        desired = self._desired
        for slot in self.slots:
            src = slot.source
            if src is not None and desired.get(src.key) is not src:
                if slot.leg is not None:
                    slot.leg.detach()
                slot.source = None
                slot.transceiver.direction = "inactive"
                slot.state = "releasing"
                changed = True
        carried = {s.source.key for s in self.slots if s.source is not None}
        for key, source in desired.items():
            if key in carried:
                continue
            free = next(
                (s for s in self.slots if s.state == "free" and s.kind == source.kind), None
            )
            if free is not None:
                slot = free
            else:
                transceiver = self.pc.addTransceiver(
                    adapter.silent_track(source.kind, f"{self.name}-{len(self.slots)}"),
                    direction="sendonly",
                )
                restrict_codecs(transceiver)
                slot = Slot(transceiver=transceiver, kind=source.kind)
                self.slots.append(slot)
            slot.transceiver.direction = "sendonly"
            adapter.set_stream_id(slot.transceiver.sender, source.participant)
            slot.source = source
            slot.state = "pending"
            changed = True
        return changed

    async def _negotiate_once(self) -> None:
        if not self._apply_wish() and self._unanswered == 0:
            return
        if not self.slots:
            return
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.seq += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting = (self.seq, future)
        self._send_offer(self.pc.localDescription.sdp, self.seq, self.tracks())
        try:
            await asyncio.wait_for(future, self._answer_timeout)
        except TimeoutError:
            self._unanswered += 1
            log.warning("%s: offer %d unanswered (%d)", self.name, self.seq, self._unanswered)
            if self._unanswered < MAX_UNANSWERED:
                self._dirty = True
            return
        finally:
            self._waiting = None
        self._unanswered = 0
        self.negotiations += 1
        self._after_answer()

    def _after_answer(self) -> None:
        for slot in self.slots:
            if slot.state == "releasing":
                slot.state = "free"
            elif slot.state == "pending" and slot.source is not None:
                if slot.leg is None:
                    slot.leg = self._make_leg(slot)
                    if slot.leg is None:
                        slot.state = "rejected"  # the peer refused the m-line (port 0)
                        slot.source = None
                        continue
                slot.leg.attach(slot.source)
                slot.state = "active"

    def _make_leg(self, slot: Slot) -> Leg | None:
        transceiver = slot.transceiver
        pt, rtx_pt = adapter.negotiated_payload_types(transceiver)
        if pt is None or transceiver.currentDirection not in ("sendonly", "sendrecv"):
            return None
        ids = adapter.negotiated_extension_ids(transceiver)
        if slot.kind == "video":
            dyn_id, dyn_size = ids.get(adapter.URI_ABS_SEND_TIME), 3
        else:
            dyn_id, dyn_size = ids.get(adapter.URI_AUDIO_LEVEL), 1
        ext = ExtensionLayout(transceiver.mid, ids.get(adapter.URI_MID), dyn_id, dyn_size)
        ssrc, rtx_ssrc = adapter.sender_ssrcs(transceiver.sender)
        stream = OutStream(
            pt=pt, ssrc=ssrc, clock_rate=CLOCK_RATE[slot.kind], ext=ext, rtx_pt=rtx_pt,
            rtx_ssrc=rtx_ssrc, keep_history=slot.kind == "video",
        )
        return Leg(stream, adapter.RawSender(transceiver.sender, self._counters))
