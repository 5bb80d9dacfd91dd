"""``sfu-sim`` from the outside: plan, bad traces, progress output, paths relative to the
scenario file."""

from __future__ import annotations

import csv
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulations.cli import cli

# Half an hour of small calls on one-core bridges: one bridge is far too few, six plenty.
# No tier reserves, so overload is not hidden by admission refusing joins.
TINY = """
name = "tiny"

[sim]
hours = 0.5
seeds = 1
tick_s = 5
warmup_s = 0
policies = ["balanced", "random"]

[workload]
conferences_per_day = 12000
surge = "none"
size = { alpha = 1.43, min = 2, max = 12 }
duration = { median_s = 900, sigma = 0.5 }
diurnal = { profile = "flat", weekend_factor = 1.0 }

[[fleet.bridges]]
count = 2
cores = 1
egress_mbps = 1000
region = "eu"

[stats]
report_interval_s = 5

[routing]
policy = "balanced"
tier_reserve = { standard = 0.0, bulk = 0.0 }

[plan]
max_overload_bridge_s = 0
max_bridges = 6
"""

TRACED = """
name = "traced"

[sim]
hours = 0.1
seeds = 1
warmup_s = 0
policies = ["balanced"]

[workload]
trace = "{trace}"

[[fleet.bridges]]
count = 2
cores = 1
egress_mbps = 1000
region = "eu"
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_plan_reports_the_fewest_bridges_per_policy(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", str(_write(tmp_path / "tiny.toml", TINY))])
    assert result.exit_code == 0, result.output
    table = dict(re.findall(r"^(balanced|random)\s+(\d+)$", result.stdout, re.MULTILINE))
    assert set(table) == {"balanced", "random"}
    # every probe is logged on stderr: "plan: N bridges -> balanced X, random Y"
    probes = {int(n): dict((p, float(v)) for p, v in re.findall(r"(\w+) ([\d.]+)", rest))
              for n, rest in re.findall(r"plan: (\d+) bridges -> (.*)", result.stderr)}
    for policy, text in table.items():
        count = int(text)
        assert 1 < count <= 6
        assert probes[count][policy] == 0  # meets the target ...
        assert probes[count - 1][policy] > 0  # ... and one bridge fewer does not
    assert int(table["balanced"]) <= int(table["random"])


def test_plan_with_a_bad_trace_fails_cleanly(tmp_path: Path) -> None:
    _write(tmp_path / "bad.csv", "t_s,room,participant,event\n5,a,p1,join\n4,a,p2,join\n")
    scenario = _write(tmp_path / "s.toml", TRACED.format(trace="bad.csv"))
    for command in ("plan", "run"):
        result = CliRunner().invoke(cli, [command, str(scenario), "--out", str(tmp_path)]
                                    if command == "run" else [command, str(scenario)])
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)  # click's error, not a traceback
        assert re.search(r"bad\.csv.*:3: .*out of order", result.output), result.output
        assert "Traceback" not in result.output


def _run_with_stderr(args: list[str], stderr: int) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "simulations.cli", *args], stdout=subprocess.PIPE,
                          stderr=stderr, check=False, timeout=120)


TRACE = ("t_s,room,participant,event\n0,a,p1,join\n1,a,p2,join\n2,b,p3,join\n"
         "30,a,p1,leave\n40,b,p4,join\n")


def test_run_prints_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    _write(tmp_path / "t.csv", TRACE)  # 360 ticks of 1 s: enough for the bar to be drawn
    scenario = str(_write(tmp_path / "traced.toml", TRACED.format(trace="t.csv")))
    args = ["run", scenario, "--out", str(tmp_path / "out"), "--no-plots"]
    piped = _run_with_stderr(args, subprocess.PIPE)
    assert piped.returncode == 0, piped.stderr
    assert b"summary.csv" in piped.stdout
    assert piped.stderr == b""
    # the control: the same run with stderr on a terminal (a pty 100 columns wide; at 0
    # columns tqdm draws nothing) does draw the bar
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        shown = _run_with_stderr(args, slave)
        os.close(slave)
        drawn = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: everything was read and the child side is closed
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(master)
    assert shown.returncode == 0
    assert b"tick" in drawn and b"%|" in drawn


def test_trace_path_is_relative_to_the_scenario_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "scenarios" / "t.csv", TRACE)
    scenario = _write(tmp_path / "scenarios" / "traced.toml", TRACED.format(trace="t.csv"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(cli, ["run", os.path.relpath(scenario), "--out", "out",
                                      "--no-plots"])
    assert result.exit_code == 0, result.output
    with (elsewhere / "out" / "summary.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["joins"] == "4" and row["rejected_joins"] == "0"
