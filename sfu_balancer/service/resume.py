"""Resume secrets: only the participant who was given an id may take it again.

``joined`` carries ``resume``, an HMAC of (room, participant id, identity). A ``join`` that
names a ``participant`` from a socket that does not already hold that id must carry it back.
The identity is the token's ``sub`` (``"dev"`` for tokenless dev joins), so a leaked secret is
of no use with someone else's token.

The key is derived from ``bridge_secret``, which every instance of a deployment shares (bridges
prove it to each), so a page that fails over to another instance can resume there. Without a
``bridge_secret`` (dev), the key is random per process.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from sfu_balancer.settings import Settings

SECRET_HEX_CHARS = 32  # 128 bits


class ResumeSecrets:
    def __init__(self, settings: Settings) -> None:
        if settings.bridge_secret is not None:
            self._key = hmac.new(settings.bridge_secret.encode(), b"sfub participant resume v1",
                                 hashlib.sha256).digest()
        else:
            self._key = os.urandom(32)

    def issue(self, room: str, participant: str, identity: str) -> str:
        message = "\x00".join((room, participant, identity)).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:SECRET_HEX_CHARS]

    def valid(self, room: str, participant: str, identity: str, secret: str | None) -> bool:
        if not secret:
            return False
        return hmac.compare_digest(self.issue(room, participant, identity), secret)
