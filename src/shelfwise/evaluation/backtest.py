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

import time as clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import Artifacts, fit_all
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
from shelfwise.ranking.training import RankerTrainingConfig
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


class SourceFits:
    """Source fits on prefixes of one log, memoised: origins and ranker windows share them.

    A prefix ``log.before(t)`` is identified by its length (and last event), so
    two cutoffs with no event between them share one fit. The content table does
    not depend on events and is fitted once.
    """

    def __init__(
        self, products: Sequence[Product | None], config: SourcesConfig, keep: int = 16
    ) -> None:
        self.products, self.config, self.keep = products, config, keep
        self.memo: dict[tuple[int, float], Artifacts] = {}
        self.hits = self.misses = 0

    def __call__(self, train: InteractionLog) -> Artifacts:
        key = (len(train), train.end if len(train) else 0.0)
        got = self.memo.get(key)
        if got is not None:
            self.hits += 1
            return got
        self.misses += 1
        content = next(iter(self.memo.values())).content if self.memo else None
        got = fit_all(train, self.products, self.config, content=content)
        if len(self.memo) >= self.keep:
            self.memo.pop(min(self.memo))  # the shortest prefix: origins walk forward
        self.memo[key] = got
        return got


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
# The ranker designs each origin chooses among (with the blend ranker), on validation only.
RANKER_CHOICES: tuple[RankerTrainingConfig, ...] = (
    RankerTrainingConfig(),
    RankerTrainingConfig(num_leaves=15),
    RankerTrainingConfig(train_windows=3),
)


def served_factory(
    rules: Sequence[Rule] = (),
    rulebook_version: int = 0,
    placement: Placement | None = None,
    ranking: RankingSettings | None = None,
    choices: Sequence[RankerTrainingConfig] = RANKER_CHOICES,
) -> ServedFactory:
    """The served pipeline (``shelfwise``: the learned ranker of ``choices`` or the blend
    ranker, whichever orders the fold's validation window better) and the same pipeline
    with the blend ranker, both with ``rules`` in force and the blend tuned on the fold's
    validation window. No ``choices``: the learned ranker of the default config, always."""

    def served(fold: Fold) -> tuple[Sequence[Recommender], dict[str, Any]]:
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
            rules=rules,
            rulebook_version=rulebook_version,
            chains=chains,
            name="shelfwise blend",
            fit_sources=fold.fits,
            cutoff=fold.cutoff,  # decision times at the origin's midnights: fits shared
            step=fold.step,
        )
        if placement is not None:
            blend.placement = placement
        if ranking is not None:
            blend.ranking = ranking
        ranked = (
            replace(blend, name="shelfwise", choices=tuple(choices))
            if choices
            else replace(blend, name="shelfwise+ranker", ranker=RankerTrainingConfig())
        )
        notes = {
            f"blend[{p}]": {"weights": chain.blend, "validation_ndcg": round(score, 4)}
            for p, (chain, score) in tuned.items()
        }
        return [ranked, blend], notes

    return served


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
) -> BacktestResult:
    """Evaluate the served model and the tuned peers at every origin, then pooled."""
    started, cpu = clock.perf_counter(), clock.process_time()
    config = config or SourcesConfig()
    served = served or served_factory()
    fits = SourceFits(products, config)
    results: list[EvaluationResult] = []
    served_name = ""
    for n, origin in enumerate(sorted(origins), 1):
        if origin.tzinfo is None:
            raise InvalidInput("a backtest origin needs a time zone", code="bad_backtest")
        fold = _fold(log, origin, window_days, products, config, fits, step)
        label = f"origin {n}/{len(origins)} {origin:%Y-%m-%d}"
        if step:
            step(f"{label}: tune the peers")
        peers: list[Recommender] = [*tune_peers(fold.validation, min(ks), families, step)]
        peers += fixed_peers()
        if step:
            step(f"{label}: the served model")
        models, notes = served(fold)
        served_name = models[0].name
        if step:
            step(f"{label}: fit and evaluate")
        result = evaluate(fold.split, [*peers, *models], ks, resamples=0)
        result.cutoff, result.end = origin, midnight(origin.date() + timedelta(days=window_days))
        result.notes.update(notes)
        for m in models:
            choice = getattr(m, "choice", None)
            if choice is not None:
                result.notes[f"ranker_choice[{m.name}]"] = choice.as_dict()
                if step:
                    step(f"{label}: {m.name} chose {choice.as_dict()}")
        result.notes.update({p.name: p.describe() for p in peers if isinstance(p, TunedPeer)})
        results.append(result)
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
        cpu_seconds=clock.process_time() - cpu,
        resamples=resamples,
        seed=seed,
        notes={"source_fits": {"fitted": fits.misses, "reused": fits.hits}},
    )


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


def _fold(
    log: InteractionLog,
    origin: datetime,
    window_days: int,
    products: Sequence[Product | None],
    config: SourcesConfig,
    fits: SourceFits,
    step: Step | None,
) -> Fold:
    cutoff = origin.timestamp()
    day = origin.astimezone(ZoneInfo(TIMEZONE)).date()
    end = midnight(day + timedelta(days=window_days)).timestamp()
    start = midnight(day - timedelta(days=window_days)).timestamp()
    if not len(log) or end > log.end + 1 or not (log.at < start).any():
        raise InvalidInput(
            f"the backtest origin {origin:%Y-%m-%d %H:%M %Z} needs {window_days} days of "
            f"validation before it and {window_days} days of test after it inside the data",
            code="backtest_window_outside_data",
        )
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
    "ServedFactory",
    "SourceFits",
    "backtest",
    "default_origins",
    "midnight",
    "served_factory",
]
