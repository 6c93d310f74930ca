"""Distribution drift: PSI and Jensen-Shannon against a reference, thresholds from history.

Bins are frozen from the reference window (quantile edges for numbers, the
reference's levels plus "other" for categories), so the current window is
always cut the same way. A drift threshold is not a folk constant (PSI 0.2):
the reference window is split into consecutive sub-windows and the PSI between
neighbours measures how much the distribution moves when nothing is wrong;
the part of it their sample sizes do not explain is genuine movement, and the
threshold is this comparison's own sampling noise plus a margin over a high
quantile of that movement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]
_EPS = 1e-4
MIN_SAMPLE = 100  # fewer observations on either side: too little data to call drift


@dataclass(frozen=True)
class NumericBins:
    edges: FloatArray  # interior edges, increasing

    @classmethod
    def from_reference(cls, values: FloatArray, n_bins: int = 10) -> NumericBins:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(np.zeros(0))
        qs = np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1])
        return cls(np.unique(qs))

    def counts(self, values: FloatArray) -> FloatArray:
        finite = values[np.isfinite(values)]
        idx = np.searchsorted(self.edges, finite, side="right")
        return np.bincount(idx, minlength=len(self.edges) + 1).astype(float)


@dataclass(frozen=True)
class CategoricalBins:
    levels: tuple[str, ...]

    @classmethod
    def from_reference(cls, values: Sequence[str], max_levels: int = 30) -> CategoricalBins:
        uniq, counts = np.unique(np.asarray(values, dtype=object).astype(str), return_counts=True)
        top = uniq[np.argsort(-counts, kind="stable")][:max_levels]
        return cls(tuple(sorted(str(v) for v in top)))

    def counts(self, values: Sequence[str]) -> FloatArray:
        """Counts per level, the last bin holding every value the reference did not know."""
        arr = np.asarray(values, dtype=object).astype(str)
        levels = np.asarray(self.levels, dtype=str)
        idx = np.searchsorted(levels, arr)
        known = (idx < len(levels)) & (levels[np.minimum(idx, len(levels) - 1)] == arr)
        idx = np.where(known, idx, len(levels))
        return np.bincount(idx, minlength=len(levels) + 1).astype(float)


def _probs(counts: FloatArray) -> FloatArray:
    p: FloatArray = counts + _EPS * max(float(counts.sum()), 1.0)
    out: FloatArray = p / p.sum()
    return out


def psi(ref_counts: FloatArray, cur_counts: FloatArray) -> float:
    """Population stability index, smoothed so empty bins stay finite."""
    p, q = _probs(ref_counts), _probs(cur_counts)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(ref_counts: FloatArray, cur_counts: FloatArray) -> float:
    """Jensen-Shannon divergence in bits (0 = same, 1 = disjoint)."""
    p, q = _probs(ref_counts), _probs(cur_counts)
    m = (p + q) / 2
    return float(0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m)))


def sampling_psi(bins: int, n_a: float, n_b: float, alpha: float = 0.001) -> float:
    """The PSI two samples of sizes ``n_a`` and ``n_b`` from one distribution stay
    under with probability ``1 - alpha``: PSI is about chi-square(bins - 1) x (1/n_a + 1/n_b)."""
    if n_a <= 0 or n_b <= 0:
        return float("inf")
    return float(special.chdtri(max(bins - 1, 1), alpha)) * (1.0 / n_a + 1.0 / n_b)


def learned_threshold(
    sub_counts: Sequence[FloatArray],
    ref_n: float,
    cur_n: float,
    quantile: float = 0.95,
    margin: float = 2.0,
) -> float:
    """A PSI threshold for comparing ``ref_n`` with ``cur_n`` observations.

    ``sub_counts`` are bin counts of consecutive reference sub-windows (e.g.
    days). The PSI between neighbours, less what their sample sizes explain,
    is the genuine day-to-day movement of the distribution; the threshold is
    the sampling noise of this comparison plus ``margin`` x a high quantile of
    that movement.
    """
    bins = len(sub_counts[0]) if sub_counts else 2
    # Sparse windows inflate PSI (empty bins); merge neighbours to ~20 per bin.
    merged: list[FloatArray] = []
    for counts in sub_counts:
        if merged and merged[-1].sum() < 20 * bins:
            merged[-1] = merged[-1] + counts
        else:
            merged.append(counts.astype(float))
    if len(merged) > 1 and merged[-1].sum() < 20 * bins:
        merged[-2] = merged[-2] + merged.pop()
    excess = [
        max(psi(a, b) - sampling_psi(bins, a.sum(), b.sum(), alpha=0.5), 0.0)
        for a, b in pairwise(merged)
    ]
    movement = float(np.quantile(excess, quantile)) if excess else 0.0
    return max(sampling_psi(bins, ref_n, cur_n) + margin * movement, 0.01)


@dataclass(frozen=True)
class DriftResult:
    name: str
    psi: float
    js: float
    threshold: float
    reference_n: int
    current_n: int
    enough_data: bool
    drifted: bool
    bins: tuple[str, ...]
    reference_share: tuple[float, ...]
    current_share: tuple[float, ...]

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def compare(
    name: str,
    labels: tuple[str, ...],
    ref_counts: FloatArray,
    cur_counts: FloatArray,
    sub_counts: Sequence[FloatArray],
) -> DriftResult:
    threshold = learned_threshold(
        sub_counts or [ref_counts], float(ref_counts.sum()), float(cur_counts.sum())
    )
    value = psi(ref_counts, cur_counts)
    enough = bool(min(ref_counts.sum(), cur_counts.sum()) >= MIN_SAMPLE)
    return DriftResult(
        name=name,
        psi=value,
        js=jensen_shannon(ref_counts, cur_counts),
        threshold=threshold,
        reference_n=int(ref_counts.sum()),
        current_n=int(cur_counts.sum()),
        enough_data=enough,
        drifted=enough and value > threshold,
        bins=labels,
        reference_share=tuple(float(x) for x in ref_counts / max(ref_counts.sum(), 1.0)),
        current_share=tuple(float(x) for x in cur_counts / max(cur_counts.sum(), 1.0)),
    )


def numeric_labels(bins: NumericBins) -> tuple[str, ...]:
    e = [f"{x:,.2f}" for x in bins.edges]
    if not e:
        return ("all",)
    return (f"< {e[0]}", *(f"{a} to {b}" for a, b in pairwise(e)), f">= {e[-1]}")


def gini(counts: FloatArray) -> float:
    """Gini coefficient of exposure over items, unshown items included as zeros
    (0 = every item shown equally, (n-1)/n = one item takes everything)."""
    x = np.sort(np.maximum(counts.astype(float), 0.0))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)


def top_share(counts: FloatArray, catalog_size: int, top: float = 0.01) -> float:
    """Share of exposure taken by the top ``top`` fraction of the catalog's items."""
    total = counts.sum()
    if total == 0:
        return 0.0
    k = max(int(np.ceil(catalog_size * top)), 1)
    return float(np.sort(counts)[::-1][:k].sum() / total)
