"""Invariants every source and the blend keep, on random small logs."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shelfwise.candidates.base import Proposal, Reason, RecContext, SessionEvent, shallower
from shelfwise.candidates.config import FactorsConfig, SourcesConfig
from shelfwise.candidates.log import InteractionLog, Row
from shelfwise.candidates.model import Artifacts, fit_all
from tests.unit.candidates_fixtures import T0

ITEMS = tuple(f"i{n}" for n in range(12))
KIND = st.sampled_from(["product_view", "add_to_cart", "purchase"])
ROW = st.tuples(st.integers(0, 5), st.integers(0, 11), KIND, st.integers(0, 40), st.integers(0, 8))


def build(rows: list[tuple[int, int, str, int, int]]) -> tuple[InteractionLog, Artifacts]:
    log = InteractionLog.from_rows(
        [
            Row(f"p{p}", ITEMS[i], kind, T0 + timedelta(days=d), basket=f"b{b}")
            for p, i, kind, d, b in rows
        ],
        items=ITEMS,
    )
    config = SourcesConfig(factors=FactorsConfig(factors=4, iterations=2))
    return log, fit_all(log, [None] * len(ITEMS), config)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(ROW, min_size=1, max_size=40),
    person=st.integers(0, 6),
    context=st.lists(st.integers(0, 11), max_size=3),
    exclude=st.frozensets(st.integers(0, 11), max_size=6),
    placement=st.sampled_from(["home", "product_page", "cart", "unknown"]),
    k=st.integers(1, 15),
)
def test_no_duplicates_finite_scores_and_excluded_never_proposed(
    rows: list[tuple[int, int, str, int, int]],
    person: int,
    context: list[int],
    exclude: frozenset[int],
    placement: str,
    k: int,
) -> None:
    _, artifacts = build(rows)
    session = tuple(SessionEvent(i, "product_view", T0) for i in context)
    ctx = RecContext(
        placement=placement,
        now=T0 + timedelta(days=41),
        person_id=f"p{person}",
        context_items=tuple(context[:1]),
        session=session,
        exclude=exclude,
    )
    proposals = [s.propose(ctx, k) for s in artifacts.sources().values()]
    proposals.append(artifacts.blend().propose(ctx, k))
    for p in proposals:
        items = p.items.tolist()
        assert len(items) == len(set(items)), p.source
        assert len(items) <= k
        assert np.isfinite(p.scores).all(), p.source
        assert not set(items) & exclude, p.source
        assert all(0 <= i < len(ITEMS) for i in items)
        assert len(p.reasons) == len(items)


SHOPPER = st.tuples(
    st.integers(0, 6), st.lists(st.integers(0, 11), max_size=3), st.frozensets(st.integers(0, 11))
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=st.lists(ROW, min_size=1, max_size=40), shopper=SHOPPER, k=st.integers(1, 8))
def test_a_deeper_proposal_gives_the_shallower_one_where_it_says_so(
    log: list[tuple[int, int, str, int, int]],
    shopper: tuple[int, list[int], frozenset[int]],
    k: int,
) -> None:
    """A ``prefix_exact`` source's proposal cut to ``k`` (``shallower``) is exactly what it
    proposes at ``k``, or ``shallower`` declines (the learned path then asks again)."""
    person, context, exclude = shopper
    _, artifacts = build(log)
    ctx = RecContext(
        placement="cart",
        now=T0 + timedelta(days=41),
        person_id=f"p{person}",
        context_items=tuple(context[:1]),
        cart_items=tuple(context[1:]),
        session=tuple(SessionEvent(i, "product_view", T0) for i in context),
        exclude=exclude,
    )
    for source in artifacts.sources().values():
        if not getattr(source, "prefix_exact", False):
            continue
        cut = shallower(source.propose(ctx, 12), 12, k)
        if cut is None:
            continue
        own = source.propose(ctx, k)
        assert cut.items.tolist() == own.items.tolist(), source.name
        assert cut.scores.tolist() == own.scores.tolist() and cut.reasons == own.reasons


def test_shallower_declines_a_tie_across_the_cut() -> None:
    reasons = tuple(Reason("s", "also_viewed", anchor=i) for i in range(4))
    p = Proposal("s", np.array([3, 1, 2, 0]), np.array([0.9, 0.5, 0.5, 0.1]), reasons)
    assert shallower(p, 4, 2) is None  # which of the tied 1 and 2 is second depends on k
    cut = shallower(p, 4, 3)
    assert cut is not None and cut.items.tolist() == [3, 1, 2] and cut.reasons == reasons[:3]
    assert shallower(p, 8, 6) is p  # asked for 8, it had 4: nothing more to propose
    assert shallower(p, 2, 3) is None  # asked shallower than wanted
