"""The bought-with ranker task: product-page requests labelled by what the session then
carted or bought (``ranking.dataset.bought_with_requests`` / ``build_bought_with_set``),
and the placement's choice of ranker (``Placement.ranker``, ``ranker_folder``)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.candidates.base import Proposal, Reason, RecContext
from shelfwise.ranking.dataset import bought_with_requests, build_bought_with_set
from shelfwise.ranking.features import FeatureSpec
from shelfwise.ranking.history import CART, PURCHASE, VIEW, HistoryLog
from shelfwise.ranking.items import ItemColumns
from shelfwise.ranking.ranker import ranker_folder
from shelfwise.ranking.state import DAY, RankingState
from shelfwise.serving.placements import shipped_placements

T = 1_700_000_000
MIN = 60


def _log(rows: Sequence[tuple[int, int, int, int]]) -> HistoryLog:
    """``(person, item, kind, seconds after T)`` rows; people ann, bob, cy."""
    p, i, k, at = zip(*rows, strict=True)
    return HistoryLog.build(["ann", "bob", "cy"], p, i, k, [T + a for a in at])


ROWS = [
    # ann, session 1: views 1 and 2, carts 3, buys 3 and 4 (4 never carted)
    (0, 1, VIEW, 0),
    (0, 2, VIEW, 1 * MIN),
    (0, 3, CART, 2 * MIN),
    (0, 3, PURCHASE, 5 * MIN),
    (0, 4, PURCHASE, 5 * MIN),
    # ann, session 2 (an hour later): views 5, buys nothing
    (0, 5, VIEW, 65 * MIN),
    (0, 6, VIEW, 66 * MIN),
    # bob: views 7, carts 7 (the anchor itself is no label), then views 8
    (1, 7, VIEW, 0),
    (1, 7, CART, 1 * MIN),
    (1, 8, VIEW, 2 * MIN),
    # cy: buys 9 after viewing it and 6
    (2, 6, VIEW, 0),
    (2, 9, VIEW, 1 * MIN),
    (2, 9, PURCHASE, 3 * MIN),
]


def test_anchors_are_items_viewed_before_what_the_session_then_carted_or_bought() -> None:
    got = bought_with_requests(_log(ROWS), T, T + DAY, per_session=5)
    seen = {(r.person, r.anchor): (r.at - T, r.labels) for r in got}
    assert set(seen) == {(0, 1), (0, 2), (0, 3), (2, 6)}
    assert (0, 5) not in seen and (0, 6) not in seen  # a session with no cart or purchase
    assert (1, 7) not in seen  # only the anchor itself was carted
    assert seen[(0, 1)] == (0, {3: 3, 4: 3})
    assert seen[(0, 2)] == (60, {3: 3, 4: 3})
    assert seen[(0, 3)] == (120, {4: 3})
    assert seen[(2, 6)] == (0, {9: 3})
    assert (2, 9) not in seen  # nothing else after it


def test_per_session_and_limit_cap_the_requests() -> None:
    log = _log(ROWS)
    assert [(r.person, r.anchor) for r in bought_with_requests(log, T, T + DAY, per_session=1)] == [
        (0, 1),
        (2, 6),
    ]
    capped = bought_with_requests(log, T, T + DAY, per_session=5, limit=2, seed=3)
    assert len(capped) == 2
    assert bought_with_requests(log, T + 10 * MIN, T + DAY) == []  # window starts later


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 9),
            st.sampled_from([VIEW, CART, PURCHASE]),
            st.integers(0, 6 * 3600),
        ),
        max_size=60,
    )
)
def test_every_label_comes_after_its_anchor_in_the_same_session(
    rows: list[tuple[int, int, int, int]],
) -> None:
    if not rows:
        return
    log = _log(rows)
    for r in bought_with_requests(log, T, T + DAY):
        assert r.labels and r.anchor not in r.labels
        # The person's events in time order (events of one second in the order given),
        # cut into sessions where they pause over 30 minutes. Only the anchor's session
        # counts: the same item carted or bought in a later session is no label of it.
        mine = [
            (at, item, kind)
            for at, _, item, kind in sorted(
                (at, n, item, kind) for n, (p, item, kind, at) in enumerate(rows) if p == r.person
            )
        ]
        cuts = [0, *(n for n in range(1, len(mine)) if mine[n][0] - mine[n - 1][0] > 30 * MIN)]
        sessions = [mine[a:b] for a, b in itertools.pairwise([*cuts, len(mine)])]
        (session,) = [s for s in sessions if s[0][0] <= r.at - T <= s[-1][0]]
        # the anchor is the item's first view or cart in its session, at its time ...
        first = next(n for n, (_, i, k) in enumerate(session) if i == r.anchor and k != PURCHASE)
        assert session[first][0] == r.at - T
        # ... and its labels are every other item carted (2) or bought (3) after it there
        labels: dict[int, int] = {}
        for _, item, kind in session[first + 1 :]:
            if kind != VIEW and item != r.anchor:
                labels[item] = max(labels.get(item, 0), 3 if kind == PURCHASE else 2)
        assert r.labels == labels, (r, session)


def _proposals(ctx: RecContext) -> Sequence[Proposal]:
    # a source proposing 3, 4 and 8 for any anchor (and never the anchor)
    items = np.array([i for i in (3, 4, 8) if i not in ctx.context_items], dtype=np.int64)
    reasons = tuple(Reason("complements", "goes_with", label="x") for _ in items)
    return [Proposal("complements", items, np.linspace(1.0, 0.5, len(items)), reasons)]


def test_the_training_set_has_one_group_per_anchor_with_its_session_labels() -> None:
    log = _log(ROWS)
    items = ItemColumns.unknown(10, price=np.arange(1.0, 11.0))
    spec = FeatureSpec.of(("complements",))
    state = RankingState.fit(log, items, T)
    got = build_bought_with_set(log, items, state, spec, _proposals, T, DAY)
    # ann's first two anchors (1, 2; per session 2); cy's anchor 6 is proposed 3, 4
    # and 8, none of which she bought: no order to learn, skipped
    assert got.groups.tolist() == [3, 3]
    assert got.items.tolist() == [3, 4, 8, 3, 4, 8]
    assert got.y.tolist() == [3, 3, 0, 3, 3, 0]
    assert got.persons == ["ann", "ann"]
    assert got.x.shape == (6, len(spec.names))
    with pytest.raises(ValueError, match="decision time"):
        build_bought_with_set(log, items, state, spec, _proposals, T + 1, DAY)


def test_the_product_placements_ask_for_the_bought_with_ranker() -> None:
    placements = {p.name: p.ranker for p in shipped_placements()}
    assert placements["product_bought_with"] == placements["product_similar"] == "bought_with"
    assert placements["home"] == "requests"
    assert ranker_folder() == "ranker" and ranker_folder("bought_with") == "ranker_bought_with"
