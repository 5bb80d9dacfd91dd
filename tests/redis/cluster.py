"""A distributed-mode cluster for tests and the bench: balancer instances as real processes
(``sfu-balancer serve``) sharing one Redis, fake bridges dialing every instance, and
participants that join over ``/ws`` and fail over between instances like the join page should:
on a dropped socket, reconnect to the next URL of ``/api/v1/signaling`` and rejoin with the
same participant id and its ``resume`` secret (valid on every instance: they share
``bridge_secret``). Everything listens on 127.0.0.1; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from .fake_bridge import FakeBridge

FAKE_OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
SFU_BALANCER = Path(sys.executable).with_name("sfu-balancer")
BRIDGE_SECRET = "cluster-bridge-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(predicate: Callable[[], bool], deadline_s: float, what: str,
                     step_s: float = 0.05) -> float:
    """Poll ``predicate`` until true; the seconds it took. TimeoutError names ``what``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"timed out after {deadline_s} s waiting for {what}")
        await asyncio.sleep(step_s)
    return time.monotonic() - started


async def wait_async(predicate: Callable[[], Awaitable[bool]], deadline_s: float, what: str,
                     step_s: float = 0.1) -> float:
    """``wait_until`` for a predicate that must await (a Redis read)."""
    started = time.monotonic()
    while not await predicate():
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"timed out after {deadline_s} s waiting for {what}")
        await asyncio.sleep(step_s)
    return time.monotonic() - started


class Instance:
    """One ``sfu-balancer serve`` process in its own process group."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path) -> None:
        self.port = port
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, session: aiohttp.ClientSession, deadline_s: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(SFU_BALANCER), "serve", "--port", str(self.port),
                env=self.env, stdout=log, stderr=log, start_new_session=True)
        started = time.monotonic()
        while time.monotonic() - started < deadline_s:
            if self.process.returncode is not None:
                raise RuntimeError(f"instance exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{self.url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"instance on {self.port} not healthy: {self.log_path.read_text()}")

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.kill()
            await self.process.wait()


class Participant:
    """A signaling-only participant: joins, keeps its socket, fails over as itself."""

    def __init__(self, cluster: Cluster, room: str, name: str, first: int) -> None:
        self.cluster = cluster
        self.room = room
        self.name = name  # for messages; the balancer gives the id
        self.id: str | None = None
        self.resume: str | None = None
        self.index = first  # which instance URL to use next
        self.bridge: str | None = None
        self.url: str | None = None
        self.joins = 0
        self.failovers = 0
        self.lost_at: float | None = None
        self.recovered_s: list[float] = []
        self.errors: list[str] = []  # codes of refused joins (each retried on the next URL)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.joined = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        self._closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        urls = self.cluster.urls
        backoff = 0.05
        for _attempt in range(200):  # bounded: a participant never retries forever
            url = urls[self.index % len(urls)]
            try:
                if await self._session(url):
                    backoff = 0.05
                    continue  # the socket dropped after a join: fail over at once
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.errors.append(type(exc).__name__)
            if self._closing:
                return
            self.index += 1  # this instance failed us: the next URL
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def _session(self, url: str) -> bool:
        """One socket to ``url``: join, then hold it. True if it dropped after joining."""
        session = self.cluster.session
        async with session.ws_connect(f"{url}/ws", heartbeat=5.0) as ws:
            self.ws = ws
            await ws.send_str(json.dumps(self._join()))
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    break
                message = json.loads(frame.data)
                if message.get("type") == "joined":
                    self.bridge, self.url = message["bridge"], url
                    self.id, self.resume = message["participant"], message["resume"]
                    self.joins += 1
                    if self.lost_at is not None:
                        self.recovered_s.append(time.monotonic() - self.lost_at)
                        self.lost_at = None
                    self.joined.set()
                elif message.get("type") == "error":
                    self.errors.append(str(message.get("code")))
                    return False  # refused here: try the next instance
                elif message.get("type") == "rejoin":
                    await ws.send_str(json.dumps(self._join()))
        if self._closing or not self.joined.is_set():
            return False
        self.failovers += 1
        self.lost_at = time.monotonic()
        self.joined.clear()
        self.index += 1
        return True

    def _join(self) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "join", "room": self.room, "sdp": FAKE_OFFER}
        if self.id is not None:
            message |= {"participant": self.id, "resume": self.resume}
        return message


class Cluster:
    def __init__(self, redis_url: str | None, prefix: str, workdir: Path, instances: int = 3,
                 bridges: int = 3, lease_ttl_s: float = 5.0,
                 extra_env: dict[str, str] | None = None) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        ports = [free_port() for _ in range(instances)]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        # Two cores run every process of the test: timings are generous so that a busy CPU
        # is never taken for a dead bridge, instance or Redis.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SFUB_")}
        env |= {"SFUB_DEV": "true", "SFUB_LOG_LEVEL": "WARNING", "SFUB_LOG_FORMAT": "json",
                "SFUB_BRIDGE_SECRET": BRIDGE_SECRET,  # also keys resume secrets (all instances)
                "SFUB_REPORT_INTERVAL_S": "0.5", "SFUB_REBALANCE_INTERVAL_S": "3600",
                "SFUB_REDIS__PREFIX": prefix, "SFUB_REDIS__LEASE_TTL_S": str(lease_ttl_s),
                "SFUB_REDIS__TIMEOUT_S": "2.0", "SFUB_FAILED_AFTER_INTERVALS": "20",
                "SFUB_SIGNALING_URLS": json.dumps(urls),
                "SFUB_LIMITS__CONNECTIONS_PER_IP_PER_MIN": "0",
                "SFUB_LIMITS__JOINS_PER_IP_PER_MIN": "0", "SFUB_SEED": "7"}
        if redis_url:
            env["SFUB_REDIS__URL"] = redis_url
        env |= extra_env or {}
        self.instances = [Instance(p, env, workdir / f"instance-{i}.log")
                          for i, p in enumerate(ports)]
        self.bridges = [FakeBridge(f"b{i + 1}", urls, secret=BRIDGE_SECRET)
                        for i in range(bridges)]
        self.participants: list[Participant] = []
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    @property
    def urls(self) -> list[str]:
        return [i.url for i in self.instances]

    async def start(self) -> None:
        await asyncio.gather(*(i.start(self.session) for i in self.instances))
        for bridge in self.bridges:
            await bridge.start()
        # every instance has every bridge linked and reported
        await wait_until(lambda: all(len(b.links) == len(self.instances)
                                     and all(n >= 2 for n in b.reports.values())
                                     for b in self.bridges), 30, "bridges on every instance")

    async def instance_json(self, instance: Instance, path: str) -> Any:
        async with self.session.get(f"{instance.url}{path}") as response:
            return await response.json()

    def join(self, room: str, name: str, first: int) -> Participant:
        p = Participant(self, room, name, first)
        self.participants.append(p)
        p.start()
        return p

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.participants))
        await asyncio.gather(*(i.stop() for i in self.instances))
        for bridge in self.bridges:
            await bridge.stop()
        await self.session.close()

    def allocations(self) -> dict[tuple[str, str], list[str]]:
        """(room, participant) -> bridges holding it (more than one would be a leak)."""
        result: dict[tuple[str, str], list[str]] = {}
        for bridge in self.bridges:
            for key in bridge.allocations:
                result.setdefault(key, []).append(bridge.id)
        return result
