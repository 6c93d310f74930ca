"""One evaluation run: fit every model on the same split, score both protocols at each K."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shelfwise.evaluation.baselines import Recommender
from shelfwise.evaluation.metrics import BeyondAccuracy, summarise
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "end": self.end.isoformat(),
            "people": self.people,
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
                }
                for m in self.models
            ],
        }


def lists_for(
    model: Recommender, targets: Sequence[Target], protocol: Protocol, k: int
) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    empty = np.zeros(0, dtype=np.int64)
    return [
        model.recommend(t.person, k, t.history if protocol == "new" else empty) for t in targets
    ]


def evaluate(
    split: Split,
    models: Sequence[Recommender],
    ks: Sequence[int] = (10, 20),
    progress: Progress | None = None,
) -> EvaluationResult:
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
            asked += len(targets)
            result.metrics[protocol] = {str(k): summarise(lists, targets, k, beyond) for k in ks}
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
    )
