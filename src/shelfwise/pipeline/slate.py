"""The pipeline's answer: a frozen slate of shown items with their reasons, the
trace of every stage's decisions and the versions of what made it.

A :class:`Slate` is what every caller of the pipeline gets, online or offline;
``pipeline/encode.py`` turns it into the JSON of ``/v1/recommendations``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from shelfwise.candidates.base import IntArray, Reason
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.pool import Trace
from shelfwise.pipeline.ports import Flow, Ranked, ShownReason
from shelfwise.ranking.explain import display_category

Mode = Literal["model", "degraded"]


class Shown(NamedTuple):
    """One item of a slate: the product as shown, its score and why it is there
    (a tuple: immutable, and made ten times per slate on the hot path)."""

    item: int  # dense catalog index
    product_id: str
    position: int  # 1-based
    title: str
    price: float | None
    currency: str | None
    availability: str | None
    image_url: str | None
    brand: str | None
    category: str | None
    score: float
    reasons: tuple[ShownReason, ...]
    explored: bool
    propensity: float
    contributions: Mapping[str, float] | None  # per part of the value (explained slates)


@dataclass(frozen=True)
class Versions:
    """What made a slate: the model bundle, the rulebook, the ranker and its objective."""

    model: str | None
    rulebook: str | None
    ranker: Literal["blend", "learned"] = "blend"
    objective: str | None = None


@dataclass(frozen=True)
class Slate:
    """One placement's served items, best first.

    ``candidates`` is the pool before any rule (the products the slate is made of,
    for kept slates), ``sizes`` how many the chain was asked for; ``trace`` what each stage decided (complete when tracing was
    enabled; rule drops and fallbacks are always counted)."""

    placement: str
    mode: Mode
    items: tuple[Shown, ...]
    versions: Versions
    trace: Trace
    candidates: IntArray
    # The candidates asked of the chain, run by run: (max_candidates,), or deeper runs
    # after it when the rules left the slate short (``Pipeline.run``; the last served).
    sizes: tuple[int, ...] = ()

    @property
    def fallback_used(self) -> bool:
        return bool(self.trace.fallback_used)


def reason_text(reason: Reason, snapshot: CatalogSnapshot) -> str:
    anchor = snapshot.products[reason.anchor].title if reason.anchor is not None else "this"
    match reason.kind:
        case "often_bought_with":
            return f"Often bought with {anchor}"
        case "bought_with":
            return f"Bought together with {anchor}"
        case "also_viewed" if reason.anchor is None:
            return "Shoppers who viewed what you viewed also viewed"
        case "also_viewed":
            return f"Shoppers who looked at {anchor} also looked at this"
        case "goes_with":
            return (
                f"Shoppers often add {display_category(reason.label)}"
                if reason.label
                else "Goes with this"
            )
        case "browsed_with":
            return (
                f"Shoppers also look at {display_category(reason.label)}"
                if reason.label
                else "Goes with this"
            )
        case "similar_to":
            return f"Similar to {anchor}"
        case "because_you_viewed":
            return f"Because you viewed {anchor}"
        case "because_you_bought":
            return f"Because you bought {anchor}"
        case "popular_in":
            return f"Popular in {display_category(reason.label) if reason.label else 'the store'}"
        case "trending_in":
            return f"Trending in {display_category(reason.label) if reason.label else 'the store'}"
        case "seasonal":
            return f"In season: {reason.label}" if reason.label else "In season"
        case "pinned":
            return "Featured"
        case "buy_again":
            return "Buy it again"
        case "for_you":
            return "Picked for you"
        case _:
            return "Recommended"


def shown_reason(reason: Reason, snapshot: CatalogSnapshot) -> ShownReason:
    return ShownReason(
        kind=reason.kind,
        source=reason.source,
        text=reason_text(reason, snapshot),
        anchor=snapshot.ids[reason.anchor] if reason.anchor is not None else None,
        label=reason.label,
        fallback=reason.fallback,
    )


def shown_items(flow: Flow, explain: bool) -> tuple[Shown, ...]:
    """The arranged pool as shown items. A learned ranker's head carries its own
    score, reasons, exploration and contributions; items arranged in from below
    the head keep the source's reason and no learned score."""
    arranged, ranked = flow.arranged, flow.ranked
    assert arranged is not None and ranked is not None, "the arrangement runs first"
    reasons: dict[int, ShownReason] = {}  # by the source's Reason object (the pool holds it)
    return tuple(
        _shown(flow, ranked, j, pos, explored, propensity, explain, reasons)
        for pos, (j, explored, propensity) in enumerate(
            zip(
                arranged.order.tolist(),
                arranged.explored.tolist(),
                arranged.propensity.tolist(),
                strict=True,
            ),
            start=1,
        )
    )


def _shown(
    flow: Flow,
    ranked: Ranked,
    j: int,
    position: int,
    explored: bool,
    propensity: float,
    explain: bool,
    reasons: dict[int, ShownReason],
) -> Shown:
    snapshot, pool = flow.snapshot, flow.pool
    value = ranked.value
    score = round(float(value[j]), 6) if j < len(value) else 0.0
    source_reason = pool.reason_table[pool.reason_of[j]]
    reason = reasons.get(id(source_reason))  # sources share one Reason among many items
    if reason is None:
        reason = reasons[id(source_reason)] = shown_reason(source_reason, snapshot)
    said: tuple[ShownReason, ...] = (reason,)
    contributions: Mapping[str, float] | None = None
    if explain:
        contributions = {
            k: round(float(v[j]), 6) if j < len(v) else 0.0 for k, v in ranked.contributions.items()
        }
    head = ranked.head
    if head is not None:
        slot = head.slot_of(j)
        score = round(float(head.scores[slot]), 6) if slot is not None else 0.0
        if slot is not None:
            said = head.reasons[slot] or said
            explored = bool(head.explored[slot]) or explored
            propensity = float(head.propensities[slot]) * propensity
        if explain:
            contributions = (
                {k: round(float(v), 6) for k, v in head.contributions[slot].items()}
                if slot is not None and slot < len(head.contributions)
                else {}
            )
    i = int(pool.items[j])
    p = snapshot.products[i]
    return Shown(
        i,
        p.product_id,
        position,
        p.title,
        p.price,
        p.currency,
        p.availability,
        p.image_url,
        p.brand,
        p.category_path,
        score,
        said,
        explored,
        propensity,
        contributions,
    )
