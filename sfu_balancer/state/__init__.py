"""Shared state of the balancer: who is in which room on which bridge, relays, drains, ledger.

``memory`` is the default (one process on its own); ``redis`` shares it between instances.
"""

from .base import LedgerEntry, ParticipantRecord, StateStore
from .memory import MemoryStore

__all__ = ["LedgerEntry", "MemoryStore", "ParticipantRecord", "StateStore"]
