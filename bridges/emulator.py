"""An emulated bridge for load tests of the balancer: the real agent over a worker with no media.

``sfu-bridge --emulate`` runs the same ``Agent`` as a real bridge (links to every balancer,
hello with its proof, reports, reconnects, drain, bye), but its worker answers ``allocate`` and
``relay_open`` at once with a fixed SDP and never opens a peer connection. Its reports carry
the load the simulator's cost model gives the rooms it holds, so the balancer routes on
realistic, deterministic numbers while thousands of joins cost no media.

Rules:
- The worker enforces what the real one does at the command level (id checks, draining takes
  no new room, a participant is in a room once, releases of unknown ids are refused), so the
  balancer sees the same replies it would see from a real bridge.
- Load: each room costs ``CostModel.room_load`` of its local members on one bridge, plus, per
  open relay, each local publisher forwarded once to the peer (egress) and as many remote
  publishers received (ingress; the emulator cannot know the peer's size, so it assumes the
  peer is as big as this side). CPU is in cores, like a real bridge's process CPU.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from bridges.sfu.room import RELAY_PREFIX
from bridges.sfu.sdp import BridgeError
from bridges.sfu.worker import OfferHandler, check_id
from sfu_balancer.core.model import CPU, EGRESS, INGRESS
from sfu_balancer.wire import Capacity, ErrorCode, Report
from simulations.costmodel import CostModel

EMULATED_ANSWER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=sfu-bridge-emulated\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
)


class EmulatedWorker:
    """The command surface of ``bridges.sfu.worker.Worker``, holding only membership."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[str]] = {}
        self.relays: dict[str, set[str]] = {}  # room -> open relay ids
        self.draining = False
        self.on_offer: OfferHandler = lambda offer: None
        self.emptied = asyncio.Event()
        self.emptied.set()

    @property
    def participant_count(self) -> int:
        return sum(len(members) for members in self.rooms.values())

    @property
    def relay_streams(self) -> int:
        return sum(len(self.rooms.get(room, ())) * len(ids) for room, ids in self.relays.items())

    async def allocate(self, room: str, participant: str, sdp: str) -> str:
        check_id("room", room)
        check_id("participant", participant)
        if participant.startswith(RELAY_PREFIX):
            raise BridgeError(ErrorCode.MALFORMED, f"ids may not start with {RELAY_PREFIX!r}")
        if "v=0" not in sdp:
            raise BridgeError(ErrorCode.BAD_SDP, "the publish offer is not an SDP")
        if self.draining and room not in self.rooms:
            raise BridgeError(ErrorCode.DRAINING, "this bridge is draining: no new rooms")
        members = self.rooms.setdefault(room, set())
        if participant in members:
            raise BridgeError(ErrorCode.CONFLICT, f"{participant!r} is already in room {room!r}")
        members.add(participant)
        self.emptied.clear()
        return EMULATED_ANSWER

    async def answer(self, room: str, participant: str, seq: int, sdp: str) -> None:
        if participant not in self.rooms.get(room, ()):
            raise BridgeError(
                ErrorCode.UNKNOWN_PARTICIPANT, f"no subscription {participant!r} in {room!r}"
            )

    async def release(self, room: str, participant: str) -> None:
        members = self.rooms.get(room)
        if members is None:
            raise BridgeError(ErrorCode.UNKNOWN_ROOM, f"no room {room!r} on this bridge")
        if participant not in members:
            raise BridgeError(ErrorCode.UNKNOWN_PARTICIPANT, f"{participant!r} is not in {room!r}")
        members.discard(participant)
        self._forget_if_empty(room)

    async def relay_open(
        self, room: str, relay: str, peer: str, sdp: str | None
    ) -> tuple[str, str, int]:
        check_id("room", room)
        check_id("relay", relay)
        if self.draining and room not in self.rooms:
            raise BridgeError(ErrorCode.DRAINING, "this bridge is draining: no new rooms")
        self.rooms.setdefault(room, set())
        self.relays.setdefault(room, set()).add(relay)
        self.emptied.clear()
        return ("offer", EMULATED_ANSWER, 1) if sdp is None else ("answer", EMULATED_ANSWER, 0)

    async def relay_close(self, room: str, relay: str) -> None:
        ids = self.relays.get(room, set())
        if relay not in ids:
            raise BridgeError(ErrorCode.UNKNOWN_PARTICIPANT, f"no relay {relay!r} in {room!r}")
        ids.discard(relay)
        self._forget_if_empty(room)

    async def release_all(self) -> None:
        self.rooms.clear()
        self.relays.clear()
        self.emptied.set()

    async def close(self) -> None:
        await self.release_all()

    def _forget_if_empty(self, room: str) -> None:
        if not self.rooms.get(room) and not self.relays.get(room):
            self.rooms.pop(room, None)
            self.relays.pop(room, None)
        if not self.rooms:
            self.emptied.set()


class CostModelSampler:
    """Reports what ``CostModel`` says the worker's rooms cost, measured now."""

    def __init__(
        self, worker: EmulatedWorker, capacity: Capacity, calibration: Path | None = None
    ) -> None:
        raw = {"calibration": str(calibration.resolve())} if calibration else {}
        self.model = CostModel.from_scenario(raw)  # ValueError names a bad calibration file
        self.worker = worker
        self.capacity = capacity  # the host is taken to be this worker alone
        # Load (or, on a cold cache, compile) the compiled room cost now, before the agent
        # dials in: compiling inside the first report with a room stalls the link for seconds.
        self.model.room_load(np.array([2]))

    def load(self) -> np.ndarray:
        """The (3,) load vector: cores, egress Mbps, ingress Mbps."""
        w = self.worker
        total = np.zeros(3)
        table = self.model.table
        for room, members in w.rooms.items():
            n = len(members)
            total += self.model.room_load(np.array([n]))[0]
            relays = len(w.relays.get(room, ()))
            if relays:
                streams = float(n * relays)
                total += table.streams_to_load(np.array(streams), np.array(streams))
        return total

    def sample(self, state: str = "serving") -> Report:
        load = self.load()
        table = self.model.table
        mbps_out, mbps_in = float(load[EGRESS]), float(load[INGRESS])
        packets_per_mbps = table.packets_per_s / table.mbps_per_stream
        return Report(
            cpu=float(load[CPU]), host_cpu=min(1.0, float(load[CPU]) / self.capacity.cpu),
            bytes_in_per_s=mbps_in * 125_000.0, bytes_out_per_s=mbps_out * 125_000.0,
            packets_in_per_s=mbps_in * packets_per_mbps,
            packets_out_per_s=mbps_out * packets_per_mbps,
            participants=self.worker.participant_count, rooms=len(self.worker.rooms),
            relay_streams=self.worker.relay_streams, measured_at=time.monotonic(), state=state,
            capacity=self.capacity,
        )
