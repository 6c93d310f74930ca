"""The promotion guard: is a new bundle no worse than the promoted one, judged on enough people?

Both are measured on the same, latest validation window: the last
``guard_days`` of the training window are held out, and each bundle is the
served pipeline refitted on the events before them (``evaluation.served``:
the placement's candidates, the merchant's rules in force, the rank stage -
for a bundle trained with the learned ranker, its designs and the blend
ranker chosen among on the validation window before the guard window, as the
bundle's own choice is made, else the blend ranker - the arrangement). NDCG@10 / recall@20 of its slates are scored on the people
who bought on both sides. The promoted bundle is refitted only when it
differs from the new one (its source config, or whether it ranks with a
learned ranker): the same pipeline on the same data gives the same numbers.

A comparison on fewer than ``min_people`` people is noise: the new bundle is
written but not promoted, and the refusal names the count and the minimum
(``--force`` overrides). The first bundle has nothing to be compared with and
is promoted whatever the count; its table still says how many people judged it.
A guard window that holds nobody (``guard_days`` 0, or a window that starts at
or before the first event) judges 0 people, and says why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pydantic import ValidationError

from shelfwise.candidates.config import SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import Artifacts
from shelfwise.candidates.neighbours import NeighbourTable
from shelfwise.catalog.model import Product
from shelfwise.errors import InvalidInput
from shelfwise.evaluation.metrics import per_person
from shelfwise.evaluation.run import lists_for
from shelfwise.evaluation.served import ServedModel
from shelfwise.evaluation.split import Target, time_split
from shelfwise.ranking.history import IntArray
from shelfwise.ranking.impressions import Impression
from shelfwise.ranking.objective import RankingSettings
from shelfwise.ranking.training import RANKER_CHOICES, RankerTrainingConfig, WindowMemo
from shelfwise.ranking.workers import forked_map
from shelfwise.rules.model import Rule
from shelfwise.serving.placements import Placement

GUARD = "ndcg@10"  # the metric that decides
REPORTED = (GUARD, "recall@20")
DAY = 86400.0
PARTS = 8  # the guard's people in this many parts, shared by the worker processes


@dataclass(frozen=True)
class Served:
    """The served pipeline's parts besides the source config: the placement judged
    (default: the shipped ``home``), the rules in force, the ranking settings, and
    the learned ranker's designs, chosen among with the blend ranker on the
    validation window before the guard window as the bundle's are
    (``ranking.training.chosen_rankers``; empty: the blend ranker ranks)."""

    placement: Placement | None = None
    rules: Sequence[Rule] = ()
    rulebook_version: int = 0
    ranking: RankingSettings = field(default_factory=RankingSettings)
    choices: tuple[RankerTrainingConfig, ...] = ()
    # The logged slates with their responses before a time (epoch seconds): what the
    # learned ranker learns from besides the history, as the bundle's does.
    impressions: Callable[[float], Sequence[Impression]] | None = None

    @property
    def ranked(self) -> bool:
        """Whether the learned ranker is an option (a bundle trained with ``--ranker``)."""
        return bool(self.choices)


@dataclass(frozen=True)
class Measured:
    """One bundle's guard metrics on the guard window, or why nobody was judged."""

    metrics: dict[str, float]
    people: int
    note: str | None = None


def measure(
    log: InteractionLog,
    products: Sequence[Product | None],
    config: SourcesConfig,
    days: float,
    content: NeighbourTable | None = None,
    served: Served | None = None,
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None,
    windows: WindowMemo | None = None,
    jobs: int = 1,
) -> Measured:
    """NDCG@10 / recall@20 of the served pipeline on the window's last ``days``.

    The window starts ``days`` before the bundle's "now" (just after the last
    event), so that with ``days`` equal to the ranker's horizon the guard's ranker
    windows are the bundle's, one window earlier: ``fit_sources`` (a memo of
    source fits on prefixes of ``log`` with ``config``,
    ``candidates.model.SourceFits``) and ``windows`` (a memo of training windows,
    ``ranking.training.WindowMemo``) hand them to the bundle's ranker training;
    ``jobs``: the worker processes its learned ranker trains in (``ranking.workers``)."""
    served = served or Served()
    if days <= 0:
        return Measured({}, 0, "guard_days is 0: no window is held out")
    if len(log) == 0:
        return Measured({}, 0, "no events")
    cutoff = int(log.end) + 1 - days * DAY
    if cutoff <= float(log.at.min()):
        return Measured(
            {},
            0,
            f"the guard window (the last {days:g} days) starts at or before the first "
            "event: there is nothing before it to refit on",
        )
    split = time_split(log, cutoff, log.end + 1)
    targets = split.targets["all"]
    if not targets:
        return Measured({}, 0, "nobody bought on both sides of the guard window")
    model = ServedModel(
        config,
        products,
        rules=served.rules,
        rulebook_version=served.rulebook_version,
        choices=served.choices,
        ranking=served.ranking,
        content=content,
        cutoff=cutoff,
        fit_sources=fit_sources,
        impressions=served.impressions(cutoff) if served.ranked and served.impressions else (),
        windows=windows,
        jobs=jobs,
    )
    if served.placement is not None:
        model.placement = served.placement
    try:
        model.fit(split.train)
    except InvalidInput as e:
        if e.code != "ranker_no_data":
            raise
        return Measured(
            {}, 0, "not enough history before the guard window to train the learned ranker"
        )
    lists = served_lists(model, targets, 20, jobs)
    n = len(targets)
    ndcg = float(per_person(lists, targets, 10)["ndcg"].sum()) / n
    recall = float(per_person(lists, targets, 20)["recall"].sum()) / n
    return Measured({GUARD: ndcg, "recall@20": recall}, n)


def served_lists(
    model: ServedModel, targets: Sequence[Target], k: int, jobs: int
) -> list[IntArray]:
    """Each target's slate of ``k`` from the served pipeline, in order: the people in
    :data:`PARTS` parts, in up to ``jobs`` worker processes (``ranking.workers``: the
    same slates for any number)."""
    n, count = len(targets), min(PARTS, len(targets))
    parts = [targets[n * i // count : n * (i + 1) // count] for i in range(count)]
    got = forked_map(lambda part: lists_for(model, part, "all", k), parts, jobs)
    return [slate for part in got for slate in part]


def has_ranker(metrics: dict[str, float]) -> bool:
    """Whether a bundle's stored metrics say it was trained with the learned ranker."""
    return any(k.startswith("ranker_") for k in metrics)


class PromotedInfo(Protocol):
    """What the guard reads of the promoted bundle's ``BundleInfo``."""

    @property
    def config_hash(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def metrics(self) -> dict[str, float]: ...


def measure_promoted(
    info: PromotedInfo | None,
    candidate: Measured,
    log: InteractionLog,
    products: Sequence[Product | None],
    config: SourcesConfig,
    days: float,
    content: NeighbourTable | None = None,
    served: Served | None = None,
    jobs: int = 1,
) -> Measured | None:
    """The promoted bundle's served pipeline on the candidate's guard window: the
    candidate's own numbers when it is the same (config, and a learned ranker or
    not), the promoted bundle's stored numbers when its config no longer loads
    (``None``: nothing is promoted)."""
    if info is None:
        return None
    served = served or Served()
    ranked = has_ranker(info.metrics)
    if info.config_hash == config.config_hash() and ranked == served.ranked:
        return candidate
    try:
        promoted = SourcesConfig.model_validate(info.config)
    except ValidationError:
        people = int(info.metrics.get("guard_people", 0))
        return Measured(dict(info.metrics), people, "the promoted config no longer loads")
    same_content = promoted.content == config.content
    choices = (served.choices or RANKER_CHOICES) if ranked else ()
    return measure(
        log,
        products,
        promoted,
        days,
        content if same_content else None,
        replace(served, choices=choices),
        jobs=jobs,
    )


@dataclass(frozen=True)
class GuardRow:
    metric: str
    current: float | None
    candidate: float | None
    delta: float | None
    verdict: str


@dataclass(frozen=True)
class GuardReport:
    """The guard's comparison, its verdict, and the sentence that explains it."""

    people: int
    min_people: int
    tolerance: float
    current_version: str | None
    passed: bool
    reason: str
    rows: tuple[GuardRow, ...] = field(default=())

    def metrics(self) -> dict[str, float]:
        """The comparison as flat numbers, for the bundle's ``metrics``."""
        out = {
            "guard_people": float(self.people),
            "guard_min_people": float(self.min_people),
            "guard_passed": float(self.passed),
        }
        for row in self.rows:
            if row.metric not in REPORTED:
                continue
            for prefix, value in (("", row.candidate), ("current_", row.current)):
                if value is not None:
                    out[f"{prefix}{row.metric}"] = value
            if row.delta is not None:
                out[f"delta_{row.metric}"] = row.delta
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "people": self.people,
            "min_people": self.min_people,
            "tolerance": self.tolerance,
            "current_version": self.current_version,
            "passed": self.passed,
            "reason": self.reason,
            "rows": [row.__dict__ for row in self.rows],
        }


def judge(
    candidate: Measured,
    current: Measured | None,
    current_version: str | None,
    *,
    tolerance: float,
    min_people: int,
) -> GuardReport:
    """Compare the new bundle with the promoted one (``current``, on the same window)."""
    n = candidate.people
    enough = n >= min_people
    note = f" ({candidate.note})" if candidate.note else ""
    people_verdict = "enough" if enough else f"below the minimum of {min_people}"
    rows = [GuardRow("people", None if current is None else n, n, None, people_verdict)]
    bar: float | None = None
    for name in REPORTED:
        new = candidate.metrics.get(name)
        old = current.metrics.get(name) if current is not None else None
        delta = new - old if new is not None and old is not None else None
        if name != GUARD:
            verdict = "reported, not guarded"
        elif new is None or old is None:
            verdict = "nothing to compare"
        else:
            bar = old * (1 - tolerance)
            verdict = "no worse" if new + 1e-12 >= bar else f"worse than {bar:.4f}"
        rows.append(GuardRow(name, old, new, delta, verdict))

    def report(passed: bool, reason: str) -> GuardReport:
        return GuardReport(n, min_people, tolerance, current_version, passed, reason, tuple(rows))

    if current_version is None:
        return report(True, f"first bundle, judged on {n} people{note}")
    if not enough:
        return report(
            False,
            f"the guard judged {n} people, below the minimum of {min_people}{note} "
            "(use --force, or lower --min-people)",
        )
    new, old = candidate.metrics.get(GUARD), current.metrics.get(GUARD) if current else None
    if new is None or old is None or bar is None:
        return report(True, f"no guard metric to compare{note}")
    if new + 1e-12 >= bar:
        return report(True, f"{GUARD} {new:.4f} >= {bar:.4f} on {n} people")
    return report(False, f"{GUARD} {new:.4f} < {bar:.4f} (current) on {n} people (use --force)")


def decide(report: GuardReport, *, force: bool, promote: bool) -> tuple[bool, str]:
    """Whether to promote, and the sentence the CLI prints."""
    if not promote:
        return False, "promotion not asked for"
    if report.passed:
        return True, report.reason
    if force:
        return True, f"forced over the guard: {report.reason}"
    return False, report.reason
