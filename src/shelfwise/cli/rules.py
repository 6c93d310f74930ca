"""``shelfwise rules list|show|apply|disable|enable|history|restore|preview|test``."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shelfwise.cli.common import console, print_json, runtime_of
from shelfwise.documents import load_json
from shelfwise.errors import InvalidInput
from shelfwise.rules.preview import overlay
from shelfwise.rules.replay import RecordedRequestIn
from shelfwise.rules.rulefile import load_rule_file, run_tests

app = typer.Typer(
    help="The merchant's rules: list, apply from YAML, audit, preview, test.", no_args_is_help=True
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Who = Annotated[
    str | None, typer.Option("--who", help="Author recorded in the audit log (default: cli:$USER).")
]
Why = Annotated[str | None, typer.Option("--why", help="Reason recorded in the audit log.")]


def _who(who: str | None) -> str:
    return who or f"cli:{getpass.getuser()}"


@app.command("list")
def list_rules(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List every stored rule with its version and state."""
    with runtime_of(ctx) as runtime:
        version = runtime.rules.store.version()
        items = runtime.rules.store.list_rules()
    if as_json:
        print_json(
            {"rulebook_version": version, "rules": [r.model_dump(mode="json") for r in items]}
        )
        return
    table = Table(title=f"rulebook version {version}")
    for col in ("id", "type", "v", "enabled", "priority", "scope", "window", "reason"):
        table.add_column(col)
    for r in items:
        scope = ",".join(r.scope.placements) or "all"
        window = (
            ""
            if r.window is None
            else f"{r.window.start or ''}..{r.window.end or ''} {r.window.timezone}"
        )
        table.add_row(
            r.id,
            r.type,
            str(r.version),
            "yes" if r.enabled else "no",
            str(r.priority),
            scope,
            window,
            r.reason,
        )
    console.print(table)


@app.command("show")
def show(ctx: typer.Context, rule_id: str) -> None:
    """Print one rule as JSON."""
    with runtime_of(ctx) as runtime:
        print_json(runtime.rules.store.get(rule_id).model_dump(mode="json"))


@app.command("apply")
def apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="YAML rule file.")],
    who: Who = None,
    why: Why = None,
    skip_tests: Annotated[bool, typer.Option(help="Apply even if the file's tests fail.")] = False,
    as_json: AsJson = False,
) -> None:
    """Create or update the file's rules (all or nothing), after its tests pass."""
    rf = load_rule_file(file)
    with runtime_of(ctx) as runtime:
        if rf.tests and not skip_tests:
            merged = overlay(runtime.rules.store.list_rules(include_disabled=False), rf.rules)
            failed = [
                t
                for t in run_tests(rf.tests, merged, runtime.snapshot, runtime.clock())
                if not t.passed
            ]
            if failed:
                raise InvalidInput(
                    f"{len(failed)} rule test(s) fail: "
                    + "; ".join(f"{t.name}: {', '.join(t.failures)}" for t in failed),
                    code="rule_tests_failed",
                )
        result = runtime.rules.store.apply(
            rf.rules, who=_who(who), why=why or f"applied {file.name}"
        )
    if as_json:
        print_json(result.model_dump())
        return
    console.print(
        f"rulebook version {result.rulebook_version}: {len(result.created)} created, "
        f"{len(result.updated)} updated, {len(result.unchanged)} unchanged"
    )


def _toggle(
    ctx: typer.Context, rule_id: str, enabled: bool, who: str | None, why: str | None
) -> None:
    with runtime_of(ctx) as runtime:
        rule = runtime.rules.store.set_enabled(
            rule_id, enabled, who=_who(who), why=why or ("enabled" if enabled else "disabled")
        )
    console.print(f"{rule.id} is {'enabled' if enabled else 'disabled'} (version {rule.version})")


@app.command("disable")
def disable(ctx: typer.Context, rule_id: str, who: Who = None, why: Why = None) -> None:
    """Disable a rule (a new, audited version); it stops applying on the next request."""
    _toggle(ctx, rule_id, False, who, why)


@app.command("enable")
def enable(ctx: typer.Context, rule_id: str, who: Who = None, why: Why = None) -> None:
    """Enable a disabled rule again."""
    _toggle(ctx, rule_id, True, who, why)


@app.command("history")
def history(ctx: typer.Context, rule_id: str, as_json: AsJson = False) -> None:
    """Every version of a rule: who, when, why and what changed."""
    with runtime_of(ctx) as runtime:
        entries = runtime.rules.store.history(rule_id)
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    table = Table(title=f"history of {rule_id}")
    for col in ("v", "action", "who", "at", "why", "changed"):
        table.add_column(col)
    for e in entries:
        table.add_row(
            str(e.version),
            e.action,
            e.who,
            e.at.isoformat(timespec="seconds"),
            e.why,
            ", ".join(e.diff),
        )
    console.print(table)


@app.command("restore")
def restore(
    ctx: typer.Context,
    rule_id: str,
    version: Annotated[int, typer.Argument(help="The past version to make current.")],
    who: Who = None,
    why: Why = None,
) -> None:
    """Make a past version of a rule current again (recorded as a new version)."""
    with runtime_of(ctx) as runtime:
        rule = runtime.rules.store.restore(
            rule_id, version, who=_who(who), why=why or f"restored v{version}"
        )
    console.print(f"{rule.id} restored from version {version} as version {rule.version}")


def _read_requests(path: Path) -> list[RecordedRequestIn]:
    if not path.is_file():
        raise InvalidInput(f"requests file {path} does not exist", code="requests_file_missing")
    text = path.read_text()
    rows: list[Any] = (
        load_json(text)
        if text.lstrip().startswith("[")
        else [load_json(line) for line in text.splitlines() if line.strip()]
    )
    return [RecordedRequestIn.model_validate(r) for r in rows]


@app.command("preview")
def preview_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="YAML rule file (the draft).")],
    requests: Annotated[
        Path | None,
        typer.Option(
            help="Requests to replay (a JSON list or JSON lines) instead of the decision log."
        ),
    ] = None,
    last: Annotated[
        int, typer.Option(min=1, max=10_000, help="Served slates of the decision log to replay.")
    ] = 500,
    placement: Annotated[str | None, typer.Option(help="Only this placement's slates.")] = None,
    k: Annotated[
        int | None, typer.Option(min=1, max=100, help="Slate size (default: as served).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Replay the last served slates through the pipeline that served them, with the
    stored rules and with the draft; report the change per placement and its worth."""
    rf = load_rule_file(file)
    recorded = _read_requests(requests) if requests is not None else None
    with runtime_of(ctx) as runtime:
        report = runtime.preview(rf.rules, requests=recorded, last=last, placement=placement, k=k)
    if as_json:
        print_json(report.model_dump())
        return
    console.print(
        f"{report.slates_changed} of {report.requests} slates change ({report.share_changed:.1%})"
    )
    for g in report.by_placement:
        console.print(f"  {g.placement}: {g.slates_changed} of {g.slates} ({g.share_changed:.1%})")
    for n in report.not_replayed:
        console.print(f"  {n.slates} not replayed: {n.reason}")
    m = report.money
    if m.change is not None:
        console.print(
            f"estimated revenue {m.before:,.2f} -> {m.after:,.2f} {m.currency}: change "
            f"{m.change:+,.2f} (95% {m.low:+,.2f} to {m.high:+,.2f}). {m.method}"
        )
    else:
        console.print(m.method)
    for label, rows in (("added", report.added_most_often), ("removed", report.removed_most_often)):
        if rows:
            console.print(
                f"  most often {label}: "
                + ", ".join(f"{r.title} [{r.product_id}] ({r.count})" for r in rows)
            )


@app.command("test")
def run_file_tests(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="YAML rule file with tests.")],
    with_stored: Annotated[bool, typer.Option(help="Evaluate over the stored rules too.")] = False,
    as_json: AsJson = False,
) -> None:
    """Check the file's example requests against their expected outcomes (exit 1 on failure)."""
    rf = load_rule_file(file)
    with runtime_of(ctx) as runtime:
        rules = (
            overlay(runtime.rules.store.list_rules(include_disabled=False), rf.rules)
            if with_stored
            else rf.rules
        )
        outcomes = run_tests(rf.tests, rules, runtime.snapshot, runtime.clock())
    if as_json:
        print_json([o.model_dump() for o in outcomes])
    else:
        for o in outcomes:
            mark = "[green]pass[/]" if o.passed else "[red]FAIL[/]"
            console.print(f"{mark} {o.name}" + "".join(f"\n     {f}" for f in o.failures))
        console.print(f"{sum(o.passed for o in outcomes)} of {len(outcomes)} passed")
    if not all(o.passed for o in outcomes):
        raise typer.Exit(code=1)
