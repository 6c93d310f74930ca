"""Coherence of product slates: the measures' invariants over generated slates."""

from __future__ import annotations

import math
import statistics

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from shelfwise.evaluation.sessions import Prefixes
from shelfwise.monitoring.coherence import ServedSlate, coherence

IDS = [f"P{i}" for i in range(8)]
CATEGORY = {p: ("a", "b", "c")[i % 3] for i, p in enumerate(IDS)}
PRICE: dict[str, float | None] = {p: (None if i == 7 else 5.0 * (i + 1)) for i, p in enumerate(IDS)}
KINDS = ("similar", "for_you", "session", "goes_with", "popular")

slates = st.lists(
    st.builds(
        ServedSlate,
        anchor=st.sampled_from(IDS),
        items=st.lists(
            st.builds(
                lambda pid, kinds: {
                    "product_id": pid,
                    "reasons": [{"kind": k} for k in kinds],
                },
                st.sampled_from(IDS),
                st.lists(st.sampled_from(KINDS), max_size=2),
            ),
            max_size=5,
            unique_by=lambda it: it["product_id"],
        ),
        personal=st.booleans(),
    ),
    max_size=12,
)


@given(slates, st.randoms(use_true_random=False))
def test_the_measures_hold_whatever_the_slates(got: list[ServedSlate], rnd: object) -> None:
    c = coherence(got, CATEGORY, PRICE, len(IDS))
    shuffled = list(got)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = coherence(shuffled, CATEGORY, PRICE, len(IDS))
    assert (again.same_category, again.top_item_share, again.coverage) == (
        c.same_category,
        c.top_item_share,
        c.coverage,
    )
    items = [(s, str(it["product_id"])) for s in got for it in s.items]
    assert c.slates == len(got) and c.items_shown == len(items)
    assert c.empty_slates == sum(not s.items for s in got)
    same = sum(CATEGORY[pid] == CATEGORY[s.anchor] for s, pid in items)
    assert c.same_category == (same / len(items) if items else 0.0)
    # the top item is in exactly that share of slates, and no item is in more
    per_item = {p: sum(any(it["product_id"] == p for it in s.items) for s in got) for p in IDS}
    if items:
        # of items tied on it, the first id
        assert c.top_item == min(p for p, n in per_item.items() if n == max(per_item.values()))
        assert (
            c.top_item_share == per_item[c.top_item] / len(got) == max(per_item.values()) / len(got)
        )
    else:
        assert c.top_item is None and c.top_item_share == 0.0
    assert c.coverage == len({pid for _, pid in items}) / len(IDS)
    ratios = [
        PRICE[pid] / PRICE[s.anchor]  # type: ignore[operator]
        for s, pid in items
        if PRICE[pid] and PRICE[s.anchor]
    ]
    if ratios:
        assert c.median_price_ratio == statistics.median(ratios)
    else:
        assert math.isnan(c.median_price_ratio)
        assert c.as_dict()["median_price_ratio"] is None
    # a personal reason is a false claim only on a slate asked without a person
    claims = sum(
        r["kind"] in ("for_you", "session")
        for s in got
        if not s.personal
        for it in s.items
        for r in it["reasons"]
    )
    assert c.personal_claims == claims


def test_a_substitute_module_a_merchant_would_keep() -> None:
    """Two soap pages, each with a same-category item at about its price and one
    dearer cross-category item."""
    category = {"SOAP": "bath", "TRAY": "bath", "CUP": "bath", "LAMP": "light"}
    price = {"SOAP": 10.0, "TRAY": 11.0, "CUP": 9.0, "LAMP": 50.0}
    got = [
        ServedSlate("SOAP", [{"product_id": "TRAY"}, {"product_id": "LAMP"}]),
        ServedSlate("TRAY", [{"product_id": "CUP"}]),
    ]
    c = coherence(got, category, price, 4)
    assert c.same_category == 2 / 3
    assert c.median_price_ratio == 1.1  # 11/10, 50/10, 9/11
    assert c.top_item_share == 0.5 and c.coverage == 0.75 and c.personal_claims == 0


def test_the_session_report_s_slates_are_judged_against_the_page_s_item() -> None:
    """Session protocol slates: prediction j's page shows its last view; the slate is
    the served list's ids (-1: an empty slot)."""
    from shelfwise.evaluation.session_protocol import slate_coherence
    from tests.unit.rules.catalog import product, snapshot_of
    from tests.unit.test_session_peers import sessions

    snap = snapshot_of(
        [
            product("A", category_path="bath", price=10.0),
            product("B", category_path="bath", price=20.0),
            product("C", category_path="kitchen", price=5.0),
            product("D", category_path="kitchen", price=40.0),
        ]
    )
    # one session A -> C -> B: two predictions, on A's page and on C's
    p = Prefixes.of(sessions([[0, 2, 1]], [50.0], n_items=4))
    lists = np.array([[1, 3, -1], [3, 0, 1]], dtype=np.int64)
    got = slate_coherence(lists, p, snap)
    assert got["slates"] == 2 and got["items_shown"] == 5
    # A's page: B (bath) yes, D no; C's page: D (kitchen) yes, A and B no
    assert got["same_category"] == 2 / 5
    # 20/10, 40/10, 40/5, 10/5, 20/5 -> median 4
    assert got["median_price_ratio"] == 4.0
    assert (got["top_item"], got["top_item_share"]) == ("B", 1.0)  # B and D tie: the first id
    assert got["coverage"] == 0.75 and "personal_claims" not in got  # A, B, D of four
