"""Routing policies: a registry of names, one module per family.

Importing this package registers every built-in policy.
"""

from . import balanced, jicofo, simple
from .base import NO_BRIDGE, FleetView, PlacementRequest, Policy
from .registry import create_policy, policy_names, register_policy

__all__ = [
    "NO_BRIDGE",
    "FleetView",
    "PlacementRequest",
    "Policy",
    "balanced",
    "create_policy",
    "jicofo",
    "policy_names",
    "register_policy",
    "simple",
]
