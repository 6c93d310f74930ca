"""``shelfwise train``: read a window of events, fit every source, write and maybe promote a bundle.

The promotion guard (``training.guard``) compares the new bundle's served
pipeline (the ``home`` placement, the rules in force, the learned ranker with
``--ranker``) with the promoted one's on the latest validation window (the
last ``guard_days``), on at least ``promotion_min_people`` people; a bundle it
refuses is written but not promoted unless forced.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError
from sqlalchemy import func, select

from shelfwise.bundles import BundleInfo, ModelBundle, bundle_store, new_version
from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.content import fit_content
from shelfwise.candidates.log import PURCHASE, InteractionLog, Resolve
from shelfwise.candidates.model import STAGES, Artifacts, SourceFits, fit_all
from shelfwise.catalog.model import Product
from shelfwise.config import Settings
from shelfwise.contracts.identity import PersonResolver
from shelfwise.errors import ConfigError, InvalidInput
from shelfwise.pipeline.exposure import anchor_slates, floors_of
from shelfwise.pipeline.flow import Pipeline
from shelfwise.pipeline.learned import LearnedRank, placement_objective
from shelfwise.pipeline.stages import chain_of
from shelfwise.ranking.compiled import cache_dir_of
from shelfwise.ranking.exposure import EXPOSURE_FOLDER, ExposureFloors
from shelfwise.ranking.impressions import Impression, impressions_before, read_impressions
from shelfwise.ranking.model import RankerModel
from shelfwise.ranking.ranker import Ranker, ranker_folder
from shelfwise.ranking.training import (
    RANKER_CHOICES,
    RankerChoice,
    RankerTrainingConfig,
    WindowMemo,
    bundle_ranker,
    choice_windows,
    chosen_rankers,
    item_columns,
    task_training,
)
from shelfwise.ranking.workers import forked_map, workers_for
from shelfwise.rules import Rulebook
from shelfwise.rules.store import RuleStore
from shelfwise.serving.placements import Placement, RankerTask, load_placements
from shelfwise.store.tables import interactions
from shelfwise.training.guard import (
    GuardReport,
    Served,
    decide,
    judge,
    measure,
    measure_promoted,
)
from shelfwise.training.inputs import TrainingInputs
from shelfwise.training.reader import read_log

logger = logging.getLogger("shelfwise.training")
Step = Callable[[str], None]
STEPS = (
    "read events",
    "fit content",
    "guard metrics",
    *(f"fit {s}" for s in STAGES if s != "content"),
    "write bundle",
)


def ranker_metrics(ranker: Ranker) -> dict[str, float]:
    return dict(ranker.model.metrics) if ranker.model is not None else {}


def load_sources_config(path: Path | None) -> SourcesConfig:
    if path is None:
        return SourcesConfig()
    if not path.is_file():
        raise ConfigError(f"sources config {path} does not exist", code="config_file_missing")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return SourcesConfig.model_validate(data or {})
    except (json.JSONDecodeError, yaml.YAMLError, ValidationError) as e:
        raise ConfigError(f"sources config {path} is not valid: {e}", code="config_invalid") from e


@dataclass(frozen=True)
class TrainResult:
    bundle: ModelBundle
    promoted: bool
    decision: str
    previous: str | None
    guard: GuardReport

    def ranker_choice(self) -> str | None:
        """What ranks the home placement, in words (None: trained without ``--ranker``)."""
        metrics = self.bundle.info.metrics
        scores = {
            k[len("ranker_choice[") : -1]: v
            for k, v in metrics.items()
            if k.startswith("ranker_choice[")
        }
        if not scores:
            return None
        best = max(scores, key=lambda k: scores[k])
        blend = metrics.get("ranker_chosen_blend", 0.0) == 1.0
        chosen = "the blend ranker" if blend else best
        others = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
        return f"home ranker: {chosen} (validation NDCG@10: {others})"

    def as_dict(self) -> dict[str, Any]:
        info = self.bundle.info
        return {
            "version": info.version,
            "path": str(self.bundle.path),
            "promoted": self.promoted,
            "decision": self.decision,
            "previous": self.previous,
            "config_hash": info.config_hash,
            "window": {
                "start": info.window_start.isoformat() if info.window_start else None,
                "end": info.window_end.isoformat() if info.window_end else None,
            },
            "counts": info.counts,
            "metrics": info.metrics,
            "guard": self.guard.as_dict(),
            "timings": info.timings,
        }


def train(
    runtime: TrainingInputs,
    *,
    config: SourcesConfig | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    force: bool = False,
    promote: bool = True,
    resolve: Resolve | None = None,
    step: Step | None = None,
    with_ranker: bool = False,
    min_people: int | None = None,
    jobs: int | None = None,
) -> TrainResult:
    """Fit, write, and promote when the guard allows (``min_people``: default
    ``settings.promotion_min_people``; ``jobs``: the worker processes the rankers'
    windows and designs and the exposure cap's placements are computed in, default
    ``settings.train_jobs``: the same bundle for any number, ``ranking.workers``)."""
    settings: Settings = runtime.settings
    jobs = settings.train_jobs if jobs is None else jobs
    config = config or load_sources_config(settings.sources_config)
    timings: dict[str, float] = {}

    def stage(name: str) -> float:
        if step:
            step(name)
        return time.perf_counter()

    t = stage("read events")
    # People are resolved through the identity graph frozen now (the request path
    # resolves a request's id by the same rule; see contracts.identity.person_of).
    people = resolve or runtime.identity.snapshot()
    if start is None and end is None:
        last = _last_event(runtime)
        if last is not None:
            end = last + timedelta(microseconds=1)
            start = end - timedelta(days=settings.train_window_days)
    elif start is None and end is not None:
        start = end - timedelta(days=settings.train_window_days)
    runtime.snapshot.refresh()
    catalog_ids = list(runtime.snapshot.ids)
    log = read_log(runtime.db, start, end, items=catalog_ids, resolve=people)
    if len(log) == 0:
        raise InvalidInput("no events to train on in the window", code="no_training_data")
    products: list[Product | None] = list(runtime.snapshot.products)
    timings["read events"] = round(time.perf_counter() - t, 4)

    t = stage("fit content")
    prices = log.item_prices()
    for i, p in enumerate(products):
        if p is not None and p.price is not None:
            prices[i] = p.price
    content = fit_content(
        [*products, *[None] * (log.n_items - len(products))], prices, config.content
    )
    timings["fit content"] = round(time.perf_counter() - t, 4)

    artifacts = fit_all(
        log,
        products,
        config,
        step=lambda s: step(f"fit {s}") if step and s != "content" else None,
        content=content,
    )
    timings.update({f"fit {k}": v for k, v in artifacts.timings.items() if k != "content"})

    t = stage("guard metrics")
    store = bundle_store(settings, runtime.db)
    previous = store.current_version()
    served = guard_pipeline(runtime, with_ranker)
    logged: list[Impression] = []
    if with_ranker:
        # the logged slates, read once: the bundle's ranker learns from those before
        # the end, the guard's from those before its window (responses up to then)
        logged = read_impressions(runtime.db, catalog_ids, start, end, people)
        served = replace(served, impressions=lambda before: impressions_before(logged, before))
    # The guard's ranker windows are the bundle's, one window earlier, and every
    # ranker task trains on the bundle's: each prefix's sources are fitted once, and
    # each of the home ranker's windows is built once (``windows``).
    fits = SourceFits(products, config, content=content)
    # room for the windows built ahead: the bundle's (its training windows, its
    # choice's earlier ones and its validation window) and the guard's one more
    ahead = [c.train_windows + c.choice_windows + 1 for c in served.choices]
    windows = WindowMemo(keep=max(ahead, default=1))
    if with_ranker and all(c.horizon_days == settings.guard_days for c in served.choices):
        # the bundle's windows and the one more the guard's reach back to, in one map
        # of the worker processes (built apart, the bundle's latest would be built
        # alone after the guard)
        choice_windows(
            log, products, item_columns(artifacts, products, log.item_prices()), config,
            {False: served.choices}, int(log.end) + 1, step, chain=home_chain(settings),
            fit_sources=fits, impressions=logged, windows=windows, jobs=jobs, before=1,
        )  # fmt: skip
    candidate = measure(
        log, products, config, settings.guard_days, content, served, fits, windows, jobs
    )
    guard = judge(
        candidate,
        measure_promoted(
            store.open(previous).info if previous else None,
            candidate,
            log,
            products,
            config,
            settings.guard_days,
            content,
            served,
            jobs,
        ),
        previous,
        tolerance=settings.promotion_tolerance,
        min_people=settings.promotion_min_people if min_people is None else min_people,
    )
    metrics = guard.metrics()
    timings["guard metrics"] = round(time.perf_counter() - t, 4)

    extra: Callable[[Path], None] | None = None
    if with_ranker:
        t = stage("train ranker")
        # the home ranker's design, or the blend, chosen on the validation window
        # before the end, as the guard's and the backtest's are
        ranker, choice = chosen_rankers(
            log,
            products,
            artifacts,
            config,
            settings.ranking,
            {False: home_training(settings)},
            step,
            impressions=logged,
            chain=home_chain(settings),
            fit_sources=fits,
            windows=windows,
            jobs=jobs,
        )[False]
        windows.clear()
        timings["train ranker"] = round(time.perf_counter() - t, 4)
        metrics |= choice_metrics(choice)
        tasks: dict[str, Ranker] = {}
        if ranker is not None:
            metrics |= {f"ranker_{k}": v for k, v in ranker_metrics(ranker).items()}
            tasks["requests"] = ranker
        for task, placement in task_placements(settings).items():
            t = stage(f"train ranker {task}")
            got = task_ranker(
                log, products, artifacts, config, settings, task, placement, step, fits, jobs
            )
            timings[f"train ranker {task}"] = round(time.perf_counter() - t, 4)
            if got is not None:
                tasks[task] = got
                metrics |= {f"ranker_{task}_{k}": v for k, v in ranker_metrics(got).items()}

        floors = exposure_floors(runtime, settings, artifacts, tasks, log.end, step, timings, jobs)

        def extra(folder: Path) -> None:
            for task, trained in tasks.items():
                trained.save(folder / ranker_folder(task))
            for got in floors:
                got.save(folder / EXPOSURE_FOLDER)

    t = stage("write bundle")
    info = BundleInfo(
        version=new_version(config.config_hash()),
        created_at=datetime.now(UTC),
        config_hash=config.config_hash(),
        config=config.model_dump(mode="json"),
        window_start=datetime.fromtimestamp(float(log.at.min()), UTC),
        window_end=datetime.fromtimestamp(log.end, UTC),
        counts={
            "interactions": len(log),
            "people": log.n_people,
            "items": log.n_items,
            "catalog_items": len(catalog_ids),
            "purchases": int((log.kind == PURCHASE).sum()),
            "baskets": int(np.unique(log.basket).size),
            "identity_links": people.last_link if isinstance(people, PersonResolver) else 0,
        },
        metrics=metrics,
        timings=timings,
        settings_fingerprint=settings.fingerprint(),
    )
    bundle = store.write(artifacts, info, extra)
    timings["write bundle"] = round(time.perf_counter() - t, 4)
    if with_ranker and settings.ranking.compile_model:
        # Compiled for this machine, outside the bundle: a server here starts with a hit.
        cache = cache_dir_of(settings.model_dir)
        for name in tasks:
            RankerModel.load(bundle.path / ranker_folder(name), True, cache, label=bundle.version)
    promoted, decision = decide(guard, force=force, promote=promote)
    if promoted:
        store.promote(bundle.version)
    return TrainResult(bundle, promoted, decision, previous, guard)


def task_placements(settings: Settings) -> dict[RankerTask, Placement]:
    """The ranker training tasks other than ``requests`` that the store's placements
    ask for (``Placement.ranker``), each with the first placement that asks (its
    blend is the chain the task's ranker reads as source ``blend``)."""
    out: dict[RankerTask, Placement] = {}
    for p in load_placements(settings):
        if p.ranker != "requests":
            out.setdefault(p.ranker, p)
    return out


def exposure_floors(
    runtime: TrainingInputs,
    settings: Settings,
    artifacts: Artifacts,
    tasks: dict[str, Ranker],
    end: float,
    step: Step | None,
    timings: dict[str, float],
    jobs: int = 1,
) -> list[ExposureFloors]:
    """The exposure cap's floors of every placement with ``exposure_cap`` that is
    ranked by one of ``tasks``, calibrated over viewed products (``requires_item``) or
    over the people ``artifacts`` knows (home), the placements in up to ``jobs``
    worker processes (``ranking.workers``)."""
    now = datetime.fromtimestamp(end, UTC)
    version, rules = RuleStore(runtime.db).snapshot()
    book = Rulebook(list(rules), runtime.snapshot, version=version)
    todo = [
        (placement, ranker, cap)
        for placement in load_placements(settings)
        if (ranker := tasks.get(placement.ranker) or tasks.get("requests")) is not None
        and (cap := placement.objective.exposure_cap) is not None
    ]
    people = artifacts.history.people
    parallel = workers_for(jobs, len(todo)) > 0
    if step and parallel:
        step(f"exposure {', '.join(p.name for p, _, _ in todo)}")

    def floors(part: tuple[Placement, Ranker, float]) -> tuple[ExposureFloors, float]:
        placement, ranker, cap = part
        t = time.perf_counter()
        if step and not parallel:
            step(f"exposure {placement.name}")
        # the served path: the placement's chain and rules (Pipeline.allowed), its
        # learned rank stage without floors, at the clock of serving's time bucket
        objective = placement_objective(settings.ranking, placement)
        bucket = settings.ranking.time_bucket_seconds
        rank = LearnedRank(ranker, objective, bucket=bucket)
        pipeline = Pipeline.offline(runtime.snapshot, artifacts.blend(), book, rank)
        name, k = placement.name, placement.k
        slates = anchor_slates(pipeline, rank, placement, k, now, people=people)
        got = floors_of(slates, runtime.snapshot.ids, name, k, cap)
        return got, round(time.perf_counter() - t, 4)

    out: list[ExposureFloors] = []
    for (placement, _, _), (got, seconds) in zip(todo, forked_map(floors, todo, jobs), strict=True):
        out.append(got)
        timings[f"exposure {placement.name}"] = seconds
    return out


def task_ranker(
    log: InteractionLog,
    products: Sequence[Product | None],
    artifacts: Artifacts,
    config: SourcesConfig,
    settings: Settings,
    task: RankerTask,
    placement: Placement,
    step: Step | None = None,
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None,
    jobs: int = 1,
) -> Ranker | None:
    """The bundle's ranker of training ``task`` for ``placement`` (its requests, its
    labels, its blend as source ``blend``); None, logged, when the history has too
    little of that task to train on (the placement is then ranked by the
    ``requests`` ranker, :class:`~shelfwise.pipeline.learned.LearnedRankers`)."""
    cfg, chain = task_training(task, placement.name, placement.sources, placement.fallback)
    cfg = cfg.model_copy(update={"max_people": settings.ranker_max_people})
    new_chain = None
    placements = load_placements(settings)
    if task == "new_items" and "home" in placements:
        # its all-items requests read the home placement's blend (the shelf's own without one)
        home = placements.get("home")
        new_chain, chain = chain, task_training(task, home.name, home.sources, home.fallback)[1]
    try:
        return bundle_ranker(
            log,
            products,
            artifacts,
            config,
            settings.ranking,
            cfg,
            step,
            chain=chain,
            fit_sources=fit_sources,
            new_chain=new_chain,
            jobs=jobs,
        )
    except InvalidInput as e:
        logger.warning("no %s ranker in this bundle: %s", task, e)
        return None


def guard_pipeline(runtime: TrainingInputs, with_ranker: bool) -> Served:
    """The served pipeline the guard judges: the ``home`` placement as configured, the
    merchant's rules in force now, and the learned ranker when the bundle will have one."""
    settings = runtime.settings
    version, rules = RuleStore(runtime.db).snapshot()
    return Served(
        placement=load_placements(settings).get("home"),
        rules=rules,
        rulebook_version=version,
        ranking=settings.ranking,
        choices=home_training(settings) if with_ranker else (),
    )


def home_chain(settings: Settings) -> PlacementChain | None:
    """The chain the home (``requests``) ranker reads as source ``blend``: the home
    placement's, as it serves it, as the guard judges it and as the backtest measures
    it (None without a home placement: the sources config's ``home`` blend)."""
    placements = load_placements(settings)
    return chain_of(placements.get("home")) if "home" in placements else None


def home_training(settings: Settings) -> tuple[RankerTrainingConfig, ...]:
    """The designs the job chooses the home (``requests``) ranker among, the bundle's
    and the guard's: the backtest's (``RANKER_CHOICES``), each window asking at most
    ``ranker_max_people`` people."""
    cap = {"max_people": settings.ranker_max_people}
    return tuple(c.model_copy(update=cap) for c in RANKER_CHOICES)


def choice_metrics(choice: RankerChoice) -> dict[str, float]:
    """The home ranker's choice as bundle metrics: each option's NDCG@10 on the
    validation window (``ranker_choice[<option>]``), and ``ranker_chosen_blend`` 1 when
    the blend ranker ordered it best (the bundle then has no ``requests`` ranker)."""
    out = {f"ranker_choice[{label}]": score for label, score in choice.scores.items()}
    out["ranker_chosen_blend"] = float(choice.config is None)
    return out


def _last_event(runtime: TrainingInputs) -> datetime | None:
    with runtime.db.engine.connect() as conn:
        value: datetime | None = conn.execute(
            select(func.max(interactions.c.occurred_at))
        ).scalar_one_or_none()
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
