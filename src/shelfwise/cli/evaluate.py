"""``shelfwise evaluate``: the served pipeline against peer baselines on a time split."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from shelfwise.candidates.config import SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.cli.common import console, fail, print_json, runtime_of
from shelfwise.cli.protocols import PROTOCOLS, run_protocol
from shelfwise.errors import InvalidInput
from shelfwise.evaluation import compare, write_report
from shelfwise.evaluation.backtest import backtest as run_backtest
from shelfwise.evaluation.backtest import default_origins, midnight, served_factory
from shelfwise.evaluation.backtest_report import write_backtest
from shelfwise.evaluation.run import ModelResult
from shelfwise.runtime import Runtime
from shelfwise.training.job import load_sources_config
from shelfwise.training.reader import read_log


def evaluate(
    ctx: typer.Context,
    cutoff: Annotated[
        datetime | None,
        typer.Option(help="Train before this time (UTC); default: 14 days before the last event."),
    ] = None,
    end: Annotated[
        datetime | None, typer.Option(help="Test up to this time (UTC); default: the last event.")
    ] = None,
    k: Annotated[list[int] | None, typer.Option("--k", help="Cut-offs (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for evaluation.md / .json / .html.")] = Path(
        "evaluation"
    ),
    sources_config: Annotated[
        Path | None, typer.Option(help="YAML/JSON SourcesConfig (default: settings').")
    ] = None,
    tune: Annotated[
        bool, typer.Option(help="Choose blend weights on the validation window before the cutoff.")
    ] = True,
    baselines: Annotated[bool, typer.Option(help="Also evaluate the peer baselines.")] = True,
    ranker: Annotated[
        bool,
        typer.Option(help="Also evaluate the served pipeline with the learned ranker (slower)."),
    ] = False,
    resamples: Annotated[
        int,
        typer.Option(
            min=0, help="Bootstrap resamples over people for the NDCG intervals (0: none)."
        ),
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resamples.")] = 0,
    backtest: Annotated[
        int,
        typer.Option(
            min=0,
            help="Rolling-origin backtest over this many origins (0: one cutoff). Origins are "
            "Europe/London midnights --every-days apart, the last one --cutoff (its date; "
            "default: the last full test window); peers and blend are tuned before each.",
        ),
    ] = 0,
    origin: Annotated[
        list[datetime] | None,
        typer.Option(
            help="Backtest at these dates (Europe/London midnight; repeatable) instead of "
            "--backtest N."
        ),
    ] = None,
    window_days: Annotated[
        int,
        typer.Option(
            min=1, help="Backtest and --protocol: days of each test (and validation) window."
        ),
    ] = 14,
    every_days: Annotated[
        int | None, typer.Option(min=1, help="Backtest: days between origins (default: a window).")
    ] = None,
    on_validation: Annotated[
        bool,
        typer.Option(
            help="Backtest: score each origin's validation window instead of its test window "
            "(every origin one window earlier): where design choices are made."
        ),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Backtest: worker processes evaluating the origins (default: the cores "
            "available; 1: this process), one origin at a time each, the latest first, one BLAS "
            "thread each; the result is the same for any number.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    protocol: Annotated[
        str,
        typer.Option(
            help="people (default: the protocols above), session-next-item (HR@20 and MRR@20 "
            "of the session slates against popularity, item-kNN, SKNN and V-SKNN) or "
            "basket-completion (NDCG@10 of the cart slate for a basket with one item hidden, "
            "the request naming its buyer, against co-occurrence, item-kNN, EASE and "
            "popularity, with EASE plus the buyer's history as a reference): one test window of "
            "--window-days after --cutoff, every choice made on the validation window before "
            "it (docs/evaluation.md).",
        ),
    ] = "people",
    validation_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="session/basket protocols: days of the validation window "
            "(default: --window-days).",
        ),
    ] = None,
) -> None:
    """Fit shelfwise and the baselines before a cutoff; score both protocols after it.

    Shelfwise is the served pipeline on the ``home`` placement: its candidates,
    the merchant's rules in force (the report counts the targets they forbid),
    the blend ranker (row ``shelfwise``) and, with ``--ranker``, the learned
    ranker (row ``shelfwise+ranker``), and the arrangement. Protocols: ``all`` (every item bought in the test window) and ``new`` (items
    the person never had before; their history is excluded from the lists).
    Each NDCG comes with a 95% bootstrap interval over people, and shelfwise's
    difference with each peer with a paired one (``--resamples``, ``--seed``).
    Writes a markdown, JSON and HTML report into ``--out``.

    With ``--backtest N`` (or ``--origin``), a rolling-origin backtest instead:
    at each origin (Europe/London midnight) a ``--window-days`` test window and
    the validation window before it, on which the peers' hyper-parameters and
    shelfwise's blend are chosen; the served pipeline (row ``shelfwise``: the
    learned ranker or the blend ranker, as the validation window chose; the
    ``new`` lists from the placement as a new-items shelf with its own ranker,
    chosen on the window's new-items requests) and the
    same with the blend ranker against every peer per origin and pooled, with
    paired bootstrap intervals of the ratio. Writes backtest.md / backtest.json
    into ``--out``. The origins run in ``--jobs`` worker processes (default: the
    cores available), with the same result as one process.

    With ``--protocol session-next-item`` or ``basket-completion``, shelfwise's
    served slates (session placements / the cart) against the peers of those
    tasks, on one ``--window-days`` test window after ``--cutoff`` with every
    choice made on the ``--validation-days`` window before it; bootstrap
    intervals of each metric and of the ratio to the best peer. Writes
    <protocol>.md / .json into ``--out``.
    """
    if protocol != "people":
        if protocol not in PROTOCOLS:
            raise fail(
                InvalidInput(
                    f"unknown protocol {protocol!r}: one of {', '.join(PROTOCOLS)}",
                    code="bad_protocol",
                )
            )
        run_protocol(
            ctx,
            protocol,
            as_utc(cutoff),
            window_days,
            validation_days,
            min(k) if k else None,
            out,
            sources_config,
            resamples,
            seed,
            as_json,
        )
        return
    if backtest or origin:
        _backtest(
            ctx,
            backtest,
            origin or [],
            cutoff,
            window_days,
            every_days,
            k,
            out,
            sources_config,
            resamples,
            seed,
            as_json,
            on_validation,
            jobs,
        )
        return
    columns = (TextColumn("[bold]{task.description:<28}"), BarColumn(), TimeElapsedColumn())
    with _reading(ctx, sources_config, as_json, *columns) as (runtime, config, log, progress):
        task = progress.task_ids[0]
        products = list(runtime.snapshot.products)
        last = datetime.fromtimestamp(log.end, UTC) if len(log) else datetime.now(UTC)
        cut = as_utc(cutoff) or last - timedelta(days=14)

        def step(name: str) -> None:
            progress.update(task, description=name)

        def advance(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total)

        result = compare(
            log,
            cut,
            as_utc(end),
            config=config,
            products=products,
            ks=tuple(k or (10, 20)),
            tune=tune,
            with_baselines=baselines,
            with_ranker=ranker,
            step=step,
            progress=advance,
            resamples=resamples,
            seed=seed,
            **served_parts(runtime),
        )
    paths = write_report(result, out)
    data = result.as_dict()
    data["report"] = {name: str(p) for name, p in paths.items()}
    if as_json:
        print_json(data)
        return
    kmin = min(result.ks)
    table = Table(title=f"NDCG@{kmin} with 95% intervals (people: {result.people})")
    table.add_column("model")
    for protocol in ("all", "new"):
        table.add_column(protocol, justify="right")
    for m in result.models:
        table.add_row(m.name, *(_ndcg_cell(m, p, kmin) for p in ("all", "new")))
    console.print(table)
    if result.comparisons:
        deltas = Table(
            title=f"shelfwise - peer, NDCG@{kmin}, paired bootstrap "
            f"({result.resamples} resamples, seed {result.seed})"
        )
        for name in ("model", "peer", "protocol", "difference [95%]", "sure?"):
            deltas.add_column(name, justify="right" if name.startswith("diff") else "left")
        for c in result.comparisons:
            if c.k == kmin:
                d = c.delta
                deltas.add_row(
                    c.model,
                    c.peer,
                    c.protocol,
                    f"{d.mean:+.4f} [{d.low:+.4f}, {d.high:+.4f}]",
                    "yes" if d.excludes_zero() else "no",
                )
        console.print(deltas)
    forbidden = result.forbidden_text()
    if forbidden:
        console.print(f"shelfwise is the served pipeline: {forbidden}")
    console.print(f"report: {paths['markdown']}, {paths['html']}")


@contextmanager
def _reading(
    ctx: typer.Context, sources_config: Path | None, as_json: bool, *columns: ProgressColumn
) -> Iterator[tuple[Runtime, SourcesConfig, InteractionLog, Progress]]:
    """The store, the sources' config and its event log, read under a progress line
    (whose one task the caller goes on describing)."""
    with (
        runtime_of(ctx) as runtime,
        Progress(*columns, console=console, disable=as_json) as progress,
    ):
        config = load_sources_config(sources_config or runtime.settings.sources_config)
        progress.add_task("read events", total=None)
        yield runtime, config, read_log(runtime.db, items=list(runtime.snapshot.ids)), progress


def served_parts(runtime: Runtime) -> dict[str, Any]:
    """What makes the evaluated pipeline the served one: the store's ``home`` placement,
    the merchant's rules in force (enabled, at the current rulebook version) and the
    ranking settings."""
    version, rules = runtime.rules.store.snapshot()
    return {
        "rules": rules,
        "rulebook_version": version,
        "placement": runtime.placements.get("home"),
        "ranking": runtime.settings.ranking,
    }


def _ndcg_cell(m: ModelResult, protocol: str, k: int) -> str:
    got = m.ndcg_interval.get(protocol, {}).get(str(k))
    return got.text() if got is not None else f"{m.metrics[protocol][str(k)]['ndcg']:.4f}"


def as_utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _backtest(
    ctx: typer.Context,
    n: int,
    dates: list[datetime],
    last: datetime | None,
    window_days: int,
    every_days: int | None,
    ks: list[int] | None,
    out: Path,
    sources_config: Path | None,
    resamples: int,
    seed: int,
    as_json: bool,
    on_validation: bool = False,
    jobs: int | None = None,
) -> None:
    columns = (TextColumn("[bold]{task.description:<48}"), TimeElapsedColumn())
    with _reading(ctx, sources_config, as_json, *columns) as (runtime, config, log, progress):
        task = progress.task_ids[0]
        if dates:
            origins = [midnight(d.date()) for d in dates]
        elif last is not None:
            every = timedelta(days=every_days or window_days)
            origins = [midnight(last.date() - every * j) for j in reversed(range(n))]
        else:
            origins = default_origins(log.end if len(log) else 0.0, n, window_days, every_days)
        if on_validation:
            origins = [midnight(o.date() - timedelta(days=window_days)) for o in origins]
        result = run_backtest(
            log,
            origins,
            window_days=window_days,
            config=config,
            products=list(runtime.snapshot.products),
            ks=tuple(ks or (10,)),
            resamples=resamples,
            seed=seed,
            step=lambda name: progress.update(task, description=name),
            served=served_factory(**served_parts(runtime)),
            jobs=jobs,
        )
    if on_validation:
        result.notes["windows"] = (
            "validation windows: each origin is one window before the test origin asked for"
        )
    paths = write_backtest(result, out)
    data = result.as_dict()
    data["report"] = {name: str(p) for name, p in paths.items()}
    if as_json:
        print_json(data)
        return
    kmin = min(result.ks)
    table = Table(title=f"{result.served} / best peer, NDCG@{kmin} (95% paired bootstrap)")
    for name in ("protocol", "pooled ratio [95%]", "best peer", *result.scopes()[:-1]):
        table.add_column(name)
    for protocol, s in result.summary(kmin).items():
        r = s["ratio"]
        table.add_row(
            protocol,
            f"x{r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}]",
            s["best_peer"],
            *(f"x{o['ratio']:.3f}" for o in s["origins"].values()),
        )
    console.print(table)
    console.print(f"served: {result.served_label}")
    for r in result.origins:
        console.print(f"{r.cutoff:%Y-%m-%d}: {r.forbidden_text() or 'rules not counted'}")
    console.print(f"report: {paths['markdown']} ({result.seconds:.0f} s)")
