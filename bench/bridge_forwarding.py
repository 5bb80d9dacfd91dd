"""Forwarding cost of the bridge, side by side with aiortc's MediaRelay (decode + re-encode).

Two parts, one run:

1. ``micro``: the forwarder alone, in this process. One publisher-like stream is pushed through
   the real packet path (``Source.on_packet`` -> header rewrite -> SRTP -> sendto) to N connected
   loopback subscriber connections; thread CPU time gives µs per out packet and out-pps per
   core; the time from entering the receive tap to the last leg's sendto is the added latency.
2. ``e2e``: three processes on loopback -- a publisher (640x480@30 VP8, aiortc encoder), the
   bridge, and N subscribers (count packets, one decodes) -- once with our forwarder and once
   with MediaRelay, for growing N. The bridge process CPU (os.times) gives CPU per subscriber leg
   (least-squares slope over N), out-pps per core, and the legs-per-core ratio.

Writes a calibration JSON for the simulator's cost model (``--out``): its ``cost_table`` block
holds ``CostTable`` keys (``bridges/calibration.py`` says where each value comes from), which
``sfu-sim`` reads through ``[costs] calibration = "..."`` and ``sfu-bridge --emulate
--calibration``. Prints one PASS/FAIL line per target of issue 4, naming the measurement judged.
Not part of the tests.
Run: ``python bench/bridge_forwarding.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import pathlib
import statistics
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "bridges"))  # the synthetic publisher of the tests

from bridges.calibration import build_calibration, verdicts  # noqa: E402  (pure, no aiortc)


def _loopback() -> None:
    from bridges import aiortc_adapter

    aiortc_adapter.restrict_ice_addresses(["127.0.0.1"])


def _config() -> Any:
    from aiortc import RTCBundlePolicy, RTCConfiguration

    return RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE, iceServers=[])


# ---------------------------------------------------------------------------------------------
# 1. micro: the forwarder alone
# ---------------------------------------------------------------------------------------------


async def _micro(n_subs: int, packets: int, payload: int) -> dict[str, float]:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from bridges import aiortc_adapter
    from bridges.aiortc_adapter import RtpPacket
    from bridges.counters import TrafficCounters
    from bridges.sfu.forwarder import Source
    from bridges.sfu.session import SubscribeSession

    counters = TrafficCounters()
    source = Source(key="pub:0", participant="pub", kind="video", origin="local",
                    rtx_payload_types=frozenset(), counters=counters, send_pli=lambda s: None)
    sessions, clients = [], []
    pending: set[asyncio.Future[None]] = set()  # keeps the answer tasks referenced
    for i in range(n_subs):
        client = RTCPeerConnection(_config())
        clients.append(client)

        def sink(sdp: str, seq: int, tracks: Any, client: Any = client, i: int = i) -> None:
            async def answer() -> None:
                await client.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                await client.setLocalDescription(await client.createAnswer())
                for t in client.getTransceivers():  # count only: never decode
                    aiortc_adapter.install_receive_tap(t.receiver, lambda p, ms: None)
                await sessions[i].answer(seq, client.localDescription.sdp)
            pending.add(asyncio.ensure_future(answer()))

        session = SubscribeSession(name=f"s{i}", counters=counters, wants=lambda s: True,
                                   send_offer=sink)
        sessions.append(session)
        session.update([source])
    deadline = time.monotonic() + 30
    while not all(leg.sender.ready for leg in source.legs) or len(source.legs) < n_subs:
        if time.monotonic() > deadline:
            raise RuntimeError("subscribers did not connect")
        await asyncio.sleep(0.05)
    body = bytes([0x10, 0x00]) + os.urandom(payload - 2)  # a VP8 keyframe start: legs start
    delta = bytes([0x10, 0x01]) + body[2:]
    pkts = [RtpPacket(payload_type=96, sequence_number=i & 0xFFFF, timestamp=(i // 8) * 3000,
                      ssrc=1234, payload=body if i == 0 else delta) for i in range(packets)]
    source.on_packet(pkts[0], 0)
    lat: list[float] = []
    out0 = counters.packets_out
    cpu = 0.0
    thread_time, perf = time.thread_time, time.perf_counter
    for i, p in enumerate(pkts[1:], 1):
        c, t = thread_time(), perf()
        source.on_packet(p, 0)
        lat.append(perf() - t)
        cpu += thread_time() - c
        if i % 32 == 0:
            await asyncio.sleep(0.001)  # receivers drain (their CPU is outside the figure)
    out = counters.packets_out - out0
    for s in sessions:
        await s.close()
    for c in clients:
        await c.close()
    return {
        "subscribers": n_subs, "out_packets": out, "cpu_s": cpu,
        "us_per_out_packet": 1e6 * cpu / max(out, 1),
        "out_pps_per_core": out / cpu if cpu else 0.0,
        "fanout_latency_median_ms": 1e3 * statistics.median(lat),
        "fanout_latency_p99_ms": 1e3 * sorted(lat)[int(0.99 * len(lat))],
        "dropped": counters.dropped_out,
    }


def micro(args: argparse.Namespace) -> list[dict[str, float]]:
    _loopback()
    rows = []
    for n in args.micro_subs:
        row = asyncio.run(_micro(n, args.micro_packets, args.payload))
        rows.append(row)
        print(f"  micro N={n:3d}: {row['us_per_out_packet']:6.1f} µs/out-pkt  "
              f"{row['out_pps_per_core']:9,.0f} out-pps/core  "
              f"fan-out latency median {row['fanout_latency_median_ms']:.3f} ms "
              f"(p99 {row['fanout_latency_p99_ms']:.3f})", flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# 2. e2e: publisher, bridge, subscribers as processes
# ---------------------------------------------------------------------------------------------


def _publisher_main(conn: Any, width: int, height: int, fps: int) -> None:
    _loopback()
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from media_clients import SyntheticVideo

    async def run() -> None:
        pc = RTCPeerConnection(_config())
        pc.addTransceiver(SyntheticVideo(width, height, fps), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        conn.send(pc.localDescription.sdp)
        answer = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        await pc.close()

    asyncio.run(run())


def _bridge_main(conn: Any, mode: str) -> None:
    """Serves ("pub", sdp) / ("sub", sdp) / ("answer", pid, seq, sdp) / ("stats",) on a pipe."""
    _loopback()
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    from bridges.sfu.worker import Worker

    async def run() -> None:
        loop = asyncio.get_running_loop()
        offers: list[Any] = []
        worker = Worker(on_offer=offers.append)
        relay, track, pcs = MediaRelay(), loop.create_future(), []
        subs = 0
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd[0] == "pub" and mode == "forward":
                conn.send(await worker.allocate("room", "pub", cmd[1]))
            elif cmd[0] == "pub":
                pc = RTCPeerConnection(_config())
                pcs.append(pc)
                pc.on("track", lambda t: track.done() or track.set_result(t))
                await pc.setRemoteDescription(RTCSessionDescription(sdp=cmd[1], type="offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                conn.send(pc.localDescription.sdp)
            elif cmd[0] == "sub" and mode == "forward":
                subs += 1
                pid = f"sub{subs}"
                await worker.allocate("room", pid, cmd[1])  # a viewer: recvonly m-line only
                for _ in range(200):
                    if any(o.participant == pid for o in offers):
                        break
                    await asyncio.sleep(0.05)
                offer = next(o for o in offers if o.participant == pid)
                conn.send((pid, offer.seq, offer.sdp))
            elif cmd[0] == "sub":
                pc = RTCPeerConnection(_config())
                pcs.append(pc)
                await pc.setRemoteDescription(RTCSessionDescription(sdp=cmd[1], type="offer"))
                pc.addTrack(relay.subscribe(await track, buffered=False))
                await pc.setLocalDescription(await pc.createAnswer())
                conn.send(("", 0, pc.localDescription.sdp))
            elif cmd[0] == "answer":
                await worker.answer("room", cmd[1], cmd[2], cmd[3])
                conn.send("ok")
            elif cmd[0] == "stats":
                c = worker.counters
                figures = {"out": c.packets_out, "out_bytes": c.bytes_out,
                           "in": c.packets_in, "in_bytes": c.bytes_in}
                if mode == "relay":  # aiortc's own counters; its bytesSent is payload only
                    figures = {"out": 0}
                    for pc in pcs[1:]:
                        for s in (await pc.getStats()).values():
                            if s.type == "outbound-rtp":
                                figures["out"] += s.packetsSent
                t = os.times()
                conn.send({"cpu": t.user + t.system, "wall": time.monotonic(), **figures})
            elif cmd[0] == "stop":
                break
        await worker.close()
        for pc in pcs:
            await pc.close()

    asyncio.run(run())


def _subscribers_main(conn: Any, bridge: Any, n: int, mode: str) -> None:
    _loopback()
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from bridges import aiortc_adapter

    async def run() -> None:
        loop = asyncio.get_running_loop()
        ask = lambda *cmd: loop.run_in_executor(None, lambda: (bridge.send(cmd), bridge.recv())[1])  # noqa: E731
        pcs = []
        for _ in range(n):
            pc = RTCPeerConnection(_config())
            pcs.append(pc)
            pc.addTransceiver("video" if mode == "relay" else "audio", direction="recvonly")
            pc.on("track", lambda t, pc=pc: [aiortc_adapter.install_receive_tap(
                x.receiver, lambda p, ms: None) for x in pc.getTransceivers()])
            await pc.setLocalDescription(await pc.createOffer())
            pid, seq, sdp = await ask("sub", pc.localDescription.sdp)
            if mode == "relay":
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
                continue
            sub = RTCPeerConnection(_config())
            pcs.append(sub)
            sub.on("track", lambda t, sub=sub: [aiortc_adapter.install_receive_tap(
                x.receiver, lambda p, ms: None) for x in sub.getTransceivers()])
            await sub.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await sub.setLocalDescription(await sub.createAnswer())
            await ask("answer", pid, seq, sub.localDescription.sdp)
        conn.send("ready")
        await loop.run_in_executor(None, conn.recv)
        for pc in pcs:
            await pc.close()

    asyncio.run(run())


def e2e(mode: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    pub_a, pub_b = ctx.Pipe()
    br_a, br_b = ctx.Pipe()
    sb_a, sb_b = ctx.Pipe()
    sub_bridge_a, sub_bridge_b = ctx.Pipe()
    bridge = ctx.Process(target=_bridge_main, args=(br_b, mode), daemon=True)
    bridge.start()
    # the subscribers process talks to the bridge through a relay thread of ours
    procs = [bridge]
    pub = ctx.Process(target=_publisher_main, args=(pub_b, args.width, args.height, args.fps),
                      daemon=True)
    pub.start()
    procs.append(pub)
    try:
        br_a.send(("pub", pub_a.recv()))
        pub_a.send(br_a.recv())
        subs = ctx.Process(target=_subscribers_main, args=(sb_b, sub_bridge_b, n, mode),
                           daemon=True)
        subs.start()
        procs.append(subs)
        while not sb_a.poll(0.01):
            if sub_bridge_a.poll(0.01):
                br_a.send(sub_bridge_a.recv())
                sub_bridge_a.send(br_a.recv())
        sb_a.recv()
        time.sleep(args.warmup)
        br_a.send(("stats",))
        s0 = br_a.recv()
        time.sleep(args.window)
        br_a.send(("stats",))
        s1 = br_a.recv()
    finally:
        for c in (br_a, pub_a, sb_a):
            with contextlib.suppress(OSError):
                c.send(("stop",))
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
    wall = s1["wall"] - s0["wall"]
    cores = (s1["cpu"] - s0["cpu"]) / wall
    out_pps = (s1["out"] - s0["out"]) / wall
    row = {"mode": mode, "subscribers": n, "bridge_cores": cores, "out_pps": out_pps,
           "out_pps_per_core": out_pps / cores if cores else 0.0}
    for key, name in (("out_bytes", "out_bytes_per_s"), ("in", "in_pps"),
                      ("in_bytes", "in_bytes_per_s")):
        if key in s1:  # the forwarder's own counters (not available for MediaRelay)
            row[name] = (s1[key] - s0[key]) / wall
    return row


def _point(mode: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    """One e2e run; a run that forwarded nothing (setup failed) is tried once more."""
    label = "forward   " if mode == "forward" else "MediaRelay"
    for attempt in (1, 2):
        row = e2e(mode, n, args)
        print(f"  {label} N={n:3d}: {row['bridge_cores']:.3f} cores, "
              f"{row['out_pps']:7,.0f} out-pps", flush=True)
        if row["out_pps"] > 0:
            break
        print(f"  {label} N={n:3d}: nothing forwarded"
              + (", once more" if attempt == 1 else ", left out of the figures"), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "bridge_calibration.json"))
    ap.add_argument("--quick", action="store_true", help="fewer points, shorter windows")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=30)
    args = ap.parse_args()
    args.payload = 1100
    args.micro_subs = [1, 10, 40] if args.quick else [1, 10, 40, 100]
    args.micro_packets = 2000 if args.quick else 5000
    args.warmup, args.window = (4.0, 5.0) if args.quick else (6.0, 10.0)
    fwd_ns = [2, 8, 16] if args.quick else [2, 8, 16, 32]
    relay_ns = [1, 2, 4] if args.quick else [1, 2, 4, 6]

    print("1) forwarder alone (this process, real SRTP + sendto to loopback subscribers)")
    micro_rows = micro(args)
    print(f"2) end to end, {args.width}x{args.height}@{args.fps} VP8 publisher, "
          "bridge process CPU by os.times")
    fwd = [_point("forward", n, args) for n in fwd_ns]
    rel = [_point("relay", n, args) for n in relay_ns]
    result = build_calibration(
        micro=micro_rows, forward=fwd, mediarelay=rel,
        stream={"width": args.width, "height": args.height, "fps": args.fps,
                "micro_payload_bytes": args.payload},
    )
    f, r = result["forwarder"], result["mediarelay"]
    print("\nsummary (micro = part 1, forwarder alone in this process, thread CPU; "
          "e2e = part 2, bridge process CPU by os.times)")
    print(f"  e2e CPU per subscriber leg (slope over N): forwarder "
          f"{1e3 * f['cpu_per_leg_cores']:.2f} mcores, MediaRelay "
          f"{1e3 * r['cpu_per_leg_cores']:.1f} mcores")
    marginal = f["out_pps_per_core_e2e_marginal"]
    print(f"  out-pps per core: micro N={f['micro_subscribers']:g} "
          f"{f['out_pps_per_core_micro']:,.0f}; e2e marginal (per extra packet sent) "
          f"{marginal or 0:,.0f}; e2e total at "
          f"N={f['e2e_largest_subscribers']} {f['out_pps_per_core_e2e_total'] or 0:,.0f} "
          "(whole process: receive, RTCP, asyncio, fixed costs)")
    print(f"  fan-out latency (micro, tap -> last leg's sendto) median "
          f"{f['fanout_latency_median_ms']:.3f} ms at N={f['micro_subscribers']:g}")
    stream = result["stream"]
    if stream["bytes_per_out_packet"] and stream["in_packets_per_s"]:
        print(f"  e2e publisher stream as received: {stream['in_packets_per_s']:.1f} packets/s, "
              f"{8e-3 * stream['in_bytes_per_s']:.0f} kbps; sent per leg "
              f"{stream['out_packets_per_s_per_leg']:.1f} packets/s (repairs included), "
              f"{stream['bytes_per_out_packet']:.0f} B per out packet (SRTP; bridge counters)")
    print("\ntargets (issue 4)")
    for verdict in verdicts(result):
        print("  " + verdict.line())
    print("\ncost_table for the simulator (simulations/costmodel.py):")
    for key, value in result["cost_table"].items():
        print(f"  {key} = {value:.2f}  <- {result['cost_table_from'][key]}")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"  calibration written to {out}")


if __name__ == "__main__":
    main()
