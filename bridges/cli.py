"""``sfu-bridge``: one SFU worker process linked to every balancer instance.

SIGTERM (or Ctrl-C) drains: the bridge reports ``draining``, takes no new rooms, waits for its
rooms to empty for at most ``--drain-timeout`` seconds, releases whoever is left, says ``bye``
to every balancer and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

import click

from bridges import aiortc_adapter
from bridges.agent import Agent, AgentConfig
from bridges.sfu.worker import Worker
from sfu_balancer import __version__, wire


async def serve(
    config: AgentConfig, drain_timeout: float, emulate: bool = False,
    calibration: Path | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if emulate:
        from bridges.emulator import CostModelSampler, EmulatedWorker

        worker = EmulatedWorker()
        sampler = CostModelSampler(worker, config.capacity, calibration)
        agent = Agent(config, worker, sampler)
    else:
        await aiortc_adapter.verify_hooks()  # refuse to start on an aiortc that moved under us
        aiortc_adapter.ignore_close_races(loop)
        agent = Agent(config, Worker())
    logging.getLogger("bridges").info(
        "bridge %s (pid %d) linking to %s", config.bridge_id, os.getpid(),
        ", ".join(link.url for link in agent.links),
    )
    await agent.run(stop, drain_timeout)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--balancer", "balancers", multiple=True, required=True, metavar="URL",
              help="Balancer to link to (repeatable); its /bridge WebSocket is used.")
@click.option("--region", default="default", show_default=True)
@click.option("--egress-mbps", type=click.FloatRange(min=0, min_open=True), default=1000.0,
              show_default=True, help="Egress capacity of this host's NIC.")
@click.option("--ingress-mbps", type=click.FloatRange(min=0, min_open=True), default=1000.0,
              show_default=True, help="Ingress capacity of this host's NIC.")
@click.option("--cpu", "cpu_cores", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="CPU capacity of this worker, in cores.")
@click.option("--id", "bridge_id", default=None, help="Bridge id [default: HOST-PID].")
@click.option("--host", default=None, help="Host name reported in hello [default: hostname].")
@click.option("--report-interval", type=click.FloatRange(min=0.05), default=1.0,
              show_default=True, help="Seconds between load reports.")
@click.option("--ice-address", "ice_addresses", multiple=True, metavar="IP",
              help="Gather ICE candidates only on these addresses (repeatable); "
                   "default: every non-loopback address.")
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="On SIGTERM, longest wait for rooms to empty before exiting.")
@click.option("--secret", envvar="SFUB_BRIDGE_SECRET", default="", show_envvar=True,
              help="Shared bridge secret proved in every hello (the balancer's bridge_secret).")
@click.option("--emulate", is_flag=True,
              help="No media: answer allocations at once and report the load the simulator's "
                   "cost model gives the rooms held (load tests of the balancer).")
@click.option("--calibration", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="With --emulate: cost table JSON (bench/bridge_forwarding.py).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(
    balancers: tuple[str, ...], region: str, egress_mbps: float, ingress_mbps: float,
    cpu_cores: float, bridge_id: str | None, host: str | None, report_interval: float,
    ice_addresses: tuple[str, ...], drain_timeout: float, secret: str, emulate: bool,
    calibration: Path | None, log_level: str,
) -> None:
    """Run one SFU bridge worker."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if ice_addresses:
        aiortc_adapter.restrict_ice_addresses(ice_addresses)
    hostname = host or socket.gethostname()
    config = AgentConfig(
        bridge_id=bridge_id or f"{hostname}-{os.getpid()}",
        host=hostname,
        region=region,
        version=__version__,
        capacity=wire.Capacity(cpu=cpu_cores, egress_mbps=egress_mbps, ingress_mbps=ingress_mbps),
        balancers=list(balancers),
        report_interval=report_interval,
        secret=secret,
    )
    if calibration is not None and not emulate:
        raise click.UsageError("--calibration only applies with --emulate")
    if calibration is not None:
        from simulations.costmodel import CostModel

        try:  # refuse a file that is not a cost table before linking to anyone
            CostModel.from_scenario({"calibration": str(calibration.resolve())})
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    asyncio.run(serve(config, drain_timeout, emulate, calibration))
