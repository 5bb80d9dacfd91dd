"""``GET /api/v1/signaling``: public outside dev mode, the list from ``signaling_urls``, and
empty lists when that setting is empty (the join page then uses its own origin)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

from sfu_balancer.service.app import create_app
from sfu_balancer.settings import Settings

SECURE = {"dev": False, "admin_token": "admin-token", "bridge_secret": "bridge-secret-0123456"}


@asynccontextmanager
async def serve(**settings: Any) -> AsyncIterator[str]:
    runner = web.AppRunner(create_app(Settings(**settings)), shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_signaling_list_is_public_and_comes_from_the_setting() -> None:
    urls = ["https://b1.example.org", "http://10.0.0.2:8082/"]
    async with serve(**SECURE, signaling_urls=urls) as url, aiohttp.ClientSession() as http:
        assert (await http.get(f"{url}/api/v1/bridges")).status == 401  # admin API: token
        response = await http.get(f"{url}/api/v1/signaling")  # no token
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.json()
        assert body["urls"] == urls
        assert body["ws"] == ["wss://b1.example.org/ws", "ws://10.0.0.2:8082/ws"]


async def test_signaling_list_is_empty_without_the_setting() -> None:
    # host 0.0.0.0 and no public_url: offering the listen address would strand remote pages
    async with serve(**SECURE, host="0.0.0.0") as url, aiohttp.ClientSession() as http:
        body = await (await http.get(f"{url}/api/v1/signaling")).json()
        assert (body["urls"], body["ws"]) == ([], [])


async def test_signaling_list_stays_on_the_public_port_with_admin_listen() -> None:
    async with serve(**SECURE, admin_listen="127.0.0.1:1",
                     signaling_urls=["http://a:1"]) as url, aiohttp.ClientSession() as http:
        assert (await http.get(f"{url}/api/v1/bridges")).status == 404  # admin moved away
        body = await (await http.get(f"{url}/api/v1/signaling")).json()
        assert body["ws"] == ["ws://a:1/ws"]
