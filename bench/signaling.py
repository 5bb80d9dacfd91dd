"""Signaling throughput and latency of one balancer process, on uvloop and on asyncio.

Starts, for each event loop: one ``sfu-balancer serve`` process (dev mode, no abuse limits,
log level WARNING, pinned to CPU 0 so it has exactly one core; ``--env SFUB_LOG_LEVEL=INFO
--env SFUB_LOG_FORMAT=json`` adds a production deployment's line per join and access line per
socket), ``--bridges`` emulated bridges
(``sfu-bridge --emulate``: real bridge links, no media, load from the simulator's cost model)
and this load generator (pinned to the other CPUs). The participants are ``wsload.RawSocket``s,
a minimal WebSocket client far cheaper than aiohttp's, so that the generator and the bridges
on the other core keep the balancer's core busy (the printed ``cpu`` share says whether they
did; ``other`` is their own share of the other core). The generator's garbage collector is
off while it measures (it collects between phases), so its pauses are not the balancer's.
Then:

1. **throughput**, closed loop, ``--concurrency`` clients, ``--joins`` cycles in all, twice:
   - *fresh*: a cycle is open ``/ws`` (TCP + upgrade), ``join`` -> ``joined``,
     ``leave`` -> ``left``, close: a participant arriving and going.
   - *reused*: each client keeps one socket; a cycle is ``join`` -> ``joined``,
     ``leave`` -> ``left`` on it: the join itself, as in a rejoin after a move.
   **joins per CPU-second** = cycles completed / CPU seconds (user + system) the balancer
   process used meanwhile: the rate one core would sustain. Also printed: joins/s of wall time
   and the balancer's share of its core.
2. **latency and hold**: joins opened at ``--rate`` per second (open loop: a slow balancer is
   not waited for) until ``--hold`` participants are joined at once; p50/p99 join latency =
   ``join`` written to the socket -> ``joined``'s bytes read by the client (the connect and
   upgrade before it are not counted), then every held socket is pinged and must answer, and
   the bridges' reports must count every participant. Then all leave.

The loops' balancers run side by side and their throughput rounds (``--rounds``) alternate;
the medians are printed, with each figure's range over the rounds, and the uvloop/asyncio
ratios are of those medians.

The control, bench/loop_ceiling.py, runs the same generator against a bare aiohttp server of
the same shape (one bridge round trip per message, nothing else) on both loops: the ratio it
prints bounds what the loop choice can give the balancer on that machine.

Targets (issue 5): >= 2,000 joins per CPU-second on one core; uvloop >= 1.3x asyncio (same
run); p99 < 50 ms at 500 joins/s; 5,000 concurrent participant WebSockets. Every phase is
bounded in count and time. The machine is shared: run it more than once, and read ``uptime``.
Usage: python bench/signaling.py [--quick] [--loops uvloop,asyncio] [--env KEY=VALUE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import psutil
import uvloop
from wsload import RawSocket, connect

ROOT = Path(__file__).resolve().parent.parent
PHASE_LIMIT_S = 120.0
FAKE_OFFER = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
              "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n"
              "a=rtpmap:111 opus/48000/2\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n"
              "a=sendonly\r\na=rtpmap:96 VP8/90000\r\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(cpus: set[int]) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, cpus)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds so far of the processes ``pids``, summed."""
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


@dataclass
class Stack:
    """A balancer process on CPU 0 and emulated bridges beside the load generator."""

    loop: str
    bridges: int
    extra_env: dict[str, str] = field(default_factory=dict)  # the balancer's only
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(os.environ, SFUB_DEV="true", SFUB_EVENT_LOOP=self.loop,
                   SFUB_LOG_LEVEL="WARNING", SFUB_SEED="1",
                   SFUB_LIMITS__CONNECTIONS_PER_IP_PER_MIN="0",
                   SFUB_LIMITS__JOINS_PER_IP_PER_MIN="0", SFUB_LIMITS__WS_MESSAGES_PER_S="0")
        env.update(self.extra_env)  # --env may override any of the above
        profile = os.environ.get("SIGNALING_PROFILE")  # cProfile output of the balancer
        prefix = ["-m", "cProfile", "-o", f"{profile}.{self.loop}"] if profile else []
        self.processes.append(subprocess.Popen(
            [sys.executable, *prefix, "-m", "sfu_balancer", "serve", "--port", str(self.port)],
            env=env, cwd=ROOT, preexec_fn=lambda: pin({0})))
        others = set(range(1, os.cpu_count() or 1)) or {0}
        for i in range(self.bridges):
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "bridges", "--emulate", "--balancer", self.url,
                 "--id", f"emu-{i + 1}", "--cpu", "64", "--egress-mbps", "100000",
                 "--ingress-mbps", "100000", "--log-level", "WARNING"],
                cwd=ROOT, preexec_fn=lambda: pin(others)))

    @property
    def balancer(self) -> psutil.Process:
        return psutil.Process(self.processes[0].pid)

    def others_cpu(self) -> float:
        """CPU seconds so far of what shares the other cores: this generator, the bridges."""
        return cpu_seconds([os.getpid()] + [p.pid for p in self.processes[1:]])

    def stop(self) -> None:
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


READY_LIMIT_S = 150.0  # a first start compiles the routing kernels (~70 s, longer if profiled)


async def wait_ready(http: aiohttp.ClientSession, stack: Stack) -> str:
    deadline = time.monotonic() + READY_LIMIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{stack.url}/readyz") as r:
                if (await r.json())["serving_bridges"] == stack.bridges:
                    async with http.get(f"{stack.url}/healthz") as h:
                        return str((await h.json())["loop"])
        if stack.processes[0].poll() is not None:
            raise SystemExit("the balancer exited during start-up")
        await asyncio.sleep(0.1)
    raise SystemExit(f"{stack.bridges} emulated bridges not serving within {READY_LIMIT_S:.0f} s")


async def join(stack: Stack, room: str) -> tuple[RawSocket, float]:
    """A fresh socket joined to ``room``, and its join latency: ``join`` written to the socket
    -> ``joined``'s bytes read (the connect and handshake before are not in it)."""
    ws = await connect("127.0.0.1", stack.port)
    sent = time.perf_counter()
    ws.send(json.dumps({"type": "join", "room": room, "sdp": FAKE_OFFER}))
    arrived, _ = await ws.receive("joined")
    return ws, arrived - sent


async def leave(ws: RawSocket) -> None:
    ws.send('{"type": "leave"}')
    await ws.receive("left")


FAILURES = (RuntimeError, ConnectionError, OSError, TimeoutError)


async def throughput(stack: Stack, joins: int, concurrency: int, fresh: bool
                     ) -> dict[str, float]:
    """Closed loop of ``concurrency`` clients, ``joins`` cycles in all. ``fresh``: a cycle is
    connect ``/ws``, ``join``, ``joined``, ``leave``, ``left``, close (a participant arriving
    and going); otherwise each client keeps one socket and a cycle is ``join``, ``joined``,
    ``leave``, ``left`` on it (the cost of the join itself, as in a rejoin after a move)."""
    remaining = iter(range(joins))
    errors: dict[str, int] = {}
    done = 0
    room = lambda i: f"tp-{i % (joins // 5 or 1)}"  # noqa: E731

    async def client() -> None:
        nonlocal done
        ws = None if fresh else await connect("127.0.0.1", stack.port)
        for i in remaining:
            try:
                if fresh:
                    ws, _ = await join(stack, room(i))
                    await leave(ws)
                    await ws.close()
                else:
                    assert ws is not None
                    ws.send(json.dumps({"type": "join", "room": room(i), "sdp": FAKE_OFFER}))
                    await ws.receive("joined")
                    await leave(ws)
                done += 1
            except FAILURES as exc:
                errors[str(exc) or type(exc).__name__] = errors.get(str(exc), 0) + 1
        if ws is not None and not fresh:
            await ws.close()

    gc.collect()  # the generator's own garbage, freed before the clock starts (see main)
    others0 = stack.others_cpu()
    cpu0 = stack.balancer.cpu_times()
    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(concurrency))), PHASE_LIMIT_S)
    wall = time.perf_counter() - started
    cpu1 = stack.balancer.cpu_times()
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    kernel = (cpu1.system - cpu0.system) / max(cpu, 1e-9)  # the same syscalls on either loop
    others = stack.others_cpu() - others0
    if errors:
        print(f"  throughput errors: {errors}")
    prefix = "" if fresh else "reuse_"
    return {f"{prefix}joins": done, f"{prefix}joins_per_s": done / wall,
            f"{prefix}balancer_cpu_share": cpu / wall, f"{prefix}others_cpu_share": others / wall,
            f"{prefix}joins_per_cpu_s": done / max(cpu, 1e-9), f"{prefix}kernel_share": kernel}


async def hold(http: aiohttp.ClientSession, stack: Stack, count: int, rate: float,
               room_size: int) -> dict[str, float]:
    sockets: list[RawSocket] = []
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def one(i: int) -> None:
        try:
            ws, latency = await join(stack, f"hold-{i // room_size}")
        except FAILURES as exc:
            errors[str(exc)] = errors.get(str(exc), 0) + 1
            return
        sockets.append(ws)
        latencies.append(latency)

    gc.collect()
    started = time.perf_counter()
    tasks = []
    for i in range(count):  # open loop: start each join on schedule, never wait for the last
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.wait_for(asyncio.gather(*tasks), PHASE_LIMIT_S)
    offered = count / (time.perf_counter() - started)
    if errors:
        print(f"  hold errors: {errors}")

    async def ping(ws: RawSocket) -> bool:
        ws.send('{"type": "ping"}')
        await ws.receive("pong")
        return True

    alive = sum(await asyncio.wait_for(asyncio.gather(*(ping(ws) for ws in sockets)),
                                       PHASE_LIMIT_S))
    reported = 0
    deadline = time.monotonic() + 10  # reports arrive every second
    while time.monotonic() < deadline and reported != len(sockets):
        async with http.get(f"{stack.url}/api/v1/bridges") as r:
            reported = sum(int((b.get("load") or {}).get("participants", 0))
                           for b in (await r.json())["bridges"])
        await asyncio.sleep(0.25)
    rss_mb = stack.balancer.memory_info().rss / 2**20
    await asyncio.gather(*(ws.close() for ws in sockets))
    lat = np.array(latencies) * 1e3
    return {"held": len(sockets), "alive": alive, "reported": reported, "offered_rate": offered,
            "p50_ms": float(np.percentile(lat, 50)) if lat.size else 0.0,
            "p99_ms": float(np.percentile(lat, 99)) if lat.size else 0.0,
            "balancer_rss_mb": rss_mb}


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds, and ``<key>_lo``/``<key>_hi`` its range."""
    out: dict[str, float] = {}
    for key in rounds[0]:
        values = sorted(r[key] for r in rounds)
        out[key] = float(np.median(values))
        out[f"{key}_lo"], out[f"{key}_hi"] = values[0], values[-1]
    return out


async def measure(loops: list[str], args: argparse.Namespace) -> list[dict[str, float | str]]:
    """All loops' balancers run side by side, and their throughput rounds alternate, so that a
    neighbour's load on this shared machine falls on every loop alike (the ratio is fairer)."""
    extra = dict(item.split("=", 1) for item in args.env)
    stacks = {loop: Stack(loop, args.bridges, extra) for loop in loops}
    for stack in stacks.values():
        stack.start()
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            for loop, stack in stacks.items():
                running = await wait_ready(http, stack)
                if running != loop:
                    raise SystemExit(f"asked for {loop}, the balancer runs on {running}")
                await throughput(stack, min(500, args.joins), args.concurrency, True)  # warm
            rounds: dict[str, list[dict[str, float]]] = {loop: [] for loop in loops}
            for _ in range(args.rounds):
                for loop, stack in stacks.items():
                    fresh = await throughput(stack, args.joins, args.concurrency, True)
                    reuse = await throughput(stack, args.joins, args.concurrency, False)
                    rounds[loop].append(fresh | reuse)
            rows: list[dict[str, float | str]] = []
            for loop, stack in stacks.items():
                held = await hold(http, stack, args.hold, args.rate, args.room_size)
                rows.append({"loop": loop, **median_of(rounds[loop]), **held})
        return rows
    finally:
        for stack in stacks.values():
            stack.stop()


def verdict(ok: bool, text: str) -> str:
    return f"  [{'PASS' if ok else 'FAIL'}] {text}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loops", default="uvloop,asyncio")
    parser.add_argument("--bridges", type=int, default=2)
    parser.add_argument("--joins", type=int, default=8000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--hold", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--room-size", type=int, default=5)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment of the balancers (e.g. UV_USE_IO_URING=0)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="throughput rounds per loop; medians are printed")
    parser.add_argument("--quick", action="store_true", help="small counts, a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.joins, args.hold, args.rounds = 600, 300, 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.hold + 1024)), hard))
    pin(set(range(1, os.cpu_count() or 1)) or {0})
    # No collector pauses in the generator while it measures (it collects between phases):
    # a pause here would stamp the balancer's replies late and delay the open-loop schedule.
    gc.disable()
    rows = uvloop.run(measure(args.loops.split(","), args))
    print(f"signaling: {args.bridges} emulated bridges, balancer pinned to CPU 0, "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at the end"
          + (f"; balancer environment {' '.join(args.env)}" if args.env else ""))
    print("joins/cpu-s = cycles per CPU-second of the balancer (user + system); joins/s = per "
          "second of wall time, with the balancer's share of its core (cpu).\n"
          "fresh = connect, join, leave, close per cycle; reused = join, leave on open sockets. "
          "p50/p99 = join written -> joined read, while ramping up to the held sockets.")
    print("other = CPU share of the generator and the bridges, on the other core(s): near "
          f"{max(1, (os.cpu_count() or 2) - 1)}.0 means they, not the balancer, set the wall rate.")
    print(f"{'loop':8} {'fresh/s':>8} {'cpu':>5} {'other':>5} {'fresh/cpu-s':>11} {'reused/s':>9} "
          f"{'cpu':>5} {'other':>5} {'reused/cpu-s':>12} {'held':>5} {'alive':>5} "
          f"{'reported':>8} {'rate':>6} {'p50 ms':>7} {'p99 ms':>7} {'RSS MB':>7}")
    for r in rows:
        print(f"{r['loop']:8} {r['joins_per_s']:8.0f} {r['balancer_cpu_share']:5.2f} "
              f"{r['others_cpu_share']:5.2f} {r['joins_per_cpu_s']:11.0f} "
              f"{r['reuse_joins_per_s']:9.0f} {r['reuse_balancer_cpu_share']:5.2f} "
              f"{r['reuse_others_cpu_share']:5.2f} {r['reuse_joins_per_cpu_s']:12.0f} "
              f"{r['held']:5.0f} {r['alive']:5.0f} "
              f"{r['reported']:8.0f} {r['offered_rate']:6.0f} {r['p50_ms']:7.1f} "
              f"{r['p99_ms']:7.1f} {r['balancer_rss_mb']:7.0f}")
    for r in rows:
        print(f"  {r['loop']}: over {args.rounds} rounds, fresh/cpu-s "
              f"{r['joins_per_cpu_s_lo']:.0f}-{r['joins_per_cpu_s_hi']:.0f}, reused/cpu-s "
              f"{r['reuse_joins_per_cpu_s_lo']:.0f}-{r['reuse_joins_per_cpu_s_hi']:.0f} "
              f"(the table has the medians); in the kernel: {r['kernel_share']:.0%} of its "
              f"CPU on fresh sockets, {r['reuse_kernel_share']:.0%} on reused ones")
    by = {r["loop"]: r for r in rows}
    first = rows[0]
    print("targets:")
    for prefix, what in (("", "fresh sockets"), ("reuse_", "open sockets (reused)")):
        rate = float(first[f"{prefix}joins_per_cpu_s"])
        print(verdict(rate >= 2000,
                      f"{first['loop']}: {rate:.0f} joins per balancer CPU-second on {what} "
                      f"(>= 2,000 on one core; wall {first[f'{prefix}joins_per_s']:.0f}/s at "
                      f"{first[f'{prefix}balancer_cpu_share']:.0%} of its core)"))
    if "uvloop" in by and "asyncio" in by:
        for prefix, what in (("", "fresh"), ("reuse_", "reused")):
            ratio = (float(by["uvloop"][f"{prefix}joins_per_cpu_s"])
                     / float(by["asyncio"][f"{prefix}joins_per_cpu_s"]))
            print(verdict(ratio >= 1.3, f"uvloop / asyncio joins per CPU-second, {what}: "
                                        f"{ratio:.2f} (>= 1.3)"))
    print(verdict(float(first["p99_ms"]) < 50,
                  f"{first['loop']}: p99 join latency {first['p99_ms']:.1f} ms at "
                  f"{first['offered_rate']:.0f} joins/s offered (< 50 ms at 500/s)"))
    print(verdict(first["held"] == first["alive"] == first["reported"] == args.hold,
                  f"{first['loop']}: {first['held']:.0f} concurrent participant WebSockets "
                  f"held, {first['alive']:.0f} answered a ping, bridges report "
                  f"{first['reported']:.0f} (want {args.hold})"))


if __name__ == "__main__":
    main()
