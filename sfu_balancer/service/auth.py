"""Room tokens for participants and signed hellos for bridges (PyJWT, HS256 by default).

Rules:
- The accepted algorithms come from settings, never from the token's header, so ``alg=none``
  or an RSA/HMAC confusion is refused by PyJWT before any claim is read.
- The signing key is chosen by the token's ``iss`` (the API key) among ``api_keys``; an unknown
  issuer is refused. Expiry and not-before are checked with ``token_leeway_s`` of clock skew.
- Two claim shapes are accepted, so existing issuers keep working:
  LiveKit: ``sub``, ``video: {room, roomJoin: true}``; Jitsi: ``room``, ``sub``, ``aud``,
  ``context: {user}``. A room of ``*`` grants every room. Optional ``tier`` and ``tenant``.
- Bridges prove the shared ``bridge_secret`` with ``wire.sign_hello`` (stdlib HMAC, so the
  bridge side needs no JWT library); see ``wire.verify_hello``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.types import Options

from sfu_balancer.core import Tier


class TokenRefused(Exception):
    """The token does not let its bearer into this room; ``str(exc)`` says why."""


@dataclass(frozen=True)
class Grant:
    identity: str
    room: str  # the room it grants, or "*"
    tier: Tier
    tenant: str | None
    name: str | None = None


def _claims_room(claims: dict[str, Any]) -> str | None:
    video = claims.get("video")
    if isinstance(video, dict):
        if video.get("roomJoin") is not True:
            raise TokenRefused("token does not grant roomJoin")
        room = video.get("room")
    else:
        room = claims.get("room")
    return room if isinstance(room, str) and room else None


def verify_room_token(token: str, room: str, *, api_keys: dict[str, str],
                      algorithms: list[str], leeway_s: float,
                      audience: str | None = None) -> Grant:
    if not isinstance(token, str) or not token:
        raise TokenRefused("a room token is required")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenRefused(f"malformed token: {exc}") from None
    issuer = unverified.get("iss")
    secret = api_keys.get(issuer) if isinstance(issuer, str) else None
    if secret is None:
        raise TokenRefused("unknown token issuer (iss)")
    options: Options = {"require": ["exp", "sub"], "verify_aud": audience is not None}
    try:
        claims = jwt.decode(token, secret, algorithms=algorithms, leeway=leeway_s,
                            audience=audience, issuer=issuer, options=options)
    except jwt.ExpiredSignatureError:
        raise TokenRefused("token expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenRefused("token not valid yet") from None
    except jwt.PyJWTError as exc:
        raise TokenRefused(f"invalid token: {exc}") from None
    granted = _claims_room(claims)
    if granted is None:
        raise TokenRefused("token names no room")
    if granted not in ("*", room):
        raise TokenRefused("token is for another room")
    tier_claim = claims.get("tier", Tier.STANDARD.value)
    try:
        tier = Tier(tier_claim)
    except ValueError:
        raise TokenRefused(f"unknown tier {tier_claim!r} in token") from None
    tenant = claims.get("tenant")
    user = claims.get("context", {}).get("user", {}) if isinstance(claims.get("context"),
                                                                   dict) else {}
    return Grant(identity=str(claims["sub"]), room=granted, tier=tier,
                 tenant=tenant if isinstance(tenant, str) else None,
                 name=user.get("name") if isinstance(user, dict) else None)


def create_room_token(*, api_key: str, secret: str, room: str, identity: str,
                      valid_for_s: float, tier: Tier | None = None, tenant: str | None = None,
                      now: float | None = None) -> str:
    """A LiveKit-shaped token (``video.room``/``roomJoin``), accepted by ``verify_room_token``."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"iss": api_key, "sub": identity, "nbf": issued,
                              "exp": issued + int(valid_for_s),
                              "video": {"room": room, "roomJoin": True}}
    if tier is not None:
        claims["tier"] = tier.value
    if tenant is not None:
        claims["tenant"] = tenant
    return jwt.encode(claims, secret, algorithm="HS256")
