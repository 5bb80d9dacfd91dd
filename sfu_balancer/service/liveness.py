"""Liveness of participant sockets: one sweep over all of them, instead of aiohttp's heartbeat
(a timer per socket, rescheduled from every chunk received).

Rules, with ``interval_s`` = setting ``ws_ping_interval_s``:
- Any frame a socket receives (pongs included) marks it active; a sweep every ``interval_s``
  clears the marks.
- A socket that received nothing since the previous sweep is pinged; one that still received
  nothing by the next sweep has its connection closed, which ends its handler (leaving). So a
  dead peer is dropped 2 to 3 intervals after its last frame (aiohttp's ``heartbeat=20``
  dropped it at 20 + 10 s: the default interval of 10 s keeps that).
- A sweep costs a few attribute reads per socket and never waits on one (pings are sent
  without awaiting a drain; closing is the transport's).
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web


class Peer:
    __slots__ = ("active", "pinged", "transport", "ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None
                 ) -> None:
        self.ws = ws
        self.transport = transport
        self.active = True  # set by the handler on every frame received
        self.pinged = False


class Liveness:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.peers: set[Peer] = set()
        self._pings: set[asyncio.Task[None]] = set()

    def add(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> Peer:
        peer = Peer(ws, transport)
        self.peers.add(peer)
        return peer

    def discard(self, peer: Peer) -> None:
        self.peers.discard(peer)

    def sweep(self) -> None:
        for peer in list(self.peers):
            if peer.active:
                peer.active = peer.pinged = False
            elif not peer.pinged:
                peer.pinged = True
                task = asyncio.create_task(self._ping(peer.ws))
                self._pings.add(task)
                task.add_done_callback(self._pings.discard)
            else:  # silent for a whole interval after a ping: gone
                self.peers.discard(peer)
                if peer.transport is not None:
                    peer.transport.close()

    @staticmethod
    async def _ping(ws: web.WebSocketResponse) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.ping()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.sweep()
