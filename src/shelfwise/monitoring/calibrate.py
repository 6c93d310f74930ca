"""How often the alerts would have fired: replay past weeks at the configured thresholds.

``calibrate`` replays every hour of the last ``weeks`` weeks as the evaluator
would have seen it (the baseline refitted daily on the reference that ends
one onset look-back before, as ``evaluate_alerts`` fits it), and reports:

- the alerts that would have opened (one per episode: an alert resolves only
  after ``resolve_after_hours`` quiet hours, as ``evaluate_alerts`` keeps it), scaled
  to a 30-day month, with a 95% upper bound (Poisson). If those weeks were
  healthy, this is the false-alert rate a merchant should expect; an alert in
  the replay is either a real incident or a false alarm, and the list says
  which series to look at;
- the spread of the standardised shortfalls ``z`` of every window the
  relative test saw (against the shop's shift, the one that finds a single
  series' loss), per window length and stage. A detector whose null distribution fits
  the shop's traffic has a spread near 1; above 1 it alerts more often than
  its false-discovery rate says, below 1 it is slower than it could be.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from shelfwise.monitoring.detector import (
    STAGES,
    DetectorConfig,
    LevelTest,
    SequentialTest,
    StageDeficits,
    WindowTest,
    baselines,
    combine,
    stage_deficits,
)
from shelfwise.monitoring.series import FloatArray, HourlySeries
from shelfwise.monitoring.tail import TailFit, episode_peaks

HOURS_PER_MONTH = 30 * 24
REFIT_EVERY = 24
MIN_EXPECTED = 30.0  # windows expecting fewer counts are tested by their Poisson tail


@dataclass(frozen=True)
class Spread:
    window_hours: int
    stage: str
    windows: int
    z_sd: float
    z_mean: float


@dataclass(frozen=True)
class Calibration:
    hours: int
    series: int
    fdr: float
    opened: int
    per_month: float
    per_month_upper: float
    alerts_by_series: dict[tuple[str, str], int]
    spreads: list[Spread]
    # The level test's upper tail (:mod:`.tail`): the expected alerts a month as a
    # smooth function of its threshold; None when the level test is off.
    tail: TailFit | None = None

    @property
    def per_month_expected(self) -> float | None:
        """Expected alerts a month at the configured level threshold, from the tail."""
        return None if self.tail is None else self.tail.per_month(self.level_threshold)

    @property
    def per_month_expected_upper(self) -> float | None:
        return None if self.tail is None else self.tail.per_month_upper(self.level_threshold)

    level_threshold: float = 0.0

    @property
    def weeks(self) -> float:
        return self.hours / (7 * 24)


@dataclass(frozen=True)
class Recording:
    """The window tests of every replayed hour: thresholds can be applied afterwards."""

    keys: list[tuple[str, str]]
    start: int  # column of the first replayed hour's end - 1
    fast: list[WindowTest]
    slow: list[WindowTest]
    sequential: list[SequentialTest]
    level: list[LevelTest] | None = None  # recorded when the config's level test is on

    @property
    def hours(self) -> int:
        return len(self.fast)

    def firing(self, cfg: DetectorConfig) -> list[set[int]]:
        """The series with a finding at each replayed hour under ``cfg``'s thresholds."""
        levels = self.level if self.level is not None else [None] * len(self.fast)
        return [
            {
                f.series
                for f in combine(
                    fast.findings(self.keys, cfg.page_burn, "page", cfg),
                    slow.findings(self.keys, cfg.ticket_burn, "ticket", cfg),
                    seq.findings(self.keys, cfg)
                    + (level.findings(self.keys, cfg) if level is not None else []),
                )
            }
            for fast, slow, seq, level in zip(
                self.fast, self.slow, self.sequential, levels, strict=True
            )
        ]

    def others_excess(self, cfg: DetectorConfig) -> FloatArray:
        """(hours, series): how far past its threshold the strongest of the other tests is,
        in log units (:mod:`.tail`); a series fires by them at an hour where it is >= 0
        (the sequential test: > 0), and with every threshold moved by ``Δ`` where it
        is >= ``Δ``. ``-inf`` where none loses money at its burn rate."""
        log_fdr = float(np.log(cfg.fdr))
        fast = [window_score(t, cfg.page_burn, cfg) + log_fdr for t in self.fast]
        slow = [window_score(t, cfg.ticket_burn, cfg) + log_fdr for t in self.slow]
        if cfg.sequential_threshold > 0:
            seq = [sequential_score(t, cfg) - cfg.sequential_threshold for t in self.sequential]
        else:
            seq = [np.full(len(self.keys), -np.inf)] * self.hours
        out: FloatArray = np.maximum(np.maximum(np.stack(fast), np.stack(slow)), np.stack(seq))
        return out

    def tail(self, cfg: DetectorConfig, *, fit_others: bool = False) -> TailFit:
        """The level test's episode peaks over ``cfg.level_tail_base`` (its statistic
        where the loss burns the budget, at hours the other tests do not fire) and the
        alerts the other tests opened (:mod:`.tail`); with ``fit_others``, their tail
        too: the episode peaks of :meth:`others_excess` over ``cfg.others_tail_base``."""
        if self.level is None:
            raise ValueError("the level test's statistics were not recorded")
        others = self.firing(replace(cfg, level_threshold=0.0))
        stat = np.stack([lv.alarmable(cfg) for lv in self.level])
        for i, now in enumerate(others):
            stat[i, sorted(now)] = 0.0
        others_fit = None
        if fit_others:
            base = cfg.others_tail_base
            others_fit = TailFit(
                base=base,
                peaks=episode_peaks(self.others_excess(cfg), base, cfg.resolve_after_hours),
                series=len(self.keys),
                hours=self.hours,
                others=0,
            )
        return TailFit(
            base=cfg.level_tail_base,
            peaks=episode_peaks(stat, cfg.level_tail_base, cfg.resolve_after_hours),
            series=len(self.keys),
            hours=self.hours,
            others=len(opened(others, cfg.resolve_after_hours)),
            others_fit=others_fit,
        )

    def spreads(self) -> list[Spread]:
        out = []
        for tests in (self.fast, self.slow):
            for k, stage in enumerate(STAGES):
                z = np.concatenate(
                    [t.relative.z[t.relative.expected[:, k] >= MIN_EXPECTED, k] for t in tests]
                )
                out.append(
                    Spread(
                        window_hours=tests[0].hours,
                        stage=stage,
                        windows=int(z.size),
                        z_sd=float(z.std()) if z.size > 1 else float("nan"),
                        z_mean=float(z.mean()) if z.size else float("nan"),
                    )
                )
        return out


def _burning(score: FloatArray, per_hour: FloatArray, need: float) -> FloatArray:
    """Per series, the largest ``t`` at which the stages scoring ``t`` or more lose
    ``need`` money an hour or more between them (stages losing none add nothing):
    the series fires at a threshold exactly when its value reaches it. ``-inf`` if
    all of them together do not lose ``need``."""
    order = np.argsort(-score, axis=1)
    ranked = np.take_along_axis(score, order, 1)
    lost = np.cumsum(np.maximum(np.take_along_axis(per_hour, order, 1), 0.0), axis=1)
    burns = lost >= need
    first = np.argmax(burns, axis=1)
    out: FloatArray = np.where(
        burns.any(1), np.take_along_axis(ranked, first[:, None], 1)[:, 0], -np.inf
    )
    return out


def window_score(test: WindowTest, burn: float, cfg: DetectorConfig) -> FloatArray:
    """Per series, ``-log`` of the false-discovery rate at which a window test starts to
    fire it (at ``burn``): its significant stages are those whose Benjamini-Hochberg
    adjusted p-value is within the rate."""
    p = test.p.ravel()
    m = p.size
    order = np.argsort(p)
    adjusted = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(adjusted, 1.0)
    score = -np.log(np.maximum(q.reshape(test.p.shape), 1e-300))
    return _burning(score, test.deficits.money / test.hours, burn * cfg.budget_per_hour)


def sequential_score(test: SequentialTest, cfg: DetectorConfig) -> FloatArray:
    """Per series, the sequential threshold below which the test fires it (ticket burn)."""
    acc = test.accumulated
    per_hour = np.where(acc.money > 0, acc.money / np.maximum(acc.hours, 1.0), 0.0)
    return _burning(acc.statistic, per_hour, cfg.ticket_burn * cfg.budget_per_hour)


def record(
    series: HourlySeries, reference_hours: int, cfg: DetectorConfig, start: int, end: int
) -> Recording:
    """Replay hours ``(start, end]`` (baseline refitted daily) and keep every window test.

    The sequential test at hour ``t`` accumulates the relative fast windows ending
    at ``t``, ``t - w``, ... each as tested when it ended (the evaluator, which
    keeps no state, recomputes them with its current baseline: they differ only
    where a daily refit falls inside the run); windows that ended before the
    replay are tested with its first baseline.
    """
    if start < reference_hours + cfg.onset_lookback_hours:
        raise ValueError("the series is too short for this replay")
    w = cfg.fast_window_hours
    fast, slow, seq, level = [], [], [], []
    relative: dict[int, StageDeficits] = {}
    for t, base in baselines(series, reference_hours, cfg, start, end, refit_every=REFIT_EVERY):
        if not relative:
            for e in range(t - 1 - w * (cfg.sequential_windows - 1), t):
                if e >= w:
                    relative[e] = stage_deficits(base, series.window(e - w, e), w, relative=True)
        test = WindowTest.at(base, series, t, w)
        relative[t] = test.relative
        fast.append(test)
        slow.append(WindowTest.at(base, series, t, cfg.slow_window_hours))
        ends = range(t - w * (cfg.sequential_windows - 1), t + 1, w)
        seq.append(SequentialTest.of([relative[e] for e in ends if e in relative], w, cfg))
        level.append(LevelTest.at(base, series, t, cfg))
    return Recording(
        series.keys, start, fast, slow, seq, level if cfg.level_threshold > 0 else None
    )


def opened(firing: list[set[int]], quiet_hours: int = 1) -> list[tuple[int, int]]:
    """(hour index, series) of each alert that opens: one per episode.

    An alert stays open until its series has not fired for ``quiet_hours``
    consecutive hours (``DetectorConfig.resolve_after_hours``); a series firing
    again before that continues the same alert. With ``quiet_hours`` 1 every
    hour without a finding resolves it, so a loss that flickers opens again.
    """
    if quiet_hours < 1:
        raise ValueError("quiet_hours must be at least 1")
    out: list[tuple[int, int]] = []
    last: dict[int, int] = {}  # series -> hour index it last fired
    for i, now in enumerate(firing):
        out.extend((i, s) for s in sorted(now) if s not in last or i - last[s] > quiet_hours)
        last.update(dict.fromkeys(now, i))
    return out


def history_hours(weeks: int, reference_days: int, cfg: DetectorConfig) -> int:
    """Hours of series that a replay of ``weeks`` needs."""
    return weeks * 7 * 24 + reference_days * 24 + cfg.onset_lookback_hours


def summarise(rec: Recording, cfg: DetectorConfig) -> Calibration:
    """Alerts that would have opened under ``cfg``'s thresholds, per month with a bound."""
    events = opened(rec.firing(cfg), cfg.resolve_after_hours)
    by_series: dict[tuple[str, str], int] = {}
    for _, s in events:
        by_series[rec.keys[s]] = by_series.get(rec.keys[s], 0) + 1
    n = len(events)
    months = rec.hours / HOURS_PER_MONTH
    # The exact 95% Poisson upper bound of n events: chi2.ppf(0.95, 2(n + 1)) / 2, written
    # with scipy.special (scipy.stats costs half a second at import in every worker).
    upper = float(special.gammaincinv(n + 1, 0.95))
    return Calibration(
        hours=rec.hours,
        series=len(rec.keys),
        fdr=cfg.fdr,
        opened=n,
        per_month=n / months,
        per_month_upper=upper / months,
        alerts_by_series=by_series,
        spreads=rec.spreads(),
        # A threshold below the tail's base is fitted from the threshold up.
        tail=rec.tail(
            replace(cfg, level_tail_base=min(cfg.level_tail_base, cfg.level_threshold)),
            fit_others=True,
        )
        if rec.level is not None
        else None,
        level_threshold=cfg.level_threshold,
    )


def calibrate(
    series: HourlySeries, reference_hours: int, cfg: DetectorConfig, hours: int
) -> Calibration:
    """Replay the last ``hours`` of ``series`` (which must hold the reference and
    look-back before them) and count the alerts that would have opened."""
    rec = record(series, reference_hours, cfg, series.hours - hours, series.hours)
    return summarise(rec, cfg)
