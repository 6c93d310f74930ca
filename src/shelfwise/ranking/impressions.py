"""Training groups from logged impressions: what a slate really showed, and what came of it.

A served slate leaves two records: the ``rec_impression`` event (what the
shopper's client showed: one interaction row per shown product, with its
position) and the decision log (what the server chose, with each slot's
exploration propensity). Responses carry the slate's ``rec_id``: a
``rec_click`` or a ``product_view`` from the slate (grade 1), an
``add_to_cart`` (2) and a purchase line (3). Each impression becomes one
training group: its rows are the shown products, labelled with their best
attributed response, weighted by 1 / propensity (exploited slots have
propensity 1; an explored slot drawn with chance p stands for 1/p such
draws), so what exploration showed is neither over- nor under-counted.

Unlike the history groups (``ranking.dataset``), which guess what *could*
have been shown, these say what *was* shown and what the shopper did about
it: the negatives are real.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Float, cast, func, select

from shelfwise.candidates.base import RecContext
from shelfwise.candidates.log import Resolve, identity
from shelfwise.contracts.ingest import gc_paused
from shelfwise.ranking.candidates import CandidateSet
from shelfwise.ranking.dataset import Propose, TrainingSet, drawn, session_at
from shelfwise.ranking.features import FeatureSpec, build_features
from shelfwise.ranking.history import FloatArray, HistoryLog, IntArray
from shelfwise.ranking.items import ItemTable
from shelfwise.ranking.state import RankingState
from shelfwise.store.engine import Database
from shelfwise.store.tables import decisions, interactions

# The grade a response carrying a rec_id gives the product it names.
RESPONSE_GRADE: dict[str, int] = {
    "rec_click": 1,
    "product_view": 1,
    "add_to_cart": 2,
    "purchase": 3,
}
_UNIX_JULIAN_DAY = 2440587.5


@dataclass(frozen=True)
class Impression:
    """One shown slate with its outcome, in dense item indices (unknown products dropped)."""

    rec_id: str
    person: str
    at: int  # epoch seconds of the impression
    placement: str
    items: IntArray  # shown products, in position order
    labels: IntArray  # best attributed response per shown product (0 = none)
    propensity: FloatArray  # logged chance of being shown there; 1.0 = exploited
    # every graded response read: (position in ``items``, grade, epoch seconds)
    responses: tuple[tuple[int, int, float], ...] = ()

    @property
    def weights(self) -> FloatArray:
        """Inverse-propensity weight of each row."""
        return np.asarray(1.0 / np.clip(self.propensity, 1e-3, 1.0), dtype=np.float64)

    def labels_before(self, end: float) -> IntArray:
        """``labels`` from the responses before ``end`` only: a window's slates are
        labelled by what came of them within the window, as its history requests are,
        whenever their responses were read (``labels`` itself when no response is
        listed)."""
        if not self.responses:
            return self.labels
        out = np.zeros(len(self.items), dtype=np.int64)
        for position, grade, at in self.responses:
            if at < end and grade > out[position]:
                out[position] = grade
        return out

    def as_of(self, end: float) -> Impression:
        """The impression as read up to ``end`` (its responses before then only)."""
        if all(at < end for _, _, at in self.responses):
            return self
        responses = tuple(r for r in self.responses if r[2] < end)
        return replace(self, labels=self.labels_before(end), responses=responses)


def impressions_before(impressions: Sequence[Impression], end: float) -> list[Impression]:
    """The impressions shown before ``end`` as :func:`read_impressions` reads them up to
    ``end``: one read serves a training and the guard's, a window earlier. ``end`` on a
    whole second, as an impression's ``at`` is (the guard's cutoff is); a slate whose
    own rows were logged on both sides of ``end`` keeps its later rows here."""
    return [imp.as_of(end) for imp in impressions if imp.at < end]


@dataclass(frozen=True)
class LoggedRow:
    """One interaction row that carries a rec_id (as the store holds it)."""

    rec_id: str
    type: str
    person: str
    product_id: str
    at: float  # epoch seconds
    position: int | None = None
    placement: str | None = None


def impressions_of(
    rows: Iterable[LoggedRow],
    items: Sequence[str],
    propensities: Mapping[str, Mapping[str, float]] | None = None,
) -> list[Impression]:
    """Group rows by rec_id into impressions with graded labels, oldest first.

    ``propensities`` is rec_id -> {product_id: propensity} from the decision
    log; a product the log does not know (or a slate it did not keep) counts
    as exploited. Responses for products that were not shown, or whose
    rec_id has no impression, are ignored: they say nothing about a slate.
    """
    index = {p: i for i, p in enumerate(items)}
    shown: dict[str, list[LoggedRow]] = {}
    best: dict[tuple[str, str], int] = {}
    answers: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in rows:
        if r.type == "rec_impression":
            shown.setdefault(r.rec_id, []).append(r)
            continue
        grade = RESPONSE_GRADE.get(r.type, 0)
        key = (r.rec_id, r.product_id)
        if grade > 0:
            answers.setdefault(key, []).append((grade, r.at))
        if grade > best.get(key, 0):
            best[key] = grade
    propensities = propensities or {}
    out: list[Impression] = []
    for rec_id, slate in shown.items():
        slate = sorted(slate, key=lambda r: (r.position or 0, r.product_id))
        seen: set[str] = set()
        kept = []
        for r in slate:
            if r.product_id in index and r.product_id not in seen:
                seen.add(r.product_id)
                kept.append(r)
        if not kept:
            continue
        logged = propensities.get(rec_id, {})
        responses = tuple(
            (position, grade, at)
            for position, r in enumerate(kept)
            for grade, at in sorted(answers.get((rec_id, r.product_id), ()), key=lambda a: a[1])
        )
        out.append(
            Impression(
                rec_id=rec_id,
                person=kept[0].person,
                at=int(min(r.at for r in kept)),
                placement=kept[0].placement or "",
                items=np.array([index[r.product_id] for r in kept], dtype=np.int64),
                labels=np.array([best.get((rec_id, r.product_id), 0) for r in kept], np.int64),
                propensity=np.array(
                    [float(logged.get(r.product_id) or 1.0) for r in kept], dtype=np.float64
                ),
                responses=responses,
            )
        )
    out.sort(key=lambda imp: (imp.at, imp.rec_id))
    return out


def _epoch(db: Database) -> Any:
    col = interactions.c.occurred_at
    if db.backend == "sqlite":
        return (func.julianday(col) - _UNIX_JULIAN_DAY) * 86400.0
    return cast(func.extract("epoch", col), Float)


def read_propensities(db: Database, rec_ids: Iterable[str]) -> dict[str, dict[str, float]]:
    """rec_id -> {product_id: propensity} from the decision log (slates it kept)."""
    wanted = sorted(set(rec_ids))
    out: dict[str, dict[str, float]] = {}
    with db.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = select(decisions.c.rec_id, decisions.c["items"]).where(
                decisions.c.rec_id.in_(chunk)
            )
            for rec_id, shown in conn.execute(query):
                out[rec_id] = {
                    str(i["product_id"]): float(i.get("propensity") or 1.0)
                    for i in shown or ()
                    if isinstance(i, dict) and "product_id" in i
                }
    return out


def read_impressions(
    db: Database,
    items: Sequence[str],
    start: datetime | None = None,
    end: datetime | None = None,
    resolve: Resolve = identity,
) -> list[Impression]:
    """The logged impressions in ``[start, end)`` with their attributed responses.

    A person is ``resolve(customer_id or anonymous_id)``, as in ``read_log``.
    Responses are read up to ``end`` too: one that comes after the window's
    end is in the future of whoever trains on that window.
    """
    t = interactions.c
    query = select(
        t.rec_id,
        t.type,
        func.coalesce(t.customer_id, t.anonymous_id),
        t.product_id,
        _epoch(db),
        t.position,
        t.placement,
    ).where(t.rec_id.is_not(None), t.type.in_(("rec_impression", *RESPONSE_GRADE)))
    if start is not None:
        query = query.where(t.occurred_at >= start)
    if end is not None:
        query = query.where(t.occurred_at < end)
    people: dict[str, str] = {}  # each id resolved once (a person has many rows)
    # millions of rows, no cycle among them: the collector's full passes over the
    # training's heap would cost a third of the read
    with gc_paused():
        rows = []
        with db.engine.connect() as conn:  # given back before the propensities' reads
            for rec, typ, raw, pid, at, pos, placement in conn.execute(query):
                person = people.get(raw)
                if person is None:
                    person = people[raw] = resolve(raw)
                rows.append(LoggedRow(rec, typ, person, pid, float(at), pos, placement))
        shown = {r.rec_id for r in rows if r.type == "rec_impression"}
        return impressions_of(rows, items, read_propensities(db, shown))


def build_impression_set(
    impressions: Sequence[Impression],
    log: HistoryLog,
    items: ItemTable,
    state: RankingState,
    spec: FeatureSpec,
    propose: Propose,
    start: int,
    end: int,
    require_positive: bool = True,
    limit: int | None = None,
) -> TrainingSet:
    """One group per impression served in ``[start, end)``; ``state`` as of ``start`` or earlier.
    ``limit``: at most that many of them, drawn evenly (seeded by ``start``); None: all.

    The features of a shown product are those the ranker computes for a
    request at the impression's time, with the sources (fitted by the caller
    before ``start``) as candidates; a shown product no source proposes keeps
    NaN source columns. Labels count only responses before ``end``
    (``Impression.labels_before``), however late the caller read them: a
    window's groups are the same whoever builds it, as long as the responses
    were read up to ``end``; weights are the inverse propensities.
    """
    if state.as_of > start:
        raise ValueError(f"the state is as of {state.as_of}, after the window start {start}")
    parts: list[TrainingSet] = []
    within = [(imp, imp.labels_before(end)) for imp in impressions if start <= imp.at < end]
    shown = [(imp, y) for imp, y in within if y.any() or not require_positive]
    if limit is not None:
        shown = drawn(shown, limit, np.random.default_rng(start))
    for imp, labels in shown:
        person = log.person_index(imp.person)
        ctx = RecContext(
            placement=imp.placement,
            now=datetime.fromtimestamp(imp.at, UTC),
            person_id=imp.person,
            session=session_at(log, person, imp.at) if person is not None else (),
        )
        cands = CandidateSet.from_proposals(propose(ctx), spec.sources).align(imp.items)
        parts.append(
            TrainingSet(
                build_features(ctx, cands, state, items, spec),
                labels.copy(),
                np.array([len(imp.items)], dtype=np.int64),
                [imp.person],
                imp.items.copy(),
                [cands],
                imp.weights,
            )
        )
    return TrainingSet.concat(parts, len(spec.names))


__all__ = [
    "RESPONSE_GRADE",
    "Impression",
    "LoggedRow",
    "build_impression_set",
    "impressions_of",
    "read_impressions",
    "read_propensities",
]
