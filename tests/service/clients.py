"""An aiortc participant that speaks /ws like the join page: join, answer offers, rejoin."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
from media_clients import Publisher, Subscriber

from sfu_balancer import wire


class WsParticipant:
    def __init__(self, url: str, room: str, token: str | None = None, **media: Any) -> None:
        self.url = url
        self.room = room
        self.token = token
        self.media = {"width": 160, "height": 120, "fps": 10.0} | media
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.id: str | None = None
        self.resume: str | None = None  # proves self.id on a new socket
        self.bridge: str | None = None
        self.publisher: Publisher | None = None
        self.subscriber: Subscriber | None = None
        self.joins = 0
        self.rejoins: list[tuple[float, str]] = []
        self.errors: list[dict[str, Any]] = []
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.joined = asyncio.Event()

    async def connect(self) -> None:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(f"{self.url}/ws")
        self._reader = asyncio.create_task(self._read())
        await self.join()

    async def send(self, message: dict[str, Any]) -> None:
        if self.ws is None or self.ws.closed:
            return
        with contextlib.suppress(ConnectionError):  # closing under our feet at teardown
            await self.ws.send_str(json.dumps(message))

    async def join(self) -> None:
        self.joined.clear()
        self.publisher = Publisher(**self.media)
        self.subscriber = Subscriber()
        message = {"type": "join", "room": self.room, "sdp": await self.publisher.offer()}
        if self.id is not None:
            message["participant"] = self.id
            message["resume"] = self.resume
        if self.token is not None:
            message["token"] = self.token
        await self.send(message)

    async def _read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            task = asyncio.create_task(self._handle(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "joined":
            assert self.publisher is not None
            self.id, self.bridge = message["participant"], message["bridge"]
            self.resume = message["resume"]
            await self.publisher.accept(message["sdp"])
            self.joins += 1
            self.joined.set()
        elif kind == "offer":
            subscriber = self.subscriber
            assert subscriber is not None
            offer = wire.Offer(
                room=self.room, participant=self.id or "", sdp=message["sdp"],
                seq=message["seq"], tracks=[wire.TrackInfo(**t) for t in message["tracks"]])
            sdp = await subscriber.handle_offer(offer)
            if subscriber is self.subscriber:  # not replaced by a rejoin meanwhile
                await self.send({"type": "answer", "sdp": sdp, "seq": message["seq"]})
        elif kind == "rejoin":
            old = (self.publisher, self.subscriber)
            self.publisher = self.subscriber = None  # frames counted from now are new frames
            self.rejoins.append((time.monotonic(), message["reason"]))
            await self._close_media(*old)
            await self.join()
        elif kind == "error":
            self.errors.append(message)
            if message.get("code") == "bridge_error" and len(self.errors) < 5:
                await asyncio.sleep(0.5)  # like the join page: retry a failed allocation
                await self._close_media()
                await self.join()
        await self.messages.put(message)

    def frames_from(self, other: WsParticipant) -> int:
        if self.subscriber is None or other.id is None:
            return 0
        return self.subscriber.video[other.id].frames

    async def _close_media(self, *owners: Publisher | Subscriber | None) -> None:
        for pc_owner in owners or (self.publisher, self.subscriber):
            if pc_owner is not None:
                with contextlib.suppress(Exception):
                    await pc_owner.close()

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.send({"type": "leave"})
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_media()
        if self.session is not None:
            await self.session.close()
