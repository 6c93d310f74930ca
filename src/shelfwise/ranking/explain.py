"""Short, shopper-facing reasons from the sources and the largest feature contributions.

A reason may name an item (``anchor``) only when the shopper has seen it: the
context item, the cart, the live session or their durable history. Reasons
whose anchor fails that test are dropped, never rewritten, so a reason never
reveals an item the shopper has not met. The ranker's buy-again reasons ("Buy it
again", "Time to restock") are said only of an item the ``buy_again`` source
proposed: that source knows what this store's shoppers re-buy. Every served item
gets at least one reason; ``fallback`` marks the generic one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, overload

import numpy as np

from shelfwise.candidates.base import Reason, RecContext
from shelfwise.ranking.features import BASE_FEATURES, FeatureSpec
from shelfwise.ranking.history import FloatArray, IntArray
from shelfwise.ranking.state import RankingState

if TYPE_CHECKING:  # the catalog imports the store, which imports the settings, which import us
    from shelfwise.catalog.snapshot import CatalogSnapshot


class Names(Protocol):
    """How items and categories are called in front of a shopper."""

    def title(self, item: int) -> str: ...

    def category(self, code: int) -> str: ...


@dataclass(frozen=True)
class Explanation:
    kind: str
    text: str
    anchor: int | None = None
    source: str | None = None
    fallback: bool = False


ALSO_VIEWED = "Shoppers who viewed what you viewed also viewed"
_ANCHORED = {
    "often_bought_with": "Often bought with {title}",
    "bought_with": "Bought together with {title}",
    "also_viewed": "Shoppers who looked at {title} also looked at this",
    "similar_to": "Similar to {title}",
    "because_you_viewed": "Because you viewed {title}",
    "because_you_bought": "Because you bought {title}",
}
_LABELLED = {
    "popular_in": ("Popular in {label}", "Popular right now"),
    "trending_in": ("Trending in {label}", "Trending now"),
    "seasonal": ("In season: {label}", "Popular this season"),
    "buy_again": ("Buy {label} again", "Buy it again"),
    "for_you": ("Picked for you: {label}", "Picked for you"),
    "goes_with": ("Shoppers often add {label}", "Goes with this"),
    "browsed_with": ("Shoppers also look at {label}", "Goes with this"),
}
# Anchored kinds a source may also give without an anchor (``session_knn``: the
# whole live session is the anchor), with the text shown then.
_UNANCHORED = {
    "also_viewed": ALSO_VIEWED,
}
# Reasons that speak of the shopper: shown only to a known person or a live session.
PERSONAL = frozenset(
    {"for_you", "buy_again", "session", "because_you_viewed", "because_you_bought"}
)
# Feature -> (kind, text with an optional {category}); features absent here never show.
_FEATURE_REASONS = {
    "pop_7d": ("popular_in", "Popular in {category} this week"),
    "pop_28d": ("popular_in", "Popular in {category} this month"),
    "trend": ("trending_in", "Trending in {category}"),
    "season_index": ("seasonal", "In season: {category}"),
    "aff_category": ("for_you", "Because you like {category}"),
    "aff_brand": ("for_you", "From a brand you like"),
    "bought_count": ("buy_again", "Buy it again"),
    "days_since_bought": ("buy_again", "Time to restock"),
    "buy_days": ("buy_again", "Buy it again"),
    "due_ratio": ("buy_again", "Time to restock"),
    "new_buyers_7d": ("trending_in", "Catching on in {category} this week"),
    "sess_category_share": ("session", "Matches what you are browsing"),
    "price_rel_usual": ("for_you", "In your usual price range"),
}


def seen_items(ctx: RecContext, state: RankingState) -> set[int]:
    """Every item the shopper has met: context, cart, session and durable history."""
    seen = {*ctx.context_items, *ctx.cart_items, *(e.item for e in ctx.session)}
    keys, _ = state.person_items.row(state.person(ctx.person_id))
    seen.update(int(k) for k in keys)
    return seen


def render_source_reason(reason: Reason, names: Names, seen: set[int]) -> Explanation | None:
    """The shopper-facing text of a source's reason, or None when it may not be shown."""
    if reason.kind in _UNANCHORED and reason.anchor is None:
        return Explanation(
            reason.kind, _UNANCHORED[reason.kind], None, reason.source, reason.fallback
        )
    if reason.kind in _ANCHORED:
        if reason.anchor is None or reason.anchor not in seen:
            return None
        text = _ANCHORED[reason.kind].format(title=names.title(reason.anchor))
        return Explanation(reason.kind, text, reason.anchor, reason.source, reason.fallback)
    if reason.anchor is not None and reason.anchor not in seen:
        return None
    with_label, plain = _LABELLED.get(reason.kind, ("Recommended", "Recommended"))
    label = display_category(reason.label) if reason.label else None
    text = with_label.format(label=label) if label else plain
    return Explanation(reason.kind, text, None, reason.source, reason.fallback)


def _feature_reason(kind: str, template: str, category: str) -> Explanation:
    if "{category}" in template and not category:
        template = template.replace(" in {category}", "").replace(": {category}", "")
    return Explanation(kind, template.format(category=category), None)


_FEATURE_COLUMNS = np.array([BASE_FEATURES.index(name) for name in _FEATURE_REASONS])
_FEATURE_TEMPLATES = list(_FEATURE_REASONS.values())


@functools.lru_cache(maxsize=8)
def _reason_columns(base: tuple[str, ...]) -> tuple[IntArray, IntArray]:
    """For a model's base features: the column of each feature reason it reads, and
    which of the reasons those are (a model of an earlier version may lack some)."""
    if base == BASE_FEATURES:
        return _FEATURE_COLUMNS, np.arange(len(_FEATURE_COLUMNS))
    which = [j for j, name in enumerate(_FEATURE_REASONS) if name in base]
    columns = [base.index(name) for name in _FEATURE_REASONS if name in base]
    return np.array(columns, dtype=np.int64), np.array(which, dtype=np.int64)


_MIN_FEATURE_WEIGHT = 0.05


def explain(
    ctx: RecContext,
    reasons: list[list[Reason]],
    contributions: FloatArray,
    items: IntArray,
    categories: IntArray,
    spec: FeatureSpec,
    names: Names,
    state: RankingState,
    per_item: int = 2,
    chain: frozenset[str] = frozenset(),
) -> list[tuple[Explanation, ...]]:
    """Up to ``per_item`` reasons for each served item, strongest first.

    ``reasons[i]`` are the sources' reasons for item i, ``contributions[i]``
    its feature contributions (last column the bias). Candidates are ordered
    by weight first and rendered only until enough are accepted. ``chain``: the
    sources of the placement's chain (what made the pool): when the chain's own
    reason cannot be said (a personal one to nobody), its sources' reasons come
    before those of the sources the ranker alone asked.
    """
    seen = seen_items(ctx, state)
    personal = bool(ctx.session) or state.person(ctx.person_id) is not None
    n_src = len(spec.sources)
    src_of = {s: j for j, s in enumerate(spec.sources)}
    src_weight = contributions[:, 0 : 2 * n_src : 2] + contributions[:, 1 : 2 * n_src : 2]
    columns, which = _reason_columns(spec.base)
    if len(which) == len(_FEATURE_COLUMNS):
        feat_weight = contributions[:, 2 * n_src + columns]
    else:  # a model of an earlier version: the reasons of features it lacks weigh nothing
        feat_weight = np.zeros((len(contributions), len(_FEATURE_COLUMNS)))
        feat_weight[:, which] = contributions[:, 2 * n_src + columns]
    src_rows, feat_rows = src_weight.tolist(), feat_weight.tolist()  # (rows of a few floats)
    out: list[tuple[Explanation, ...]] = []
    for i in range(len(items)):
        weights = src_rows[i]
        # The sources that proposed the item speak first; the ranker's feature
        # reasons only fill in, and nothing personal is said to nobody.
        # reasons[i][0] is the placement chain's (``CandidateSet.reasons_of``).
        pending: list[tuple[float, float, int, Reason | int]] = [
            (
                0.5 if n and chain and r.source not in chain else 0 if n else -1,
                weights[src_of[r.source]] if r.source in src_of else 0.0,
                n,
                r,
            )
            for n, r in enumerate(reasons[i])
            if personal or r.kind not in PERSONAL
        ]
        feats = feat_rows[i]
        strong = [j for j, w in enumerate(feats) if w > _MIN_FEATURE_WEIGHT]
        # "Buy it again" only where the buy_again source proposed the item: it
        # proposes only what this store's shoppers do re-buy (candidates/buyagain.py).
        again = any(r.kind == "buy_again" for r in reasons[i])
        pending += [
            (1, feats[j], 100 + j, j)
            for j in strong
            if (personal or _FEATURE_TEMPLATES[j][0] not in PERSONAL)
            and (again or _FEATURE_TEMPLATES[j][0] != "buy_again")
        ]
        pending.sort(key=lambda entry: (entry[0], -entry[1], entry[2]))
        chosen: list[Explanation] = []
        for _, _, _, what in pending:
            if isinstance(what, Reason):
                shown = render_source_reason(what, names, seen)
            else:
                kind, template = _FEATURE_TEMPLATES[what]
                shown = _feature_reason(kind, template, names.category(int(categories[i])))
            if shown is not None and all(shown.text != c.text for c in chosen):
                chosen.append(shown)
                if len(chosen) == per_item:
                    break
        if not chosen and personal:
            chosen.append(Explanation("for_you", "Recommended for you", fallback=True))
        elif not chosen:
            chosen.append(Explanation("recommended", "Recommended", fallback=True))
        out.append(tuple(chosen))
    return out


def trace_contributions(contributions: FloatArray, spec: FeatureSpec) -> list[dict[str, float]]:
    """Every feature's contribution (and the bias) as {name: value}, per served item."""
    names = (*spec.names, "bias")
    return [dict(zip(names, row, strict=True)) for row in np.round(contributions, 6).tolist()]


class TraceContributions(Sequence[dict[str, float]]):
    """:func:`trace_contributions` of ``contributions``, made on the first read: only an
    explained slate or a kept trace reads them, most served requests never do."""

    def __init__(self, contributions: FloatArray, spec: FeatureSpec) -> None:
        self._rows, self._spec = contributions, spec
        self._made: list[dict[str, float]] | None = None

    def _list(self) -> list[dict[str, float]]:
        if self._made is None:
            self._made = trace_contributions(self._rows, self._spec)
        return self._made

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> dict[str, float]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, float]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, float] | list[dict[str, float]]:
        return self._list()[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TraceContributions):
            return self._list() == other._list()
        return self._list() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._list())


def display_category(path: str) -> str:
    """``"home/bedding"`` -> ``"Bedding"`` (the leaf, as a shopper reads it)."""
    leaf = path.rsplit("/", 1)[-1]
    return leaf[:1].upper() + leaf[1:]


class TableNames:
    """Names from plain lists (offline data sets, tests)."""

    def __init__(
        self, titles: list[str] | tuple[str, ...], categories: list[str] | tuple[str, ...]
    ):
        self.titles, self.categories = titles, categories

    def title(self, item: int) -> str:
        return self.titles[item] if item < len(self.titles) else f"item {item}"

    def category(self, code: int) -> str:
        return display_category(self.categories[code]) if 0 < code < len(self.categories) else ""


class SnapshotNames:
    """Names from the live catalog snapshot."""

    def __init__(self, snapshot: CatalogSnapshot) -> None:
        self.snapshot = snapshot

    def title(self, item: int) -> str:
        return self.snapshot.products[item].title

    def category(self, code: int) -> str:
        values = self.snapshot.categories.values
        return display_category(values[code]) if 0 < code < len(values) else ""
