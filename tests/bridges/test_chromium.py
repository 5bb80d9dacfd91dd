"""Two Chromium pages (fake camera) publish and subscribe through one in-process bridge."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import socket
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import pytest
from aiohttp import WSMsgType, web
from conftest import Harness
from media_clients import wait_for

from sfu_balancer import wire

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = pathlib.Path("/usr/bin/chromium")
PAGE = pathlib.Path(__file__).with_name("chromium_page.html")
HAVE_CHROMIUM = CHROMIUM.exists()
ARGS = [
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--headless",
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    # loopback only: gather on 127.0.0.1 and show real addresses instead of mDNS names
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
]


class Signaling:
    """The participant side of a balancer, reduced to JSON over one WebSocket per page."""

    def __init__(self, harness: Harness) -> None:
        self.worker = harness.worker
        self.sockets: dict[tuple[str, str], web.WebSocketResponse] = {}
        self.worker.on_offer = self._on_offer
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.runner: web.AppRunner | None = None

    def _on_offer(self, offer: wire.Offer) -> None:
        ws = self.sockets.get((offer.room, offer.participant))
        if ws is not None:
            msg = {"type": "offer", "sdp": offer.sdp, "seq": offer.seq,
                   "tracks": [{"mid": t.mid, "participant": t.participant} for t in offer.tracks]}
            task = asyncio.get_running_loop().create_task(ws.send_str(json.dumps(msg)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        who: tuple[str, str] | None = None
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data: dict[str, Any] = json.loads(msg.data)
            if data["type"] == "join":
                who = (data["room"], data["participant"])
                self.sockets[who] = ws
                answer = await self.worker.allocate(who[0], who[1], data["sdp"])
                await ws.send_str(json.dumps({"type": "answer", "sdp": answer}))
            elif data["type"] == "answer" and who is not None:
                await self.worker.answer(who[0], who[1], data["seq"], data["sdp"])
        if who is not None:  # the page went away: release it, the others renegotiate
            self.sockets.pop(who, None)
            await self.worker.release(*who)
        return ws

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/ws", self.ws)
        self.runner = web.AppRunner(app, shutdown_timeout=2.0)
        await self.runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self.runner, sock).start()

    async def stop(self) -> None:
        for ws in list(self.sockets.values()):
            await ws.close()
        if self.runner is not None:
            await self.runner.cleanup()


def _unavailable(reason: str) -> NoReturn:
    """Skip for a missing tool; fail instead when CI is set (CI must run browser tests)."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}, and CI is set: browser tests must run in CI", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        _unavailable("Chromium is not installed at /usr/bin/chromium")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("Playwright (python) is not installed")

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def _frames(page: Any, participant: str) -> tuple[int, int]:
    """(framesDecoded, videoWidth) of ``participant``'s video on ``page``."""
    videos = {v["mid"]: v for v in await page.evaluate("remoteVideos()")}
    for s in await page.evaluate("videoStats()"):
        v = videos.get(s["mid"])
        if v is not None and v["participant"] == participant:
            return s["framesDecoded"], v["width"]
    return 0, 0


async def _wait_frames(page: Any, participant: str, at_least: int) -> tuple[int, int]:
    deadline = asyncio.get_running_loop().time() + 40
    while True:
        frames, width = await _frames(page, participant)
        if frames >= at_least and width > 0:
            return frames, width
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{participant}: {frames} frames, width {width}")
        await asyncio.sleep(0.2)


async def test_two_chromium_pages_see_each_other(harness: Harness, browser: Any) -> None:
    sig = Signaling(harness)
    await sig.start()
    try:
        pages = [await browser.new_page() for _ in range(2)]
        for page, name in zip(pages, ("ann", "ben"), strict=True):
            await page.goto(f"http://127.0.0.1:{sig.port}/")
            await page.evaluate(f"join('room', '{name}')")
        ann, ben = pages
        f1, width = await _wait_frames(ann, "ben", 5)
        assert width == 320
        _, width = await _wait_frames(ben, "ann", 5)
        assert width == 320
        await _wait_frames(ann, "ben", f1 + 20)  # framesDecoded keeps growing
        stats = await ann.evaluate("videoStats()")
        assert all(s["keyFramesDecoded"] >= 1 for s in stats)  # a keyframe arrived on join
        # ben leaves: ann's subscribe connection is renegotiated, ben's m-lines go inactive
        offers = await ann.evaluate("offers")
        await ben.close()
        await wait_for(lambda: harness.worker.rooms["room"].participants.keys() == {"ann"}, 15,
                       "ben released")
        room_session = harness.worker.rooms["room"].participants["ann"].session
        assert room_session is not None
        await wait_for(lambda: room_session.negotiations >= 2 and room_session.idle.is_set(),
                       15, "ann renegotiated")
        assert await ann.evaluate("offers") > offers
        assert set((await ann.evaluate("directions()")).values()) == {"inactive"}
    finally:
        await sig.stop()
