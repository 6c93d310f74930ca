"""What the peer protocols (session next-item, basket completion) report, and how.

Every model is scored on the same units (sessions or baskets): per unit, the
sum of each metric over its predictions and the number of predictions. One
set of bootstrap draws over units serves every model (``intervals``): a
model's mean is the resampled sum over the resampled count, and the served
model's ratio to the best peer (the peer with the best point estimate on that
metric) is the percentile interval of the per-draw ratio of the two means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.candidates.config import SourcesConfig
from shelfwise.catalog.model import Product
from shelfwise.errors import InvalidInput
from shelfwise.evaluation.backtest import ratio_interval
from shelfwise.evaluation.intervals import LEVEL, FloatArray, Interval, interval, resampled_means
from shelfwise.ranking.objective import RankingSettings


@dataclass
class Scored:
    """One model on the test units: per-unit metric sums, and how it was chosen."""

    name: str
    sums: dict[str, FloatArray]  # metric -> per unit
    chosen: dict[str, Any] = field(default_factory=dict)
    validation: float | None = None  # the selection metric on the validation window
    served: bool = False
    own: bool = False  # shown for reference (another path, or a peer told more): not a peer


@dataclass
class ProtocolResult:
    protocol: str
    k: int
    metrics: tuple[str, ...]
    units: str  # "sessions" or "baskets"
    windows: dict[str, str]
    counts: dict[str, int]
    served_label: str
    selection: str
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    ratios: dict[str, dict[str, Any]] = field(default_factory=dict)
    references: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> name -> ratio
    # product placement -> its served test slates' coherence (monitoring.coherence)
    coherence: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    resamples: int = 0
    seed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Spec:
    """How a protocol runs: its test window (``window_days`` from ``cutoff``, default the
    last full days of the data), the validation window before it, the cut-off ``k`` of
    the lists, shelfwise's sources' config and catalog, the bootstrap."""

    cutoff: datetime | None = None
    window_days: int = 14
    validation_days: int | None = None
    k: int | None = None
    config: SourcesConfig = field(default_factory=SourcesConfig)
    products: Sequence[Product | None] = ()
    resamples: int = 1000
    seed: int = 0
    step: Callable[[str], None] | None = None
    ranking: RankingSettings = field(default_factory=RankingSettings)  # a learned rank stage's

    def say(self, what: str) -> None:
        if self.step is not None:
            self.step(what)

    def windows(self, times: FloatArray) -> tuple[float, float, float]:
        """(validation start, test start, test end) in epoch seconds, ``times`` the
        protocol's events (their last one places the default cutoff)."""
        cutoff = self.cutoff or default_cutoff(times, self.window_days)
        test = cutoff.timestamp()
        days = self.validation_days or self.window_days
        return test - days * DAY, test, test + self.window_days * DAY


def span(start: float, end: float) -> str:
    """A window as its first and last UTC day."""
    a = datetime.fromtimestamp(start, UTC).date()
    b = datetime.fromtimestamp(end - 1, UTC).date()
    return f"{a}..{b}"


def windows(val_start: float, test_start: float, test_end: float) -> dict[str, str]:
    return {"validation": span(val_start, test_start), "test": span(test_start, test_end)}


def default_cutoff(times: FloatArray, window_days: int) -> datetime:
    """The start of the last ``window_days`` full UTC days up to the last of ``times``."""
    last = datetime.fromtimestamp(float(times.max()), UTC)
    day = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return day - timedelta(days=window_days)


DAY = 86400.0


def require(n: int, what: str, window: str) -> None:
    """Refuse an evaluation window with nothing to evaluate in it."""
    if n == 0:
        raise InvalidInput(
            f"no {what} in the window {window}: choose another --cutoff or --window-days",
            code="empty_window",
        )


def summarise(
    result: ProtocolResult,
    scored: Sequence[Scored],
    counts: FloatArray,
    resamples: int,
    seed: int,
) -> ProtocolResult:
    """Fill ``result`` with every model's means and intervals and the served model's
    ratio to the best peer on each metric."""
    result.resamples, result.seed = resamples, seed
    served = next(s for s in scored if s.served)
    peers = [s for s in scored if not s.served and not s.own]
    total = float(counts.sum())
    for metric in result.metrics:
        series = [s.sums[metric] for s in scored]
        draws = resampled_means([*series, counts], max(resamples, 1), seed)
        means = draws[:, :-1] / np.maximum(draws[:, -1:], 1e-12)
        points = [float(s.sum()) / max(total, 1e-12) for s in series]
        for j, s in enumerate(scored):
            cell = (
                interval(points[j], means[:, j])
                if resamples
                else Interval(points[j], *2 * [points[j]])
            )
            entry = result.models.setdefault(
                s.name,
                {
                    "served": s.served,
                    "own": s.own,
                    "chosen": s.chosen,
                    "validation": s.validation,
                },
            )
            entry[metric] = cell.as_dict()
        i_served = scored.index(served)
        best = max(peers, key=lambda p: points[scored.index(p)])
        j = scored.index(best)
        point = points[i_served] / points[j] if points[j] > 0 else float("nan")
        result.ratios[metric] = {
            "best_peer": best.name,
            "ratio": ratio_interval(point, means[:, i_served], means[:, j]).as_dict(),
        }
        for ref in (s for s in scored if s.own):
            j = scored.index(ref)
            point = points[i_served] / points[j] if points[j] > 0 else float("nan")
            ratio = ratio_interval(point, means[:, i_served], means[:, j]).as_dict()
            result.references.setdefault(metric, {})[ref.name] = ratio
    return result


def cell(d: Mapping[str, float]) -> str:
    return f"{d['mean']:.4f} [{d['low']:.4f}, {d['high']:.4f}]"


def markdown(result: ProtocolResult) -> str:
    """The result as a markdown report: the table, the ratios, how it was chosen."""
    names = [f"{m.upper().replace('_', ' ')}@{result.k}" for m in result.metrics]
    lines = [
        f"# {result.protocol}: shelfwise against its peers",
        "",
        f"Test window {result.windows['test']}; every choice made on the validation "
        f"window {result.windows['validation']} (by {result.selection}). "
        + ", ".join(f"{k}: {v:,}" for k, v in result.counts.items())
        + ".",
        "",
        "| model | " + " | ".join(names) + " | chosen on validation |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for name, m in result.models.items():
        label = f"**{name}**" if m["served"] else name
        label += " (reference, not a peer)" if m.get("own") else ""
        chosen = ", ".join(f"{k}={v}" for k, v in m["chosen"].items()) or "-"
        lines.append(
            f"| {label} | " + " | ".join(cell(m[x]) for x in result.metrics) + f" | {chosen} |"
        )
    lines += [
        "",
        f"Served / best peer ({LEVEL:.0%} bootstrap over {result.units}, "
        f"{result.resamples} resamples, seed {result.seed}):",
        "",
    ]
    for metric, r in result.ratios.items():
        ratio = r["ratio"]
        lines.append(
            f"- {metric.upper().replace('_', ' ')}@{result.k}: x{ratio['mean']:.3f} "
            f"[{ratio['low']:.3f}, {ratio['high']:.3f}] against {r['best_peer']}"
        )
    for metric, refs in result.references.items():
        for name, ratio in refs.items():
            lines.append(
                f"- {metric.upper().replace('_', ' ')}@{result.k}: x{ratio['mean']:.3f} "
                f"[{ratio['low']:.3f}, {ratio['high']:.3f}] against {name} (a reference)"
            )
    lines += ["", f"Served path: {result.served_label}.", ""]
    lines += [f"- {n}" for n in result.notes]
    for placement, c in result.coherence.items():
        lines += [
            "",
            f"Coherence of `{placement}`'s test slates (against the viewed product"
            + (f"; session decay {c['session_decay']}" if "session_decay" in c else "")
            + "):",
            "",
        ]
        lines += [f"- {line}" for line in coherence_lines(c)]
    return "\n".join(lines) + "\n"


def coherence_lines(c: Mapping[str, Any]) -> list[str]:
    """A slate coherence's dict (``Coherence.as_dict``) as a merchant reads it."""
    ratio = c["median_price_ratio"]
    return [
        f"{c['slates']:,} slates ({c['empty_slates']:,} empty), {c['items_shown']:,} items shown",
        f"same category as the viewed product: {c['same_category']:.1%}",
        "median price ratio to the viewed product: "
        + ("n/a (no prices)" if ratio is None else f"{ratio:.2f}x"),
        f"the item in most slates: {c['top_item']} in {c['top_item_share']:.1%} of them",
        f"catalog coverage: {c['coverage']:.1%}",
    ]


def write(result: ProtocolResult, out: Path) -> dict[str, Path]:
    import json

    out.mkdir(parents=True, exist_ok=True)
    stem = result.protocol
    md, js = out / f"{stem}.md", out / f"{stem}.json"
    md.write_text(markdown(result))
    js.write_text(json.dumps(result.as_dict(), indent=2, default=str))
    return {"markdown": md, "json": js}


__all__ = [
    "ProtocolResult",
    "Scored",
    "coherence_lines",
    "default_cutoff",
    "markdown",
    "require",
    "summarise",
    "write",
]
