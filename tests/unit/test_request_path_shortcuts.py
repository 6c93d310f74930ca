"""The learned request path's shortcuts give what the long way gives (issue 18).

Each shortcut skips work a new context paid for (a catalog-wide sum for one
anchor, ``np.unique``'s sort, a second safety pass for a pinned product, a sort per
served row, contribution dicts nobody reads, the candidate columns of items the rules
took out); none may change a slate.
"""

from __future__ import annotations

import numpy as np

from shelfwise.candidates import neighbours
from shelfwise.candidates.base import Proposal, Reason
from shelfwise.candidates.neighbours import NeighbourTable, gather
from shelfwise.ranking.candidates import CandidateSet, unique_inverse
from shelfwise.ranking.explain import TraceContributions, trace_contributions
from shelfwise.ranking.features import FeatureSpec
from shelfwise.rules import Rulebook, parse_rule
from tests.unit.rules.catalog import PREMIUM_DECOR, STORE, ctx, snapshot_of


def _table(rows: list[list[int]], scores: list[list[float]]) -> NeighbourTable:
    return NeighbourTable(np.array(rows, dtype=np.int32), np.array(scores, dtype=np.float32))


def test_one_anchor_is_gathered_from_its_row() -> None:
    table = _table(
        [[3, 1, 0, -1], [0, 2, -1, -1], [1, 1, -1, -1], [0, -1, -1, -1]],
        [[0.5, 0.25, 0.75, 0.0], [1.0, 2.0, 0.0, 0.0], [0.5, 0.25, 0.0, 0.0], [1.0, 0, 0, 0]],
    )
    got = gather(table, np.array([0]), np.array([2.0]), np.array([3, 9], dtype=np.int64))
    # the anchor itself (0) and the excluded 3 never come out; items ascending
    assert got.items.tolist() == [1] and got.scores.tolist() == [0.5]
    assert got.anchors.tolist() == [0] and got.scores.dtype == np.float64
    # a row naming an item twice is summed (the catalog-wide path)
    twice = gather(table, np.array([2]), np.array([1.0]))
    assert twice.items.tolist() == [1] and twice.scores.tolist() == [0.75]


def test_one_anchor_gathers_what_the_catalog_wide_sum_gives() -> None:
    rng = np.random.default_rng(18)
    shortcut = neighbours._gather_one
    for t in range(400):
        n, width = int(rng.integers(2, 40)), int(rng.integers(1, 10))
        rows = np.full((n, width), -1, dtype=np.int32)
        for r in range(n):
            picked = rng.permutation(n)[:width]
            rows[r, : len(picked)] = picked
        rows[rng.random((n, width)) < 0.2] = -1
        scores = rng.normal(size=(n, width)).astype(np.float32)
        table = NeighbourTable(rows, scores)
        anchor = np.array([int(rng.integers(0, n))])
        weight = np.array([float(rng.choice([1.0, 0.3, 2.5, -1.0]))])
        banned = np.unique(rng.integers(0, n + 3, int(rng.integers(0, 5)))).astype(np.int64)
        fast = gather(table, anchor, weight, banned)
        neighbours._gather_one = lambda *_: None  # type: ignore[assignment,return-value]
        try:
            slow = gather(table, anchor, weight, banned)
        finally:
            neighbours._gather_one = shortcut
        assert fast.items.tolist() == slow.items.tolist(), t
        assert fast.scores.tolist() == slow.scores.tolist(), t
        assert fast.anchors.tolist() == slow.anchors.tolist(), t


def test_unique_inverse_is_numpys() -> None:
    rng = np.random.default_rng(7)
    for hi in (1, 5, 300, 2_000, 100_000):  # the marks up to a few thousand, else the sort
        for n in (0, 1, 17, 600):
            values = rng.integers(0, hi, n).astype(np.int64)
            items, inverse = unique_inverse(values)
            want_items, want_inverse = np.unique(values, return_inverse=True)
            assert items.tolist() == want_items.tolist()
            assert inverse.tolist() == want_inverse.tolist()
            assert items.dtype == want_items.dtype and inverse.dtype == want_inverse.dtype


def _proposal(source: str, items: list[int], scores: list[float]) -> Proposal:
    reasons = tuple(Reason(source, "similar_to", anchor=i) for i in items)
    return Proposal(source, np.array(items, dtype=np.int64), np.array(scores), reasons)


def _long_way(
    proposals: list[Proposal], sources: tuple[str, ...], items: np.ndarray
) -> CandidateSet:
    """Every proposal's union, then the rows of ``items`` (what serving did before)."""
    cands = CandidateSet.from_proposals(proposals, sources)
    rows = np.minimum(np.searchsorted(cands.items, items), max(len(cands) - 1, 0))
    known = cands.items[rows] == items if len(cands) else np.zeros(len(items), bool)
    return cands.take(rows[known])


def test_the_candidates_of_the_pool_alone_are_the_unions_rows() -> None:
    rng = np.random.default_rng(5)
    sources = ("blend", "a", "b", "c")
    for trial in range(300):
        proposals = []
        for name in sources[: 1 + trial % 4]:
            n = int(rng.integers(0, 40))
            items = rng.choice(120, n, replace=False).astype(np.int64)
            scores = rng.integers(1, 6, n).astype(np.float64)  # ties, in every order ...
            if trial % 3:  # ... or best first, as the sources answer
                scores = np.sort(scores)[::-1].copy()
            proposals.append(
                Proposal(name, items, scores, tuple(Reason(name, "x", int(i)) for i in items))
            )
        pool = rng.choice(150, int(rng.integers(0, 60)), replace=False).astype(np.int64)
        got = CandidateSet.of_items(proposals, sources, pool)
        want = _long_way(proposals, sources, pool)
        assert got.items.tolist() == want.items.tolist()
        np.testing.assert_array_equal(got.scores, want.scores)
        np.testing.assert_array_equal(got.ranks, want.ranks)
        np.testing.assert_array_equal(got.reason_at, want.reason_at)
        for c, prop in enumerate(proposals):  # ranks by their definition, too
            for row, at in enumerate(got.reason_at[:, c].tolist()):
                if at >= 0:
                    score = prop.scores[at]
                    better = (prop.scores > score).sum() + (prop.scores[:at] == score).sum()
                    assert got.ranks[row, c] == 1 + better
        assert got.sources == want.sources
        assert [(p.source, len(p.items)) for p in got.proposals] == [
            (p.source, len(p.items)) for p in want.proposals
        ]


def test_ranks_within_a_proposal_break_ties_by_position() -> None:
    p = Proposal(
        "a", np.array([7, 3, 5, 9]), np.array([2.0, 3.0, 2.0, 1.0]), (Reason("a", "x"),) * 4
    )
    q = Proposal("b", np.array([3, 1]), np.array([1.0, 1.0]), (Reason("b", "x"),) * 2)
    cands = CandidateSet.from_proposals([p, q], ("a", "b"))
    assert cands.items.tolist() == [1, 3, 5, 7, 9]
    assert np.nan_to_num(cands.ranks, nan=0).tolist() == [[0, 2], [1, 1], [3, 0], [2, 0], [4, 0]]
    pool = CandidateSet.of_items([p, q], ("a", "b"), np.array([9, 1, 4, 3]))
    assert pool.items.tolist() == [9, 1, 3]
    assert np.nan_to_num(pool.ranks, nan=0).tolist() == [[4, 0], [0, 2], [1, 1]]


def test_the_reasons_of_several_rows_are_each_rows_own() -> None:
    cands = CandidateSet.from_proposals(
        [
            _proposal("content", [4, 2, 7, 1], [0.9, 0.5, 0.5, 0.1]),
            _proposal("blend", [7, 4, 9], [3.0, 2.0, 1.0]),
            _proposal("popular", [1, 7, 2, 4], [5.0, 4.0, 4.0, 1.0]),
        ],
        ("content", "popular", "blend"),
    )
    rows = np.array([3, 0, 2, 4, 1], dtype=np.int64)  # any order, one row twice below
    want = [cands.reasons_of(int(r)) for r in rows]
    assert cands.reasons_at(rows) == want
    # the chain first, then best-ranked first: item 7 is popular's 2nd and content's
    # 3rd (tied with 2, which content named first)
    seven = cands.reasons_at(np.flatnonzero(cands.items == 7))[0]
    assert [r.source for r in seven] == ["blend", "popular", "content"]
    assert cands.reasons_at(np.array([0, 0])) == [want[1], want[1]]


def test_trace_contributions_are_made_when_read_and_equal_the_eager_ones() -> None:
    spec = FeatureSpec.of(("content",))
    rows = np.random.default_rng(3).normal(size=(3, len(spec.names) + 1))
    lazy = TraceContributions(rows, spec)
    eager = trace_contributions(rows, spec)
    assert len(lazy) == 3 and lazy == eager
    assert lazy[1] == eager[1] and lazy[1:] == eager[1:]
    assert list(lazy) == eager and lazy[0]["bias"] == round(float(rows[0, -1]), 6)


PIN_HOOK = {"id": "pin-hook", "type": "pin", "reason": "hook", "product_id": "hook", "position": 1}


def test_a_pins_verdict_from_the_candidates_pass_is_that_requests_only() -> None:
    snap = snapshot_of(STORE)
    book = Rulebook([parse_rule(PREMIUM_DECOR), parse_rule(PIN_HOOK)], snap, version=1)
    pool = np.array([snap.index_of(p) for p in ("vase", "rug", "frame", "bowl")])
    premium = ctx(context_items=(snap.index_of("lamp"),))
    kitchen = ctx(context_items=(snap.index_of("bowl"),))

    def served(c: object, checked_first: bool, rulebook: Rulebook = book) -> list[str]:
        if checked_first:  # the safety stage's pass over the candidates
            rulebook.apply_safety(c, pool, np.ones(len(pool)))  # type: ignore[arg-type]
        out = rulebook.arrange(c, pool[:2], np.zeros(2), 3)  # type: ignore[arg-type]
        return [snap.ids[i] for i in out.items.tolist()] + [
            f"{d.rule_id}:{d.action}:{d.reason}" for d in out.trace
        ]

    blocked = ["vase", "rug", "pin-hook:pin_blocked:hook (removed by premium-decor-no-parts)"]
    pinned = ["hook", "vase", "rug", "pin-hook:pinned:hook (position 1)"]
    assert served(premium, True) == blocked
    assert served(kitchen, True) == pinned
    # The verdicts kept are the premium page's: another request (another context
    # object, even an equal one) is checked on its own.
    assert served(premium, True) == blocked
    assert served(kitchen, False) == pinned
    assert served(ctx(context_items=(snap.index_of("lamp"),)), False) == blocked
    fresh = Rulebook([parse_rule(PREMIUM_DECOR), parse_rule(PIN_HOOK)], snap, version=1)
    assert served(kitchen, False, fresh) == pinned and served(premium, False, fresh) == blocked
