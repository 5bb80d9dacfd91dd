"""Scenario sections: reading TOML tables into the frozen settings of ``scenario_settings``.

Rules:
- Every key is read through ``Table``, which remembers the keys used: ``done()`` reports any
  leftover as unknown, with the known keys, so a typo is never silently ignored.
- Every refusal is a ``ScenarioError`` naming the dotted key and the form it expects.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sfu_balancer.core.policies import policy_names

from .scenario_settings import (
    DIURNAL_PROFILES,
    EVENT_ACTIONS,
    SURGES,
    Autoscale,
    BridgeGroup,
    FleetEvent,
    SimSettings,
    StatsSettings,
    WorkloadSettings,
)


class ScenarioError(ValueError):
    """A scenario key is missing, unknown or has the wrong form."""


class Table:
    """Reads one TOML table, remembering which keys were used, so leftovers can be reported."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(f"{path} must be a table, got {data!r}")
        self.data, self.path, self.used = data, path, set[str]()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def raw(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.data.get(name, default)

    def number(self, name: str, default: float | None, low: float = 0.0,
               high: float = math.inf, strict_low: bool = False) -> float:
        value = self.raw(name, default)
        if value is None:
            raise ScenarioError(f"{self.key(name)} is required: a number")
        ok = (not isinstance(value, bool) and isinstance(value, int | float)
              and math.isfinite(value) and value <= high
              and (value > low if strict_low else value >= low))
        if not ok:
            bound = f"> {low}" if strict_low else f">= {low}"
            if math.isfinite(high):
                bound += f" and <= {high}"
            raise ScenarioError(f"{self.key(name)} must be a number {bound}, got {value!r}")
        return float(value)

    def integer(self, name: str, default: int | None, low: int = 0) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ScenarioError(f"{self.key(name)} must be an integer >= {low}, got {value!r}")
        return value

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.raw(name, default)
        if value not in options:
            raise ScenarioError(f"{self.key(name)} must be one of {list(options)}, got {value!r}")
        return str(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise ScenarioError(f"{self.key(name)} must be true or false, got {value!r}")
        return value

    def sub(self, name: str) -> Table:
        return Table(self.raw(name, {}), self.key(name))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            where = f"[{self.path}]" if self.path else "the top level"
            raise ScenarioError(
                f"unknown key(s) {unknown} in {where}; known keys: {sorted(self.used)}")



def parse_sim(t: Table, stats: StatsSettings, overrides: dict[str, Any]) -> SimSettings:
    given = {k: v for k, v in overrides.items() if v is not None}
    data = {k: v for k, v in t.data.items()
            if not ({"days", "hours"} & set(given) and k in ("days", "hours"))}
    data.update(given)
    t = Table(data, "sim")
    if "days" in data and "hours" in data:
        raise ScenarioError("sim: give either sim.days or sim.hours, not both")
    horizon = (t.number("hours", None, strict_low=True) * 3600.0 if "hours" in data
               else t.number("days", 1.0, strict_low=True) * 86400.0)
    tick = t.number("tick_s", stats.report_interval_s, strict_low=True)
    policies = t.raw("policies", list(SimSettings.policies))
    if isinstance(policies, str):
        policies = [p.strip() for p in policies.split(",") if p.strip()]
    if not isinstance(policies, list) or not policies or not all(
            isinstance(p, str) for p in policies):
        raise ScenarioError(f"sim.policies must be a non-empty list of policy names, "
                            f"got {policies!r}")
    for policy in policies:
        if policy not in policy_names():
            raise ScenarioError(f"sim.policies: unknown policy {policy!r}; "
                                f"known policies: {', '.join(policy_names())}")
    sim = SimSettings(
        horizon_s=horizon, tick_s=tick, seeds=t.integer("seeds", 3, low=1),
        policies=tuple(dict.fromkeys(policies)),
        rebalance_every_s=t.number("rebalance_every_s", 60.0),
        start_weekday=t.integer("start_weekday", 0),
        warmup_s=t.number("warmup_s", 0.0),
        policy_params=_policy_params(t.raw("policy_params", {})),
    )
    if sim.start_weekday > 6:
        raise ScenarioError(f"sim.start_weekday must be an integer in 0..6, got "
                            f"{sim.start_weekday}")
    t.done()
    return sim


def _policy_params(raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ScenarioError("sim.policy_params must be a table of tables "
                            f"([sim.policy_params.NAME] with that policy's params), got {raw!r}")
    for policy in raw:
        if policy not in policy_names():
            raise ScenarioError(f"sim.policy_params: unknown policy {policy!r}; "
                                f"known policies: {', '.join(policy_names())}")
    return dict(raw)


def parse_workload(t: Table, base: Path | None) -> WorkloadSettings:
    trace = t.raw("trace")
    trace_path = None
    if trace is not None:
        if not isinstance(trace, str) or not trace:
            raise ScenarioError(f"workload.trace must be a path string, got {trace!r}")
        trace_path = (base or Path.cwd()) / trace
    size, duration, joins, diurnal = t.sub("size"), t.sub("duration"), t.sub("joins"), \
        t.sub("diurnal")
    burst = t.sub("burst")
    start = t.number("conferences_per_day", 2000.0)
    w = WorkloadSettings(
        conferences_per_day=start,
        surge=t.choice("surge", "none", SURGES),
        to_per_day=t.number("to_per_day", start),
        over_days=t.number("over_days", 1.0, strict_low=True),
        size_alpha=size.number("alpha", 1.43, strict_low=True),
        size_min=size.integer("min", 2, low=1),
        size_max=size.integer("max", 100, low=1),
        duration_median_s=duration.number("median_s", 1800.0, strict_low=True),
        duration_sigma=duration.number("sigma", 1.0),
        duration_max_s=duration.number("max_s", 8 * 3600.0, strict_low=True),
        early_fraction=joins.number("early_fraction", 0.8, high=1.0),
        early_mean_s=joins.number("early_mean_s", 60.0),
        lead_early_s=joins.number("lead_early_s", 0.0),
        diurnal=diurnal.choice("profile", "office", DIURNAL_PROFILES),
        weekend_factor=diurnal.number("weekend_factor", 0.3),
        trace=trace_path,
        burst_at_s=burst.number("at_s", 0.0),
        burst_conferences=burst.integer("conferences", 0),
        burst_over_s=burst.number("over_s", 60.0, strict_low=True),
    )
    if w.size_max < w.size_min:
        raise ScenarioError(f"workload.size.max must be >= workload.size.min ({w.size_min}), "
                            f"got {w.size_max}")
    if w.size_max > 127:
        raise ScenarioError(f"workload.size.max must be an integer <= 127, got {w.size_max}")
    for sub in (size, duration, joins, diurnal, burst):
        sub.done()
    t.done()
    return w


def parse_fleet(t: Table) -> tuple[BridgeGroup, ...]:
    groups = t.raw("bridges", [])
    if not isinstance(groups, list) or not groups:
        raise ScenarioError("fleet.bridges must be a non-empty array of tables "
                            "([[fleet.bridges]] with count, cores, egress_mbps, region)")
    out = []
    for i, raw in enumerate(groups):
        g = Table(raw, f"fleet.bridges[{i}]")
        egress = g.number("egress_mbps", 10000.0, strict_low=True)
        out.append(BridgeGroup(
            count=g.integer("count", 1, low=0), cores=g.number("cores", 8.0, strict_low=True),
            egress_mbps=egress, ingress_mbps=g.number("ingress_mbps", egress, strict_low=True),
            region=str(g.raw("region", "default"))))
        g.done()
    if sum(g.count for g in out) < 1:
        raise ScenarioError("fleet.bridges: the counts must add up to at least 1 bridge")
    return tuple(out)


def parse_autoscale(t: Table) -> Autoscale:
    a = Autoscale(
        enabled=t.boolean("enabled", False),
        min_bridges=t.integer("min_bridges", 1, low=1),
        max_bridges=t.integer("max_bridges", 64, low=1),
        scale_up_at=t.number("scale_up_at", 0.7, high=1.0),
        scale_down_at=t.number("scale_down_at", 0.35, high=1.0),
        provisioning_delay_s=t.number("provisioning_delay_s", 120.0),
        cooldown_s=t.number("cooldown_s", 300.0),
        drain_deadline_s=t.number("drain_deadline_s", 1800.0),
    )
    if a.scale_down_at >= a.scale_up_at:
        raise ScenarioError("fleet.autoscale.scale_down_at must be a number below "
                            f"scale_up_at ({a.scale_up_at}), got {a.scale_down_at}")
    t.done()
    return a


def parse_events(raw: Any, bridges: int) -> tuple[FleetEvent, ...]:
    if not isinstance(raw, list):
        raise ScenarioError("events must be an array of tables ([[events]] with at_s, action, "
                            "bridge)")
    out = []
    for i, item in enumerate(raw):
        e = Table(item, f"events[{i}]")
        event = FleetEvent(e.number("at_s", None), e.choice("action", "fail", EVENT_ACTIONS),
                           e.integer("bridge", None, low=0), e.number("deadline_s", 0.0))
        if event.bridge >= bridges:
            raise ScenarioError(f"events[{i}].bridge must be an index < {bridges} "
                                f"(the initial fleet), got {event.bridge}")
        e.done()
        out.append(event)
    return tuple(sorted(out, key=lambda ev: ev.at_s))
