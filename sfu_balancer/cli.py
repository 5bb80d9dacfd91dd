"""``sfu-balancer``: serve the balancer, or run everything locally with ``dev``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from sfu_balancer.settings import Settings, load_settings

DEV_ROOM = "hello"


def _run(main: Awaitable[None]) -> None:
    """Run on uvloop when it is installed, on asyncio otherwise (and say so)."""
    try:
        import uvloop
    except ImportError:
        click.echo("uvloop is not installed: running on the default asyncio loop", err=True)
        asyncio.run(main)  # type: ignore[arg-type]
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)  # type: ignore[arg-type]


def _reload(app: Any, config: Path) -> None:
    """SIGHUP: re-read ``[routing]`` and ``[costs]`` from the config file; keep the old ones
    (and say why) when the file is invalid. Nobody is disconnected."""
    from sfu_balancer.service.keys import ROUTER

    try:
        fresh = load_settings(config)
        app[ROUTER].reload_routing(fresh.routing, fresh.costs)
    except ValueError as exc:
        click.echo(f"SIGHUP: keeping the current routing: {exc}", err=True)


async def serve(
    settings: Settings,
    config: Path | None = None,
    started: Callable[[int], Awaitable[None]] | None = None,
    stopping: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; ``started`` gets the bound port once listening, and
    ``stopping`` runs before the server closes."""
    from aiohttp import web

    from sfu_balancer.service.app import create_app
    from sfu_balancer.service.logs import configure

    configure(settings.log_format, settings.log_level, settings.dev)
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if config is not None:
        loop.add_signal_handler(signal.SIGHUP, _reload, app, config)
    try:
        if started is not None:
            await started(port)
        await stop.wait()
    finally:
        if stopping is not None:
            await stopping()
        await runner.cleanup()


class DevBridges:
    """The local bridge processes of ``dev``: own process groups, stopped by us, in order."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self, port: int) -> None:
        for i in range(self.count):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bridges", "--balancer", f"http://127.0.0.1:{port}",
                "--id", f"dev-bridge-{i + 1}", "--region", "dev", "--host", "localhost",
                "--ice-address", "127.0.0.1", "--drain-timeout", "2",
                start_new_session=True,  # Ctrl-C reaches us; we stop the bridges ourselves
            )
            self.processes.append(process)

    async def stop(self, grace_s: float = 5.0) -> None:
        for process in self.processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sfu-balancer")
def main() -> None:
    """sfu-balancer: routing and signaling for self-hosted video conferencing."""


@main.command("serve")
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False),
              help="TOML settings file (see config-sample.toml).")
@click.option("--host", default=None, help="Listen address [settings: host].")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Listen port [settings: port].")
def serve_command(config: Path | None, host: str | None, port: int | None) -> None:
    """Serve the balancer with the given settings."""
    try:
        settings = load_settings(config, host=host, port=port)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not settings.dev and not settings.admin_token:
        click.echo("warning: no admin_token set: the admin API refuses every request", err=True)
    _run(serve(settings, config))


@main.command("dev")
@click.option("--bridges", "bridge_count", type=click.IntRange(0, 32), default=2,
              show_default=True, help="Local bridge processes to start.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False),
              help="Optional TOML settings file.")
def dev_command(bridge_count: int, port: int, config: Path | None) -> None:
    """Run the balancer, local bridges and the join page in one command; Ctrl-C stops all."""
    try:
        settings = load_settings(config, port=port, dev=True, host="127.0.0.1")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    bridges = DevBridges(bridge_count)

    async def started(bound: int) -> None:
        await bridges.start(bound)
        base = settings.public_url or f"http://127.0.0.1:{bound}"
        click.echo(f"sfu-balancer dev: {bridge_count} bridge(s)\n"
                   f"  join:      {base}/r/{DEV_ROOM}\n"
                   f"  dashboard: {base}/dashboard\n"
                   f"  metrics:   {base}/metrics\n"
                   "Ctrl-C stops everything.", err=False)
        sys.stdout.flush()

    async def run() -> None:
        try:
            await serve(settings, config, started, bridges.stop)
        finally:
            await bridges.stop()  # also when serving failed before it stopped them

    _run(run())
