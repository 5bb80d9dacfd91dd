"""Chromium through two balancer instances sharing a private redis-server: instance kill.

Production-like settings (not dev): room tokens, a bridge secret, an admin token, and
``signaling_urls`` listing both instances. Two real bridge processes dial both instances. Two
pages load ``/r/<room>`` from instance A; the page reads the list from ``/api/v1/signaling``
(public: no admin token) and signals through A. A is killed with SIGKILL: both pages reconnect
to the next URL of the list, B (another origin: the balancer checks no ``Origin``), rejoin with
the same participant ids, and decode each other's video again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sfu_balancer.service.auth import create_room_token
from tests.redis.cluster import FAKE_OFFER, Instance, wait_async
from tests.redis.conftest import REDIS_SERVER, RedisServer

from .conftest import free_port, unavailable
from .pages import (
    CONNECT_TIMEOUT_MS,
    FAILOVER_TIMEOUT_MS,
    FRAMES,
    dataset,
    explain,
    open_page,
    wait_connected,
    wait_decoding,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

API_KEY, API_SECRET = "e2e", "s" * 40
BRIDGE_SECRET = "e2e-bridge-secret-0123456789"
ADMIN_TOKEN = "e2e-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
READY_S = 90.0
WARM_UP_S = 180.0
HAVE_REDIS = Path(REDIS_SERVER).exists()

# Keeps every state the page goes through (the page may pass 'reconnecting' quickly).
WATCH_STATES = """
window.__states = [];
new MutationObserver(() => window.__states.push(document.body.dataset.state))
  .observe(document.body, {attributes: true, attributeFilter: ['data-state']});
"""


class FailoverCluster:
    """redis-server, two ``sfu-balancer serve`` instances and two bridges, all on loopback."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis = RedisServer(workdir)
        ports = [free_port() for _ in range(2)]
        self.urls = [f"http://127.0.0.1:{p}" for p in ports]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SFUB_")}
        env |= {"PYTHONUNBUFFERED": "1", "SFUB_DEV": "false", "SFUB_LOG_FORMAT": "json",
                "SFUB_LOG_LEVEL": "INFO", "SFUB_ADMIN_TOKEN": ADMIN_TOKEN,
                "SFUB_BRIDGE_SECRET": BRIDGE_SECRET,
                "SFUB_API_KEYS": json.dumps({API_KEY: API_SECRET}),
                "SFUB_SIGNALING_URLS": json.dumps(self.urls),
                "SFUB_REDIS__URL": self.redis.url,
                "SFUB_REDIS__PREFIX": f"e2e{uuid.uuid4().hex[:6]}",
                "SFUB_REDIS__LEASE_TTL_S": "5", "SFUB_REDIS__TIMEOUT_S": "2.0",
                "SFUB_REPORT_INTERVAL_S": "0.5", "SFUB_FAILED_AFTER_INTERVALS": "20",
                "SFUB_REBALANCE_INTERVAL_S": "3600", "SFUB_SEED": "7",
                "SFUB_LIMITS__CONNECTIONS_PER_IP_PER_MIN": "0",
                "SFUB_LIMITS__JOINS_PER_IP_PER_MIN": "0"}
        self.instances = [Instance(p, env, workdir / f"instance-{i}.log")
                          for i, p in enumerate(ports)]
        self.bridges: list[asyncio.subprocess.Process] = []
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))

    async def start(self) -> None:
        await asyncio.to_thread(self.redis.start)
        await asyncio.gather(*(i.start(self.session) for i in self.instances))
        balancers = [arg for url in self.urls for arg in ("--balancer", url)]
        for n in (1, 2):
            with (self.workdir / f"bridge-{n}.log").open("ab") as log:
                self.bridges.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bridges", *balancers, "--id", f"e2e-bridge-{n}",
                    "--host", "localhost", "--ice-address", "127.0.0.1",
                    "--report-interval", "0.5", "--drain-timeout", "1", "--log-level", "INFO",
                    "--secret", BRIDGE_SECRET, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                    stderr=log, start_new_session=True))
        await self.wait_serving()
        for instance in self.instances:
            await self.warm_up(instance)
        await self.wait_serving()  # a long compile may have cut the bridges' links

    async def wait_serving(self) -> None:
        for instance in self.instances:
            await wait_async(functools.partial(self._serving, instance), READY_S,
                             f"both bridges serving on {instance.url}")

    async def warm_up(self, instance: Instance) -> None:
        """One join through ``instance`` with a fake offer, which the bridge refuses. An
        instance's first placement compiles the routing code (numba, cached on disk): with a
        cold cache that blocks the instance for tens of seconds, and must not happen under the
        pages' joins, whose 30 s join timeout would move them to B before the kill."""
        room = f"warm-{uuid.uuid4().hex[:8]}"
        token = create_room_token(api_key=API_KEY, secret=API_SECRET, room=room,
                                  identity="warm-up", valid_for_s=900)
        async with self.session.ws_connect(f"{instance.url}/ws") as ws:
            await ws.send_str(json.dumps({"type": "join", "room": room, "token": token,
                                          "sdp": FAKE_OFFER}))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WARM_UP_S
            reply: dict[str, Any] = {}
            while reply.get("type") not in ("joined", "error"):  # skip hints (rejoin, offer)
                frame = await ws.receive(timeout=max(0.1, deadline - loop.time()))
                assert frame.type == aiohttp.WSMsgType.TEXT, frame
                reply = json.loads(frame.data)
            if reply["type"] == "joined":
                await ws.send_str(json.dumps({"type": "leave"}))

    async def _serving(self, instance: Instance) -> bool:
        for bridge in self.bridges:
            if bridge.returncode is not None:
                raise AssertionError(f"a bridge exited with {bridge.returncode}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            bridges: list[dict[str, Any]] = (
                await self.get(instance, "/api/v1/bridges", ADMIN))["bridges"]
            serving = [b for b in bridges if b["state"] == "serving" and b["load"] is not None]
            return len(serving) >= len(self.bridges)
        return False

    async def get(self, instance: Instance, path: str,
                  headers: dict[str, str] | None = None) -> Any:
        async with self.session.get(f"{instance.url}{path}", headers=headers) as response:
            response.raise_for_status()
            return await response.json()

    async def status(self, instance: Instance, path: str) -> int:
        async with self.session.get(f"{instance.url}{path}") as response:
            return response.status

    def events(self, limit: int = 80) -> list[str]:
        lines = []
        for path in sorted(self.workdir.glob("*.log")):
            if path.name == "redis.log":
                continue
            text = path.read_text(errors="replace").splitlines()
            keep = [line for line in text if "aioice" not in line and "aiohttp.access" not in line]
            lines += [f"{path.stem}: {line[:400]}" for line in keep[-limit // 4:]]
        return lines

    async def close(self) -> None:
        await asyncio.gather(*(i.stop() for i in self.instances), return_exceptions=True)
        for bridge in self.bridges:
            if bridge.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(bridge.pid, signal.SIGKILL)
            await bridge.wait()
        await self.session.close()
        await asyncio.to_thread(self.redis.kill)


@pytest.fixture
async def failover_cluster(tmp_path: Path) -> AsyncIterator[FailoverCluster]:
    if not HAVE_REDIS:
        unavailable(f"redis-server is not installed ({REDIS_SERVER})")
    cluster = FailoverCluster(tmp_path)
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.close()


def ws_url(url: str) -> str:
    return "ws" + url.removeprefix("http") + "/ws"


async def test_pages_reconnect_through_another_instance_after_kill(
        failover_cluster: FailoverCluster, browser: Any) -> None:
    cluster = failover_cluster
    a, b = cluster.instances
    # the list is public (the admin API is not), from signaling_urls, on every instance
    assert await cluster.status(a, "/api/v1/bridges") == 401
    for instance in (a, b):
        listing = await cluster.get(instance, "/api/v1/signaling")
        assert listing["ws"] == [ws_url(u) for u in cluster.urls], listing

    room = f"kill-{uuid.uuid4().hex[:8]}"
    log: list[str] = []
    sockets: list[list[str]] = [[], []]  # WebSocket URLs each page opened, in order
    pages = []
    for i in range(2):
        token = create_room_token(api_key=API_KEY, secret=API_SECRET, room=room,
                                  identity=f"person-{i}", valid_for_s=900)
        pages.append(await open_page(browser, f"{a.url}/r/{room}?token={token}", log,
                                     f"page{i}", sockets=sockets[i]))
    try:
        before = await asyncio.gather(*(wait_connected(p) for p in pages))
        ids = [d["participant"] for d in before]
        assert ids[0] and ids[1] and ids[0] != ids[1]
        assert [urls[-1] for urls in sockets] == [ws_url(a.url)] * 2, sockets
        await asyncio.gather(wait_decoding(pages[0], ids[1]), wait_decoding(pages[1], ids[0]))
        for page in pages:
            await page.evaluate(WATCH_STATES)
        opened = [len(urls) for urls in sockets]

        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        a.kill()  # SIGKILL to the instance's process group
        assert a.process is not None
        await a.process.wait()

        await asyncio.gather(*(p.wait_for_function(
            "window.__states.includes('reconnecting')", polling=100,
            timeout=CONNECT_TIMEOUT_MS) for p in pages))
        after = await asyncio.gather(*(wait_connected(p, deadline_ms=FAILOVER_TIMEOUT_MS)
                                       for p in pages))
        connected_s = loop.time() - killed_at
        assert [d["participant"] for d in after] == ids, "a failover keeps the participant id"
        for urls, count in zip(sockets, opened, strict=True):
            assert len(urls) > count and urls[-1] == ws_url(b.url), sockets
        # media again: frames decoded on the connections made after the kill, video shown
        await asyncio.gather(wait_decoding(pages[0], ids[1]), wait_decoding(pages[1], ids[0]))
        decoding_s = loop.time() - killed_at
        for page, other in zip(pages, reversed(ids), strict=True):
            width = await page.evaluate(
                "(id) => document.querySelector("
                "`video.remote[data-participant=\"${CSS.escape(id)}\"]`).videoWidth", other)
            assert width > 0
            assert (await dataset(page))["state"] == "connected"

        async def both_on_b() -> bool:
            rooms = (await cluster.get(b, "/api/v1/rooms", ADMIN))["rooms"]
            return any(r["name"] == room and r["participants"] == 2 for r in rooms)

        await wait_async(both_on_b, 30, f"room {room} with 2 participants in the shared state")
        print(f"\ninstance kill -9: both pages connected through B after {connected_s:.1f} s, "
              f"decoding {FRAMES} new frames each after {decoding_s:.1f} s; sockets {sockets}")
    except Exception as exc:
        raise AssertionError(f"{exc}\n{await explain(pages, log, cluster)}") from exc
    finally:
        for page in pages:
            await page.context.close()
