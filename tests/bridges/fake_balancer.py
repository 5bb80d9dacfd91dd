"""A stand-in for the balancer's ``/bridge`` endpoint (aiohttp, 127.0.0.1), for agent/relay tests.

It records every frame from each bridge, answers nothing by itself, and lets the test send
commands and await their replies (matched by ``req``). Bridge offers go to ``on_offer``.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from sfu_balancer import wire

OfferHandler = Callable[["BridgeConn", wire.Offer], Awaitable[None]]


class BridgeConn:
    def __init__(self, balancer: FakeBalancer, ws: web.WebSocketResponse) -> None:
        self.balancer = balancer
        self.ws = ws
        self.hello: wire.Hello | None = None
        self.frames: list[wire.Message] = []
        self.reports: list[wire.Report] = []
        self.errors: list[wire.Error] = []
        self.byes: list[wire.Bye] = []
        self._replies: dict[int, asyncio.Future[wire.Message]] = {}
        self.closed = asyncio.Event()

    @property
    def id(self) -> str:
        return self.hello.id if self.hello else "?"

    async def send(self, message: wire.Message) -> None:
        await self.ws.send_bytes(wire.encode(message))

    async def send_raw(self, data: bytes | str) -> None:
        if isinstance(data, str):
            await self.ws.send_str(data)
        else:
            await self.ws.send_bytes(data)

    async def request(self, message: wire.Message, limit_s: float = 20.0) -> wire.Message:
        req = getattr(message, "req", None)
        assert isinstance(req, int)
        future: asyncio.Future[wire.Message] = asyncio.get_running_loop().create_future()
        self._replies[req] = future
        await self.send(message)
        try:
            return await asyncio.wait_for(future, limit_s)
        finally:
            self._replies.pop(req, None)

    def received(self, message: wire.Message) -> None:
        self.frames.append(message)
        if isinstance(message, wire.Hello):
            self.hello = message
            self.balancer.bridges[message.id] = self
            self.balancer.changed.set()
        elif isinstance(message, wire.Report):
            self.reports.append(message)
        elif isinstance(message, wire.Bye):
            self.byes.append(message)
        elif isinstance(message, wire.Offer):
            self.balancer.spawn(self.balancer.on_offer(self, message))
        if isinstance(message, wire.Error):
            self.errors.append(message)
        req = getattr(message, "req", None)
        if isinstance(req, int) and req in self._replies and not self._replies[req].done():
            self._replies[req].set_result(message)


async def _ignore_offer(conn: BridgeConn, offer: wire.Offer) -> None:
    return None


class FakeBalancer:
    def __init__(self) -> None:
        self.bridges: dict[str, BridgeConn] = {}
        self.connections: list[BridgeConn] = []
        self.changed = asyncio.Event()
        self.on_offer: OfferHandler = _ignore_offer
        self.req = itertools.count(1)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/bridge", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=wire.MAX_FRAME_BYTES)
        await ws.prepare(request)
        conn = BridgeConn(self, ws)
        self.connections.append(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    conn.received(wire.decode(msg.data))
        finally:
            conn.closed.set()
        return ws

    async def drop_all(self) -> None:
        for conn in list(self.connections):
            await conn.ws.close()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
