"""The pure routing core, shared bit for bit by the live balancer and the simulator.

Rules for everything under this package:
- Time (``now``) and randomness (``rng: numpy.random.Generator``) are arguments; nothing here
  reads a clock, a socket, the environment or a global random generator.
- Only the standard library, numpy and msgpack are imported; never asyncio, aiohttp, redis or
  aiortc (a test checks this in a fresh interpreter).
"""

from .admission import admit_tiers, fleet_utilization, within_quota
from .config import RoutingConfig
from .decide import FleetLayout, FleetSnapshot, build_view, decide_join, decide_move
from .fleet_table import FleetTable
from .ledger import LedgerRows, LiveLedger, PendingLedger
from .load import CostTable, Thresholds, join_cost, stress
from .migration import MigrationPlan, RoomPortion, plan_drain, plan_rebalance
from .model import (
    BridgeInfo,
    BridgeState,
    Capacity,
    Decision,
    JoinRequest,
    LoadReport,
    Migration,
    Placement,
    Reason,
    Room,
    Tier,
)
from .placement import (
    JoinBatch,
    JoinOutcome,
    JoinSequence,
    SequenceOutcome,
    place_joins,
    place_sequence,
)
from .policies import (
    FleetView,
    PlacementRequest,
    Policy,
    create_policy,
    policy_names,
    register_policy,
)

__all__ = [
    "BridgeInfo",
    "BridgeState",
    "Capacity",
    "CostTable",
    "Decision",
    "FleetLayout",
    "FleetSnapshot",
    "FleetTable",
    "FleetView",
    "JoinBatch",
    "JoinOutcome",
    "JoinRequest",
    "JoinSequence",
    "LedgerRows",
    "LiveLedger",
    "LoadReport",
    "Migration",
    "MigrationPlan",
    "PendingLedger",
    "Placement",
    "PlacementRequest",
    "Policy",
    "Reason",
    "Room",
    "RoomPortion",
    "RoutingConfig",
    "SequenceOutcome",
    "Thresholds",
    "Tier",
    "admit_tiers",
    "build_view",
    "create_policy",
    "decide_join",
    "decide_move",
    "fleet_utilization",
    "join_cost",
    "place_joins",
    "place_sequence",
    "plan_drain",
    "plan_rebalance",
    "policy_names",
    "register_policy",
    "stress",
    "within_quota",
]
