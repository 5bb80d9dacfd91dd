"""PNG plots of a run (matplotlib, Agg backend: no display needed, no GUI warnings)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .metrics import SERIES_COLUMNS
from .runner import Result


def _series(result: Result) -> tuple[np.ndarray, np.ndarray]:
    m = result.metrics
    t = np.array(m.series_t) / 3600.0
    data = np.stack(m.series) if m.series else np.zeros((0, result.metrics.replicas, 7))
    return t, data


def plot_all(result: Result, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    t, data = _series(result)
    seeds, policies = result.seeds, result.policies
    files = []
    column = {name: i for i, name in enumerate(SERIES_COLUMNS[3:])}

    def per_policy(name: str, ylabel: str, filename: str) -> None:
        fig, ax = plt.subplots(figsize=(9, 4))
        for p, policy in enumerate(policies):
            ax.plot(t, data[:, p * seeds:(p + 1) * seeds, column[name]].mean(axis=1),
                    label=policy, lw=1)
        ax.set_xlabel("hours")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / filename, dpi=90)
        plt.close(fig)
        files.append(out / filename)

    per_policy("overloaded_bridges", "overloaded bridges (mean over seeds)", "overload.png")
    per_policy("rejected_joins", "rejected joins, cumulative", "rejected_joins.png")
    per_policy("bridges_up", "bridges up", "bridges_used.png")

    stress = np.stack(result.metrics.bridge_series) if result.metrics.bridge_series else None
    fig, axes = plt.subplots(len(policies), 1, figsize=(9, 2.2 * len(policies)), sharex=True,
                             squeeze=False)
    for p, policy in enumerate(policies):
        ax = axes[p, 0]
        if stress is not None:
            ax.plot(t, stress[:, p, :], lw=0.6)
        ax.axhline(1.0, color="red", lw=0.8, ls="--")
        ax.set_ylabel(f"{policy}\nstress", fontsize=8)
    axes[-1, 0].set_xlabel("hours (seed 0; one line per bridge)")
    fig.tight_layout()
    fig.savefig(out / "stress_per_bridge.png", dpi=90)
    plt.close(fig)
    files.append(out / "stress_per_bridge.png")

    summary = result.summary
    metrics = ("overload_bridge_s", "rejected_joins", "p99_stress", "bridge_hours")
    fig, axes = plt.subplots(1, len(metrics), figsize=(12, 3.5), squeeze=False)
    for i, metric in enumerate(metrics):
        values = [np.mean([r[metric] for r in summary if r["policy"] == p]) for p in policies]
        axes[0, i].bar(range(len(policies)), values)
        axes[0, i].set_xticks(range(len(policies)), policies, rotation=45, ha="right",
                              fontsize=8)
        axes[0, i].set_title(metric, fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "policy_comparison.png", dpi=90)
    plt.close(fig)
    files.append(out / "policy_comparison.png")
    return files


def plot_crossover(intervals: list[float], values: dict[str, list[float]], path: Path,
                   ylabel: str = "overload_bridge_s") -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for policy, ys in values.items():
        ax.plot(intervals, ys, marker="o", label=policy)
    ax.set_xscale("log")
    ax.set_xlabel("report interval (s)")
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
