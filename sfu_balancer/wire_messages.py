"""Message types of the balancer <-> bridge link (imported and re-exported by ``wire``).

Rules of this module:
- It imports only the standard library (``wire`` adds msgpack): bridges import it.
- Every message is a frozen, slotted dataclass; ``TYPE`` is its ``t`` on the wire. Field order
  is documentation order (docs/protocol.md, "Bridge link"); all fields are keyword-only.
- Field annotations are the whole schema: ``wire_fields`` validates decoded frames against
  them, so a field type must be one it knows (bool, int, float, str, None, unions, lists and
  nested dataclasses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    TYPE: ClassVar[str] = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Capacity:
    """What the bridge worker can carry: cpu in cores, bandwidth of its host NIC in Mbps."""

    cpu: float = 1.0
    egress_mbps: float = 1000.0
    ingress_mbps: float = 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackInfo:
    """One m-line of a subscribe offer: which participant's media it carries (``""`` = idle)."""

    mid: str
    kind: str  # "audio" | "video"
    participant: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(Message):
    """bridge -> balancer, first frame on every link."""

    TYPE: ClassVar[str] = "hello"
    id: str
    host: str
    region: str
    version: str
    capacity: Capacity
    pid: int
    auth: str = ""  # proof of the shared bridge_secret (sfu_balancer.hello_auth); "" in dev


@dataclass(frozen=True, slots=True, kw_only=True)
class Report(Message):
    """bridge -> balancer, every report interval; keys match ``core.model.LoadReport``."""

    TYPE: ClassVar[str] = "report"
    cpu: float  # process CPU in cores
    host_cpu: float  # whole host, 0..1
    bytes_in_per_s: float
    bytes_out_per_s: float
    packets_in_per_s: float
    packets_out_per_s: float
    participants: int
    rooms: int
    relay_streams: int
    measured_at: float  # the bridge's monotonic clock, seconds
    state: str = "serving"  # "serving" | "draining"
    # the configured capacity again, so one report reads on its own (dashboards, captures);
    # optional so that an older bridge's reports still decode
    capacity: Capacity | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocate(Message):
    """balancer -> bridge: place ``participant`` in ``room``; ``sdp`` is its publish offer."""

    TYPE: ClassVar[str] = "allocate"
    req: int
    room: str
    participant: str
    sdp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocated(Message):
    """bridge -> balancer, reply to ``allocate``: the publish answer."""

    TYPE: ClassVar[str] = "allocated"
    req: int
    room: str
    participant: str
    sdp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer(Message):
    """bridge -> balancer: (re)offer of a subscribe connection.

    ``participant`` is a participant id, or ``relay:<relay>`` for the outgoing side of a relay.
    ``seq`` increases per connection; the ``answer`` must echo it so a stale answer is refused.
    """

    TYPE: ClassVar[str] = "offer"
    room: str
    participant: str
    sdp: str
    seq: int
    tracks: list[TrackInfo] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(Message):
    """balancer -> bridge: the subscriber's (or peer bridge's) answer to offer ``seq``."""

    TYPE: ClassVar[str] = "answer"
    room: str
    participant: str
    sdp: str
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Release(Message):
    """balancer -> bridge: the participant left; its connections close, others renegotiate."""

    TYPE: ClassVar[str] = "release"
    room: str
    participant: str
    req: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayOpen(Message):
    """balancer -> bridge: open (``sdp`` None) or feed (``sdp`` = the peer's offer) relay ``relay``.

    With ``sdp`` None the bridge creates the outgoing side and replies ``relay_accept`` carrying
    its offer. With an offer it answers it on the incoming side and replies with the answer.
    """

    TYPE: ClassVar[str] = "relay_open"
    req: int
    room: str
    relay: str
    peer: str  # id of the bridge at the other end
    sdp: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayAccept(Message):
    """bridge -> balancer, reply to ``relay_open``: an offer (``kind`` "offer") or an answer."""

    TYPE: ClassVar[str] = "relay_accept"
    req: int
    room: str
    relay: str
    kind: str  # "offer" | "answer"
    sdp: str
    seq: int = 0  # for kind "offer": echo it in the ``answer`` to ``relay:<relay>``


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayClose(Message):
    """balancer -> bridge: tear relay ``relay`` down (both sides get one)."""

    TYPE: ClassVar[str] = "relay_close"
    room: str
    relay: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Seat:
    """One participant of a room, as ``sync`` lists them."""

    room: str
    participant: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Sync(Message):
    """balancer -> bridge, first after ``hello``: the participants this balancer has on the bridge.

    The bridge releases every other participant it allocated for this link: one whose join gave
    up while its link was down, or who was placed elsewhere when the link was lost. Relays are
    not listed (the balancer closes those itself)."""

    TYPE: ClassVar[str] = "sync"
    participants: list[Seat] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Drain(Message):
    """balancer -> bridge: take no new rooms; ``deadline_s`` from now the rest is released."""

    TYPE: ClassVar[str] = "drain"
    deadline_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye(Message):
    """Either side: the sender is going away on purpose (not a failure)."""

    TYPE: ClassVar[str] = "bye"
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Error(Message):
    """Either side: the frame ``req`` (or an unparsable one) was refused, and why."""

    TYPE: ClassVar[str] = "error"
    code: str
    reason: str
    req: int | None = None
    about: str = ""  # the ``t`` of the refused frame, when known


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello, Report, Allocate, Allocated, Offer, Answer, Release,
        RelayOpen, RelayAccept, RelayClose, Sync, Drain, Bye, Error,
    )
}
