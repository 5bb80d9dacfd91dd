"""CSV files and the terminal table of a run."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .metrics import SERIES_COLUMNS, SUMMARY_COLUMNS
from .runner import Result

TABLE_COLUMNS = ("joins", "rejected_joins", "overload_bridge_s", "peak_stress", "p99_stress",
                 "split_conferences", "migrations", "bridge_hours")


def write_summary(result: Result, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(SUMMARY_COLUMNS))
        writer.writeheader()
        writer.writerows(result.summary)
    return path


def write_series(result: Result, path: Path) -> Path:
    m = result.metrics
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SERIES_COLUMNS)
        for t, block in zip(m.series_t, m.series, strict=True):
            for r in range(block.shape[0]):
                writer.writerow([round(t, 3), result.policies[r // result.seeds],
                                 r % result.seeds, *(round(float(v), 5) for v in block[r])])
    return path


def table(result: Result) -> str:
    """Mean over seeds per policy, one line each."""
    rows = result.summary
    head = f"{'policy':<16}" + "".join(f"{c:>19}" for c in TABLE_COLUMNS)
    lines = [head, "-" * len(head)]
    for policy in result.policies:
        mine = [r for r in rows if r["policy"] == policy]
        cells = "".join(f"{np.mean([float(r[c]) for r in mine]):>19.3f}"
                        for c in TABLE_COLUMNS)
        lines.append(f"{policy:<16}{cells}")
    return "\n".join(lines)
