"""``shelfwise experiments create|list|show|stop|report|plan``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from shelfwise.cli.common import console, print_json, runtime_of
from shelfwise.documents import load_json, load_yaml
from shelfwise.errors import InvalidInput
from shelfwise.experiments import ExperimentSpec

if TYPE_CHECKING:
    from shelfwise.experiments.report import Report
    from shelfwise.experiments.stats import Estimate

# The readout and the statistics import scipy: loaded inside the commands that
# need them, so every other ``shelfwise`` command starts without that cost.

app = typer.Typer(help="A/B tests and holdouts: create, stop and read out.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _read_spec(path: Path) -> ExperimentSpec:
    if not path.is_file():
        raise InvalidInput(f"spec file {path} does not exist", code="spec_file_missing")
    text = path.read_text()
    try:
        raw = load_json(text) if path.suffix == ".json" else load_yaml(text)
        return ExperimentSpec.model_validate(raw)
    except InvalidInput as e:
        raise InvalidInput(f"spec file {path} is not valid: {e.message}", code=e.code) from e
    except ValidationError as e:
        raise InvalidInput(f"spec file {path} is not valid: {e}", code="spec_invalid") from e


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Experiment spec, YAML or JSON.")],
    as_json: JsonOpt = False,
) -> None:
    """Create and start an experiment from a spec file (see docs/experiments.md)."""
    spec = _read_spec(file)
    with runtime_of(ctx, load=False) as runtime:
        e = runtime.experiments.create(spec, by="cli")
    if as_json:
        print_json(e.model_dump(mode="json"))
        return
    console.print(f"created [bold]{e.experiment_id}[/] version {e.version}")


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List experiments with status, placement, arms and window."""
    with runtime_of(ctx, load=False) as runtime:
        items = runtime.experiments.list()
    if as_json:
        print_json([e.model_dump(mode="json") for e in items])
        return
    table = Table(title="Experiments")
    for col in ("id", "version", "status", "placement", "arms", "start", "end"):
        table.add_column(col)
    for e in items:
        s = e.spec
        arms = ", ".join(
            f"{a.name} {a.share:.0%}" + (" (holdout)" if a.holdout else "") for a in s.arms
        )
        table.add_row(
            e.experiment_id, str(e.version), e.status, s.placement, arms,
            s.start.isoformat(timespec="minutes"),
            s.end.isoformat(timespec="minutes") if s.end else "—",
        )  # fmt: skip
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context, experiment_id: Annotated[str, typer.Argument(help="Experiment id.")]
) -> None:
    """Print one experiment (spec, version, status) as JSON."""
    with runtime_of(ctx, load=False) as runtime:
        print_json(runtime.experiments.get(experiment_id).model_dump(mode="json"))


@app.command("stop")
def stop(
    ctx: typer.Context,
    experiment_id: Annotated[str, typer.Argument(help="Experiment id.")],
    version: Annotated[
        int | None, typer.Option(help="Fail unless this is the current version.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop assigning persons to the experiment; its window ends now."""
    with runtime_of(ctx, load=False) as runtime:
        e = runtime.experiments.stop(experiment_id, version, by="cli")
    if as_json:
        print_json(e.model_dump(mode="json"))
        return
    console.print(f"stopped [bold]{e.experiment_id}[/] (version {e.version})")


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+.1%}" if pct else f"{x:,.3f}"


def _ci(est: Estimate) -> str:
    if est.lift is None:
        return f"{_fmt(est.diff)} [{_fmt(est.diff_low)}, {_fmt(est.diff_high)}]"
    return f"{_fmt(est.lift, True)} [{_fmt(est.lift_low, True)}, {_fmt(est.lift_high, True)}]"


def print_report(rep: Report) -> None:
    p = rep.sample
    seen = " vs ".join(map(str, p.persons_per_arm.values()))
    due = f"{p.expected_date:%Y-%m-%d}" if p.expected_date else "n/a"
    state = {
        "ready": "[green]ready[/]",
        "invalid": "[bold red]INVALID[/]",
        "collecting_data": f"[yellow]collecting data[/] ({seen} of {p.min_persons_per_arm}"
        f" per arm, expected {due})",
    }[rep.status]
    console.print(
        f"[bold]{rep.experiment_id}[/] v{rep.version} {state}  "
        f"{rep.window_start:%Y-%m-%d %H:%M} → {rep.window_end:%Y-%m-%d %H:%M}  "
        f"SRM p={rep.srm.p_value:.4f}  warnings: {', '.join(rep.warnings) or 'none'}"
    )
    arms = Table(title="Arms (all placements, all categories)")
    for col in ("arm", "persons", "CTR", "ATC rate", "conversion", "rev/person", "AOV", "repeat", "OOS shown", "return rate"):  # fmt: skip
        arms.add_column(col, justify="right")
    for a in rep.cells[0].arms:
        arms.add_row(
            a.arm, str(a.persons), _fmt(a.ctr), _fmt(a.add_to_cart_rate), _fmt(a.conversion),
            _fmt(a.revenue_per_person), _fmt(a.aov), _fmt(a.repeat_purchase_rate),
            _fmt(a.oos_share), _fmt(a.return_rate),
        )  # fmt: skip
    console.print(arms)
    lifts = Table(title=f"Primary metric {rep.primary_metric}: lift [CI], Holm-adjusted p")
    for col in ("placement", "category", "arm", "lift [CI]", "p", "p (Holm)", "incremental share", "warnings"):  # fmt: skip
        lifts.add_column(col)
    for cell in rep.cells:
        for comp in cell.comparisons:
            est = comp.estimates[rep.primary_metric]
            inc = comp.incrementality
            inc_s = (
                f"{_fmt(inc.value, True)} [{_fmt(inc.low, True)}, {_fmt(inc.high, True)}]"
                if inc and inc.value is not None
                else "—"
            )
            lifts.add_row(
                cell.placement, cell.category, comp.arm, _ci(est), _fmt(est.p_value),
                _fmt(est.p_adjusted), inc_s, ", ".join(est.warnings),
            )  # fmt: skip
    console.print(lifts)
    for arm, results in rep.guardrails.items():
        for g in results:
            verdict = "[green]pass[/]" if g.passed else "[red]FAIL[/]"
            console.print(f"guardrail {arm} {g.metric} (margin {g.margin:.1%}): {verdict}")
    for arm, nv in rep.net_value.items():
        console.print(
            f"net value {arm}: {_fmt(nv.net_value)} [{_fmt(nv.net_value_low)}, "
            f"{_fmt(nv.net_value_high)}] after operating cost {nv.operating_cost:,.2f}"
        )


@app.command("report")
def report(
    ctx: typer.Context,
    experiment_id: Annotated[str, typer.Argument(help="Experiment id.")],
    at: Annotated[
        datetime | None, typer.Option(help="Read out as of this UTC time (default now).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Read out an experiment: per arm, placement and category, with lifts and checks."""
    from shelfwise.experiments.assignment import graph_resolve
    from shelfwise.experiments.report import readout

    when = at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
    with runtime_of(ctx, load=False) as runtime:
        e = runtime.experiments.get(experiment_id)
        rep = readout(
            runtime.db,
            e,
            at=when,
            resolve=graph_resolve(runtime.identity.snapshot()),
            attribution_window_hours=runtime.settings.attribution_window_hours,
        )
    if as_json:
        print_json(rep.model_dump(mode="json"))
        return
    print_report(rep)


@app.command("plan")
def plan(
    baseline_mean: Annotated[float, typer.Option(help="Metric mean per person today.")],
    baseline_sd: Annotated[float, typer.Option(help="Its standard deviation per person.")],
    persons: Annotated[int, typer.Option(min=2, help="Persons expected in the experiment.")],
    treatment_share: Annotated[float, typer.Option(min=0.01, max=0.99)] = 0.5,
    target_mde: Annotated[float, typer.Option(help="Relative effect to detect.")] = 0.05,
    as_json: JsonOpt = False,
) -> None:
    """Power before launch: the minimum detectable effect and the persons a target needs."""
    from shelfwise.experiments.checks import power_plan

    p = power_plan(
        baseline_mean, baseline_sd, persons,
        {"control": 1 - treatment_share, "treatment": treatment_share}, "control",
        target_mde=target_mde,
    )  # fmt: skip
    if as_json:
        print_json(p.model_dump(mode="json"))
        return
    console.print(
        f"MDE {p.mde_absolute:,.4f} per person ({_fmt(p.mde_relative, True)}); "
        f"{p.persons_needed_per_arm or '—'} persons per arm detect {target_mde:.1%}"
    )
