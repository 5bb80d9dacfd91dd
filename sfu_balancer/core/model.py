"""Frozen value types shared by the balancer, the bridges and the simulator.

Rules:
- Every type here is immutable and validated on construction: a bad value raises ``ValueError``
  naming the field, so errors surface where the bad input entered, not deep inside a policy.
- Times are seconds on the caller's monotonic clock; core never reads a clock itself.
- Resources always appear in the fixed order of ``RESOURCES``: (cpu cores, egress Mbps,
  ingress Mbps). Numeric arrays in core use that order on their last axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

RESOURCES: tuple[str, str, str] = ("cpu", "egress_mbps", "ingress_mbps")
CPU, EGRESS, INGRESS = 0, 1, 2


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _finite_non_negative(name: str, value: float) -> None:
    _require(
        isinstance(value, int | float) and math.isfinite(value) and value >= 0,
        f"{name} must be a finite number >= 0, got {value!r}",
    )


class BridgeState(StrEnum):
    SERVING = "serving"
    DRAINING = "draining"  # keeps its rooms, takes no new ones; migrated at the deadline
    FAILED = "failed"  # takes nothing; its participants are placed again


class Tier(StrEnum):
    """Admission priority; near full, lower tiers are refused first."""

    CRITICAL = "critical"
    STANDARD = "standard"
    BULK = "bulk"


TIER_ORDER: tuple[Tier, Tier, Tier] = (Tier.CRITICAL, Tier.STANDARD, Tier.BULK)


class Reason(StrEnum):
    """Machine-readable reason carried by every decision (decision log, metrics, error replies)."""

    NEW_ROOM = "new_room"
    STICKY = "sticky"
    STICKY_OVERLOADED = "sticky_overloaded"  # no other bridge could take it; stress may pass 1
    SPLIT_OVERLOAD = "split_overload"
    SPLIT_CAP = "split_cap"  # room already holds max_per_bridge members on its bridges
    SPLIT_JOIN_RATE = "split_join_rate"
    REPLACE_FAILED = "replace_failed"  # the room's bridges are all unavailable
    NO_BRIDGE = "no_bridge"
    CAPACITY = "capacity"  # admission refused this tier near full
    QUOTA = "quota"  # the tenant is at its concurrent-participant quota
    FORBIDDEN = "forbidden"
    MIGRATE_HOT = "migrate_hot"
    MIGRATE_DRAIN = "migrate_drain"


# Integer codes for vectorised results; index into this tuple to get the Reason.
REASON_CODES: tuple[Reason, ...] = tuple(Reason)
REASON_INDEX: dict[Reason, int] = {reason: i for i, reason in enumerate(REASON_CODES)}


@dataclass(frozen=True, slots=True)
class Capacity:
    """What one bridge worker can carry. CPU belongs to the worker, bandwidth to its host's NIC."""

    cpu: float = 1.0
    egress_mbps: float = 1000.0
    ingress_mbps: float = 1000.0

    def __post_init__(self) -> None:
        for name in RESOURCES:
            value = getattr(self, name)
            _require(
                isinstance(value, int | float) and math.isfinite(value) and value > 0,
                f"capacity.{name} must be a finite number > 0, got {value!r}",
            )

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.cpu, self.egress_mbps, self.ingress_mbps)


@dataclass(frozen=True, slots=True)
class BridgeInfo:
    id: str
    host: str
    region: str = "default"
    version: str = "0"
    capacity: Capacity = field(default_factory=Capacity)
    state: BridgeState = BridgeState.SERVING
    drain_deadline: float | None = None  # set exactly when state is DRAINING

    def __post_init__(self) -> None:
        _require(bool(self.id), "bridge id must be a non-empty string")
        _require(bool(self.host), f"bridge {self.id!r}: host must be a non-empty string")
        _require(
            (self.state is BridgeState.DRAINING) == (self.drain_deadline is not None),
            f"bridge {self.id!r}: drain_deadline is required exactly when state is draining",
        )


@dataclass(frozen=True, slots=True)
class LoadReport:
    """One measurement sent by a bridge every report interval.

    ``cpu`` is the worker process in cores (0.5 = half a core); ``host_cpu`` is the whole host in
    0..1. ``measured_at`` is on the receiver's clock: the receiver converts before building this.
    """

    bridge_id: str
    measured_at: float
    cpu: float = 0.0
    host_cpu: float = 0.0
    bytes_in_per_s: float = 0.0
    bytes_out_per_s: float = 0.0
    packets_in_per_s: float = 0.0
    packets_out_per_s: float = 0.0
    participants: int = 0
    rooms: int = 0
    relay_streams: int = 0

    def __post_init__(self) -> None:
        _require(bool(self.bridge_id), "load report: bridge_id must be a non-empty string")
        for name in (
            "cpu", "host_cpu", "bytes_in_per_s", "bytes_out_per_s",
            "packets_in_per_s", "packets_out_per_s", "participants", "rooms", "relay_streams",
        ):
            _finite_non_negative(f"load report {name}", getattr(self, name))
        _require(self.host_cpu <= 1.0, f"load report host_cpu must be <= 1, got {self.host_cpu}")
        _require(math.isfinite(self.measured_at), "load report measured_at must be finite")

    def load_vector(self) -> tuple[float, float, float]:
        """(cpu cores, egress Mbps, ingress Mbps) in RESOURCES order."""
        return (self.cpu, self.bytes_out_per_s * 8e-6, self.bytes_in_per_s * 8e-6)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a room lives: its bridges and how many of its members each one holds."""

    room: str
    members: tuple[tuple[str, int], ...] = ()  # (bridge_id, members) in the order bridges joined

    @property
    def bridge_ids(self) -> tuple[str, ...]:
        return tuple(bridge for bridge, _ in self.members)

    @property
    def size(self) -> int:
        return sum(count for _, count in self.members)


@dataclass(frozen=True, slots=True)
class Room:
    name: str
    placement: Placement
    tenant: str | None = None
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class JoinRequest:
    room: str
    participant: str
    region: str | None = None
    tier: Tier = Tier.STANDARD
    tenant: str | None = None

    def __post_init__(self) -> None:
        _require(bool(self.room), "join request: room must be a non-empty string")
        _require(bool(self.participant), "join request: participant must be a non-empty string")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one routing decision, with the reason that explains it.

    ``bridge_id`` is None exactly when the join is refused. ``relay_to`` lists the bridges the
    chosen bridge must open relay links to (non-empty only for a split).
    """

    room: str
    participant: str
    bridge_id: str | None
    reason: Reason
    relay_to: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def admitted(self) -> bool:
        return self.bridge_id is not None


@dataclass(frozen=True, slots=True)
class Migration:
    """Move ``participants`` of ``room`` from one bridge to another."""

    room: str
    from_bridge: str
    to_bridge: str
    participants: int
    reason: Reason
