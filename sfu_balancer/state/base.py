"""The StateStore protocol (DESIGN.md §4).

Rules every implementation keeps:
- A participant is in at most one room on one bridge: ``claim_placement`` replaces a previous
  record of the same (room, participant).
- ``claim_placement`` is the one atomic step of a join (DESIGN.md §4: never get-then-set): it
  adds the participant only if the chosen bridge already hosts the room, or the room's set of
  bridges is still the one the decision saw. Otherwise it changes nothing and returns False,
  and the caller decides again. So two instances can never open one room on two bridges
  while the store is reachable.
- ``room_members`` is derived from the participant records, never stored apart from them, so
  the two cannot disagree.
- Ledger entries are raw placements (bridge, forecast cost, placed_at); when a charge stops
  counting is decided by ``sfu_balancer.core.ledger``, not by the store. Stores may drop
  entries older than ``ledger_horizon_s``. ``ledger_since`` hands out each entry once per
  cursor, in the order it reached this instance (not always ``placed_at`` order).
- Relays are unordered bridge pairs per room.
- ``instance_id`` names the balancer instance a store writes for, and every record it writes
  carries it in ``ParticipantRecord.instance``: an instance acts on bridge failures only for
  its own participants, and a dead instance's records are removed by compare-and-delete on
  that owner (``sfu_balancer.service.reconcile``). The memory store's id is "" (it owns all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ParticipantRecord:
    room: str
    participant: str
    bridge: str
    tenant: str | None = None
    tier: str = "standard"
    joined_at: float = 0.0
    instance: str = ""  # owner: the balancer instance holding this participant's socket


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    bridge: str
    cost: tuple[float, float, float]
    placed_at: float


class StateStore(Protocol):
    instance_id: str
    ledger_horizon_s: float  # entries older than this may be dropped (and are, by the ledger)

    async def claim_placement(self, record: ParticipantRecord, seen: frozenset[str]) -> bool:
        """Atomically add ``record`` if ``record.bridge`` hosts the room or the room's bridges
        are still ``seen``; False (and no change) otherwise."""
        ...

    async def remove_participant(self, room: str, participant: str) -> ParticipantRecord | None:
        ...

    async def get_participant(self, room: str, participant: str) -> ParticipantRecord | None:
        ...

    async def room_participants(self, room: str) -> list[ParticipantRecord]: ...

    async def room_members(self, room: str) -> dict[str, int]: ...

    async def rooms(self) -> dict[str, dict[str, int]]: ...

    async def participants_on(self, bridge: str) -> list[ParticipantRecord]: ...

    async def tenant_count(self, tenant: str) -> int: ...

    async def record_join(self, room: str, bridge: str, now: float) -> None: ...

    async def recent_joins(self, room: str, now: float, window_s: float) -> dict[str, int]: ...

    async def add_relay(self, room: str, a: str, b: str) -> bool:
        """False when the pair already had a relay (so exactly one caller opens it)."""
        ...

    async def relays(self, room: str) -> list[tuple[str, str]]: ...

    async def remove_relay(self, room: str, a: str, b: str) -> bool: ...

    async def ledger_add(self, entry: LedgerEntry) -> None: ...

    async def ledger_entries(self, now: float) -> list[LedgerEntry]: ...

    async def ledger_since(self, now: float, cursor: int) -> tuple[list[LedgerEntry], int]:
        """Entries that reached this store's log after ``cursor`` (0 = everything within
        the horizon), and the cursor to pass next time. Cost is in the new entries only."""
        ...

    async def set_drain(self, bridge: str, deadline: float | None) -> None: ...

    async def drains(self) -> dict[str, float]: ...

    async def close(self) -> None: ...
