"""Rolling-origin backtest: the served model against tuned peers at several cutoffs.

Each origin is a London midnight (the store's own day; explicit, never the
machine's zone). At each origin the test window is ``[origin, origin + w)``
and the validation window ``[origin - w, origin)`` (``w`` days, both ends at
London midnight). Every choice - the peers' hyper-parameters, shelfwise's
blend weights, the ranker's early stopping - is made on data before the
origin; the test window informs nothing. Per origin and pooled over the
origins (each evaluated person at each origin is one unit), every accuracy
metric gets a paired bootstrap interval of the served model against each
peer: the difference and the ratio of the means.

The served model comes from a ``ServedFactory``: given a ``Fold`` (the log,
the origin's splits and a memo of source fits), it returns the models to
evaluate, the served one first. ``served_factory`` gives the served pipeline
(``evaluation.served``: ``Pipeline.offline`` with the merchant's rules and the
learned ranker as served) and the same pipeline with the blend ranker.
"""

from __future__ import annotations

import contextlib
import ctypes
import resource
import signal
import threading
import time as clock
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from multiprocessing import get_context
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from threadpoolctl import threadpool_limits

from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import SourceFits
from shelfwise.catalog.model import Product
from shelfwise.errors import InvalidInput
from shelfwise.evaluation.baselines import Recommender
from shelfwise.evaluation.intervals import LEVEL, FloatArray, Interval, interval, resampled_means
from shelfwise.evaluation.metrics import ACCURACY
from shelfwise.evaluation.peers import FAMILIES, Family, TunedPeer, fixed_peers, tune_peers
from shelfwise.evaluation.run import EvaluationResult, evaluate
from shelfwise.evaluation.served import ServedModel
from shelfwise.evaluation.split import PROTOCOLS, Split, time_split
from shelfwise.evaluation.tune import tune_chains, validation_split
from shelfwise.ranking.objective import RankingSettings
from shelfwise.ranking.training import RANKER_CHOICES, RankerTrainingConfig
from shelfwise.ranking.workers import available_cores
from shelfwise.rules.model import Rule
from shelfwise.serving.placements import Placement

TIMEZONE = "Europe/London"
COMPARED = ("ndcg", "recall", "map", "revenue_recall")
Step = Callable[[str], None]


def midnight(day: date, zone: str = TIMEZONE) -> datetime:
    """Midnight of ``day`` in ``zone`` (an aware datetime)."""
    return datetime.combine(day, time(), ZoneInfo(zone))


def default_origins(
    last_event: float, n: int, window_days: int = 14, every_days: int | None = None
) -> list[datetime]:
    """``n`` origins ``every_days`` apart (default: one window), the last test window ending
    at the London midnight on or before the last event; oldest first."""
    if n < 1:
        raise InvalidInput("a backtest needs at least one origin", code="bad_backtest")
    every = every_days or window_days
    last_day = datetime.fromtimestamp(last_event, ZoneInfo(TIMEZONE)).date()
    last = last_day - timedelta(days=window_days)
    return [midnight(last - timedelta(days=every * j)) for j in reversed(range(n))]


@dataclass(frozen=True)
class Fold:
    """One origin: what a served model may see to make its choices and fit."""

    log: InteractionLog
    origin: datetime
    cutoff: float
    end: float
    validation_start: float
    split: Split
    validation: Split
    products: Sequence[Product | None]
    config: SourcesConfig
    fits: SourceFits
    step: Step | None = None


ServedFactory = Callable[[Fold], tuple[Sequence[Recommender], dict[str, Any]]]
SERVED = (
    "the served pipeline (Pipeline.offline: candidates, the merchant's rules, the rank stage, "
    "the arrangement) on the home placement, blend tuned on validation, and the learned ranker "
    "or the blend ranker as the validation window chose"
)
# The ranker designs each origin chooses among (with the blend ranker), on validation
# only: the training job's (``ranking.training.RANKER_CHOICES``). The new-items
# placement's ranker (the ``new`` protocol's slates): chosen on the validation window's
# new-items requests among the same designs trained on the all-items requests (the
# home ranker) or on both kinds of request (``new_item_requests``), and its blend.
NEW_ITEMS_CHOICES: tuple[RankerTrainingConfig, ...] = (
    *RANKER_CHOICES,
    *(c.model_copy(update={"new_item_requests": True}) for c in RANKER_CHOICES),
)


@dataclass(frozen=True)
class Served:
    """The served-model factory of :func:`served_factory`; a plain object, so that worker
    processes of a parallel backtest can receive it."""

    rules: tuple[Rule, ...] = ()
    rulebook_version: int = 0
    placement: Placement | None = None
    ranking: RankingSettings | None = None
    choices: tuple[RankerTrainingConfig, ...] = RANKER_CHOICES
    new_items_choices: tuple[RankerTrainingConfig, ...] = NEW_ITEMS_CHOICES

    def __call__(self, fold: Fold) -> tuple[Sequence[Recommender], dict[str, Any]]:
        tuned = tune_chains(
            fold.log,
            fold.cutoff,
            fold.cutoff - fold.validation_start,
            fold.config,
            fold.products,
            step=fold.step,
            fit_sources=fold.fits,
        )
        chains: dict[str, PlacementChain] = {p: chain for p, (chain, _) in tuned.items()}
        blend = ServedModel(
            fold.config,
            fold.products,
            rules=self.rules,
            rulebook_version=self.rulebook_version,
            chains=chains,
            name="shelfwise blend",
            fit_sources=fold.fits,
            cutoff=fold.cutoff,  # decision times at the origin's midnights: fits shared
            step=fold.step,
        )
        if self.placement is not None:
            blend.placement = self.placement
        if self.ranking is not None:
            blend.ranking = self.ranking
        ranked = (
            replace(
                blend,
                name="shelfwise",
                choices=self.choices,
                new_items_choices=self.new_items_choices,
            )
            if self.choices
            else replace(blend, name="shelfwise+ranker", ranker=RankerTrainingConfig())
        )
        notes = {
            f"blend[{p}]": {"weights": chain.blend, "validation_ndcg": round(score, 4)}
            for p, (chain, score) in tuned.items()
        }
        return [ranked, blend], notes


def served_factory(
    rules: Sequence[Rule] = (),
    rulebook_version: int = 0,
    placement: Placement | None = None,
    ranking: RankingSettings | None = None,
    choices: Sequence[RankerTrainingConfig] = RANKER_CHOICES,
    new_items_choices: Sequence[RankerTrainingConfig] = NEW_ITEMS_CHOICES,
) -> ServedFactory:
    """The served pipeline (``shelfwise``: the learned ranker of ``choices`` or the blend
    ranker, whichever orders the fold's validation window better) and the same pipeline
    with the blend ranker, both with ``rules`` in force and the blend tuned on the fold's
    validation window. No ``choices``: the learned ranker of the default config, always.
    ``new_items_choices``: the ranker of the new-items placement (the ``new`` protocol's
    lists), chosen on the validation window's new-items requests (empty: the home
    placement's ranker orders both)."""
    return Served(
        tuple(rules),
        rulebook_version,
        placement,
        ranking,
        tuple(choices),
        tuple(new_items_choices),
    )


@dataclass(frozen=True)
class Comparison:
    """The served model against one peer on one metric: both means, difference and ratio."""

    scope: str  # an origin's date, or "pooled"
    protocol: str
    k: int
    metric: str
    model: str
    peer: str
    model_value: Interval
    peer_value: Interval
    delta: Interval
    ratio: Interval

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "protocol": self.protocol,
            "k": self.k,
            "metric": self.metric,
            "model": self.model,
            "peer": self.peer,
            "model_value": self.model_value.as_dict(),
            "peer_value": self.peer_value.as_dict(),
            "delta": self.delta.as_dict(),
            "ratio": self.ratio.as_dict(),
        }


def ratio_interval(point: float, mine: FloatArray, peer: FloatArray) -> Interval:
    """The percentile interval of the per-resample ratio of two means (NaN where a peer's is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(peer > 0, mine / peer, np.nan)
    if point != point or np.isnan(ratios).all():
        return Interval(point, float("nan"), float("nan"))
    low, high = np.nanquantile(ratios, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Interval(point, float(low), float(high))


People = dict[str, dict[str, dict[str, dict[str, FloatArray]]]]  # model -> protocol -> K -> metric


def compare_people(
    scope: str,
    people: People,
    served: str,
    peers: Sequence[str],
    ks: Sequence[int],
    resamples: int,
    seed: int,
) -> list[Comparison]:
    """Paired bootstrap of ``served`` against every peer, each metric of ``COMPARED``."""
    out: list[Comparison] = []
    names = [served, *peers]
    for protocol in PROTOCOLS:
        for k in ks:
            key = str(k)
            for metric in COMPARED:
                series = [people[n][protocol][key][metric] for n in names]
                if not len(series[0]):
                    continue
                means = resampled_means(series, max(resamples, 1), seed)
                points = [float(s.mean()) for s in series]
                if resamples <= 0:  # no intervals: each is its point
                    means = np.tile(points, (1, 1))
                mine = interval(points[0], means[:, 0])
                for j, peer in enumerate(peers, 1):
                    point = points[0] / points[j] if points[j] > 0 else float("nan")
                    out.append(
                        Comparison(
                            scope,
                            protocol,
                            k,
                            metric,
                            served,
                            peer,
                            mine,
                            interval(points[j], means[:, j]),
                            interval(points[0] - points[j], means[:, 0] - means[:, j]),
                            ratio_interval(point, means[:, 0], means[:, j]),
                        )
                    )
    return out


@dataclass
class BacktestResult:
    origins: list[EvaluationResult]
    served: str
    served_label: str
    window_days: int
    ks: tuple[int, ...]
    comparisons: list[Comparison]  # per origin and pooled
    seconds: float
    cpu_seconds: float  # every thread of this process: what an idle machine's cores would do
    resamples: int
    seed: int
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def peers(self) -> list[str]:
        return [m.name for m in self.origins[0].models if not m.name.startswith("shelfwise")]

    def scopes(self) -> list[str]:
        return [scope_of(r) for r in self.origins] + ["pooled"]

    def find(self, scope: str, protocol: str, k: int, metric: str, peer: str) -> Comparison:
        for c in self.comparisons:
            if (c.scope, c.protocol, c.k, c.metric, c.peer) == (scope, protocol, k, metric, peer):
                return c
        raise KeyError((scope, protocol, k, metric, peer))

    def best_peer(self, scope: str, protocol: str, k: int, metric: str = "ndcg") -> Comparison:
        """The comparison with the peer strongest on the test data of ``scope`` (the hardest bar)."""
        rows = [
            c
            for c in self.comparisons
            if (c.scope, c.protocol, c.k, c.metric) == (scope, protocol, k, metric)
        ]
        return max(rows, key=lambda c: c.peer_value.mean)

    def summary(self, k: int | None = None) -> dict[str, dict[str, Any]]:
        """Per protocol: the pooled ratio to the best peer, its interval, every origin's ratio."""
        k = k or min(self.ks)
        out: dict[str, dict[str, Any]] = {}
        for protocol in PROTOCOLS:
            pooled = self.best_peer("pooled", protocol, k)
            per_origin = {s: self.best_peer(s, protocol, k) for s in self.scopes() if s != "pooled"}
            out[protocol] = {
                "k": k,
                "served_ndcg": pooled.model_value.as_dict(),
                "best_peer": pooled.peer,
                "best_peer_ndcg": pooled.peer_value.as_dict(),
                "ratio": pooled.ratio.as_dict(),
                "origins": {
                    s: {"peer": c.peer, "ratio": round(c.ratio.mean, 4)}
                    for s, c in per_origin.items()
                },
                "min_origin_ratio": min(c.ratio.mean for c in per_origin.values()),
            }
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "timezone": TIMEZONE,
            "window_days": self.window_days,
            "served": self.served,
            "served_label": self.served_label,
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu_seconds, 1),
            "ks": list(self.ks),
            "summary": self.summary(),
            "origins": [{"origin": scope_of(r), **r.as_dict()} for r in self.origins],
            "intervals": {
                "method": "bootstrap over (person, origin) units, paired, percentile",
                "level": LEVEL,
                "resamples": self.resamples,
                "seed": self.seed,
                "comparisons": [c.as_dict() for c in self.comparisons],
            },
            "notes": self.notes,
        }


def scope_of(result: EvaluationResult) -> str:
    return result.cutoff.astimezone(ZoneInfo(TIMEZONE)).date().isoformat()


def default_jobs() -> int:
    """Worker processes of a backtest by default: the cores this process may run on."""
    return available_cores()


@dataclass(frozen=True)
class _Job:
    """What every origin of one backtest shares (sent once to each worker process)."""

    log: InteractionLog
    window_days: int
    products: Sequence[Product | None]
    config: SourcesConfig
    served: ServedFactory
    families: Sequence[Family]
    ks: tuple[int, ...]
    total: int


@dataclass
class _Done:
    """The origins one process evaluated, in order, and its source-fit memo's counts."""

    results: list[tuple[int, EvaluationResult]]
    served_name: str
    fitted: int
    reused: int


def _run_origins(
    job: _Job,
    numbered: Sequence[tuple[int, datetime]],
    step: Step | None,
    fits: SourceFits | None = None,
) -> _Done:
    """Evaluate ``numbered`` origins one after the other, sharing one memo of source fits
    (neighbouring origins share the prefixes of their ranker windows)."""
    fits = fits if fits is not None else SourceFits(job.products, job.config)
    hits, misses = fits.hits, fits.misses
    done = _Done([], "", 0, 0)
    for n, origin in numbered:
        fold = _fold(job.log, origin, job.window_days, job.products, job.config, fits, step)
        label = f"origin {n}/{job.total} {origin:%Y-%m-%d}"
        if step:
            step(f"{label}: tune the peers")
        peers: list[Recommender] = [*tune_peers(fold.validation, min(job.ks), job.families, step)]
        peers += fixed_peers()
        if step:
            step(f"{label}: the served model")
        models, notes = job.served(fold)
        done.served_name = models[0].name
        if step:
            step(f"{label}: fit and evaluate")
        result = evaluate(fold.split, [*peers, *models], job.ks, resamples=0)
        result.cutoff = origin
        result.end = midnight(origin.date() + timedelta(days=job.window_days))
        result.notes.update(notes)
        for m in models:
            for attr, key in (("choice", "ranker_choice"), ("new_items_choice", "new_items")):
                choice = getattr(m, attr, None)
                if choice is not None:
                    result.notes[f"{key}[{m.name}]"] = choice.as_dict()
                    if step:
                        step(f"{label}: {m.name} {key} chose {choice.as_dict()}")
        result.notes.update({p.name: p.describe() for p in peers if isinstance(p, TunedPeer)})
        done.results.append((n, result))
    done.fitted, done.reused = fits.misses - misses, fits.hits - hits
    return done


PR_SET_PDEATHSIG = 1
_STEPS: Any = None  # a worker process's queue of progress messages (None: silent)
_FITS: SourceFits | None = None  # a worker process's memo of source fits (one backtest's)


def _start_worker(steps: Any) -> None:
    """A worker process: one BLAS / OpenMP thread (the workers are the parallelism)."""
    global _STEPS
    threadpool_limits(1)
    _STEPS = steps
    # Linux: end with the parent, even when it is killed without a chance to clean up.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _in_worker(job: _Job, numbered: Sequence[tuple[int, datetime]]) -> _Done:
    """One origin in a worker process; the origins a process is given share its memo of
    source fits (a fit depends only on its prefix: ``SourceFits``)."""
    global _FITS
    if _FITS is None:
        _FITS = SourceFits(job.products, job.config)
    steps = _STEPS
    return _run_origins(job, numbered, steps.put if steps is not None else None, _FITS)


def largest_first(n: int) -> list[int]:
    """The order the origins are handed to worker processes: the latest (largest log,
    slowest) first, so that the short ones fill in at the end and the processes end
    together."""
    return list(range(n - 1, -1, -1))


def _parallel(
    job: _Job, numbered: list[tuple[int, datetime]], jobs: int, step: Step | None
) -> list[_Done]:
    context = get_context("spawn")  # no fork of a process with threads (progress bars, BLAS)
    steps = context.SimpleQueue() if step else None
    relay = None
    if steps is not None and step is not None:
        forward = step

        def drain() -> None:
            while (message := steps.get()) is not None:
                forward(message)

        relay = threading.Thread(target=drain, name="backtest-steps", daemon=True)
        relay.start()
    try:
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_start_worker,
            initargs=(steps,),
        ) as pool:
            futures = [
                pool.submit(_in_worker, job, [numbered[i]]) for i in largest_first(len(numbered))
            ]
            return [f.result() for f in futures]
    finally:
        if steps is not None and relay is not None:
            steps.put(None)
            relay.join()


def backtest(
    log: InteractionLog,
    origins: Sequence[datetime],
    *,
    window_days: int = 14,
    config: SourcesConfig | None = None,
    products: Sequence[Product | None] = (),
    ks: Sequence[int] = (10,),
    served: ServedFactory | None = None,
    served_label: str = SERVED,
    resamples: int = 1000,
    seed: int = 0,
    step: Step | None = None,
    families: Sequence[Family] = FAMILIES,
    jobs: int | None = None,
) -> BacktestResult:
    """Evaluate the served model and the tuned peers at every origin, then pooled.

    ``jobs`` worker processes (default: the cores available; 1: in this process)
    evaluate the origins, one at a time each, the latest first (``largest_first``),
    each process with its own memo of source fits and one BLAS thread. Every choice and fit depends only on the log
    and the origin, so the result is the same for any ``jobs`` (bar the timings and
    the memo's counts); a parallel ``served`` factory must be picklable (``served_factory``'s is).
    """
    started, cpu = clock.perf_counter(), clock.process_time()
    children = _children_cpu()
    config = config or SourcesConfig()
    served = served or served_factory()
    ordered = sorted(origins)
    for origin in ordered:
        _check(log, origin, window_days)
    job = _Job(log, window_days, products, config, served, tuple(families), tuple(ks), len(ordered))
    numbered = list(enumerate(ordered, 1))
    workers = min(default_jobs() if jobs is None else max(jobs, 1), len(ordered))
    if workers > 1:
        done = _parallel(job, numbered, workers, step)
    else:
        done = [_run_origins(job, numbered, step)]
    results = [r for _, r in sorted((pair for d in done for pair in d.results), key=lambda p: p[0])]
    served_name = done[-1].served_name
    peer_names = [m.name for m in results[0].models if not m.name.startswith("shelfwise")]
    comparisons: list[Comparison] = []
    for r in results:
        people = {m.name: m.people for m in r.models}
        comparisons += compare_people(
            scope_of(r), people, served_name, peer_names, ks, resamples, seed
        )
    comparisons += compare_people(
        "pooled", pooled_people(results), served_name, peer_names, ks, resamples, seed
    )
    return BacktestResult(
        origins=results,
        served=served_name,
        served_label=served_label,
        window_days=window_days,
        ks=tuple(ks),
        comparisons=comparisons,
        seconds=clock.perf_counter() - started,
        cpu_seconds=clock.process_time() - cpu + _children_cpu() - children,
        resamples=resamples,
        seed=seed,
        notes={
            "source_fits": {
                "fitted": sum(d.fitted for d in done),
                "reused": sum(d.reused for d in done),
            },
            "jobs": workers,
        },
    )


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the worker processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pooled_people(results: Sequence[EvaluationResult]) -> People:
    """Every model's per-person values, origins concatenated in order."""
    pooled: People = {}
    for m in results[0].models:
        pooled[m.name] = {
            p: {
                k: {
                    metric: np.concatenate(
                        [_model(r, m.name).people[p][k][metric] for r in results]
                    )
                    for metric in ACCURACY
                }
                for k in by_k
            }
            for p, by_k in m.people.items()
        }
    return pooled


def _model(result: EvaluationResult, name: str) -> Any:
    return next(m for m in result.models if m.name == name)


def _window(origin: datetime, window_days: int) -> tuple[float, float, float]:
    """The validation start, the cutoff and the test end of an origin (unix seconds)."""
    day = origin.astimezone(ZoneInfo(TIMEZONE)).date()
    end = midnight(day + timedelta(days=window_days)).timestamp()
    start = midnight(day - timedelta(days=window_days)).timestamp()
    return start, origin.timestamp(), end


def _check(log: InteractionLog, origin: datetime, window_days: int) -> None:
    """Refuse an origin without a zone or without room for its windows in the data."""
    if origin.tzinfo is None:
        raise InvalidInput("a backtest origin needs a time zone", code="bad_backtest")
    start, _, end = _window(origin, window_days)
    if not len(log) or end > log.end + 1 or not (log.at < start).any():
        raise InvalidInput(
            f"the backtest origin {origin:%Y-%m-%d %H:%M %Z} needs {window_days} days of "
            f"validation before it and {window_days} days of test after it inside the data",
            code="backtest_window_outside_data",
        )


def _fold(
    log: InteractionLog,
    origin: datetime,
    window_days: int,
    products: Sequence[Product | None],
    config: SourcesConfig,
    fits: SourceFits,
    step: Step | None,
) -> Fold:
    _check(log, origin, window_days)
    start, cutoff, end = _window(origin, window_days)
    split = time_split(log, cutoff, end)
    if not split.targets["all"]:
        raise InvalidInput(
            f"nobody bought both before and after the origin {origin:%Y-%m-%d}",
            code="backtest_window_empty",
        )
    validation = validation_split(log, cutoff, cutoff - start)
    return Fold(log, origin, cutoff, end, start, split, validation, products, config, fits, step)


__all__ = [
    "RANKER_CHOICES",
    "SERVED",
    "TIMEZONE",
    "BacktestResult",
    "Comparison",
    "Fold",
    "Served",
    "ServedFactory",
    "backtest",
    "default_jobs",
    "default_origins",
    "largest_first",
    "midnight",
    "served_factory",
]
