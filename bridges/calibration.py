"""From ``bench/bridge_forwarding.py`` measurements to the simulator's calibration and verdicts.

Pure functions (no I/O, no aiortc), so a test can feed them rows and check what the simulator
gets: ``build_calibration`` returns the JSON object the benchmark writes. Its ``"cost_table"``
block holds only ``sfu_balancer.core.load.CostTable`` field names, which is what
``simulations.costmodel.load_calibration`` reads; every other figure sits beside it as an extra
key that the simulator ignores.

Where each ``cost_table`` value comes from (also written, per key, under ``"cost_table_from"``):
- ``cpu_us_per_packet_out``: the marginal bridge-process CPU per packet sent, end to end
  (least-squares slope of process cores over out packets/s across the subscriber counts, so a
  publisher whose rate drifts between runs does not bias it); the micro benchmark's figure
  (forwarding path alone) only if that slope is not positive.
- ``video_kbps`` and ``packets_per_s``: the publisher's stream as the bridge received it (its
  own ``bytes_in`` / ``packets_in`` counters), i.e. what each leg carries before repairs; no
  packet size is assumed. ``packets_per_s`` adds ``AUDIO_PPS`` for the audio the benchmark does
  not send (one Opus packet per 20 ms), since ``CostTable`` counts both per stream.
- ``audio_kbps``, ``cpu_us_per_packet_in`` and ``last_n`` are not measured and not written,
  so the ``CostTable`` defaults (or the scenario's ``[costs]``) apply.

A run that forwarded nothing (its connections failed to come up, e.g. on a starved machine) is
left out of every figure and listed under ``"excluded"``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, float]

AUDIO_PPS = 50.0  # Opus at 20 ms per packet, the WebRTC default
TARGET_LEGS_RATIO = 15.0
TARGET_OUT_PPS_PER_CORE = 40_000.0
TARGET_LATENCY_MS = 5.0


def slope(
    rows: Sequence[Row], x: str = "subscribers", y: str = "bridge_cores"
) -> tuple[float, float]:
    """Least-squares (slope, intercept) of ``y`` over ``x``."""
    xs = [float(r[x]) for r in rows]
    ys = [float(r[y]) for r in rows]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((a - mx) ** 2 for a in xs)
    k = sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return k, my - k * mx


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _per_leg(rows: Sequence[Row], key: str) -> float | None:
    values = [r[key] / r["subscribers"] for r in rows if key in r and r["subscribers"] > 0]
    return statistics.fmean(values) if values else None


def _mean(rows: Sequence[Row], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return statistics.fmean(values) if values else None


def usable(rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    """(rows of runs that carried media, rows of runs that forwarded nothing)."""
    ok = [r for r in rows if r["out_pps"] > 0 and r["bridge_cores"] > 0
          and r.get("in_pps", 1.0) > 0]
    return ok, [r for r in rows if r not in ok]


def build_calibration(
    *, micro: Sequence[Row], forward: Sequence[Row], mediarelay: Sequence[Row],
    stream: Mapping[str, Any],
) -> dict[str, Any]:
    """The calibration object (JSON-ready: non-finite figures become None).

    ``micro`` rows: subscribers, us_per_out_packet, out_pps_per_core, fanout_latency_*_ms.
    ``forward`` / ``mediarelay`` rows (one per subscriber count): subscribers, bridge_cores,
    out_pps, out_pps_per_core, and where measured (the forwarder's counters) out_bytes_per_s,
    in_pps, in_bytes_per_s. ``stream``: what the publisher sent (width, height, fps), copied.
    """
    fwd, fwd_bad = usable(forward)
    rel, rel_bad = usable(mediarelay)
    fwd_slope, fwd_base = slope(fwd) if fwd else (0.0, 0.0)
    rel_slope, rel_base = slope(rel) if rel else (0.0, 0.0)
    legs_fwd = 1 / fwd_slope if fwd_slope > 0 else None
    legs_rel = 1 / rel_slope if rel_slope > 0 else None
    big = max(micro, key=lambda r: r["subscribers"])
    per_out_packet = slope(fwd, x="out_pps")[0] if fwd else 0.0  # cores per (packet/s)
    us_e2e = 1e6 * per_out_packet if per_out_packet > 0 else None
    stream_pps, stream_bytes = _mean(fwd, "in_pps"), _mean(fwd, "in_bytes_per_s")
    out_pps_leg, out_bytes_leg = _per_leg(fwd, "out_pps"), _per_leg(fwd, "out_bytes_per_s")
    out_packets = sum(r["out_pps"] for r in fwd)
    out_bytes = sum(r.get("out_bytes_per_s", 0.0) for r in fwd)

    table: dict[str, float] = {}
    origin: dict[str, str] = {}
    if us_e2e is not None:
        table["cpu_us_per_packet_out"] = us_e2e
        origin["cpu_us_per_packet_out"] = (
            "e2e: slope of bridge-process cores over out packets/s, across subscriber counts")
    elif big["us_per_out_packet"] > 0:
        table["cpu_us_per_packet_out"] = big["us_per_out_packet"]
        origin["cpu_us_per_packet_out"] = (
            f"micro (e2e slope not positive): forwarding path alone at N={big['subscribers']:g}")
    if stream_bytes:
        table["video_kbps"] = 8 * stream_bytes / 1000
        origin["video_kbps"] = (
            "e2e: the publisher's video as received, bridge bytes_in counter (RTP bytes)")
    if stream_pps:
        table["packets_per_s"] = stream_pps + AUDIO_PPS
        origin["packets_per_s"] = (
            f"e2e: the publisher's video packets/s as received ({stream_pps:.1f}) + "
            f"{AUDIO_PPS:g} audio (assumed: Opus 20 ms; the benchmark sends no audio)")
    for key in ("audio_kbps", "cpu_us_per_packet_in", "last_n"):
        origin[key] = "not measured: CostTable default"

    return {
        "cost_table": table,
        "cost_table_from": origin,
        "excluded": {"forward": [r["subscribers"] for r in fwd_bad],
                     "mediarelay": [r["subscribers"] for r in rel_bad]},
        "forwarder": {
            "cpu_per_leg_cores": fwd_slope, "fixed_cores": fwd_base,
            "legs_per_core": _finite(legs_fwd),
            "out_pps_per_core_e2e_marginal": 1e6 / us_e2e if us_e2e else None,
            "out_pps_per_core_e2e_total": fwd[-1]["out_pps_per_core"] if fwd else None,
            "e2e_largest_subscribers": fwd[-1]["subscribers"] if fwd else None,
            "us_per_out_packet_micro": big["us_per_out_packet"],
            "out_pps_per_core_micro": big["out_pps_per_core"],
            "micro_subscribers": big["subscribers"],
            "fanout_latency_median_ms": big["fanout_latency_median_ms"],
            "rows": list(forward), "micro": list(micro),
        },
        "mediarelay": {
            "cpu_per_leg_cores": rel_slope, "fixed_cores": rel_base,
            "legs_per_core": _finite(legs_rel), "rows": list(mediarelay),
        },
        "ratio_legs_per_core": legs_fwd / legs_rel if legs_fwd and legs_rel else None,
        "stream": {
            **stream,
            "in_packets_per_s": stream_pps,
            "in_bytes_per_s": stream_bytes,
            "out_packets_per_s_per_leg": out_pps_leg,  # repairs (NACK -> RTX) included
            "out_bytes_per_s_per_leg": out_bytes_leg,
            "bytes_per_out_packet": out_bytes / out_packets if out_bytes and out_packets else None,
        },
    }


@dataclass(frozen=True)
class Verdict:
    target: str  # the target as stated in issue 4
    passed: bool
    figure: str  # the figure judged, formatted
    source: str  # the measurement it comes from
    note: str = ""  # another measurement of the same thing, not judged

    def line(self) -> str:
        text = f"{'PASS' if self.passed else 'FAIL'}  {self.target}: {self.figure}  [{self.source}]"
        return f"{text}\n      also: {self.note}" if self.note else text


def verdicts(result: Mapping[str, Any]) -> list[Verdict]:
    """One verdict per benchmark target, judged on the figure named in ``source``."""
    fwd, rel = result["forwarder"], result["mediarelay"]
    ratio = result["ratio_legs_per_core"]
    n = fwd["micro_subscribers"]
    pps = fwd["out_pps_per_core_micro"]
    latency = fwd["fanout_latency_median_ms"]
    legs = f"{fwd['legs_per_core']:,.0f}" if fwd["legs_per_core"] else "n/a"
    legs_rel = f"{rel['legs_per_core']:,.1f}" if rel["legs_per_core"] else "n/a"
    marginal = fwd["out_pps_per_core_e2e_marginal"]
    excluded = result.get("excluded", {})
    gone = ", ".join(f"{mode} N={k:g}" for mode, ks in excluded.items() for k in ks)
    left_out = f"left out, forwarded nothing: {gone}" if gone else ""
    e2e_pps = (
        f"e2e marginal {marginal:,.0f} out-pps per core "
        f"({'meets' if marginal >= TARGET_OUT_PPS_PER_CORE else 'below'} the target; the whole "
        "bridge process per extra packet sent, the legs' RTCP and asyncio work included)"
        if marginal else ""
    )
    return [
        Verdict(
            f"subscriber legs per core >= {TARGET_LEGS_RATIO:g}x MediaRelay",
            ratio is not None and ratio >= TARGET_LEGS_RATIO,
            f"{ratio:.1f}x ({legs} vs {legs_rel} legs/core)" if ratio else "n/a (slope <= 0)",
            "e2e: bridge-process CPU (user+sys) slope over subscriber count, forwarder vs "
            "MediaRelay decode+re-encode, same publisher",
            left_out,
        ),
        Verdict(
            f"out-packets/s per core >= {TARGET_OUT_PPS_PER_CORE / 1000:g}k",
            pps >= TARGET_OUT_PPS_PER_CORE,
            f"{pps:,.0f}",
            f"micro N={n:g}: forwarding path alone (receive tap -> rewrite -> SRTP -> sendto), "
            "thread CPU",
            e2e_pps,
        ),
        Verdict(
            f"median added latency <= {TARGET_LATENCY_MS:g} ms",
            latency <= TARGET_LATENCY_MS,
            f"{latency:.3f} ms",
            f"micro N={n:g}: from entering the receive tap to the last leg's sendto",
        ),
    ]
