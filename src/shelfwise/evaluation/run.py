"""One evaluation run: fit every model on the same split, score both protocols at each K.

Each NDCG comes with a bootstrap interval over people, and every shelfwise
model is compared with every peer, paired (``evaluation.intervals``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shelfwise.evaluation.baselines import Recommender
from shelfwise.evaluation.intervals import LEVEL, FloatArray, Interval, interval, resampled_means
from shelfwise.evaluation.metrics import BeyondAccuracy, per_person, summarise
from shelfwise.evaluation.split import PROTOCOLS, Protocol, Split, Target

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass
class ModelResult:
    name: str
    fit_seconds: float
    recommend_ms: float
    metrics: dict[str, dict[str, dict[str, float]]] = field(
        default_factory=dict
    )  # protocol -> K -> metric
    ndcg_people: dict[str, dict[str, FloatArray]] = field(
        default_factory=dict
    )  # protocol -> K -> NDCG of each evaluated person (same people, same order for every model)
    ndcg_interval: dict[str, dict[str, Interval]] = field(default_factory=dict)
    people: dict[str, dict[str, dict[str, FloatArray]]] = field(
        default_factory=dict
    )  # protocol -> K -> accuracy metric -> value of each evaluated person (same order)
    # protocol -> target items the model's rules forbid (served models only; see
    # ``evaluation.served.ServedModel.forbidden``)
    forbidden: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """A shelfwise model against one peer: both NDCGs and their paired difference."""

    model: str
    peer: str
    protocol: str
    k: int
    model_ndcg: Interval
    peer_ndcg: Interval
    delta: Interval

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "peer": self.peer,
            "protocol": self.protocol,
            "k": self.k,
            "model_ndcg": self.model_ndcg.as_dict(),
            "peer_ndcg": self.peer_ndcg.as_dict(),
            "delta": self.delta.as_dict(),
            "significant": self.delta.excludes_zero(),
        }


@dataclass
class EvaluationResult:
    cutoff: datetime
    end: datetime
    people: dict[str, int]
    train_rows: int
    items: int
    ks: tuple[int, ...]
    models: list[ModelResult]
    notes: dict[str, Any] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    resamples: int = 0
    seed: int = 0
    target_items: dict[str, int] = field(default_factory=dict)  # protocol -> (person, item)s

    def metric(self, model: str, protocol: str, k: int, name: str) -> float:
        for m in self.models:
            if m.name == model:
                return m.metrics[protocol][str(k)][name]
        raise KeyError(model)

    def best_baseline(self, protocol: str, k: int, name: str = "ndcg") -> tuple[str, float]:
        pairs = [
            (m.name, m.metrics[protocol][str(k)][name])
            for m in self.models
            if not m.name.startswith("shelfwise")
        ]
        return max(pairs, key=lambda p: p[1])

    def forbidden_text(self) -> str | None:
        """How many target items the rules in force forbid the served pipeline, per protocol."""
        served = next((m for m in self.models if m.forbidden), None)
        if served is None:
            return None
        counts = ", ".join(
            f"{n:,} of {self.target_items.get(p, 0):,} ({p})" for p, n in served.forbidden.items()
        )
        return f"the rules in force forbid {counts} target items"

    def as_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "end": self.end.isoformat(),
            "people": self.people,
            "target_items": self.target_items,
            "train_rows": self.train_rows,
            "items": self.items,
            "ks": list(self.ks),
            "notes": self.notes,
            "models": [
                {
                    "name": m.name,
                    "fit_seconds": round(m.fit_seconds, 3),
                    "recommend_ms": round(m.recommend_ms, 4),
                    "metrics": m.metrics,
                    **({"targets_forbidden_by_rules": m.forbidden} if m.forbidden else {}),
                    "ndcg_interval": {
                        p: {k: i.as_dict() for k, i in by_k.items()}
                        for p, by_k in m.ndcg_interval.items()
                    },
                }
                for m in self.models
            ],
            "intervals": {
                "method": "bootstrap over people, paired, percentile",
                "level": LEVEL,
                "resamples": self.resamples,
                "seed": self.seed,
                "comparisons": [c.as_dict() for c in self.comparisons],
            },
        }


def lists_for(
    model: Recommender, targets: Sequence[Target], protocol: Protocol, k: int
) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    empty = np.zeros(0, dtype=np.int64)
    excludes = [t.history if protocol == "new" else empty for t in targets]
    many = getattr(model, "recommend_many", None)
    if many is not None:  # the same lists, batched (e.g. EASE's one matrix product)
        lists: list[np.ndarray[Any, np.dtype[np.int64]]] = many(
            [t.person for t in targets], k, excludes
        )
        return lists
    return [model.recommend(t.person, k, e) for t, e in zip(targets, excludes, strict=True)]


def evaluate(
    split: Split,
    models: Sequence[Recommender],
    ks: Sequence[int] = (10, 20),
    progress: Progress | None = None,
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> EvaluationResult:
    """Fit and score every model; ``resamples`` bootstrap draws (0: no intervals)."""
    beyond = BeyondAccuracy(split.train)
    results: list[ModelResult] = []
    kmax = max(ks)
    for n, model in enumerate(models):
        if progress:
            progress(f"fit {model.name}", n, len(models))
        started = time.perf_counter()
        model.fit(split.train)
        result = ModelResult(model.name, time.perf_counter() - started, 0.0)
        asked = 0
        spent = 0.0
        for protocol in PROTOCOLS:
            targets = split.targets[protocol]
            set_protocol = getattr(model, "set_protocol", None)
            if set_protocol is not None:
                set_protocol(protocol)
            started = time.perf_counter()
            lists = lists_for(model, targets, protocol, kmax)
            spent += time.perf_counter() - started
            forbidden = getattr(model, "forbidden", None)
            if forbidden is not None:
                result.forbidden[protocol] = sum(forbidden(t.person, t.items) for t in targets)
            asked += len(targets)
            result.metrics[protocol] = {}
            result.ndcg_people[protocol] = {}
            result.people[protocol] = {}
            for k in ks:
                people = per_person(lists, targets, k)
                result.metrics[protocol][str(k)] = summarise(lists, targets, k, beyond, people)
                result.ndcg_people[protocol][str(k)] = people["ndcg"]
                result.people[protocol][str(k)] = people
        result.recommend_ms = 1000 * spent / max(asked, 1)
        results.append(result)
    if progress:
        progress("done", len(models), len(models))
    return EvaluationResult(
        cutoff=datetime.fromtimestamp(split.cutoff, UTC),
        end=datetime.fromtimestamp(split.end, UTC),
        people={p: len(split.targets[p]) for p in PROTOCOLS},
        train_rows=len(split.train),
        items=split.train.n_items,
        ks=tuple(ks),
        models=results,
        comparisons=with_intervals(results, ks, resamples, seed),
        resamples=resamples,
        seed=seed,
        target_items={p: sum(len(t.items) for t in split.targets[p]) for p in PROTOCOLS},
    )


def with_intervals(
    results: Sequence[ModelResult], ks: Sequence[int], resamples: int, seed: int
) -> list[Comparison]:
    """Set each model's NDCG interval; every shelfwise model against every peer, paired."""
    comparisons: list[Comparison] = []
    if resamples <= 0 or not results:
        return comparisons
    for protocol in PROTOCOLS:
        for k in ks:
            key = str(k)
            series = [m.ndcg_people[protocol][key] for m in results]
            if not len(series[0]):
                continue
            means = resampled_means(series, resamples, seed)
            for j, m in enumerate(results):
                point = m.metrics[protocol][key]["ndcg"]
                m.ndcg_interval.setdefault(protocol, {})[key] = interval(point, means[:, j])
            for i, m in enumerate(results):
                if not m.name.startswith("shelfwise"):
                    continue
                for j, peer in enumerate(results):
                    if peer.name.startswith("shelfwise"):
                        continue
                    point = m.metrics[protocol][key]["ndcg"] - peer.metrics[protocol][key]["ndcg"]
                    comparisons.append(
                        Comparison(
                            m.name,
                            peer.name,
                            protocol,
                            k,
                            m.ndcg_interval[protocol][key],
                            peer.ndcg_interval[protocol][key],
                            interval(point, means[:, i] - means[:, j]),
                        )
                    )
    return comparisons
