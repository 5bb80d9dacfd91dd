"""Links from this bridge to every balancer instance (DESIGN.md §4).

Rules:
- One ``Link`` per ``--balancer`` URL: WebSocket at ``/bridge``, one msgpack message per binary
  frame (``sfu_balancer.wire``). A link sends ``hello`` first, then a ``report`` every interval.
- A link that drops reconnects with capped exponential backoff and jitter. Links carry only
  signaling: losing one (or all) never touches media already flowing.
- Every frame gets an answer or an effect; a frame that cannot be decoded or executed gets an
  ``error`` (with the request id when known) and the link stays open.
- Commands run as tasks, so a slow one (ICE gathering) never blocks the link's read loop.
- Bridge-initiated offers go to the link that allocated that participant (or opened that
  relay); if it is down, to every connected link (the balancers share state).
- ``drain``: no new rooms; at the deadline every participant and relay is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from bridges.sfu.sdp import BridgeError
from bridges.sfu.worker import OfferHandler, Worker
from bridges.stats import StatsSampler
from sfu_balancer import wire
from sfu_balancer.hello_auth import sign_hello

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0
HEARTBEAT_S = 10.0


def bridge_url(url: str) -> str:
    """``http://h:p`` -> ``ws://h:p/bridge``; a URL with a path other than ``/`` is kept."""
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path not in ("", "/") else "/bridge"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


@dataclass
class AgentConfig:
    bridge_id: str
    host: str
    region: str = "default"
    version: str = "0"
    capacity: wire.Capacity = field(default_factory=wire.Capacity)
    balancers: list[str] = field(default_factory=list)
    report_interval: float = 1.0
    secret: str = ""  # shared bridge secret; proves itself in every hello (hello_auth)


class BridgeWorker(Protocol):
    """What the agent drives: ``bridges.sfu.worker.Worker`` (media) or
    ``bridges.emulator.EmulatedWorker`` (signaling load tests, no media)."""

    on_offer: OfferHandler
    draining: bool
    emptied: asyncio.Event  # set exactly while the worker holds no room

    async def allocate(self, room: str, participant: str, sdp: str) -> str: ...
    async def answer(self, room: str, participant: str, seq: int, sdp: str) -> None: ...
    async def release(self, room: str, participant: str) -> None: ...
    async def relay_open(
        self, room: str, relay: str, peer: str, sdp: str | None
    ) -> tuple[str, str, int]: ...
    async def relay_close(self, room: str, relay: str) -> None: ...
    async def release_all(self) -> None: ...
    async def close(self) -> None: ...


class ReportSampler(Protocol):
    def sample(self, state: str = "serving") -> wire.Report: ...


class Link:
    def __init__(self, agent: Agent, url: str) -> None:
        self.agent = agent
        self.url = bridge_url(url)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.connects = 0

    async def send(self, message: wire.Message) -> bool:
        ws = self.ws
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_bytes(wire.encode(message))
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            return False
        return True

    async def run(self, session: aiohttp.ClientSession) -> None:
        failures = 0
        while True:
            try:
                async with session.ws_connect(
                    self.url, heartbeat=HEARTBEAT_S, max_msg_size=wire.MAX_FRAME_BYTES
                ) as ws:
                    self.ws = ws
                    failures = 0
                    self.connects += 1
                    await self.send(self.agent.hello())
                    await self.send(self.agent.last_report())
                    self.connected.set()
                    log.info("linked to %s", self.url)
                    await self._read(ws)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, reset, DNS...: retry later
                log.info("link %s: %s", self.url, exc)
            finally:
                self.ws = None
                self.connected.clear()
            failures += 1
            delay = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** min(failures - 1, 8))
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                data = msg.data
            elif msg.type == aiohttp.WSMsgType.TEXT:
                data = msg.data.encode()  # decodes to a WireError: answered, link kept
            else:
                break
            try:
                message = wire.decode(data)
            except wire.WireError as exc:
                log.warning("link %s: refused frame: %s", self.url, exc)
                await self.send(wire.error_reply(exc))
                continue
            self.agent.dispatch(self, message)


class Agent:
    def __init__(
        self, config: AgentConfig, worker: BridgeWorker, sampler: ReportSampler | None = None
    ) -> None:
        self.config = config
        self.worker = worker
        worker.on_offer = self._route_offer
        self.links = [Link(self, url) for url in config.balancers]
        if sampler is None:
            assert isinstance(worker, Worker), "a worker without media needs its own sampler"
            sampler = StatsSampler(worker, config.capacity)
        self.sampler: ReportSampler = sampler
        self._report = self.sampler.sample()
        self._owners: dict[tuple[str, str], Link] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._drain_task: asyncio.Task[None] | None = None

    # -- messages out ---------------------------------------------------------------------

    def hello(self) -> wire.Hello:
        c = self.config
        return wire.Hello(
            id=c.bridge_id, host=c.host, region=c.region, version=c.version,
            capacity=c.capacity, pid=os.getpid(),
            auth=sign_hello(c.bridge_id, c.secret, time.time()) if c.secret else "",
        )

    def last_report(self) -> wire.Report:
        return self._report

    async def report_once(self) -> None:
        self._report = self.sampler.sample("draining" if self.worker.draining else "serving")
        await asyncio.gather(*(link.send(self._report) for link in self.links))

    def _route_offer(self, offer: wire.Offer) -> None:
        owner = self._owners.get((offer.room, offer.participant))
        targets = [owner] if owner is not None and owner.ws is not None else self.links
        for link in targets:
            self._spawn(self._send(link, offer))

    async def _send(self, link: Link, message: wire.Message) -> None:
        await link.send(message)

    async def broadcast(self, message: wire.Message) -> None:
        await asyncio.gather(*(link.send(message) for link in self.links))

    # -- messages in ----------------------------------------------------------------------

    def dispatch(self, link: Link, message: wire.Message) -> None:
        self._spawn(self._execute(link, message))

    async def _execute(self, link: Link, message: wire.Message) -> None:
        req = getattr(message, "req", None)
        try:
            reply = await self._command(link, message)
        except BridgeError as exc:
            reply = wire.Error(code=exc.code, reason=exc.reason, req=req, about=message.TYPE)
        except Exception as exc:
            log.exception("command %s failed", message.TYPE)
            reply = wire.Error(
                code=wire.ErrorCode.INTERNAL, reason=f"{type(exc).__name__}: {exc}", req=req,
                about=message.TYPE,
            )
        if reply is not None:
            await link.send(reply)

    async def _command(self, link: Link, m: wire.Message) -> wire.Message | None:
        w = self.worker
        if isinstance(m, wire.Allocate):
            self._owners[(m.room, m.participant)] = link
            sdp = await w.allocate(m.room, m.participant, m.sdp)
            return wire.Allocated(req=m.req, room=m.room, participant=m.participant, sdp=sdp)
        if isinstance(m, wire.Answer):
            await w.answer(m.room, m.participant, m.seq, m.sdp)
            return None
        if isinstance(m, wire.Release):
            self._owners.pop((m.room, m.participant), None)
            await w.release(m.room, m.participant)
            return None
        if isinstance(m, wire.RelayOpen):
            self._owners[(m.room, "relay:" + m.relay)] = link
            kind, sdp, seq = await w.relay_open(m.room, m.relay, m.peer, m.sdp)
            return wire.RelayAccept(
                req=m.req, room=m.room, relay=m.relay, kind=kind, sdp=sdp, seq=seq
            )
        if isinstance(m, wire.RelayClose):
            self._owners.pop((m.room, "relay:" + m.relay), None)
            await w.relay_close(m.room, m.relay)
            return None
        if isinstance(m, wire.Sync):
            await self._sync(link, m)
            return None
        if isinstance(m, wire.Drain):
            self.drain(m.deadline_s)
            return None
        if isinstance(m, wire.Bye):
            log.info("balancer %s says bye: %s", link.url, m.reason)
            return None
        if isinstance(m, wire.Error):
            log.warning("balancer %s reports error %s: %s", link.url, m.code, m.reason)
            return None
        raise BridgeError(wire.ErrorCode.UNKNOWN_TYPE, f"{m.TYPE!r} is not sent to a bridge")

    async def _sync(self, link: Link, m: wire.Sync) -> None:
        """Release what ``link`` allocated that its balancer no longer has here. The stale set is
        taken, and dropped from the owners, before the first await: an ``allocate`` read after
        the ``sync`` is never in it, and one that re-adds a stale participant meanwhile keeps it."""
        held = {(seat.room, seat.participant) for seat in m.participants}
        stale = [key for key, owner in self._owners.items()
                 if owner is link and key not in held and not key[1].startswith("relay:")]
        for key in stale:
            del self._owners[key]
        for room, participant in stale:
            if (room, participant) in self._owners:  # allocated again since the sync
                continue
            with contextlib.suppress(BridgeError):
                await self.worker.release(room, participant)
        if stale:
            log.info("sync from %s released %d participants", link.url, len(stale))

    # -- lifecycle ------------------------------------------------------------------------

    def drain(self, deadline_s: float) -> None:
        """Take no new rooms; release everyone left after ``deadline_s`` seconds."""
        self.worker.draining = True
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.get_running_loop().create_task(
                self.wait_drained(deadline_s)
            )

    async def wait_drained(self, deadline_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.worker.emptied.wait(), max(0.0, deadline_s))
        await self.worker.release_all()

    async def run(self, stop: asyncio.Event, drain_timeout: float) -> None:
        """Serve until ``stop`` is set, then drain (bounded), say bye and close."""
        async with aiohttp.ClientSession() as session:
            link_tasks = [asyncio.create_task(link.run(session)) for link in self.links]
            reporter = asyncio.create_task(self._report_loop())
            await stop.wait()
            self.worker.draining = True
            await self.report_once()
            await self.wait_drained(drain_timeout)
            await self.broadcast(wire.Bye(reason="shutdown"))
            reporter.cancel()
            for task in link_tasks:
                task.cancel()
            for link in self.links:
                if link.ws is not None:
                    with contextlib.suppress(Exception):
                        await link.ws.close()
            await asyncio.gather(reporter, *link_tasks, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.worker.close()

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.report_interval)
            await self.report_once()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
