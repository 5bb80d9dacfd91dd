"""Key schema and value encoding of the Redis store.

Key schema, version 1, under ``<prefix>:v1:`` (documented in docs/operations.md):

  rooms             SET     names of rooms with at least one participant
  room:<room>       HASH    participant -> JSON record {b, t, r, j, i}
  tenants           HASH    tenant -> participants (kept by the same scripts as the records)
  relays:<room>     SET     "a<TAB>b" bridge pairs, a < b
  joins:<room>      ZSET    "bridge<TAB>nonce" scored by wall-clock time (expires)
  ledger            STREAM  field "e" = JSON [bridge, cpu, egress, ingress, placed_at]
  drains            HASH    bridge -> drain deadline (wall clock)
  instances         SET     instance ids that ever held a lease
  lease:<instance>  STRING  JSON {host, pid, started}, with a TTL (PX)

Times cross instances as wall-clock seconds (hosts are NTP-synced): ``offset`` is the fixed
``wall - monotonic`` the store takes at start, added on write and subtracted on read.

The decoders raise ValueError, KeyError or TypeError on a corrupt value; the store logs and
skips it (never a crash).
"""

from __future__ import annotations

import json
from typing import Any

from sfu_balancer.state.base import LedgerEntry, ParticipantRecord

SCHEMA = "v1"


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def relay_member(a: str, b: str) -> str:
    """The ``relays:<room>`` member of the relay between bridges ``a`` and ``b``."""
    x, y = sorted((a, b))
    return f"{x}\t{y}"


def encode_record(record: ParticipantRecord, offset: float) -> str:
    return json.dumps({"b": record.bridge, "t": record.tenant, "r": record.tier,
                       "j": record.joined_at + offset, "i": record.instance},
                      separators=(",", ":"))


def decode_record(room: str, participant: str, raw: bytes | str,
                  offset: float) -> ParticipantRecord:
    data = json.loads(raw)
    bridge, tenant = data["b"], data.get("t")
    if not isinstance(bridge, str) or not (tenant is None or isinstance(tenant, str)):
        raise ValueError("bridge/tenant types")
    return ParticipantRecord(room, participant, bridge, tenant, str(data.get("r", "")),
                             float(data.get("j", 0.0)) - offset, str(data.get("i", "")))


def encode_ledger(entry: LedgerEntry, wall: float) -> str:
    return json.dumps([entry.bridge, *entry.cost, wall], separators=(",", ":"))


def decode_ledger(fields: dict[Any, Any], offset: float) -> LedgerEntry:
    raw = fields.get(b"e", fields.get("e"))
    if raw is None:
        raise ValueError("ledger entry without its e field")
    bridge, cpu, egress, ingress, wall = json.loads(raw)
    return LedgerEntry(str(bridge), (float(cpu), float(egress), float(ingress)),
                       float(wall) - offset)
