"""Joins per second in Redis mode against memory mode, in one run.

Each mode runs the balancer as real ``sfu-balancer serve`` processes with fake bridges (canned
SDP, no media: this measures signaling and state, not media) and N signaling clients joining
ROOMS rooms, CONCURRENCY at a time, all on 127.0.0.1:
- memory, 1 instance (the embedded default);
- redis, 1 instance (same work plus the shared store: Lua claim, ledger stream, leases);
- redis, 3 instances (the same burst spread over three instances sharing one Redis).
The target is redis (1 instance) >= 0.5 x memory. Prints a table and writes JSON.

    .venv/bin/python bench/redis_mode.py [--joins 1000] [--out bench/out/redis_mode.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis.cluster import Cluster  # noqa: E402
from tests.redis.conftest import RedisServer  # noqa: E402

ROOMS = 50
CONCURRENCY = 100


async def run_mode(redis_url: str | None, instances: int, joins: int, workdir: Path
                   ) -> dict[str, float]:
    cluster = Cluster(redis_url, f"bench{uuid.uuid4().hex[:6]}", workdir, instances=instances)
    try:
        await cluster.start()
        limit = asyncio.Semaphore(CONCURRENCY)
        latencies: list[float] = []

        async def one(i: int) -> None:
            async with limit:
                started = time.monotonic()
                p = cluster.join(f"room{i % ROOMS}", f"p{i}", first=i % instances)
                await asyncio.wait_for(p.joined.wait(), 120)
                latencies.append(time.monotonic() - started)

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(joins)))
        elapsed = time.monotonic() - started
        latencies.sort()
        refused = sum(len(p.errors) for p in cluster.participants)
        return {"joins": joins, "seconds": round(elapsed, 3),
                "joins_per_s": round(joins / elapsed, 1),
                "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
                "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1),
                "retried_refusals": refused}
    finally:
        await cluster.close()


async def main(joins: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis = RedisServer(workdir)
        redis.start()
        try:
            results = {
                "memory_1": await run_mode(None, 1, joins, workdir),
                "redis_1": await run_mode(redis.url, 1, joins, workdir),
                "redis_3": await run_mode(redis.url, 3, joins, workdir),
            }
        finally:
            redis.kill()
    base = results["memory_1"]["joins_per_s"]
    print(f"{'mode':<10} {'joins/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs memory':>10}")
    for mode, r in results.items():
        print(f"{mode:<10} {r['joins_per_s']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['joins_per_s'] / base:>10.2f}")
    ratio = results["redis_1"]["joins_per_s"] / base
    print(f"redis (1 instance) / memory = {ratio:.2f} (target >= 0.5): "
          f"{'OK' if ratio >= 0.5 else 'BELOW TARGET'}")
    return {"results": results, "ratio_redis_1": round(ratio, 3),
            "ratio_redis_3": round(results["redis_3"]["joins_per_s"] / base, 3)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "redis_mode.json")
    args = parser.parse_args()
    summary = asyncio.run(main(args.joins))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
