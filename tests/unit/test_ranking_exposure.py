"""The exposure cap (``ranking.exposure``): calibrated floors keep every item within its
share of the anchors' slates, and serving demotes below a floor, never removes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.ranking.exposure import (
    NEVER,
    AnchorCandidates,
    ExposureFloors,
    Floors,
    calibrate,
    demoted,
    served_order,
    slates,
    standing,
)


def _anchors(rows: list[dict[int, float]]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (np.array(list(r), dtype=np.int64), np.array(list(r.values()), dtype=np.float64))
        for r in rows
    ]


def test_a_best_seller_keeps_the_slates_where_it_leads_most() -> None:
    # item 0 is first at all 10 anchors; the best item left out (the (k+1)-th) is
    # 0.5 + a / 100 at anchor a, so item 0 leads it most at anchors 0, 1, 2
    rows = [{0: 1.0, 1 + a: 0.5 + a / 100, 50 + a: 0.1} for a in range(10)]
    floors = calibrate(_anchors(rows), k=1, cap=0.3)
    served = slates(_anchors(rows), 1, floors)
    assert [int(s[0]) for s in served] == [0, 0, 0, *[1 + a for a in range(3, 10)]]
    # just above its margin at anchor 3 (1.0 / 0.53), the best it lost
    assert floors == {0: np.nextafter(1.0 / 0.53, np.inf)}
    floor = Floors(_dense(floors, 60), 1)
    assert demoted(np.array([0, 4, 53]), np.array([1.0, 0.53, 0.1]), floor).tolist() == [
        True,
        False,
        False,
    ]
    assert not demoted(np.array([0, 3, 52]), np.array([1.0, 0.52, 0.1]), floor).any()


def test_a_slot_a_variant_leaves_goes_to_the_next_item_and_counts() -> None:
    # items 1 and 2 are variants of one group: served, only the better stays, and the
    # slot goes to item 3 (at every anchor: 3 is in each slate); item 9 is a variant
    # of the viewed product, never served
    rows = [{9: 2.0, 1: 1.0, 2: 0.9, 3: 0.5, 10 + a: 0.4, 30 + a: 0.1} for a in range(10)]
    groups = np.array([NEVER, 7, 7, 0, 0, 0])
    anchors = [AnchorCandidates(items, exp, groups) for items, exp in _anchors(rows)]
    assert [s.tolist() for s in slates(anchors, 2, {})] == [[1, 3]] * 10
    floors = calibrate(anchors, k=2, cap=0.5)
    served = slates(anchors, 2, floors)
    counts = Counter(int(i) for s in served for i in s)
    assert max(counts.values()) <= 5, counts
    assert 9 not in counts and {1, 3} <= set(floors)
    # without the groups the calibration counts 9 (never served) and caps it
    assert 9 in calibrate(_anchors(rows), k=2, cap=0.5)


def test_each_clock_is_capped_on_its_own() -> None:
    # item 0 leads at every anchor at clock 0 and at none at clock 1: at clock 0 it
    # keeps 3 of 10 slates (30%), not 6 of the 20 slates of both clocks
    early = [{0: 1.0, 1 + a: 0.5 + a / 100, 50 + a: 0.1} for a in range(10)]
    late = [{0: 0.05, 1 + a: 0.5 + a / 100, 50 + a: 0.1} for a in range(10)]
    anchors = [
        *(AnchorCandidates(i, e, None, 0) for i, e in _anchors(early)),
        *(AnchorCandidates(i, e, None, 1) for i, e in _anchors(late)),
    ]
    floors = calibrate(anchors, k=1, cap=0.3)
    assert floors == {0: np.nextafter(1.0 / 0.53, np.inf)}
    served = slates(anchors[:10], 1, floors)
    assert sum(int(s[0]) == 0 for s in served) == 3
    # one pool of 20 slates would let it keep 6 of clock 0's 10
    pooled = calibrate(_anchors(early + late), k=1, cap=0.3)
    assert pooled == {0: np.nextafter(1.0 / 0.56, np.inf)}


def test_a_slate_with_no_more_than_k_candidates_keeps_them_all() -> None:
    rows = [{0: 1.0, 1 + a: 0.5} for a in range(10)]
    assert calibrate(_anchors(rows), k=2, cap=0.1) == {}
    floors = Floors(np.full(20, 5.0), 2)
    assert not demoted(np.array([0, 3]), np.array([1.0, 0.5]), floors).any()


def test_served_order_puts_every_demoted_item_last() -> None:
    expected = np.array([0.9, 0.8, 0.7, 0.1])
    demote = np.array([True, False, True, False])
    assert served_order(expected, demote).tolist() == [1, 3, 0, 2]


def test_a_short_slate_fills_with_the_demoted_least_held_back_first() -> None:
    # margins over the best left out of k=2 (0.7): 0.9/0.7 and 0.8/0.7, both under
    # their floors; item 0 is the further under its floor (the more over its share)
    items = np.array([0, 1, 2, 3])
    expected = np.array([0.9, 0.8, 0.7, 0.1])
    floors = Floors(np.array([100.0, 2.0, 0.0, 0.0]), 2)
    demote = demoted(items, expected, floors)
    assert demote.tolist() == [True, True, False, False]
    stand = standing(items, expected, floors)
    assert stand[:2] == pytest.approx([0.9 / 0.7 / 100.0, 0.8 / 0.7 / 2.0])
    assert np.isinf(stand[2:]).all()
    assert served_order(expected, demote, stand).tolist() == [2, 3, 1, 0]
    assert served_order(expected, demote).tolist() == [2, 3, 0, 1]


def test_no_cap_needed_means_no_floor() -> None:
    rows = [{a: 1.0, 100 + a: 0.5} for a in range(20)]
    assert calibrate(_anchors(rows), k=2, cap=0.05) == {}


def test_floors_round_trip_and_map_to_the_catalog(tmp_path: Path) -> None:
    got = ExposureFloors("product_similar", 0.03, 10, 200, {"P2": 0.75, "GONE": 0.5})
    got.save(tmp_path)
    back = ExposureFloors.load(tmp_path, "product_similar")
    assert back == got
    assert ExposureFloors.load(tmp_path, "cart") is None
    assert back is not None
    dense = back.dense(["P1", "P2", "P3"])
    assert dense.values.tolist() == [0.0, 0.75, 0.0] and dense.k == 10


def _dense(floors: dict[int, float], n: int) -> np.ndarray:
    out = np.zeros(n)
    for i, f in floors.items():
        out[i] = f
    return out


@st.composite
def anchor_sets(draw: st.DrawFn) -> tuple[list[dict[int, float]], int, float]:
    """Anchors whose candidates come from a small shared pool (so a few items want
    every slate), each with ``k`` items of its own (alternatives no cap removes)."""
    n = draw(st.integers(4, 30))
    k = draw(st.integers(1, 4))
    cap = draw(st.floats(0.05, 0.6))
    shared = draw(st.integers(1, 8))
    value = st.floats(0.01, 1.0, allow_nan=False)
    rows = []
    for a in range(n):
        row = {
            i: draw(value)
            for i in draw(st.lists(st.integers(0, shared - 1), max_size=shared, unique=True))
        }
        row |= {1000 + a * k + j: draw(value) for j in range(k)}  # this anchor's own
        rows.append(row)
    return rows, k, max(cap, 1.0 / n)


@settings(max_examples=200, deadline=None)
@given(case=anchor_sets())
def test_with_enough_alternatives_no_item_passes_the_cap(
    case: tuple[list[dict[int, float]], int, float],
) -> None:
    rows, k, cap = case
    anchors = _anchors(rows)
    floors = calibrate(anchors, k, cap)
    served = slates(anchors, k, floors)
    counts = Counter(int(i) for s in served for i in s.tolist())
    limit = int(np.floor(cap * len(rows) + 1e-9))
    assert max(counts.values()) <= limit
    assert all(len(s) == min(k, len(r)) for s, r in zip(served, rows, strict=True))
    # nothing is demoted that did not need it: without floors some item passes the cap
    if floors:
        plain = Counter(int(i) for s in slates(anchors, k, {}) for i in s.tolist())
        assert max(plain.values()) > limit


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.dictionaries(st.integers(0, 5), st.floats(0.01, 1.0), min_size=1, max_size=6),
        min_size=1,
        max_size=20,
    ),
    k=st.integers(1, 4),
    cap=st.floats(0.01, 1.0),
)
def test_a_demoted_item_only_fills_a_slate_that_lacks_others(
    rows: list[dict[int, float]], k: int, cap: float
) -> None:
    anchors = _anchors(rows)
    floors = calibrate(anchors, k, cap)
    dense = Floors(_dense(floors, 6), k)
    limit = int(np.floor(cap * len(rows) + 1e-9))
    held: Counter[int] = Counter()
    for (items, expected), s in zip(anchors, slates(anchors, k, floors), strict=True):
        if len(items) <= k:
            continue  # nothing competes: every candidate is served, none held
        down = demoted(items, expected, dense)
        above = int((~down).sum())
        for i in s.tolist():
            if down[items.tolist().index(i)]:
                assert above < k  # a fill: fewer than k items above their floors
            else:
                held[i] += 1
    assert all(c <= limit for c in held.values())
