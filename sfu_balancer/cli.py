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


def _run(main: Awaitable[None], event_loop: str = "auto") -> None:
    """Run on uvloop when it is installed (or asked for), on asyncio otherwise (and say so)."""
    if event_loop == "asyncio":
        asyncio.run(main)  # type: ignore[arg-type]
        return
    try:
        import uvloop
    except ImportError:
        if event_loop == "uvloop":
            raise click.ClickException("event_loop = uvloop, but uvloop is not installed") from None
        click.echo("uvloop is not installed: running on the default asyncio loop", err=True)
        asyncio.run(main)  # type: ignore[arg-type]
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)  # type: ignore[arg-type]


def _reload(app: Any, config: Path | None) -> None:
    """SIGHUP: re-read ``[routing]`` and ``[costs]`` from the config file, if there is one
    (keep the old ones, and say why, when it is invalid), and the CIDR list files. Nobody is
    disconnected."""
    from sfu_balancer.service.keys import GUARD, ROUTER

    if config is not None:
        try:
            fresh = load_settings(config)
            app[ROUTER].reload_routing(fresh.routing, fresh.costs)
        except ValueError as exc:
            click.echo(f"SIGHUP: keeping the current routing: {exc}", err=True)
    try:
        app[GUARD].reload_lists()
    except (OSError, ValueError) as exc:
        click.echo(f"SIGHUP: keeping the current address lists: {exc}", err=True)


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
    from sfu_balancer.state import make_store
    from sfu_balancer.state.errors import StoreUnavailable

    configure(settings.log_format, settings.log_level, settings.dev)
    try:
        store = await make_store(settings)  # Redis when [redis] url is set
    except StoreUnavailable as exc:
        # click prints "Error: ..." and exits 1: never serve on a half-configured cluster
        raise click.ClickException(f"{exc} (check [redis] url / SFUB_REDIS__URL)") from None
    app = create_app(settings, store)
    # No SO_KEEPALIVE on accepted sockets (aiohttp sets it by default): liveness.py finds a
    # silent participant within seconds and bridge links ping every 10 s, while the kernel's
    # first keepalive probe comes after 2 h. It also spares uvloop a socket object per connection.
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5.0, tcp_keepalive=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1]
    admin_runner = None
    if settings.admin_listen is not None:
        from sfu_balancer.service.admin import create_admin_app
        from sfu_balancer.service.keys import ROUTER

        admin_host, _, admin_port = settings.admin_listen.rpartition(":")
        admin_runner = web.AppRunner(create_admin_app(app[ROUTER]), handle_signals=False)
        await admin_runner.setup()
        await web.TCPSite(admin_runner, admin_host, int(admin_port)).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Also without a config file: the address lists are files of their own.
    loop.add_signal_handler(signal.SIGHUP, _reload, app, config)
    try:
        if started is not None:
            await started(port)
        await stop.wait()
    finally:
        if stopping is not None:
            await stopping()
        if admin_runner is not None:
            await admin_runner.cleanup()
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
    _run(serve(settings, config), settings.event_loop)


DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """"90s", "30m", "1h", "7d" or plain seconds."""
    unit = text[-1:].lower()
    number = text[:-1] if unit in DURATION else text
    try:
        value = float(number) * DURATION.get(unit, 1)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 1h or 7d") from None
    if value <= 0:
        raise click.BadParameter("the duration must be positive")
    return value


@main.group("token")
def token_group() -> None:
    """Room tokens for participants."""


@token_group.command("create")
@click.option("--room", required=True, help='Room the token grants ("*" = every room).')
@click.option("--identity", required=True, help="Who the participant is (the token's sub).")
@click.option("--valid-for", default="1h", show_default=True, help="Lifetime: 90s, 30m, 1h, 7d.")
@click.option("--tier", type=click.Choice(["critical", "standard", "bulk"]), default=None,
              help="Admission tier carried by the token.")
@click.option("--tenant", default=None, help="Tenant whose quota the participant counts in.")
@click.option("--api-key", default=None, help="Issuer among api_keys [default: the only one].")
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False))
def token_create(room: str, identity: str, valid_for: str, tier: str | None,
                 tenant: str | None, api_key: str | None, config: Path | None) -> None:
    """Print a signed room token (LiveKit-shaped) for /r/ROOM?token=..."""
    from sfu_balancer.core import Tier
    from sfu_balancer.service.auth import create_room_token

    try:
        settings = load_settings(config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    keys = settings.api_keys
    if api_key is None:
        if len(keys) != 1:
            raise click.ClickException(
                f"choose --api-key among {sorted(keys)}" if keys
                else "no api_keys configured (settings file or SFUB_API_KEYS)")
        api_key = next(iter(keys))
    if api_key not in keys:
        raise click.ClickException(f"unknown api key {api_key!r}; known: {sorted(keys)}")
    click.echo(create_room_token(api_key=api_key, secret=keys[api_key], room=room,
                                 identity=identity, valid_for_s=parse_duration(valid_for),
                                 tier=Tier(tier) if tier else None, tenant=tenant))


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

    _run(run(), settings.event_loop)
