"""``sfu-sim``: run scenarios, plan fleets, replay live decisions.

    sfu-sim run SCENARIO.toml [--policies a,b] [--seeds N] [--out DIR]
    sfu-sim plan SCENARIO.toml [--policies a,b] [--seeds N]
    sfu-sim replay DECISIONS.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sfu_balancer.core.policies import policy_names

from .scenario import ScenarioError, load_scenario
from .trace import TraceError


def _policies(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [p.strip() for p in value.split(",") if p.strip()]
    unknown = [p for p in names if p not in policy_names()]
    if unknown or not names:
        raise click.BadParameter(f"unknown policy {', '.join(unknown) or value!r}; "
                                 f"known policies: {', '.join(policy_names())}")
    return names


def _load(path: str, seeds: int | None, policies: list[str] | None):  # type: ignore[no-untyped-def]
    try:
        return load_scenario(path, seeds=seeds, policies=policies)
    except (ScenarioError, TraceError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot read scenario {path!r}: {exc}") from None


@click.group()
def cli() -> None:
    """Surge simulator: routing policies of sfu_balancer.core under simulated load."""


@cli.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--policies", help="comma-separated policy names (default: the scenario's)")
@click.option("--seeds", type=click.IntRange(min=1), help="number of seeds (default: scenario)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="sim-out",
              show_default=True, help="output directory")
@click.option("--no-plots", is_flag=True, help="skip the PNG plots")
def run(scenario: str, policies: str | None, seeds: int | None, out_dir: str,
        no_plots: bool) -> None:
    """Run SCENARIO for each policy and seed; write summary.csv, series.csv and plots."""
    from . import output, runner
    sc = _load(scenario, seeds, _policies(policies))
    try:
        result = runner.run(sc)
    except (ScenarioError, TraceError) as exc:
        raise click.ClickException(str(exc)) from None
    out = Path(out_dir)
    output.write_summary(result, out / "summary.csv")
    output.write_series(result, out / "series.csv")
    if not no_plots:
        from .plots import plot_all
        plot_all(result, out)
    click.echo(f"{sc.name}: {len(result.policies)} policies × {result.seeds} seeds, "
               f"{sc.sim.horizon_s / 3600:g} h, mean over seeds:")
    click.echo(output.table(result))
    click.echo(f"wrote {out / 'summary.csv'}, {out / 'series.csv'}"
               + ("" if no_plots else " and PNG plots"))


@cli.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--policies", help="comma-separated policy names (default: the scenario's)")
@click.option("--seeds", type=click.IntRange(min=1), help="number of seeds (default: scenario)")
def plan(scenario: str, policies: str | None, seeds: int | None) -> None:
    """Fewest bridges (like the first [[fleet.bridges]] group, no autoscaling) whose mean
    overload_bridge_s stays within [plan] max_overload_bridge_s, per policy."""
    from .planner import plan_fleet
    sc = _load(scenario, seeds, _policies(policies))
    try:
        found = plan_fleet(sc, log=lambda msg: click.echo(msg, err=True))
    except (ScenarioError, TraceError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'policy':<16}{'bridges':>8}")
    for policy, count in found.items():
        click.echo(f"{policy:<16}{count if count is not None else 'none':>8}")
    if any(c is None for c in found.values()):
        click.echo(f"(none = not met within {sc.plan.max_bridges} bridges)")


@cli.command()
@click.argument("decisions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def replay(decisions: Path) -> None:
    """Re-run logged live decisions (the balancer's decision log, JSONL) through core and
    report whether every one came out identical. Exit status 1 if any differs."""
    from sfu_balancer.core.record import replay as replay_record

    total = differing = 0
    with decisions.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                decision, same = replay_record(record)
            except ValueError as exc:
                raise click.ClickException(f"{decisions}:{number}: {exc}") from None
            total += 1
            if not same:
                differing += 1
                logged = record["decision"]
                click.echo(f"line {number}: logged {logged['bridge']} ({logged['reason']}), "
                           f"replayed {decision.bridge_id} ({decision.reason.value})")
    click.echo(f"{total} decisions replayed, {total - differing} identical, {differing} differ")
    if differing:
        sys.exit(1)


def main() -> None:
    cli(prog_name="sfu-sim")


if __name__ == "__main__":  # pragma: no cover
    main()
