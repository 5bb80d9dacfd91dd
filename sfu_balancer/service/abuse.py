"""Abuse protection: IP/CIDR allow and block lists, token-bucket rate limits.

Rules:
- A list file holds one address or CIDR per line; ``#`` starts a comment. A bad line fails the
  whole load with its file and line number, so a typo never silently opens or closes the door;
  on SIGHUP a bad file keeps the lists in force.
- With an allow list, only its networks may connect; the block list wins over the allow list.
  A country is a list of CIDRs (the seed's geoblocking).
- Buckets are keyed by client address and kept in a bounded LRU, so a flood of addresses
  cannot grow memory without bound (an evicted key just starts with a full bucket).
- Client address = the TCP peer (``request.remote``); behind a proxy that is the proxy.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def load_networks(path: Path) -> list[Network]:
    networks = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            networks.append(ipaddress.ip_network(line, strict=False))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not an address or CIDR: {line!r} ({exc})") from None
    return networks


@functools.lru_cache(maxsize=4096)
def peer_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``address`` parsed (an IPv4-mapped IPv6 address as IPv4), or None if it is not one.
    Cached: it is parsed on every connection, and the same peers connect again and again;
    the addresses are immutable values, so a cached one is the parse itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass
class IpFilter:
    allow: list[Network] | None = None  # None = everyone not blocked
    block: list[Network] = field(default_factory=list)

    @classmethod
    def from_files(cls, allow_file: Path | None, block_file: Path | None) -> IpFilter:
        return cls(allow=load_networks(allow_file) if allow_file else None,
                   block=load_networks(block_file) if block_file else [])

    def permits(self, address: str | None) -> bool:
        ip = peer_ip(address or "")
        if ip is None:
            return False  # no usable peer address: refuse rather than guess
        if any(ip in net for net in self.block):
            return False
        return self.allow is None or any(ip in net for net in self.allow)


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """One token bucket per key; ``rate_per_s`` of 0 disables the limit."""

    def __init__(self, rate_per_s: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(burst, 1.0)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, key: str, now: float) -> bool:
        if self.rate_per_s <= 0:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst, self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)
