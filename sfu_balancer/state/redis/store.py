"""RedisStore: the StateStore shared by several balancer instances, assembled from its parts.

Each part subclasses ``RedisConnection``, which owns all the state; the parts define disjoint
method names, so the order of the bases does not matter.
"""

from __future__ import annotations

from sfu_balancer.state.redis.ledger import BridgeState
from sfu_balancer.state.redis.participants import Participants
from sfu_balancer.state.redis.recovery import Lifecycle
from sfu_balancer.state.redis.rooms import RoomActivity


class RedisStore(Participants, RoomActivity, BridgeState, Lifecycle):
    """The Redis StateStore (see the package docstring for the schema and the outage rules).

    ``RedisStore(url, prefix, ...)`` then ``await store.connect()``; ``sync()`` on every
    reconcile tick; ``close()`` on a clean stop."""
