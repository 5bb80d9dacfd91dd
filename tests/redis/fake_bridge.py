"""A lightweight stand-in bridge speaking ``sfu_balancer.wire`` over ``/bridge``: it dials every
balancer instance (as real bridges do), reports load, answers ``allocate`` with a canned SDP and
keeps what it was told (allocations, releases, relays), so a thousand joins need no media.

``skew`` makes it report a different CPU to one instance (stale or partial reports), which is
how a test makes two instances disagree about where a new room belongs. ``bytes_out_per_s``
makes it report a busy NIC (bandwidth-bound placement). ``allocate_delay_s`` makes it answer
``allocate`` that much later (an overloaded bridge), reading on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import aiohttp

from sfu_balancer import wire
from sfu_balancer.hello_auth import sign_hello

CANNED_ANSWER = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake-bridge\r\nt=0 0\r\n"
                 "a=group:BUNDLE 0\r\n")
PER_PARTICIPANT_CPU = 0.002


class FakeBridge:
    def __init__(self, bridge_id: str, balancers: list[str], report_interval_s: float = 0.5,
                 capacity_cpu: float = 64.0, nic_mbps: float = 100_000.0,
                 secret: str | None = None) -> None:
        self.id = bridge_id
        self.secret = secret  # the balancers' bridge_secret, proven in hello
        self.balancers = balancers
        self.report_interval_s = report_interval_s
        # Big enough for 1,000 participants in rooms of 20 as the cost table forecasts them
        # (each room's fan-out is N(N-1) streams): the tests are about state, not capacity.
        self.capacity_cpu = capacity_cpu
        self.nic_mbps = nic_mbps
        self.allocations: dict[tuple[str, str], str] = {}  # (room, participant) -> balancer
        self.relay_opens: list[tuple[str, str, str]] = []  # (room, relay, peer)
        self.relays: dict[str, tuple[str, str]] = {}  # open relay id -> (room, peer)
        self.releases = 0
        self.skew: dict[str, float] = {}  # balancer URL -> CPU reported to it instead
        self.bytes_out_per_s = 0.0  # egress reported to every balancer (a busy NIC)
        self.allocate_delay_s = 0.0  # answer allocate this much later (allocates at once)
        self._late: set[asyncio.Task[None]] = set()
        self.links: dict[str, aiohttp.ClientWebSocketResponse] = {}
        self.reports: dict[str, int] = {url: 0 for url in balancers}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    def rooms(self) -> dict[str, set[str]]:
        result: dict[str, set[str]] = {}
        for room, participant in self.allocations:
            result.setdefault(room, set()).add(participant)
        return result

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._link(url)) for url in self.balancers]

    async def stop(self) -> None:
        self._stop.set()
        for ws in list(self.links.values()):
            with contextlib.suppress(Exception):
                await ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def _report(self, url: str) -> wire.Report:
        cpu = self.skew.get(url, PER_PARTICIPANT_CPU * len(self.allocations))
        return wire.Report(cpu=cpu, host_cpu=min(cpu / self.capacity_cpu, 1.0),
                           bytes_in_per_s=0.0, bytes_out_per_s=self.bytes_out_per_s,
                           packets_in_per_s=0.0,
                           packets_out_per_s=0.0, participants=len(self.allocations),
                           rooms=len(self.rooms()), relay_streams=len(self.relays),
                           measured_at=time.monotonic())

    async def _link(self, url: str) -> None:
        """Dial ``url`` until stopped; a dropped link (instance killed) is dialed again."""
        assert self._session is not None
        while not self._stop.is_set():
            try:
                async with self._session.ws_connect(f"{url}/bridge", heartbeat=5.0) as ws:
                    self.links[url] = ws
                    await ws.send_bytes(wire.encode(wire.Hello(
                        id=self.id, host="127.0.0.1", region="local", version="fake",
                        capacity=wire.Capacity(cpu=self.capacity_cpu, egress_mbps=self.nic_mbps,
                                               ingress_mbps=self.nic_mbps), pid=os.getpid(),
                        auth=sign_hello(self.id, self.secret, time.time()) if self.secret else "")))
                    reporter = asyncio.create_task(self._report_loop(url, ws))
                    try:
                        async for frame in ws:
                            if frame.type != aiohttp.WSMsgType.BINARY:
                                break
                            reply = self._handle(url, wire.decode(frame.data))
                            if isinstance(reply, wire.Allocated) and self.allocate_delay_s > 0:
                                late = asyncio.create_task(self._answer_late(ws, reply))
                                self._late.add(late)
                                late.add_done_callback(self._late.discard)
                            elif reply is not None:
                                await ws.send_bytes(wire.encode(reply))
                    finally:
                        reporter.cancel()
                        self.links.pop(url, None)
            except (aiohttp.ClientError, ConnectionError, OSError):
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.2)

    async def _answer_late(self, ws: aiohttp.ClientWebSocketResponse,
                           reply: wire.Message) -> None:
        await asyncio.sleep(self.allocate_delay_s)
        with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
            await ws.send_bytes(wire.encode(reply))

    async def _report_loop(self, url: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
            while not ws.closed:
                await ws.send_bytes(wire.encode(self._report(url)))
                self.reports[url] += 1
                await asyncio.sleep(self.report_interval_s)

    def _handle(self, url: str, m: wire.Message) -> wire.Message | None:
        if isinstance(m, wire.Allocate):
            self.allocations[(m.room, m.participant)] = url
            return wire.Allocated(req=m.req, room=m.room, participant=m.participant,
                                  sdp=CANNED_ANSWER)
        if isinstance(m, wire.Release):
            if self.allocations.pop((m.room, m.participant), None) is not None:
                self.releases += 1
            return None
        if isinstance(m, wire.RelayOpen):
            self.relay_opens.append((m.room, m.relay, m.peer))
            self.relays[m.relay] = (m.room, m.peer)
            # no local publishers: nothing to offer yet (the balancer forwards nothing)
            return wire.RelayAccept(req=m.req, room=m.room, relay=m.relay,
                                    kind="answer" if m.sdp else "offer", sdp="")
        if isinstance(m, wire.RelayClose):
            self.relays.pop(m.relay, None)
        return None
