"""Who may connect and join: address lists, rate limits and room tokens, counted in metrics.

Every refusal returns a code from docs/protocol.md and increments
``sfub_refusals{code}``, so an operator sees abuse (and false positives) on the dashboard.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sfu_balancer.core import Tier
from sfu_balancer.settings import Settings

from .abuse import IpFilter, RateLimiter
from .auth import Grant, TokenRefused, verify_room_token
from .metrics import Metrics
from .resume import ResumeSecrets


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Guard:
    def __init__(self, settings: Settings, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        limits = settings.limits
        self.ip_filter = IpFilter.from_files(limits.allow_cidrs_file, limits.block_cidrs_file)
        self.connections = RateLimiter(limits.connections_per_ip_per_min / 60, limits.burst)
        self.joins = RateLimiter(limits.joins_per_ip_per_min / 60, limits.burst)
        self.resume = ResumeSecrets(settings)

    def reload_lists(self) -> None:
        """Re-read the allow/block files; raises ValueError (lists unchanged) on a bad line."""
        limits = self.settings.limits
        self.ip_filter = IpFilter.from_files(limits.allow_cidrs_file, limits.block_cidrs_file)

    def refuse(self, code: str, message: str) -> Refused:
        self.metrics.refusals.labels(code).inc()
        return Refused(code, message)

    def check_connection(self, remote: str | None) -> None:
        if not self.ip_filter.permits(remote):
            raise self.refuse("forbidden", "connections from your network are not accepted")
        if not self.connections.allow(remote or "", self.clock()):
            raise self.refuse("rate_limited", "too many connections; slow down")

    def check_join_rate(self, remote: str | None) -> None:
        if not self.joins.allow(remote or "", self.clock()):
            raise self.refuse("rate_limited", "too many joins from your address; slow down")

    def check_join(self, remote: str | None, room: str, token: str | None) -> Grant:
        """The grant of ``token`` for ``room``; the join rate is ``check_join_rate``'s."""
        s = self.settings
        if token is None and s.dev:
            return Grant(identity="dev", room=room, tier=Tier.STANDARD, tenant=None)
        if not s.api_keys:
            raise self.refuse("forbidden", "joins need a room token and none can be verified "
                                           "(no api_keys configured)")
        try:
            return verify_room_token(token or "", room, api_keys=s.api_keys,
                                     algorithms=s.token_algorithms, leeway_s=s.token_leeway_s,
                                     audience=s.token_audience)
        except TokenRefused as exc:
            raise self.refuse("forbidden", str(exc)) from None

    def check_resume(self, room: str, participant: str, identity: str,
                     secret: str | None) -> None:
        """A ``participant`` id named from a socket that does not hold it: only the one it was
        issued to (same room, same token ``sub``, its ``resume`` secret) may take it."""
        if not self.resume.valid(room, participant, identity, secret):
            self.metrics.refusals.labels("resume_refused").inc()
            raise Refused("forbidden", "this participant id belongs to someone else (a resume "
                                       "needs the 'resume' secret from its 'joined')")
