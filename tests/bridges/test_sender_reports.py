"""RTCP Sender Reports on a subscriber leg count exactly what the bridge forwarded on it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from conftest import Harness
from media_clients import Arrival, wait_for

IN_FLIGHT = 5  # packets the bridge may send between building an SR and the SR leaving


def _check(kind: str, arrivals: list[Arrival], sr: Any) -> str | None:
    """Compare one received SR with the packets that reached the subscriber before it did.

    Forwarding and RTCP share one socket each way, and aiortc handles a connection's packets in
    order, so every packet the SR counts has arrived by the time the SR is handled.
    """
    at = sr.timestamp.timestamp()  # when the subscriber handled the SR
    got = [a for a in arrivals if a.at <= at]
    if not got:
        return f"{kind}: SR {sr.packetsSent} before any packet"
    first = got[0].seq
    payload: dict[int, int] = {}
    for a in got:  # by position in the stream; an RTX repair fills its original number
        payload.setdefault((a.seq - first) & 0xFFFF, a.payload)
    n = sr.packetsSent
    if not n <= len(payload) <= n + IN_FLIGHT:
        return f"{kind}: SR counts {n} packets, {len(payload)} had arrived"
    counted = sorted(payload)[:n]
    if counted != list(range(n)):
        return f"{kind}: a packet the SR counts never arrived"
    octets = sum(payload[i] for i in counted)
    if octets != sr.bytesSent:
        return f"{kind}: SR counts {sr.bytesSent} payload octets in {n} packets, got {octets}"
    return None


async def test_sender_reports_match_what_the_leg_forwarded(harness: Harness) -> None:
    viewer = await harness.join("sr", "viewer", video=False)
    sub = viewer.subscriber
    sub.log_rtp = True  # before anyone publishes: logs every packet of every track
    await harness.join("sr", "alice", width=160, height=120, fps=15)
    await wait_for(lambda: sub.video["alice"].frames >= 3, 20, "alice's video")
    checked: dict[str, list[int]] = {"audio": [], "video": []}
    problems: list[str] = []
    deadline = time.monotonic() + 30
    while min(len(v) for v in checked.values()) < 3:  # SRs come every 0.5-1.5 s per sender
        assert time.monotonic() < deadline, f"timed out waiting for SRs: {checked}"
        ssrc_mid = {a.ssrc: mid for mid, log in sub.rtp.items() for a in log[:1]}
        for stat in (await sub.pc.getStats()).values():
            if stat.type != "remote-outbound-rtp" or stat.ssrc not in ssrc_mid:
                continue
            seen = checked[stat.kind]
            if seen and seen[-1] == stat.packetsSent:
                continue  # the same SR as last time
            seen.append(stat.packetsSent)
            problem = _check(stat.kind, sub.rtp[ssrc_mid[stat.ssrc]], stat)
            if problem:
                problems.append(problem)
        await asyncio.sleep(0.05)  # poll step; the loop is bounded by the deadline above
    assert not problems, problems
    for kind, counts in checked.items():
        assert counts == sorted(counts) and counts[-1] > counts[0], (kind, counts)
