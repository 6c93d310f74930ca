"""The session neighbourhood on tiny sessions whose scores are written out."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from shelfwise.candidates.base import RecContext, SessionEvent
from shelfwise.candidates.config import SessionKNNConfig
from shelfwise.candidates.log import InteractionLog, Row
from shelfwise.candidates.session_knn import SessionIndex, SessionKNNSource, fit_sessions
from tests.unit.candidates_fixtures import T0

A, B, C, D, E, F = range(6)
# Most recent first: s0 = A B C, s1 = D A E, s2 = F D.
INDEX = SessionIndex.of([np.array(s) for s in ([A, B, C], [D, A, E], [F, D])], 6)
FLAT = SessionKNNConfig(position_decay=1.0, item_decay=1.0, sample=10, neighbours=10)


def ctx(*items: int, exclude: frozenset[int] = frozenset()) -> RecContext:
    events = tuple(
        SessionEvent(i, "product_view", T0 + timedelta(minutes=n)) for n, i in enumerate(items)
    )
    return RecContext("home", T0 + timedelta(hours=1), session=events, exclude=exclude)


def scores(config: SessionKNNConfig, c: RecContext) -> dict[int, float]:
    got = SessionKNNSource(INDEX, config).propose(c, 10)
    return dict(zip(got.items.tolist(), got.scores.tolist(), strict=True))


def test_the_index_lists_each_items_sessions_most_recent_first() -> None:
    assert INDEX.n_sessions == 3
    d = INDEX.item_sessions[INDEX.item_indptr[D] : INDEX.item_indptr[D + 1]]
    assert d.tolist() == [1, 2]


def test_neighbours_vote_with_their_similarity() -> None:
    # A is shared with s0 and s1 (similarity 1 each); A itself is on screen.
    assert scores(FLAT, ctx(A)) == {B: 1.0, C: 1.0, D: 1.0, E: 1.0}
    # D (weight 0.5, one step back) then A (1): s0 = 1, s1 = 1.5, s2 = 0.5.
    got = scores(FLAT.model_copy(update={"position_decay": 0.5}), ctx(D, A))
    assert got == pytest.approx({D: 2.0, E: 1.5, B: 1.0, C: 1.0, F: 0.5})


def test_items_near_the_shared_view_count_most() -> None:
    config = FLAT.model_copy(update={"position_decay": 0.5, "item_decay": 0.5})
    # s1 = D A E: its view of A (seen last) is the anchor: D and E one step away.
    # s2 = F D: D is the anchor; s0 = A B C: A, so C is two steps away.
    got = scores(config, ctx(D, A))
    assert got == pytest.approx({D: 0.75 + 0.5, E: 0.75, B: 0.5, F: 0.25, C: 0.25})
    assert list(got)[:2] == [D, E]


def test_sample_neighbours_and_normalisation() -> None:
    config = FLAT.model_copy(update={"position_decay": 0.5})
    # Only the most recent session sharing an item is compared.
    assert scores(config.model_copy(update={"sample": 1}), ctx(D, A)) == {B: 1.0, C: 1.0}
    # Only the most similar session (s1, 1.5) votes.
    assert scores(config.model_copy(update={"neighbours": 1}), ctx(D, A)) == {D: 1.5, E: 1.5}
    got = scores(FLAT.model_copy(update={"normalise": True}), ctx(F))
    assert got == pytest.approx({D: 1 / np.sqrt(2)})


def test_no_session_no_proposal_and_exclusions_hold() -> None:
    src = SessionKNNSource(INDEX, FLAT)
    assert len(src.propose(ctx(), 10).items) == 0
    assert scores(FLAT, ctx(A, exclude=frozenset({B, D}))) == {C: 1.0, E: 1.0}
    got = src.propose(ctx(A), 2)
    assert got.items.tolist() == [B, C]  # ties: lower index first
    assert {(r.source, r.kind, r.anchor) for r in got.reasons} == {
        ("session_knn", "also_viewed", None)
    }


def test_fit_keeps_recent_sessions_of_two_items_with_repeats_collapsed() -> None:
    def view(basket: str, item: str, minute: int) -> Row:
        return Row("p", item, "product_view", T0 + timedelta(minutes=minute), basket)

    rows = [
        view("old", "A", 0), view("old", "B", 1),
        view("new", "C", 10), view("new", "C", 11), view("new", "D", 12),
        view("one", "E", 20), view("one", "E", 21),
    ]  # fmt: skip
    log = InteractionLog.from_rows(rows, items=("A", "B", "C", "D", "E"))
    index = fit_sessions(log, SessionKNNConfig())
    seqs = [index.items[index.indptr[s] : index.indptr[s + 1]].tolist() for s in range(2)]
    assert seqs == [[C, D], [A, B]]  # "one" repeats E only: not a session of two items
    assert fit_sessions(log, SessionKNNConfig(max_sessions=1)).n_sessions == 1


def test_remap_follows_a_new_vocabulary() -> None:
    # Item A disappears, the others move up by one.
    to_new = np.array([-1, 0, 1, 2, 3, 4], dtype=np.int64)
    moved = INDEX.remap(to_new, 5)
    seqs = [moved.items[moved.indptr[s] : moved.indptr[s + 1]].tolist() for s in range(3)]
    assert seqs == [[0, 1], [2, 3], [4, 2]]
