"""Bootstrap confidence intervals over people: how sure is an NDCG, and a difference of two?

Every model is scored on the same people, so one set of resamples serves them
all: each resample draws ``n`` people with replacement and takes every model's
mean NDCG over them. A model's interval is the percentile interval of its
resampled means; a comparison is *paired*: the interval of the per-resample
difference of two models' means (the mean of the per-person differences over
the same draw). The draws come from ``numpy.random.default_rng(seed)``: the
same seed, the same intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
LEVEL = 0.95
_CHUNK = 50  # resamples drawn at once (memory: _CHUNK x people counts)


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}

    def text(self) -> str:
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"


def resampled_means(series: Sequence[FloatArray], resamples: int, seed: int) -> FloatArray:
    """(resamples x series) means of each per-person series over the same people draws."""
    values = np.vstack(series).astype(np.float64)  # series x people
    n = values.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, len(series)))
    for start in range(0, resamples, _CHUNK):
        c = min(_CHUNK, resamples - start)
        draws = rng.integers(0, n, size=(c, n)) + np.arange(c)[:, None] * n
        counts = np.bincount(draws.ravel(), minlength=c * n).reshape(c, n)
        out[start : start + c] = counts @ values.T / n
    return out


def interval(point: float, resampled: FloatArray, level: float = LEVEL) -> Interval:
    tail = (1 - level) / 2
    low, high = np.quantile(resampled, [tail, 1 - tail])
    return Interval(point, float(low), float(high))


__all__ = ["LEVEL", "Interval", "interval", "resampled_means"]
