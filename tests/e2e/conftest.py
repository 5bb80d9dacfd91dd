"""Browser end-to-end fixtures: ``sfu-balancer dev`` as a subprocess and a headless Chromium.

Everything listens on 127.0.0.1. The dev process runs in its own session (process group); its
bridges start their own sessions too, so teardown stops the dev process (which stops its
bridges), then kills whatever is left: the dev group and every bridge pid the API reported.

Without Chromium, Playwright or the commands these tests run, they skip; with the environment
variable CI set (``.ci/run`` sets CI=1) they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--headless=new",
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    # the dev bridges gather on 127.0.0.1 only: let Chromium use loopback and show real
    # addresses instead of mDNS names (same as tests/bridges/test_chromium.py)
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
]
HAVE_CHROMIUM = CHROMIUM.exists()
READY_TIMEOUT_S = 90.0
STOP_GRACE_S = 15.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the test for a missing tool, or fail it when CI is set."""
    if in_ci():
        pytest.fail(f"{reason}, and CI is set: browser tests must run in CI", pytrace=False)
    pytest.skip(reason)


def _sfu_balancer() -> str:
    beside = Path(sys.executable).with_name("sfu-balancer")
    found = str(beside) if beside.exists() else shutil.which("sfu-balancer")
    if found is None:
        unavailable("the sfu-balancer command is not installed")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _is_bridge(pid: int) -> bool:
    try:
        return b"bridge" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class DevServer:
    """``sfu-balancer dev --bridges N --port P`` in a subprocess."""

    def __init__(self, log_path: Path, bridges: int = 2, admin_token: str | None = None) -> None:
        self.bridge_count = bridges
        self.admin_token = admin_token
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.bridge_pids: set[int] = set()
        self.session: aiohttp.ClientSession | None = None

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.admin_token is not None:
            env["SFUB_ADMIN_TOKEN"] = self.admin_token
        with open(self.log_path, "wb") as log:
            return subprocess.Popen(
                [_sfu_balancer(), "dev", "--bridges", str(self.bridge_count),
                 "--port", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)

    def events(self, limit: int = 80) -> list[str]:
        """The balancer's own log lines (no ICE or access-log noise)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        keep = [line for line in text.splitlines()
                if "aioice" not in line and "aiohttp.access" not in line]
        return keep[-limit:]

    async def start(self) -> None:
        self.process = await asyncio.to_thread(self._spawn)
        headers = {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5),
                                             headers=headers)
        await self.wait_ready()

    async def get_json(self, path: str) -> Any:
        assert self.session is not None
        async with self.session.get(self.url(path)) as response:
            response.raise_for_status()
            return await response.json()

    async def bridges(self) -> list[dict[str, Any]]:
        bridges: list[dict[str, Any]] = (await self.get_json("/api/v1/bridges"))["bridges"]
        self.bridge_pids.update(b["pid"] for b in bridges if isinstance(b.get("pid"), int))
        return bridges

    async def wait_ready(self) -> None:
        """Until /readyz answers 200 and all N bridges serve and have reported."""
        assert self.process is not None and self.session is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"sfu-balancer dev exited with {self.process.returncode}:\n"
                                     f"{self.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with self.session.get(self.url("/readyz")) as response:
                    ready = response.status == 200
                if ready:
                    serving = [b for b in await self.bridges()
                               if b["state"] == "serving" and b["load"] is not None]
                    if len(serving) >= self.bridge_count:
                        return
            if loop.time() > deadline:
                raise AssertionError(f"sfu-balancer dev not ready after {READY_TIMEOUT_S} s:\n"
                                     f"{self.log_tail()}")
            await asyncio.sleep(0.25)

    async def stop(self) -> None:
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.bridges()  # remember every bridge pid before stopping
            await self.session.close()
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(process.wait, STOP_GRACE_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # anything left in the dev group
        await asyncio.to_thread(process.wait)
        loop = asyncio.get_running_loop()
        for pid in self.bridge_pids:
            if _alive(pid) and _is_bridge(pid):
                for kill in (os.killpg, os.kill):  # each bridge leads its own group
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill(pid, signal.SIGKILL)
        deadline = loop.time() + 10
        while any(_alive(pid) and _is_bridge(pid) for pid in self.bridge_pids):
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.1)


@pytest.fixture
async def dev_server(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[DevServer]:
    """``sfu-balancer dev --bridges 2``; ``@pytest.mark.admin_token("x")`` sets SFUB_ADMIN_TOKEN."""
    marker = request.node.get_closest_marker("admin_token")
    server = DevServer(tmp_path / "sfu-balancer-dev.log",
                       admin_token=marker.args[0] if marker else None)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        print(f"--- sfu-balancer dev log (tail) ---\n{server.log_tail(40)}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "admin_token(token): run sfu-balancer dev with this "
                                       "admin token (SFUB_ADMIN_TOKEN)")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        unavailable("Chromium is not installed at /usr/bin/chromium")
    try:
        playwright_api: Any = importlib.import_module("playwright.async_api")
    except ImportError:
        unavailable("Playwright (python) is not installed")
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()
