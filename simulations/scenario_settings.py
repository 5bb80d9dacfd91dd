"""Scenario settings: the frozen sections of a parsed scenario (``scenario_sections`` builds
them from TOML, ``scenario.Scenario`` holds them).

Pure data: no parsing here, and nothing imported beyond the standard library. Paths are already
resolved (relative to the scenario file) by the time they reach these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DIURNAL_PROFILES = ("office", "school", "flat")
SURGES = ("exponential", "step", "none")
EVENT_ACTIONS = ("fail", "drain")


@dataclass(frozen=True)
class SimSettings:
    horizon_s: float
    tick_s: float
    seeds: int = 3
    policies: tuple[str, ...] = ("balanced", "least_loaded", "power_of_d", "jicofo_single")
    rebalance_every_s: float = 60.0
    start_weekday: int = 0  # 0 = Monday; days 5 and 6 of each week get the weekend factor
    warmup_s: float = 0.0  # metrics ignore the first warmup_s seconds
    policy_params: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkloadSettings:
    conferences_per_day: float = 2000.0
    surge: str = "none"
    to_per_day: float = 2000.0
    over_days: float = 1.0  # exponential: days to go from -> to; step: the day of the step
    size_alpha: float = 1.43
    size_min: int = 2
    size_max: int = 100
    duration_median_s: float = 1800.0
    duration_sigma: float = 1.0
    duration_max_s: float = 8 * 3600.0
    early_fraction: float = 0.8
    early_mean_s: float = 60.0
    lead_early_s: float = 0.0  # school: the first member joins this long before the start
    diurnal: str = "office"
    weekend_factor: float = 0.3
    trace: Path | None = None
    burst_at_s: float = 0.0  # burst: ``burst_conferences`` extra conferences start uniformly
    burst_conferences: int = 0  # within ``burst_over_s`` of ``burst_at_s`` (restart storm)
    burst_over_s: float = 60.0


@dataclass(frozen=True)
class BridgeGroup:
    count: int
    cores: float
    egress_mbps: float
    ingress_mbps: float
    region: str = "default"


@dataclass(frozen=True)
class Autoscale:
    enabled: bool = False
    min_bridges: int = 1
    max_bridges: int = 64
    scale_up_at: float = 0.7  # core fleet_utilization above which one bridge is provisioned
    scale_down_at: float = 0.35  # below which the least loaded bridge is drained
    provisioning_delay_s: float = 120.0
    cooldown_s: float = 300.0
    drain_deadline_s: float = 1800.0


@dataclass(frozen=True)
class FleetEvent:
    at_s: float
    action: str
    bridge: int
    deadline_s: float = 0.0


@dataclass(frozen=True)
class StatsSettings:
    report_interval_s: float = 5.0
    noise: float = 0.0  # relative std-dev of a report's load (one factor, all components)
    delay_s: float = 0.0  # reports reach the balancer this long after they are measured


@dataclass(frozen=True)
class PlanSettings:
    max_overload_bridge_s: float = 0.0  # mean over seeds that a fleet may show and still pass
    max_bridges: int = 256
