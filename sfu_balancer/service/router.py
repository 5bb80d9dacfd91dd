"""Live routing: joins, leaves, subscriptions, failover, drain and rebalancing.

Every choice of bridge comes from ``sfu_balancer.core`` (``decide_join``, ``decide_move``;
``plan_drain`` and ``plan_rebalance`` through ``planned_moves``); this module gathers the
inputs, executes the outcome on the bridges and records it. Rules:
- Joins of one room are decided one at a time (a per-room lock), and the participant is
  recorded before the bridge allocates, so the next join of the room already sees it.
- Every decision is charged to the ledger in the StateStore at once; the core decides when a
  charge stops counting.
- A participant told to ``rejoin`` keeps its id. A migration target planned by the core is
  remembered for that participant's next join.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import structlog

from sfu_balancer import wire
from sfu_balancer.core import (
    CostTable,
    Decision,
    FleetView,
    JoinRequest,
    LiveLedger,
    Reason,
    RoutingConfig,
    Tier,
    decide_join,
    decide_move,
)
from sfu_balancer.core.decide import FleetSnapshot
from sfu_balancer.core.record import decision_record, move_record
from sfu_balancer.settings import Settings
from sfu_balancer.state import LedgerEntry, ParticipantRecord, StateStore

from .bridge_link import BridgeCommandError, BridgeLink, BridgeUnavailable
from .decision_log import DecisionLog
from .fleet import Fleet
from .metrics import Metrics
from .planned_moves import PlannedMoves
from .relays import RELAY_PREFIX, Relays
from .room_locks import RoomLocks

log = structlog.get_logger(__name__)

JOIN_RATE_WINDOW_S = 60.0
PLACEMENT_ATTEMPTS = 5
REFUSAL_CODES = {Reason.CAPACITY: "capacity", Reason.QUOTA: "quota",  # core reason -> /ws code
                 Reason.NO_BRIDGE: "no_bridge", Reason.FORBIDDEN: "forbidden"}


class Session(Protocol):
    async def send(self, message: dict[str, Any]) -> None: ...

    async def rejoin(self, reason: str) -> None:
        """Tell the participant to join again (the balancer asks: it owes that join)."""
        ...


class JoinRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Joined:
    participant: str
    bridge: str
    sdp: str
    decision: Decision


class Router(PlannedMoves):
    def __init__(self, settings: Settings, store: StateStore, fleet: Fleet, metrics: Metrics,
                 decisions: DecisionLog, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.routing_table = dict(settings.routing)
        self.config = settings.routing_config
        self.policy = self.config.build_policy()
        self.costs = settings.cost_table
        self.store, self.fleet, self.metrics, self.decisions = store, fleet, metrics, decisions
        self.clock = clock
        self.rng = np.random.default_rng(settings.seed)
        # Unlogged joins draw from a child of ``rng`` (spawning does not advance ``rng``).
        self.decide_rng = self.rng.spawn(1)[0]
        self.relays = Relays(fleet, settings.allocate_timeout_s)
        self.sessions: dict[tuple[str, str], Session] = {}
        # participant -> (from bridge, to bridge, reason) of a move the core planned
        self.move_targets: dict[tuple[str, str], tuple[str, str, Reason]] = {}
        self.last_rebalanced: dict[str, float] = {}
        self._locks = RoomLocks()
        self._new_ledger()

    def _new_ledger(self) -> None:
        """A ledger read from the store's first entry on: the store holds every charge (ours
        and other instances'); this is its incremental reading under the current config."""
        self.ledger = LiveLedger(self.config.rampup_s, self.config.recent_window_s,
                                 self.store.ledger_horizon_s)
        self._ledger_cursor = 0
        self.fleet.refresh_all_reports()  # the new ledger has seen no report yet

    def reload_routing(self, routing: dict[str, Any], costs: dict[str, Any] | None = None) -> None:
        """Swap the ``[routing]`` (and ``[costs]``) tables; raises ValueError and changes
        nothing if either is invalid. Rooms stay where they are: only later decisions change."""
        config = RoutingConfig.from_mapping(routing)
        cost_table = CostTable.from_mapping(costs) if costs is not None else self.costs
        self.config, self.policy, self.costs = config, config.build_policy(), cost_table
        self.routing_table = dict(routing)
        self._new_ledger()  # rampup_s may have changed: re-read the charges under it
        log.info("routing_reloaded", policy=config.policy)

    # -- participants ----------------------------------------------------------------------

    async def join(self, session: Session, room: str, participant: str, sdp: str,
                   tier: Tier = Tier.STANDARD, tenant: str | None = None,
                   region: str | None = None) -> Joined:
        key = (room, participant)
        async with self._locks.hold(room):
            limit = self.settings.limits.max_room_participants
            present = await self.store.room_members(room)
            rejoining = await self.store.get_participant(room, participant) is not None
            if limit and not rejoining and sum(present.values()) >= limit:
                self.metrics.refusals.labels("room_full").inc()
                raise JoinRefused("room_full", f"this room is full ({limit} participants)")
            old = await self.store.remove_participant(room, participant)
            if old is not None:
                await self._release_on_bridge(old)
            request = JoinRequest(room, participant, region, tier, tenant)
            # Nothing removed: the members are those just read. (What another instance does
            # meanwhile, claim_placement catches, and the next attempt reads afresh.)
            members = present if old is None else None
            for _attempt in range(PLACEMENT_ATTEMPTS):
                now = self.clock()
                if members is None:
                    members = await self.store.room_members(room)
                decision = await self._decide(request, members, now)
                self.metrics.decided(decision.reason.value)
                if decision.bridge_id is None:
                    code = REFUSAL_CODES.get(decision.reason, "no_bridge")
                    self.metrics.refusals.labels(code).inc()
                    raise JoinRefused(code, f"join refused: {decision.reason.value}")
                bridge = decision.bridge_id
                # Charged before any await: the joins this instance decides meanwhile must see
                # it, or a burst herds onto the bridge that looked idlest. A lost claim leaves
                # its charge behind: an over-count until it settles, the safe direction.
                cost = decision.detail.get("cost", (0.0, 0.0, 0.0))
                await self.store.ledger_add(LedgerEntry(bridge, tuple(cost), now))
                record = ParticipantRecord(room, participant, bridge, tenant, tier.value, now)
                # Another balancer instance may have placed the room meanwhile: then decide
                # again on what it did, instead of opening the room on a second bridge.
                if await self.store.claim_placement(record, frozenset(members)):
                    break
                members = None
            else:
                self.metrics.refusals.labels("bridge_error").inc()
                raise JoinRefused("bridge_error", "the room kept changing; try again")
            await self.store.record_join(room, bridge, now)
            self.sessions[key] = session
        try:
            for other in decision.relay_to:
                if await self.store.add_relay(room, bridge, other):
                    await self.relays.open(room, bridge, other)
            link = self.fleet.link(bridge)
            if link is None:
                raise BridgeUnavailable(f"{bridge} is gone")
            reply = await link.request(
                lambda req: wire.Allocate(req=req, room=room, participant=participant, sdp=sdp),
                self.settings.allocate_timeout_s)
        except (BridgeUnavailable, BridgeCommandError) as exc:
            await self.store.remove_participant(room, participant)
            self.sessions.pop(key, None)
            code = "bad_request" if isinstance(exc, BridgeCommandError) and exc.code in (
                wire.ErrorCode.BAD_SDP, wire.ErrorCode.UNSUPPORTED_CODEC) else "bridge_error"
            self.metrics.refusals.labels(code).inc()
            raise JoinRefused(code, f"bridge {bridge}: {exc}") from exc
        assert isinstance(reply, wire.Allocated)
        self.metrics.joins.inc()
        log.info("joined", room=room, participant=participant, bridge=bridge,
                 reason=decision.reason.value)
        return Joined(participant, bridge, reply.sdp, decision)

    async def _decide(self, request: JoinRequest, members: dict[str, int],
                      now: float) -> Decision:
        key = (request.room, request.participant)
        target = self.move_targets.pop(key, None)
        if target is not None and target[1] in self.fleet.serving():
            # Executing a move the core planned. The whole portion on the source moves, so the
            # target links only to the room's other bridges, never back to the source.
            source, destination, reason = target
            linked = [b for b in self.fleet.entries if self.fleet.link(b)]
            moved = decide_move(request, members, source, destination, reason, linked,
                                self.costs)
            if self.decisions.enabled:
                self.decisions.write(move_record(
                    now=now, request=request, room_members=members, source=source,
                    linked=linked, costs=self.costs, decision=moved))
            return moved
        recent = await self.store.recent_joins(request.room, now, JOIN_RATE_WINDOW_S)
        tenant_count = await self.store.tenant_count(request.tenant) if request.tenant else 0
        snapshot, view = await self._view(now)  # last: no await between the view and decide
        # A logged decision gets a generator of its own from a seed, so that its line replays
        # alone; unlogged ones share one (seeding a generator costs ~12 us, ~4% of a join).
        seed = int(self.rng.integers(2**63)) if self.decisions.enabled else None
        rng = np.random.default_rng(seed) if seed is not None else self.decide_rng
        policy_state = self.policy.state()
        started = time.perf_counter()
        decision = decide_join(view, snapshot, request, members, recent, tenant_count,
                               self.policy, self.config, self.costs, rng)
        self.metrics.decision_seconds.observe(time.perf_counter() - started)
        if seed is not None:
            self.decisions.write(decision_record(
                view=view, snapshot=snapshot, request=request, room_members=members,
                recent_joins=recent, tenant_participants=tenant_count, policy=self.policy,
                routing=self.routing_table, costs=self.costs, seed=seed, decision=decision,
                policy_state=policy_state))
        return decision

    async def _view(self, now: float) -> tuple[FleetSnapshot, FleetView]:
        """The fleet and the ledger at ``now``. Only what is new since the last call is read:
        the store's new charges, the reports received since (``LiveLedger`` remembers each
        bridge's newest report, so telling it once suffices), and the fleet's arrays, so a
        decision's cost grows neither with the joins of the last minutes nor, in Python, with
        the number of bridges. Nothing is awaited after the store: snapshot, ledger rows and
        view describe one instant."""
        entries, self._ledger_cursor = await self.store.ledger_since(now, self._ledger_cursor)
        for entry in entries:
            self.ledger.charge(entry.bridge, entry.cost, entry.placed_at)
        for bridge_id, measured_at in self.fleet.take_fresh_reports().items():
            self.ledger.settle(bridge_id, measured_at)
        self.ledger.expire(now)
        snapshot = self.fleet.snapshot(now)
        rows = self.ledger.rows(snapshot.ids, snapshot.index())
        return snapshot, self.fleet.view(now, rows, self.config)

    async def leave(self, room: str, participant: str, session: Session | None = None) -> None:
        key = (room, participant)
        if session is not None and self.sessions.get(key) is not session:
            return  # a newer session owns this participant now
        self.sessions.pop(key, None)
        self.move_targets.pop(key, None)
        async with self._locks.hold(room):
            record = await self.store.remove_participant(room, participant)
        if record is not None:
            await self._release_on_bridge(record)

    async def _release_on_bridge(self, record: ParticipantRecord) -> None:
        link = self.fleet.link(record.bridge)
        if link is not None:
            with contextlib.suppress(BridgeUnavailable):
                await link.send(wire.Release(room=record.room, participant=record.participant))
        if (await self.store.room_members(record.room)).get(record.bridge, 0) == 0:
            for relay in self.relays.between(record.room, record.bridge):
                await self.store.remove_relay(relay.room, relay.a, relay.b)
                await self.relays.close(relay)

    async def answer(self, room: str, participant: str, sdp: str, seq: int) -> None:
        record = await self.store.get_participant(room, participant)
        link = self.fleet.link(record.bridge) if record is not None else None
        if link is None:
            raise JoinRefused("bad_request", "not joined to a live bridge")
        await link.send(wire.Answer(room=room, participant=participant, sdp=sdp, seq=seq))

    async def tell_rejoin(self, room: str, participant: str, reason: str) -> None:
        self.metrics.rejoins.labels(reason).inc()
        session = self.sessions.get((room, participant))
        if session is not None:
            await session.rejoin(reason)

    # -- bridges ----------------------------------------------------------------------------

    async def on_bridge_message(self, link: BridgeLink, message: wire.Message) -> None:
        if isinstance(message, wire.Report):
            self.fleet.on_report(link.bridge_id, message, self.clock())
            if message.state == "draining" and link.bridge_id in self.fleet.serving():
                await self.drain(link.bridge_id, 0.0)  # SIGTERM on the bridge: move everyone
            measured = self.fleet.stress(link.bridge_id, self.config.thresholds)
            self.metrics.bridge_stress.labels(link.bridge_id).set(measured or 0.0)
        elif isinstance(message, wire.Offer):
            await self._route_offer(link.bridge_id, message)
        elif isinstance(message, wire.Allocated):
            await self._late_allocation(link, message)
        elif isinstance(message, wire.Bye):
            log.info("bridge_bye", bridge=link.bridge_id, reason=message.reason)
        elif isinstance(message, wire.Error):
            log.warning("bridge_error", bridge=link.bridge_id, code=message.code,
                        reason=message.reason)
        else:
            await link.send(wire.Error(code=wire.ErrorCode.UNKNOWN_TYPE, about=message.TYPE,
                                       reason=f"{message.TYPE!r} is not sent to a balancer"))

    async def _late_allocation(self, link: BridgeLink, message: wire.Allocated) -> None:
        """An ``allocated`` after its request gave up (the join was refused with bridge_error):
        the bridge holds a participant nobody will use, so release it, unless that participant
        has been placed on this bridge again meanwhile (then the allocation is in use)."""
        record = await self.store.get_participant(message.room, message.participant)
        if record is not None and record.bridge == link.bridge_id:
            return
        self.metrics.late_allocations.inc()
        with contextlib.suppress(BridgeUnavailable):  # closing: its next sync releases it
            await link.send(wire.Release(room=message.room, participant=message.participant))

    async def _route_offer(self, bridge: str, offer: wire.Offer) -> None:
        if offer.participant.startswith(RELAY_PREFIX):
            relay = self.relays.by_id.get(offer.participant[len(RELAY_PREFIX):])
            if relay is not None:
                await self.relays.forward_offer(relay, bridge, offer.sdp, offer.seq)
            return
        session = self.sessions.get((offer.room, offer.participant))
        record = await self.store.get_participant(offer.room, offer.participant)
        if session is None or record is None or record.bridge != bridge:
            return  # a participant who left or moved: the bridge learns through release
        await session.send({"type": "offer", "sdp": offer.sdp, "seq": offer.seq,
                            "tracks": [{"mid": t.mid, "kind": t.kind,
                                        "participant": t.participant} for t in offer.tracks]})

    async def bridge_failed(self, bridge: str, cause: str) -> None:
        link = self.fleet.entries[bridge].link
        if not self.fleet.mark_failed(bridge):
            return
        if link is not None:
            # A silent bridge that wakes up must dial in again (a fresh hello) to serve.
            await link.close()
        self.metrics.bridge_failures.labels(cause).inc()
        self.metrics.bridge_up.labels(bridge).set(0)
        log.warning("bridge_failed", bridge=bridge, cause=cause)
        for relay in self.relays.touching(bridge):
            await self.store.remove_relay(relay.room, relay.a, relay.b)
            await self.relays.close(relay)
        for record in await self.store.participants_on(bridge):
            if record.instance != self.store.instance_id:
                # Another instance's participant: that instance judges the bridge through its
                # own link (a link lost here may be ours alone); a dead one's are reaped.
                continue
            async with self._locks.hold(record.room):
                await self.store.remove_participant(record.room, record.participant)
            await self.tell_rejoin(record.room, record.participant, "bridge_failed")

    async def drain(self, bridge: str, deadline_s: float) -> None:
        deadline = self.clock() + deadline_s
        self.fleet.set_drain(bridge, deadline)
        await self.store.set_drain(bridge, deadline)
        self.metrics.bridge_up.labels(bridge).set(0)
        await self.run_drains()

    async def undrain(self, bridge: str) -> None:
        self.fleet.set_drain(bridge, None)
        await self.store.set_drain(bridge, None)
        self.metrics.bridge_up.labels(bridge).set(1)

    # -- periodic work ----------------------------------------------------------------------

    async def check_silent(self) -> None:
        for bridge in self.fleet.silent(self.clock()):
            await self.bridge_failed(bridge, "silent")
