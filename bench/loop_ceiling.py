"""The control for bench/signaling.py: what the event loop alone is worth to an aiohttp server of
the balancer's shape, with no routing, store, guard or metrics.

For each loop it starts a minimal server (this script, ``--serve``) pinned to CPU 0: ``/ws``
answers ``join`` with ``joined`` (a 600-byte SDP) and ``leave`` with ``left``, each after one
request/reply round trip over ``/bridge`` to a minimal bridge (this script, ``--bridge``, beside
the generator), as the balancer allocates and releases. The generator and its cycles are
bench/signaling.py's (``wsload.RawSocket``, fresh and reused), and so is the figure: cycles per
CPU-second of the server process. Rounds alternate between the loops; medians are printed.

Read with bench/signaling.py from the same machine state: the ratio printed here is about the
most the loop choice can give the balancer, whose own Python work per join the loop never
touches.

    python bench/loop_ceiling.py [--joins 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import psutil
import uvloop
from aiohttp import WSMsgType, web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from signaling import FAILURES, cpu_seconds, free_port, join, leave, pin, throughput

ANSWER = "v=0\r\n" + "a=x\r\n" * 100  # about the size of an emulated bridge's answer


async def serve(port: int) -> None:
    waiting: dict[int, asyncio.Future[None]] = {}
    ids = itertools.count()
    link: list[web.WebSocketResponse] = []

    async def bridge(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, compress=False)
        await ws.prepare(request)
        link.append(ws)
        async for frame in ws:
            future = waiting.pop(orjson.loads(frame.data)["req"], None)
            if future is not None and not future.done():
                future.set_result(None)
        return ws

    async def ask(kind: str) -> None:
        req = next(ids)
        future = waiting[req] = asyncio.get_running_loop().create_future()
        await link[0].send_bytes(orjson.dumps({"req": req, "t": kind}))
        async with asyncio.timeout(10):
            await future

    async def participant(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, compress=False)
        await ws.prepare(request)
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                break
            kind = orjson.loads(frame.data)["type"]
            if not link:  # not linked yet: the generator waits for this to pass (ready)
                await ws.send_str('{"type": "error", "code": "no_bridge"}')
                continue
            await ask(kind)
            reply = {"type": "joined", "sdp": ANSWER} if kind == "join" else {"type": "left"}
            await ws.send_str(orjson.dumps(reply).decode())
        return ws

    app = web.Application()
    app.router.add_get("/ws", participant)
    app.router.add_get("/bridge", bridge)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def echo_bridge(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):  # the server starts meanwhile: dial for up to 30 s
            try:
                ws = await http.ws_connect(f"http://127.0.0.1:{port}/bridge", autoping=False)
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        else:
            raise SystemExit("the control server never listened")
        async for frame in ws:
            await ws.send_bytes(orjson.dumps({"req": orjson.loads(frame.data)["req"],
                                              "sdp": ANSWER}))


@dataclass
class Control:
    """A control server and its bridge, shaped like signaling.Stack for ``throughput``."""

    loop: str
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        me = [sys.executable, __file__]
        others = set(range(1, os.cpu_count() or 1)) or {0}
        self.processes = [
            subprocess.Popen([*me, "--serve", self.loop, str(self.port)],
                             preexec_fn=lambda: pin({0})),
            subprocess.Popen([*me, "--bridge", str(self.port)], preexec_fn=lambda: pin(others))]

    @property
    def balancer(self) -> psutil.Process:
        return psutil.Process(self.processes[0].pid)

    def others_cpu(self) -> float:
        return cpu_seconds([os.getpid(), self.processes[1].pid])

    def stop(self) -> None:
        for p in self.processes:
            p.kill()
            p.wait()


async def ready(control: Control) -> None:
    """Until one join and leave go through (the server listens and its bridge is linked)."""
    for _ in range(300):
        try:
            ws, _ = await join(control, "ready")  # type: ignore[arg-type]
            await leave(ws)
            await ws.close()
            return
        except FAILURES:
            await asyncio.sleep(0.1)
    raise SystemExit(f"the {control.loop} control server never answered")


async def measure(joins: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    controls = {loop: Control(loop) for loop in ("uvloop", "asyncio")}
    results: dict[str, dict[str, list[float]]] = {loop: {"fresh": [], "reused": []}
                                                  for loop in controls}
    for control in controls.values():
        control.start()
    try:
        for control in controls.values():
            await ready(control)
            await throughput(control, 200, 20, True)  # type: ignore[arg-type]  # warm, untimed
        for _ in range(rounds):
            for loop, control in controls.items():
                for fresh, key in ((True, "fresh"), (False, "reused")):
                    out = await throughput(control, joins, 100, fresh)  # type: ignore[arg-type]
                    results[loop][key].append(out["joins_per_cpu_s" if fresh
                                                  else "reuse_joins_per_cpu_s"])
    finally:
        for control in controls.values():
            control.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--joins", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", nargs=2, metavar=("LOOP", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--bridge", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        loop, port = args.serve
        (uvloop.run if loop == "uvloop" else asyncio.run)(serve(int(port)))
        return
    if args.bridge:
        uvloop.run(echo_bridge(args.bridge))
        return
    pin(set(range(1, os.cpu_count() or 1)) or {0})
    results = uvloop.run(measure(args.joins, args.rounds))
    print(f"loop ceiling: minimal aiohttp server pinned to CPU 0, one bridge round trip per "
          f"message; {args.rounds} rounds of {args.joins} cycles; load average "
          f"{os.getloadavg()[0]:.2f} at the end")
    median = {loop: {k: statistics.median(v) for k, v in r.items()} for loop, r in results.items()}
    for loop, r in results.items():
        print(f"  {loop:8} fresh {median[loop]['fresh']:7.0f} cycles/cpu-s "
              f"(rounds {min(r['fresh']):.0f}-{max(r['fresh']):.0f}), reused "
              f"{median[loop]['reused']:7.0f} (rounds {min(r['reused']):.0f}-"
              f"{max(r['reused']):.0f})")
    for key in ("fresh", "reused"):
        print(f"  uvloop / asyncio, {key}: "
              f"{median['uvloop'][key] / median['asyncio'][key]:.2f}")


if __name__ == "__main__":
    main()
