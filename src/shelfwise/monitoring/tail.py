"""The level test's false alerts as a smooth function of its threshold.

Counting the alerts a replay of healthy weeks opens at a threshold decides on
one or two events: over 224 healthy series a month one alert is 0.89 a month
per 200 series, two are 1.79, and a statistic of 9.51 against a threshold of
9.5 is the difference. The count at 9.5 also ignores everything the replay
says below it. This module uses the whole upper tail instead (peaks over a
base, as in extreme-value statistics):

- per series, the hours whose level statistic passes a base ``u`` (below any
  threshold in use) are grouped into episodes as alerts are (a gap of more
  than ``resolve_after_hours`` quiet hours starts a new one), and each
  episode's peak is kept: an alert at a threshold ``h >= u`` opens for each
  episode whose peak passes ``h``;
- the peaks' excess over ``u`` is taken as exponential with scale ``s``
  (maximum likelihood: their mean excess). A log-likelihood ratio whose noise
  model holds has at most ``e^-x`` of its mass beyond ``x`` (``s = 1``); the
  fitted ``s`` says how much heavier this shop's tail is. A Gaussian tail
  falls faster than any exponential, so extrapolating past the peaks seen
  overstates rather than understates;
- the expected alerts at ``h`` are the other tests' plus ``n e^{-(h - u)/s}``
  for the ``n`` peaks over ``u``, with a 95% upper bound: the other tests'
  bound plus the level part's, from the standard error of its logarithm,
  ``sqrt((1 + ((h - u)/s)²) / n)`` (the count's and the scale's). With fewer
  than :data:`MIN_PEAKS` peaks the scale is not fitted: ``s = 1`` and the
  count's Poisson bound.

The other tests (the window tests and the sequential one) are fitted the same
way when their own tail is given (``others_fit``): their statistic is how far
past its threshold a series is, in log units (a window test's ``-log`` of its
Benjamini-Hochberg adjusted p-value less ``-log`` of the false-discovery
rate; the sequential test's log-likelihood ratio less its threshold), the
largest of the three at each hour; their expected alerts are that tail's at
0. Counting them decides on one or two alerts, just as it did for the level
test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from shelfwise.monitoring.series import FloatArray

HOURS_PER_MONTH = 30 * 24
MIN_PEAKS = 5  # fewer peaks over the base: the scale is a likelihood ratio's own, 1
Z_95 = 1.6448536269514722  # one-sided 95% normal quantile


def episode_peaks(statistic: FloatArray, base: float, quiet_hours: int) -> FloatArray:
    """The peak of every episode of ``statistic`` (hours, series) above ``base``: per
    series, hours above it more than ``quiet_hours`` apart start a new episode."""
    if quiet_hours < 1:
        raise ValueError("quiet_hours must be at least 1")
    peaks: list[float] = []
    for column in statistic.T:
        above = np.nonzero(column > base)[0]
        if above.size == 0:
            continue
        starts = np.concatenate([[0], np.nonzero(np.diff(above) > quiet_hours)[0] + 1])
        peaks.extend(np.maximum.reduceat(column[above], starts).tolist())
    return np.asarray(peaks, dtype=float)


@dataclass(frozen=True)
class TailFit:
    """Peaks of the level statistic over ``base`` in ``hours`` of ``series`` series,
    and ``others``: the alerts the other tests opened over the same hours; with
    ``others_fit``, the tail of their statistic (past their thresholds, see above),
    from which their expected alerts are taken instead of the count."""

    base: float
    peaks: FloatArray
    series: int
    hours: int
    others: int
    others_fit: TailFit | None = None

    @classmethod
    def pooled(cls, fits: list[TailFit]) -> TailFit:
        """One fit over the series of several replays of the same hours and base."""
        if not fits or len({(f.base, f.hours) for f in fits}) != 1:
            raise ValueError("pooled fits need the same base and hours")
        inner = [f.others_fit for f in fits]
        if any(f is None for f in inner) and any(f is not None for f in inner):
            raise ValueError("pooled fits need the other tests' tail in all or none")
        return cls(
            base=fits[0].base,
            peaks=np.concatenate([f.peaks for f in fits]),
            series=sum(f.series for f in fits),
            hours=fits[0].hours,
            others=sum(f.others for f in fits),
            others_fit=None
            if inner[0] is None
            else cls.pooled([f for f in inner if f is not None]),
        )

    @property
    def months(self) -> float:
        return self.hours / HOURS_PER_MONTH

    @property
    def fitted(self) -> bool:
        return self.peaks.size >= MIN_PEAKS

    @property
    def scale(self) -> float:
        """The exponential scale of the peaks' excess over the base (1 when not fitted)."""
        return float(np.mean(self.peaks - self.base)) if self.fitted else 1.0

    def _check(self, threshold: float) -> float:
        if threshold < self.base:
            raise ValueError(f"threshold {threshold:g} is below the tail's base {self.base:g}")
        return (threshold - self.base) / self.scale

    def level(self, threshold: float) -> float:
        """Expected episodes of this tail's statistic over ``threshold``, in all (the level
        test's alone; the other tests' for ``others_fit``)."""
        return self.peaks.size * float(np.exp(-self._check(threshold)))

    def level_upper(self, threshold: float) -> float:
        """Their 95% upper bound."""
        x = self._check(threshold)
        n = self.peaks.size
        if self.fitted:
            return n * float(np.exp(-x + Z_95 * np.sqrt((1.0 + x**2) / n)))
        return float(special.gammaincinv(n + 1, 0.95)) * float(np.exp(-x))

    def others_expected(self) -> float:
        """The other tests' expected alerts in all: from their tail when fitted, else as
        counted."""
        return float(self.others) if self.others_fit is None else self.others_fit.level(0.0)

    def others_upper(self) -> float:
        """Their 95% upper bound: their tail's, else the count's Poisson bound."""
        if self.others_fit is None:
            return float(special.gammaincinv(self.others + 1, 0.95))
        return self.others_fit.level_upper(0.0)

    def per_month(self, threshold: float) -> float:
        """Expected alerts a month over the replayed series at level ``threshold``."""
        return (self.others_expected() + self.level(threshold)) / self.months

    def per_month_upper(self, threshold: float) -> float:
        """Its 95% upper bound: the other tests' bound plus the level test's."""
        return (self.others_upper() + self.level_upper(threshold)) / self.months

    def lowest_threshold(self, budget: float, grid: FloatArray, per_series: int = 200) -> float:
        """The lowest threshold of ``grid`` at which the other tests' alerts and the level
        test's 95% upper bound are within ``budget`` a month per ``per_series`` series
        (``inf`` if none is). With their tail the other tests enter by their 95% upper
        bound as well; without it, as counted (their Poisson bound, 3 alerts for none
        seen, would take the whole budget of a few hundred series)."""
        scale = per_series / self.series / self.months
        others = float(self.others) if self.others_fit is None else self.others_upper()
        for h in np.sort(grid):
            if h >= self.base and (others + self.level_upper(float(h))) * scale <= budget:
                return float(h)
        return float("inf")
