"""Scenario files: TOML -> validated, frozen settings.

Rules:
- Every key is documented in docs/scenarios.md; an unknown key or a wrong form raises
  ``ScenarioError`` naming the dotted key and the form it expects, never a bare KeyError.
- ``[routing]`` and ``[costs]`` are handed to core unchanged (``RoutingConfig.from_mapping``,
  ``CostTable`` via ``costmodel``), so a table that works here works in production.
- Paths inside a scenario (trace, calibration) are relative to the scenario file.

The settings dataclasses live in ``scenario_settings`` and the section parsers in
``scenario_sections``; every name is re-exported here, the module callers import.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sfu_balancer.core import RoutingConfig

from .costmodel import CostModel
from .scenario_sections import (
    ScenarioError,
    Table,
    parse_autoscale,
    parse_events,
    parse_fleet,
    parse_sim,
    parse_workload,
)
from .scenario_settings import (
    DIURNAL_PROFILES,
    EVENT_ACTIONS,
    SURGES,
    Autoscale,
    BridgeGroup,
    FleetEvent,
    PlanSettings,
    SimSettings,
    StatsSettings,
    WorkloadSettings,
)

__all__ = [
    "DIURNAL_PROFILES",
    "EVENT_ACTIONS",
    "SURGES",
    "Autoscale",
    "BridgeGroup",
    "FleetEvent",
    "PlanSettings",
    "Scenario",
    "ScenarioError",
    "SimSettings",
    "StatsSettings",
    "WorkloadSettings",
    "load_scenario",
    "parse_scenario",
]


@dataclass(frozen=True)
class Scenario:
    name: str
    sim: SimSettings
    workload: WorkloadSettings
    fleet: tuple[BridgeGroup, ...]
    autoscale: Autoscale
    events: tuple[FleetEvent, ...]
    stats: StatsSettings
    routing: dict[str, Any]
    costs: CostModel
    plan: PlanSettings
    source: Path | None = None
    routing_config: RoutingConfig = field(init=False)

    def __post_init__(self) -> None:
        try:
            config = RoutingConfig.from_mapping(self.routing)
        except (ValueError, TypeError) as exc:
            raise ScenarioError(f"[routing]: {exc}") from None
        object.__setattr__(self, "routing_config", config)

    @property
    def bridges(self) -> int:
        return sum(g.count for g in self.fleet)

    def config_for(self, policy: str) -> RoutingConfig:
        """The scenario's [routing] table with ``policy`` swapped in.

        ``routing.params`` belong to ``routing.policy`` only; ``[sim.policy_params.NAME]`` gives
        parameters to the other compared policies (it stays out of [routing], which production
        must accept unchanged)."""
        routing = dict(self.routing)
        own = routing.get("params", {}) if routing.get("policy", "balanced") == policy else {}
        routing.update(policy=policy, params=self.sim.policy_params.get(policy, own))
        try:
            return RoutingConfig.from_mapping(routing)
        except (ValueError, TypeError) as exc:
            raise ScenarioError(f"[routing] with policy {policy!r}: {exc}") from None

    def with_fleet_size(self, count: int) -> Scenario:
        """Same scenario with ``count`` bridges like the first group, autoscaling off (plan)."""
        first = self.fleet[0]
        return replace(self, fleet=(replace(first, count=count),),
                       autoscale=replace(self.autoscale, enabled=False))


def load_scenario(path: str | Path, **overrides: Any) -> Scenario:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return parse_scenario(data, name=path.stem, base=path.parent, **overrides)


def parse_scenario(data: dict[str, Any], name: str = "scenario", base: Path | None = None,
                   **overrides: Any) -> Scenario:
    """``overrides`` replace [sim] keys (``seeds``, ``policies``, ``days``, ...) after parsing."""
    top = Table(data, "")
    name = str(top.raw("name", name))
    stats_t = top.sub("stats")
    stats = StatsSettings(
        report_interval_s=stats_t.number("report_interval_s", 5.0, strict_low=True),
        noise=stats_t.number("noise", 0.0, high=1.0),
        delay_s=stats_t.number("delay_s", 0.0),
    )
    stats_t.done()
    sim = parse_sim(top.sub("sim"), stats, overrides)
    workload = parse_workload(top.sub("workload"), base)
    fleet_t = top.sub("fleet")
    fleet = parse_fleet(fleet_t)
    autoscale = parse_autoscale(fleet_t.sub("autoscale"))
    fleet_t.done()
    events = parse_events(top.raw("events", []), sum(g.count for g in fleet))
    routing = top.raw("routing", {})
    if not isinstance(routing, dict):
        raise ScenarioError(f"[routing] must be a table, got {routing!r}")
    costs_raw = top.raw("costs", {})
    if not isinstance(costs_raw, dict):
        raise ScenarioError(f"[costs] must be a table, got {costs_raw!r}")
    try:
        costs = CostModel.from_scenario(costs_raw, base)
    except ValueError as exc:
        raise ScenarioError(f"[costs]: {exc}") from None
    plan_t = top.sub("plan")
    plan = PlanSettings(plan_t.number("max_overload_bridge_s", 0.0),
                        plan_t.integer("max_bridges", 256, low=1))
    plan_t.done()
    top.done()
    return Scenario(name, sim, workload, fleet, autoscale, events, stats, routing, costs,
                    plan, source=base)
