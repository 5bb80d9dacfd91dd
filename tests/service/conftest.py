"""Fixtures for service tests: an in-process balancer, real bridge processes, aiortc clients
speaking the participant protocol over /ws. Everything stays on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

# The aiortc media clients are shared with the bridge tests.
sys.path.insert(0, str(Path(__file__).parent.parent / "bridges"))
from media_clients import wait_for

from bridges import aiortc_adapter
from sfu_balancer.service.app import create_app
from sfu_balancer.service.keys import ROUTER
from sfu_balancer.service.router import Router
from sfu_balancer.settings import Settings

from ..redis.fake_bridge import FakeBridge
from .clients import WsParticipant

aiortc_adapter.restrict_ice_addresses(["127.0.0.1"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One balancer (in this process) and bridge processes dialing it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.router: Router = self.app[ROUTER]
        self.runner = web.AppRunner(self.app, shutdown_timeout=2.0)
        self.port = 0
        self.bridges: dict[str, asyncio.subprocess.Process] = {}
        self.participants: list[WsParticipant] = []
        self.fakes: dict[str, FakeBridge] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def add_bridge(self, bridge_id: str, *extra: str) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridges", "--balancer", self.url, "--id", bridge_id,
            "--ice-address", "127.0.0.1", "--report-interval",
            str(self.settings.report_interval_s), "--drain-timeout", "1", "--log-level",
            "WARNING", *extra, start_new_session=True,
            env=os.environ | {"SFUB_BRIDGE_SECRET": self.settings.bridge_secret or ""})
        self.bridges[bridge_id] = process
        await wait_for(lambda: bridge_id in self.router.fleet.serving()
                       and self.router.fleet.entries[bridge_id].report is not None,
                       30, f"bridge {bridge_id} to link and report")

    async def add_fake_bridge(self, bridge_id: str, **options: Any) -> FakeBridge:
        """A FakeBridge (no media, canned SDP, synthetic load) linked and reporting."""
        fake = FakeBridge(bridge_id, [self.url], self.settings.report_interval_s,
                          secret=self.settings.bridge_secret, **options)
        self.fakes[bridge_id] = fake
        await fake.start()
        await wait_for(lambda: bridge_id in self.router.fleet.serving()
                       and self.router.fleet.entries[bridge_id].report is not None,
                       30, f"fake bridge {bridge_id} to link and report")
        return fake

    def kill_bridge(self, bridge_id: str) -> None:
        os.killpg(self.bridges[bridge_id].pid, signal.SIGKILL)

    async def participant(self, room: str, token: str | None = None,
                          **media: Any) -> WsParticipant:
        p = WsParticipant(self.url, room, token, **media)
        self.participants.append(p)
        await p.connect()
        return p

    async def close(self) -> None:
        for p in self.participants:
            with contextlib.suppress(Exception):
                await p.close()
        for process in self.bridges.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        for fake in self.fakes.values():
            await fake.stop()
        await self.runner.cleanup()


@pytest.fixture
async def cluster_factory() -> AsyncIterator[Callable[..., Awaitable[Cluster]]]:
    clusters: list[Cluster] = []

    async def make(bridges: int = 2, **settings: Any) -> Cluster:
        # every test client comes from 127.0.0.1: per-address limits would throttle the tests
        values: dict[str, Any] = {"dev": True, "report_interval_s": 0.5,
                                  "rebalance_interval_s": 3600.0, "seed": 7,
                                  "limits": {"connections_per_ip_per_min": 0,
                                             "joins_per_ip_per_min": 0}} | settings
        cluster = Cluster(Settings(**values))
        clusters.append(cluster)
        await cluster.start()
        await asyncio.gather(*(cluster.add_bridge(f"b{i + 1}") for i in range(bridges)))
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            await cluster.close()
