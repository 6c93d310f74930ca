"""The learned ranker: LightGBM LambdaRank, calibrated to P(engagement), optionally compiled.

Training uses a later time window for early stopping and for a Platt
calibration that maps the ranking score to a probability of engagement, which
the placement objective multiplies by the item's value. For serving, the
booster can be compiled to native code with ``lleaves`` (same outputs, a
fraction of LightGBM's per-call cost); the compiled object is cached on this
machine outside the bundle (``ranking.compiled``: loading a bundle never
writes into it), and LightGBM is the fallback when compilation is unavailable.
Contributions are path attributions read from the leaves each row reaches
(``ranking.attribution``), TreeSHAP (``pred_contrib``) on request.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from shelfwise.ranking.attribution import PathAttribution
from shelfwise.ranking.compiled import Compiled, compile_ranker
from shelfwise.ranking.features import FeatureSpec
from shelfwise.ranking.history import FloatArray, IntArray

SEED = 7  # LightGBM's seed of a training's first draw (RankerTrainingConfig.seed offsets it)
_TREE = re.compile(r"(?m)^Tree=\d+\n")  # a tree's first line in LightGBM's model text
_TREE_SIZES = re.compile(r"(?m)^tree_sizes=.*\n")

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambdarank_truncation_level": 20,
    "verbose": -1,
    "num_threads": 1,  # OpenMP spinning on a shared 2-core machine costs 10x
    "seed": SEED,
    "deterministic": True,
}


# LightGBM's own predictions (leaves, TreeSHAP) from several threads share one
# booster: one at a time.
_BOOSTER = threading.Lock()


def _sigmoid(z: FloatArray) -> FloatArray:
    # Clipped: a degenerate calibration (one raw score for every row, hardly any
    # positive) walks its intercept far out; exp must not overflow on the way.
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0))), dtype=np.float64)


_RIDGE = 1e-6


def _platt_loss(a: float, b: float, raw: FloatArray, label: FloatArray) -> float:
    """The log-loss of ``sigmoid(a * raw + b)`` with the tiny ridge the steps use."""
    z = a * raw + b
    return float(np.sum(np.logaddexp(0.0, z) - label * z) + 0.5 * _RIDGE * (a * a + b * b))


def fit_platt(raw: FloatArray, label: FloatArray, iterations: int = 50) -> tuple[float, float]:
    """Logistic regression of a binary label on one score (Newton steps, tiny ridge).

    A step that would raise the loss is halved until it does not: from the start
    (a=1, b=0) a full Newton step overshoots when the scores are spread wide and
    the label is rare (a sum of several models' scores), and undamped steps then
    run off to a ~1e11 slope, a 0/1 step in place of a probability. Where the full
    steps lower the loss, as they do for ordinary scores, nothing changes."""
    a, b = 1.0, 0.0
    x = np.column_stack([raw, np.ones_like(raw)])
    loss = _platt_loss(a, b, raw, label)
    for _ in range(iterations):
        p = _sigmoid(a * raw + b)
        grad = x.T @ (p - label) + _RIDGE * np.array([a, b])
        hess = (x * (p * (1 - p))[:, None]).T @ x + _RIDGE * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while True:
            na, nb = a - scale * float(step[0]), b - scale * float(step[1])
            new = _platt_loss(na, nb, raw, label)
            if new <= loss or scale < 1e-6:
                break
            scale /= 2
        a, b, loss = na, nb, new
        if float(np.abs(scale * step).max()) < 1e-8:
            break
    return a, b


@dataclass
class RankerModel:
    spec: FeatureSpec
    booster: lgb.Booster
    calibration: tuple[float, float] = (1.0, 0.0)
    metrics: dict[str, float] = field(default_factory=dict)
    compiled: Compiled | None = None
    _paths: PathAttribution | None = field(default=None, repr=False)

    @classmethod
    def train(
        cls,
        spec: FeatureSpec,
        train: tuple[FloatArray, IntArray, IntArray],
        valid: tuple[FloatArray, IntArray, IntArray],
        params: dict[str, Any] | None = None,
        rounds: int = 300,
        patience: int | None = 30,
        weights: tuple[FloatArray | None, FloatArray | None] = (None, None),
    ) -> tuple[RankerModel, FloatArray]:
        """A model, and its raw scores of ``valid``'s rows (what :meth:`raw` gives them).

        ``train``/``valid`` are (features, graded labels, group sizes) in request order;
        ``weights`` optional per-row weights of each (inverse propensities of logged slots).
        ``patience=None`` trains all ``rounds`` (no early stopping, no ``valid_*`` metric;
        ``valid`` still calibrates)."""
        cfg = {**DEFAULT_PARAMS, **(params or {})}
        names = list(spec.names)
        dtrain = lgb.Dataset(
            train[0], train[1], group=train[2], weight=weights[0], feature_name=names
        )
        # Without early stopping the validation rows are not scored at every round
        # (about a tenth of a refit's time); they still calibrate the model below.
        stopping: dict[str, Any] = {}
        if patience:
            dvalid = lgb.Dataset(
                valid[0], valid[1], group=valid[2], weight=weights[1], reference=dtrain
            )
            stopping = {
                "valid_sets": [dvalid],
                "callbacks": [lgb.early_stopping(patience, verbose=False)],
            }
        booster = lgb.train(cfg, dtrain, num_boost_round=rounds, **stopping)
        booster.free_dataset()  # the binned rows: a choice among models keeps several boosters
        raw = np.asarray(booster.predict(valid[0], num_threads=1), dtype=np.float64)
        calibration = fit_platt(raw, (valid[1] > 0).astype(np.float64))
        best = booster.best_score.get("valid_0", {})
        metrics = {f"valid_{k}": float(v) for k, v in best.items()}
        metrics["best_iteration"] = float(booster.best_iteration if patience else 0)
        return cls(spec, booster, calibration, metrics), raw

    @classmethod
    def summed(
        cls, models: Sequence[RankerModel], valid: tuple[FloatArray, IntArray]
    ) -> RankerModel:
        """One model whose raw score is the sum of ``models``' raw scores (an ensemble
        served as one booster: every model's trees, in order), calibrated on ``valid``
        (features, graded labels) as :meth:`train` calibrates one. The models read the
        same features; the metrics are the first model's."""
        if not models or any(m.spec != models[0].spec for m in models):
            raise ValueError("an ensemble needs models that read the same features")
        heads, trees = [], []
        for m in models:
            text = m.booster.model_to_string(num_iteration=m.best_iteration or -1)
            head, rest = text.split("end of trees", 1)[0].split("\nTree=0\n", 1)
            heads.append(head)
            trees += _TREE.split("Tree=0\n" + rest)[1:]
        head = _TREE_SIZES.sub("", heads[0])
        body = "".join(f"Tree={n}\n{tree}" for n, tree in enumerate(trees))
        booster = lgb.Booster(model_str=f"{head}\n{body}end of trees\n")
        model = cls(models[0].spec, booster, metrics=dict(models[0].metrics))
        raw = model.raw(valid[0])
        model.calibration = fit_platt(raw, (valid[1] > 0).astype(np.float64))
        model.metrics["ensemble_models"] = float(len(models))
        model.metrics["best_iteration"] = 0.0  # every tree of every model
        return model

    def raw(self, x: FloatArray) -> FloatArray:
        if self.compiled is not None:
            return np.asarray(self.compiled.predict(x, n_jobs=1), dtype=np.float64)
        with _BOOSTER:
            raw = self.booster.predict(x, num_threads=1, num_iteration=self.best_iteration)
        return np.asarray(raw, dtype=np.float64)

    @property
    def best_iteration(self) -> int | None:
        best = int(self.metrics.get("best_iteration", 0))
        return best if best > 0 else None

    def probability(self, raw: FloatArray) -> FloatArray:
        a, b = self.calibration
        return _sigmoid(a * raw + b)

    def contributions(self, x: FloatArray) -> FloatArray:
        """Per-feature contributions to the raw score, plus the bias in the last column.

        Path attribution (exact sum, a fraction of TreeSHAP's cost): the rows' leaves,
        found by LightGBM, and each leaf's contributions, summed once per model.
        """
        if self._paths is None:
            dump = self.booster.dump_model(num_iteration=self.best_iteration)
            self._paths = PathAttribution(dump, len(self.spec.names))
        with _BOOSTER:
            leaves = self.booster.predict(
                x, pred_leaf=True, num_threads=1, num_iteration=self.best_iteration
            )
        return self._paths.contributions(np.asarray(leaves, dtype=np.int64).reshape(len(x), -1))

    def shap(self, x: FloatArray) -> FloatArray:
        """LightGBM's TreeSHAP contributions (slower; same layout)."""
        with _BOOSTER:
            out = self.booster.predict(
                x, pred_contrib=True, num_threads=1, num_iteration=self.best_iteration
            )
        return np.asarray(out, dtype=np.float64)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / "ranker.txt"))
        meta = {
            "sources": list(self.spec.sources),
            "features": list(self.spec.names),
            "feature_digest": self.spec.digest(),
            "calibration": list(self.calibration),
            "metrics": self.metrics,
        }
        (folder / "ranker.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(
        cls, folder: Path, compile: bool = True, cache_dir: Path | None = None, label: str = ""
    ) -> RankerModel:
        """Read the model saved in ``folder`` (only read: a bundle is never written to).

        ``compile``: with lleaves, from the compiled cache in ``cache_dir`` (entries
        named after ``label``, the bundle's version), or in memory when it is None.
        """
        meta = json.loads((folder / "ranker.json").read_text())
        # The features it was trained with: an earlier version's model reads its own
        # (each still computed here); one naming a feature this version lacks is refused.
        sources = tuple(meta["sources"])
        spec = FeatureSpec(sources, tuple(meta["features"][2 * len(sources) :]))
        spec.base_columns  # noqa: B018 - refuses unknown features now, not at a request
        if spec.digest() != meta["feature_digest"]:
            raise ValueError("the ranker's feature spec does not match its own feature list")
        model_file = folder / "ranker.txt"
        booster = lgb.Booster(model_file=str(model_file))
        a, b = meta["calibration"]
        model = cls(spec, booster, (float(a), float(b)), dict(meta["metrics"]))
        if compile:
            model.compiled = compile_ranker(
                model_file, booster, model.best_iteration, cache_dir, label
            )
        return model
