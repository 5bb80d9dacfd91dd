"""Proof of the shared bridge secret in ``hello.auth`` (bridges and balancer both import this).

Form: ``v1.<unix seconds>.<hex HMAC-SHA256(secret, "v1.<bridge id>.<unix seconds>")>``.
Binding the id stops one bridge's proof from admitting another id; the timestamp bounds replay
to ``max_age_s`` (clocks are assumed NTP-synced to within that). Standard library only, so the
bridge needs no extra dependency and ``sfu_balancer.core`` stays untouched.
"""

from __future__ import annotations

import hashlib
import hmac

VERSION = "v1"


class HelloRefused(Exception):
    pass


def _mac(secret: str, bridge_id: str, stamp: int) -> str:
    message = f"{VERSION}.{bridge_id}.{stamp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_hello(bridge_id: str, secret: str, now: float) -> str:
    stamp = int(now)
    return f"{VERSION}.{stamp}.{_mac(secret, bridge_id, stamp)}"


def verify_hello(auth: str, bridge_id: str, secret: str, now: float,
                 max_age_s: float = 120.0) -> None:
    """Raise HelloRefused unless ``auth`` proves ``secret`` for ``bridge_id`` recently."""
    parts = auth.split(".") if isinstance(auth, str) else []
    if len(parts) != 3 or parts[0] != VERSION or not parts[1].isdigit():
        raise HelloRefused("hello carries no valid auth proof")
    stamp = int(parts[1])
    if abs(now - stamp) > max_age_s:
        raise HelloRefused("hello auth proof is stale (check the clocks)")
    if not hmac.compare_digest(parts[2], _mac(secret, bridge_id, stamp)):
        raise HelloRefused("hello auth proof does not match the bridge secret")
