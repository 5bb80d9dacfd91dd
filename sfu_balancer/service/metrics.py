"""Prometheus metrics of one balancer instance (its own registry, so tests can run several)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter("sfub_decisions", "Routing decisions by reason",
                                 ["reason"], registry=r)
        self.refusals = Counter("sfub_refusals", "Refused joins and connections by code",
                                ["code"], registry=r)
        self.joins = Counter("sfub_joins", "Participants placed on a bridge", registry=r)
        self.late_allocations = Counter(
            "sfub_late_allocations_released",
            "Allocations a bridge confirmed after the join had given up, released", registry=r)
        self.rejoins = Counter("sfub_rejoins_requested",
                               "Participants told to rejoin, by reason", ["reason"], registry=r)
        self.bridge_failures = Counter("sfub_bridge_failures", "Bridges marked failed",
                                       ["cause"], registry=r)
        self.ws_errors = Counter("sfub_ws_errors", "Malformed or refused /ws messages",
                                 ["code"], registry=r)
        self.participants = Gauge("sfub_participants", "Participants connected", registry=r)
        self.rooms = Gauge("sfub_rooms", "Rooms with at least one participant", registry=r)
        self.bridge_stress = Gauge("sfub_bridge_stress", "Latest stress per bridge",
                                   ["bridge"], registry=r)
        self.bridge_up = Gauge("sfub_bridge_serving", "1 when the bridge takes participants",
                               ["bridge"], registry=r)
        self.decision_seconds = Histogram(
            "sfub_decision_seconds", "Time to route one join in the core", registry=r,
            buckets=(5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2),
        )
        self.join_seconds = Histogram(
            "sfub_join_seconds", "Join request to answer, including the bridge", registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15),
        )
        # Labelled children of sfub_decisions, one per reason: counted on every join, and
        # ``labels()`` takes the metric's lock and builds a key each time.
        self._decided: dict[str, Any] = {}

    def decided(self, reason: str) -> None:
        """``decisions.labels(reason).inc()``, with the child looked up once per reason."""
        child = self._decided.get(reason)
        if child is None:
            child = self._decided[reason] = self.decisions.labels(reason)
        child.inc()
