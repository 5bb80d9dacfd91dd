"""Participant sockets that stop answering are dropped (and leave); live ones are kept; the
socket's framing (client pings answered, no compression)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import aiohttp
from media_clients import wait_for

from ..redis.cluster import FAKE_OFFER

INTERVAL_S = 0.2


async def _joined(session: aiohttp.ClientSession, url: str, room: str, *, autoping: bool
                  ) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"{url}/ws", autoping=autoping, heartbeat=None)
    await ws.send_str(json.dumps({"type": "join", "room": room, "sdp": FAKE_OFFER}))
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "joined":
            return ws


async def test_a_socket_that_never_answers_pings_is_closed_and_leaves(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0, ws_ping_interval_s=INTERVAL_S)
    await cluster.add_fake_bridge("f1")
    async with aiohttp.ClientSession() as session:
        ws = await _joined(session, cluster.url, "quiet", autoping=False)
        assert await cluster.router.store.rooms() == {"quiet": {"f1": 1}}
        started, pinged = time.monotonic(), False
        while True:  # read, but never answer a ping
            msg = await ws.receive(timeout=10)
            if msg.type == aiohttp.WSMsgType.PING:
                pinged = True
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                              aiohttp.WSMsgType.ERROR):
                break
        # pinged after one silent interval, closed one interval later (sweeps at most 3)
        assert pinged
        assert time.monotonic() - started < 10 * INTERVAL_S
    await wait_for(lambda: not cluster.router.sessions, 5, "the dropped participant to leave")
    assert await cluster.router.store.rooms() == {}


async def test_sockets_that_answer_pings_or_talk_are_kept(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0, ws_ping_interval_s=INTERVAL_S)
    await cluster.add_fake_bridge("f1")
    async with aiohttp.ClientSession() as session:
        answering = await _joined(session, cluster.url, "kept", autoping=True)
        reader = asyncio.create_task(answering.receive(timeout=30))  # autoping answers pings
        talking = await _joined(session, cluster.url, "kept", autoping=False)
        for _ in range(10):  # five intervals: long enough to be dropped twice over
            await talking.send_str('{"type": "ping"}')
            await asyncio.sleep(INTERVAL_S / 2)
        assert not reader.done()  # nothing closed it
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        assert await cluster.router.store.rooms() == {"kept": {"f1": 2}}
        await answering.send_str('{"type": "ping"}')
        while (msg := await answering.receive(timeout=5)).type != aiohttp.WSMsgType.TEXT:
            pass
        assert json.loads(msg.data) == {"type": "pong"}


async def test_pings_from_the_client_are_answered(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0)
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{cluster.url}/ws", autoping=False) as ws:
        await ws.ping(b"hello")
        msg = await ws.receive(timeout=5)
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.PONG, b"hello")


async def test_permessage_deflate_is_declined(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0)
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{cluster.url}/ws", compress=15) as ws:  # offered, as browsers do
        assert ws.compress == 0
        await ws.send_str('{"type": "ping"}')
        assert json.loads((await ws.receive(timeout=5)).data) == {"type": "pong"}
