"""Fuzz the two untrusted inputs of the balancer with hypothesis-generated data:
1. /ws JSON messages, sent one by one over a real WebSocket to a live balancer;
2. msgpack frames of the bridge link, through ``sfu_balancer.wire.decode``.
Prints inputs tried, crashes (an ``internal`` error reply, or an exception other than
WireError), hangs (no reply within --timeout s, or a decode over 1 s) and wrong replies.
Exit status 1 on any. Usage: python bench/fuzz.py [--ws 100000] [--wire 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from sfu_balancer import wire  # noqa: E402
from tests.service.ws_fuzz import expected_reply_type, messages  # noqa: E402

valid_frames = [wire.encode(m) for m in (
    wire.Report(cpu=0.1, host_cpu=0.2, bytes_in_per_s=1.0, bytes_out_per_s=2.0,
                packets_in_per_s=3.0, packets_out_per_s=4.0, participants=1, rooms=1,
                relay_streams=0, measured_at=5.0),
    wire.Allocate(req=1, room="r", participant="p", sdp="v=0"),
    wire.Offer(room="r", participant="p", sdp="v=0", seq=1,
               tracks=[wire.TrackInfo(mid="0", kind="video", participant="q")]),
)]

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | \
    st.text(max_size=20) | st.binary(max_size=20)
structured = st.recursive(scalars, lambda c: st.lists(c, max_size=4)
                          | st.dictionaries(st.text(max_size=8), c, max_size=5), max_leaves=10)
frames = st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.sampled_from(["v", "t", "req", "room", "sdp", "id", "tracks", "x"]),
                    structured, max_size=7).map(lambda d: msgpack.packb(d, use_bin_type=True)),
    st.tuples(st.sampled_from(valid_frames), st.integers(0, 400), st.binary(min_size=1,
                                                                            max_size=3))
    .map(lambda t: t[0][: t[1] % len(t[0])] + t[2] + t[0][t[1] % len(t[0]) + 1:]),
)


def generate(strategy: st.SearchStrategy[object], count: int) -> list[object]:
    found: list[object] = []

    @settings(max_examples=count, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: object) -> None:
        found.append(value)

    collect()
    return found


def fuzz_wire(count: int) -> dict[str, int]:
    inputs = generate(frames, count)
    stats = {"tried": 0, "crashes": 0, "hangs": 0, "accepted": 0}
    for data in inputs:
        stats["tried"] += 1
        started = time.perf_counter()
        try:
            wire.decode(data)  # type: ignore[arg-type]
            stats["accepted"] += 1  # a mutation that is still a valid frame
        except wire.WireError:
            pass
        except Exception as exc:
            stats["crashes"] += 1
            print(f"wire crash: {type(exc).__name__}: {exc} on {data!r}"[:300])
        if time.perf_counter() - started > 1.0:
            stats["hangs"] += 1
    return stats


async def fuzz_ws(count: int, timeout_s: float) -> dict[str, int]:
    import aiohttp

    from sfu_balancer.settings import Settings
    from tests.service.conftest import Cluster

    inputs = generate(messages, count)
    cluster = Cluster(Settings(dev=True, limits={"ws_messages_per_s": 0,
                                                 "joins_per_ip_per_min": 0,
                                                 "connections_per_ip_per_min": 0},
                               log_level="ERROR"))
    await cluster.start()
    stats = {"tried": 0, "crashes": 0, "hangs": 0, "wrong_replies": 0}
    try:
        async with aiohttp.ClientSession() as http, \
                http.ws_connect(f"{cluster.url}/ws", max_msg_size=0) as ws:
            for raw in inputs:
                stats["tried"] += 1
                await ws.send_str(str(raw))
                try:
                    reply = json.loads((await ws.receive(timeout=timeout_s)).data)
                except TimeoutError:
                    stats["hangs"] += 1
                    continue
                if reply.get("code") == "internal":
                    stats["crashes"] += 1
                elif reply.get("type") != expected_reply_type(str(raw)):
                    stats["wrong_replies"] += 1
                    print(f"wrong reply {reply} to {raw!r}"[:300])
    finally:
        await cluster.close()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ws", type=int, default=100_000)
    parser.add_argument("--wire", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    started = time.perf_counter()
    wire_stats = fuzz_wire(args.wire)
    print(f"wire.decode: {wire_stats} ({time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    ws_stats = asyncio.run(fuzz_ws(args.ws, args.timeout))
    print(f"/ws:         {ws_stats} ({time.perf_counter() - started:.0f} s)")
    total = wire_stats["tried"] + ws_stats["tried"]
    bad = (wire_stats["crashes"] + wire_stats["hangs"] + ws_stats["crashes"] + ws_stats["hangs"]
           + ws_stats["wrong_replies"])
    print(f"total inputs {total:,}; crashes+hangs+wrong replies: {bad}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
