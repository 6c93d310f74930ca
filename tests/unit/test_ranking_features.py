"""Features: union of proposals, hand-checked values, and offline/online parity."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from shelfwise.candidates.base import Proposal, Reason, RecContext, SessionEvent
from shelfwise.ranking import (
    CandidateSet,
    FeatureSpec,
    HistoryLog,
    ItemColumns,
    Ranker,
    RankingState,
    TableNames,
    build_features,
    build_training_set,
)
from shelfwise.ranking.history import CART, PURCHASE, VIEW
from shelfwise.ranking.state import DAY
from shelfwise.ranking.synthetic import SOURCES, StateSources, synthetic_store

T0 = 1_700_000_000


def _proposal(source: str, items: list[int], scores: list[float]) -> Proposal:
    return Proposal(
        source,
        np.array(items, dtype=np.int64),
        np.array(scores),
        tuple(Reason(source, "for_you") for _ in items),
    )


def test_union_of_proposals_keeps_each_sources_score_and_rank() -> None:
    cands = CandidateSet.from_proposals(
        [_proposal("b", [7, 3], [0.5, 0.9]), _proposal("a", [3, 1, 9], [2.0, 3.0, 1.0])],
        ("a", "b", "c"),
    )
    assert cands.items.tolist() == [1, 3, 7, 9]
    np.testing.assert_array_equal(
        cands.ranks, [[1, np.nan, np.nan], [2, 1, np.nan], [np.nan, 2, np.nan], [3, np.nan, np.nan]]
    )
    np.testing.assert_array_equal(cands.scores[1], [2.0, 0.9, np.nan])
    assert [r.source for r in cands.reasons_of(1)] == ["b", "a"]  # b ranks it 1st, a 2nd


def _tiny() -> tuple[HistoryLog, ItemColumns]:
    items = ItemColumns(
        price=np.array([10.0, 20.0, 40.0, 80.0]),
        stock=np.array([5, -1, 100, 0]),
        margin_band=np.array([2, 0, -1, 1], dtype=np.int8),
        sla_days=np.array([1, 3, -1, 2], dtype=np.int16),
        brand=np.array([1, 1, 2, 0], dtype=np.int32),
        category=np.array([1, 1, 2, 2], dtype=np.int32),
        category_names=("", "home/bedding", "home/tables"),
    )
    log = HistoryLog.build(
        ["ann", "bob"],
        person=[0, 0, 0, 1, 0],
        item=[0, 0, 2, 0, 1],
        kind=[VIEW, PURCHASE, VIEW, PURCHASE, VIEW],
        at=[T0 - 10 * DAY, T0 - 10 * DAY + 60, T0 - 2 * DAY, T0 - DAY, T0 - 600],
        price=[10.0, 10.0, 40.0, 10.0, 20.0],
    )
    return log, items


def test_features_read_the_history_before_t() -> None:
    log, items = _tiny()
    state = RankingState.fit(log, items, T0)
    spec = FeatureSpec.of(["a"])
    cands = CandidateSet.from_proposals([_proposal("a", [0, 2, 3], [3.0, 2.0, 1.0])], ("a",))
    ctx = RecContext(
        "product",
        datetime.fromtimestamp(T0, UTC),
        person_id="ann",
        context_items=(1,),
        session=(SessionEvent(1, "product_view", datetime.fromtimestamp(T0 - 600, UTC)),),
    )
    x = build_features(ctx, cands, state, items, spec)
    col = {name: x[:, i] for i, name in enumerate(spec.names)}
    np.testing.assert_array_equal(col["bought_count"], [np.log1p(1), 0.0, 0.0])
    np.testing.assert_allclose(col["days_since_bought"], [10 - 60 / DAY, np.nan, np.nan])
    np.testing.assert_array_equal(col["seen_before"], [1, 1, 0])
    np.testing.assert_array_equal(col["sess_category_share"], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(col["sess_minutes_since_last"], [10.0, 10.0, 10.0])
    np.testing.assert_array_equal(col["price_rel_context"], [0.5, 2.0, 4.0])
    np.testing.assert_allclose(col["price_rel_usual"], [1.0, 4.0, 8.0])  # ann paid 10
    np.testing.assert_array_equal(col["margin_band"], [2, np.nan, 1])
    np.testing.assert_array_equal(col["stock_level"], [np.log1p(5), np.log1p(100), 0.0])
    # ann before T0: bedding = view 0.2 + purchase 1.0 + view 0.2, tables = view 0.2
    np.testing.assert_allclose(col["aff_category"], [1.4 / 1.6, 0.2 / 1.6, 0.2 / 1.6])
    # the event at T0 is not in the state: bob's purchase of item 0 a day before is
    assert state.pop_7d[0] == pytest.approx(1.0)
    # re-ordering: ann bought on one day, item 0 on that day; her last event (a view of
    # item 1, 600 s before T0) came 10 days less 660 s after that purchase
    np.testing.assert_array_equal(col["buy_day_share"], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(col["buy_lag_days"], [10 - 660 / DAY, np.nan, np.nan])


def test_buy_day_share_counts_days_not_purchases() -> None:
    """Item 0 bought twice on one day, item 1 on two of the person's three order days:
    the staple is item 1 (2/3), not item 0 (1/3), though both were bought twice; an
    anonymous request has no share."""
    _, items = _tiny()
    day = [T0 - 9 * DAY, T0 - 9 * DAY + 60, T0 - 9 * DAY + 120, T0 - 5 * DAY, T0 - 2 * DAY]
    log = HistoryLog.build(
        ["ann"],
        person=[0, 0, 0, 0, 0],
        item=[0, 0, 1, 1, 2],
        kind=[PURCHASE] * 5,
        at=day,
        price=[10.0, 10.0, 20.0, 20.0, 40.0],
    )
    state = RankingState.fit(log, items, T0)
    spec = FeatureSpec.of(["a"])
    cands = CandidateSet.from_proposals(
        [_proposal("a", [0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0])], ("a",)
    )
    now = datetime.fromtimestamp(T0, UTC)
    x = build_features(RecContext("home", now, person_id="ann"), cands, state, items, spec)
    col = {name: x[:, i] for i, name in enumerate(spec.names)}
    np.testing.assert_allclose(col["buy_day_share"], [1 / 3, 2 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(col["buy_lag_days"], [7 - 60 / DAY, 3.0, 0.0, np.nan])
    x = build_features(RecContext("home", now), cands, state, items, spec)
    anonymous = x[:, spec.names.index("buy_day_share")]
    assert np.isnan(anonymous).all()


def test_rebuy_28d_is_the_share_of_earlier_buyers_who_came_back_in_the_last_28_days() -> None:
    """Items 0 and 1 each had three buyers before the last 28 days; two of item 0's
    came back in them, none of item 1's (a fourth buyer of item 1 is new, not back).
    Store share 2/6, prior weight 5: item 0 (2 + 5/3) / 8, item 1 (5/3) / 8, item 2
    (no earlier buyer) the store's 1/3; ``rebuy_expected`` weights it by the person's
    buy_day_share."""
    _, items = _tiny()
    old, now = T0 - 40 * DAY, T0 - 3 * DAY
    person = [0, 1, 2, 0, 1, 0, 1, 2, 3]
    item = [0, 0, 0, 0, 0, 1, 1, 1, 1]
    at = [old, old, old, now, now, old, old, old, now]
    log = HistoryLog.build(
        ["ann", "bob", "cat", "dan"],
        person=person,
        item=item,
        kind=[PURCHASE] * 9,
        at=at,
        price=[10.0] * 9,
    )
    state = RankingState.fit(log, items, T0)
    np.testing.assert_allclose(state.rebuy_28d[:3], [(2 + 5 / 3) / 8, (5 / 3) / 8, 1 / 3])
    spec = FeatureSpec.of(["a"])
    cands = CandidateSet.from_proposals([_proposal("a", [0, 1, 2], [3.0, 2.0, 1.0])], ("a",))
    ctx = RecContext("home", datetime.fromtimestamp(T0, UTC), person_id="ann")
    x = build_features(ctx, cands, state, items, spec)
    col = {name: x[:, i] for i, name in enumerate(spec.names)}
    np.testing.assert_allclose(col["rebuy_28d"], state.rebuy_28d[:3])
    # ann bought item 0 on both her order days, item 1 on one of them
    np.testing.assert_allclose(
        col["rebuy_expected"], [1.0 * (2 + 5 / 3) / 8, 0.5 * (5 / 3) / 8, 0.0]
    )


@pytest.fixture(scope="module")
def store():  # type: ignore[no-untyped-def]
    return synthetic_store(n_items=80, n_persons=120, days=30, seed=3)


def test_offline_training_rows_equal_the_online_features(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = store.log
    # a decision time inside someone's session, so the live-session features are exercised
    i = int(np.flatnonzero(log.kind == CART)[40])
    person, t = int(log.person[i]), int(log.at[i]) + 5
    spec = FeatureSpec.of(SOURCES)
    state = RankingState.fit(log, store.items, t)
    offline = build_training_set(
        log, store.items, state, spec, StateSources(state, store.items), t, 7 * DAY,
        persons=[person], require_positive=False,
    )  # fmt: skip
    # online: a state loaded from the bundle, the session as the serving path records it
    state.save(tmp_path)
    served_state = RankingState.load(tmp_path)
    mine = np.flatnonzero((log.person == person) & (log.at < t) & (log.at >= t - 1800))
    kinds = {VIEW: "product_view", CART: "add_to_cart", PURCHASE: "purchase"}
    session = tuple(
        SessionEvent(int(log.item[j]), kinds[int(log.kind[j])], datetime.fromtimestamp(int(log.at[j]), UTC))
        for j in mine
    )  # fmt: skip
    assert session, "the fixture must have a live session"
    ctx = RecContext(
        "home", datetime.fromtimestamp(t, UTC), person_id=log.persons[person], session=session
    )
    cands = CandidateSet.from_proposals(StateSources(served_state, store.items)(ctx), SOURCES)
    ranker = Ranker(served_state, TableNames(store.titles, store.categories), sources=SOURCES)
    online, _ = ranker.score(ctx, cands, store.items)
    np.testing.assert_array_equal(cands.items, offline.items)
    np.testing.assert_array_equal(online, offline.x)
    assert np.isfinite(online[:, spec.names.index("sess_minutes_since_last")]).all()


def test_a_window_makes_at_most_limit_requests_of_people_drawn_evenly(store) -> None:  # type: ignore[no-untyped-def]
    log = store.log
    spec = FeatureSpec.of(SOURCES)
    t = int(log.at.min()) + 20 * DAY
    state = RankingState.fit(log, store.items, t)
    propose = StateSources(state, store.items)
    given = (log, store.items, state, spec, propose, t, 7 * DAY)
    whole = build_training_set(*given, require_positive=False)
    everyone = sorted(set(whole.persons))
    assert len(everyone) > 60, "the fixture's window must hold more people than the limit"
    capped = build_training_set(*given, require_positive=False, limit=40)
    again = build_training_set(*given, require_positive=False, limit=40)
    assert len(capped.groups) == 40
    assert capped.persons == again.persons  # seeded by the window
    np.testing.assert_array_equal(capped.x, again.x)
    assert set(capped.persons) < set(everyone)
    # each drawn person's request is the one the whole window made for them
    rows = {p: n for n, p in enumerate(whole.persons)}
    starts = np.concatenate([[0], np.cumsum(whole.groups)])
    first = rows[capped.persons[0]]
    np.testing.assert_array_equal(
        capped.x[: capped.groups[0]], whole.x[starts[first] : starts[first + 1]]
    )
    # drawn evenly: the sample spans the window's people, not its first 40
    ranks = sorted(everyone.index(p) for p in capped.persons)
    assert ranks[-1] > 40 and ranks[0] < len(everyone) - 40
    # a limit above the window's people asks everyone
    assert build_training_set(*given, require_positive=False, limit=10_000).persons == whole.persons
    # the limit counts requests made: people who did nothing in the window (asked
    # here by name) make none and do not count
    asked = list(range(len(log.persons)))
    made = build_training_set(*given, persons=asked)
    assert 40 < len(made.groups) < len(asked)
    some = build_training_set(*given, persons=asked, limit=40)
    assert len(some.groups) == 40
    order = {p: n for n, p in enumerate(made.persons)}
    assert [order[p] for p in some.persons] == sorted(order[p] for p in some.persons)
