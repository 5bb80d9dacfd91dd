"""Room tokens, bridge hello proofs and abuse primitives, without a server."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from sfu_balancer.core import Tier
from sfu_balancer.hello_auth import HelloRefused, sign_hello, verify_hello
from sfu_balancer.service.abuse import IpFilter, RateLimiter, TokenBucket, load_networks
from sfu_balancer.service.auth import TokenRefused, create_room_token, verify_room_token

KEY, SECRET = "site", "s" * 40
KEYS = {KEY: SECRET}


def verify(token: str, room: str = "ward-3", **kwargs: object):  # type: ignore[no-untyped-def]
    args = {"api_keys": KEYS, "algorithms": ["HS256"], "leeway_s": 5.0} | kwargs
    return verify_room_token(token, room, **args)  # type: ignore[arg-type]


def livekit(**claims: object) -> str:
    now = int(time.time())
    body = {"iss": KEY, "sub": "alice", "nbf": now, "exp": now + 60,
            "video": {"room": "ward-3", "roomJoin": True}} | claims
    return jwt.encode(body, SECRET, algorithm="HS256")


def test_livekit_shaped_token_grants_its_room_with_tier_and_tenant() -> None:
    grant = verify(livekit(tier="critical", tenant="hospital"))
    assert (grant.identity, grant.room, grant.tier, grant.tenant) == \
        ("alice", "ward-3", Tier.CRITICAL, "hospital")
    assert verify(livekit()).tier is Tier.STANDARD


def test_jitsi_shaped_token_with_audience_and_context_user() -> None:
    now = int(time.time())
    token = jwt.encode({"iss": KEY, "aud": "jitsi", "sub": "meet.example.org", "room": "*",
                        "exp": now + 60, "context": {"user": {"name": "Bob"}}}, SECRET,
                       algorithm="HS256")
    grant = verify(token, "any-room", audience="jitsi")
    assert grant.room == "*" and grant.name == "Bob"
    with pytest.raises(TokenRefused, match="invalid token"):
        verify(token, "any-room", audience="other")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda: livekit(exp=int(time.time()) - 60), "expired"),
        (lambda: livekit(nbf=int(time.time()) + 600), "not valid yet"),
        (lambda: livekit(video={"room": "other", "roomJoin": True}), "another room"),
        (lambda: livekit(video={"room": "ward-3", "roomJoin": False}), "roomJoin"),
        (lambda: livekit(iss="stranger"), "unknown token issuer"),
        (lambda: livekit(tier="vip"), "unknown tier"),
        (lambda: jwt.encode({"iss": KEY, "sub": "a", "exp": int(time.time()) + 60,
                             "video": {"room": "ward-3", "roomJoin": True}},
                            "x" * 40, algorithm="HS256"), "Signature verification failed"),
        (lambda: jwt.encode({"iss": KEY, "sub": "a", "exp": int(time.time()) + 60,
                             "video": {"room": "ward-3", "roomJoin": True}},
                            None, algorithm="none"), "invalid token"),
        (lambda: "not.a.token", "malformed"),
        (lambda: "", "required"),
    ],
)
def test_refused_tokens_say_why(token, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TokenRefused, match=message):
        verify(token())


def test_leeway_tolerates_small_clock_skew() -> None:
    verify(livekit(exp=int(time.time()) - 2))  # 2 s late, 5 s leeway


def test_created_tokens_verify() -> None:
    token = create_room_token(api_key=KEY, secret=SECRET, room="*", identity="op",
                              valid_for_s=60, tier=Tier.BULK, tenant="school")
    grant = verify(token, "class-5b")
    assert (grant.tier, grant.tenant, grant.identity) == (Tier.BULK, "school", "op")


def test_bridge_hello_proof() -> None:
    now = time.time()
    proof = sign_hello("b1", "bridge-secret-0123456789", now)
    verify_hello(proof, "b1", "bridge-secret-0123456789", now)
    for auth, bridge, secret, at, message in [
        (proof, "b2", "bridge-secret-0123456789", now, "does not match"),
        (proof, "b1", "another-secret-0123456789", now, "does not match"),
        (proof, "b1", "bridge-secret-0123456789", now + 600, "stale"),
        ("", "b1", "bridge-secret-0123456789", now, "no valid auth"),
        ("v1.x.y", "b1", "bridge-secret-0123456789", now, "no valid auth"),
    ]:
        with pytest.raises(HelloRefused, match=message):
            verify_hello(auth, bridge, secret, at)


def test_ip_filter_block_wins_and_allow_restricts(tmp_path: Path) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text("# our country\n10.0.0.0/8\n192.0.2.0/24  # office\n2001:db8::/32\n")
    block = tmp_path / "block.txt"
    block.write_text("10.66.0.0/16\n")
    f = IpFilter.from_files(allow, block)
    assert f.permits("10.1.2.3") and f.permits("192.0.2.9") and f.permits("2001:db8::1")
    assert not f.permits("10.66.1.1") and not f.permits("198.51.100.1")
    assert f.permits("::ffff:10.1.2.3")  # IPv4-mapped IPv6 is the IPv4 address
    assert not f.permits(None) and not f.permits("garbage")
    assert IpFilter().permits("198.51.100.1")


def test_bad_list_line_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "block.txt"
    bad.write_text("10.0.0.0/8\n\n300.1.1.1/8\n")
    with pytest.raises(ValueError, match=r"block\.txt:3: not an address or CIDR"):
        load_networks(bad)


def test_token_buckets() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=2.0, tokens=2.0, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(1.0) and not bucket.take(1.0)
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_keys=2)
    assert limiter.allow("a", 0.0) and not limiter.allow("a", 0.1)
    assert limiter.allow("b", 0.1) and limiter.allow("c", 0.1)  # evicts "a"
    assert limiter.allow("a", 0.2)  # a fresh bucket after eviction
    assert RateLimiter(0.0, 1).allow("x", 0.0)  # rate 0 = no limit
