"""Invariants for any catalog, any rulebook and any request (hypothesis).

The oracle is the plain interpreter (``matches`` on products), independent of
the numpy masks the rulebook is compiled to.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shelfwise.catalog import Product
from shelfwise.rules import Rulebook, matches, parse_rule
from shelfwise.rules.model import CapRule, DedupeVariantsRule, PinRule, Rule
from tests.unit.rules.catalog import NOW, ctx, product, snapshot_of

BRANDS = ["Acme", "Lumo", "Weave", None]
CATS = ["decor/premium/vases", "decor/parts", "home/utility", "kitchen", None]
TAGS = ["utility", "replacement-part", "gift"]

products = st.builds(
    lambda i, brand, cat, tags, price, stock, cost, sla, group: product(
        f"p{i}",
        brand=brand,
        category_path=cat,
        tags=tags,
        price=price,
        stock_qty=stock,
        cost=None if cost is None else price * cost,
        shipping_sla_days=sla,
        variant_group=group,
    ),
    st.just(0),
    st.sampled_from(BRANDS),
    st.sampled_from(CATS),
    st.lists(st.sampled_from(TAGS), max_size=2),
    st.sampled_from([4.0, 10.0, 19.0, 20.0, 25.0, 39.0, 41.0, 80.0, 200.0]),
    st.one_of(st.none(), st.integers(0, 4)),
    st.one_of(st.none(), st.floats(0.1, 0.95)),
    st.one_of(st.none(), st.integers(0, 20)),
    st.sampled_from([None, "g1", "g2"]),
)

leaf = st.one_of(
    st.builds(lambda b: {"attr": "brand", "value": b}, st.sampled_from(BRANDS[:3])),
    st.builds(
        lambda c: {"attr": "category", "op": "prefix", "value": c},
        st.sampled_from(["decor", "home", "kitchen"]),
    ),
    st.builds(lambda t: {"attr": "tags", "op": "contains", "value": t}, st.sampled_from(TAGS)),
    st.builds(
        lambda op, v: {"attr": "price", "op": op, "value": v},
        st.sampled_from(["lt", "ge"]),
        st.integers(1, 500),
    ),
    st.builds(lambda v: {"attr": "sla_days", "op": "gt", "value": v}, st.integers(0, 20)),
)
predicate = st.one_of(leaf, st.builds(lambda a, b: {"or": [a, {"not": b}]}, leaf, leaf))
scope = st.one_of(
    st.just({}), st.builds(lambda p: {"placements": [p]}, st.sampled_from(["home", "product_page"]))
)
window = st.one_of(
    st.none(),
    st.builds(
        lambda a, b: {
            "start": (NOW + timedelta(days=a)).isoformat(),
            "end": (NOW + timedelta(days=a + b)).isoformat(),
        },
        st.integers(-3, 2),
        st.integers(1, 4),
    ),
)


def _rule(kind: str, pred: Any, pred2: Any, n: int, extra: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "exclude": {"when": pred},
        "suppress": {"attribute": "brand", "values": ["Lumo"]},
        "pairing": {"context": pred2, "forbid": pred},
        "price_relation": {"min_ratio": 0.5, "max_ratio": 2.0},
        "margin_floor": {"min_band": "medium", "unknown": "remove"},
        "require_in_stock": {"min_qty": 2},
        "boost": {"when": pred, "multiply": 5.0, "add": 1.0},
        "bury": {"when": pred, "multiply": 0.5},
        "dedupe_variants": {},
        "cap": {"attribute": "brand", "max_items": 1 + n % 2},
        "pin": {"product_id": f"p{n}", "position": 1 + n % 3},
    }[kind]
    return {"type": kind, "reason": f"{kind} rule", **body, **extra}


KINDS = ["exclude", "suppress", "pairing", "price_relation", "margin_floor", "require_in_stock"]
KINDS += ["boost", "bury", "dedupe_variants", "cap", "pin"]
rule_dict = st.builds(
    lambda pred, pred2, n, sc, win: (pred, pred2, n, {"scope": sc, "window": win}),
    predicate,
    predicate,
    st.integers(0, 11),
    scope,
    window,
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Product], list[Rule], Any, np.ndarray, np.ndarray, int]:
    raw = draw(st.lists(products, min_size=2, max_size=12))
    catalog = [p.model_copy(update={"product_id": f"p{i}"}) for i, p in enumerate(raw)]
    rules = []
    for kind in KINDS:  # each type present in about half the examples
        for j in range(draw(st.integers(0, 2))):
            pred, pred2, m, extra = draw(rule_dict)
            rules.append(parse_rule({**_rule(kind, pred, pred2, m, extra), "id": f"{kind}-{j}"}))
    n = len(catalog)
    placement = draw(st.sampled_from(["home", "product_page"]))
    viewed = draw(st.one_of(st.tuples(st.integers(0, n - 1)), st.just(())))
    cart = tuple(draw(st.lists(st.integers(0, n - 1), max_size=2)))
    c = ctx(
        placement,
        context_items=viewed,
        cart_items=cart,
        now=NOW + timedelta(days=draw(st.integers(-1, 5))),
    )
    items = np.array(draw(st.permutations(range(n))), dtype=np.int64)[
        : draw(st.integers(n // 2, n))
    ]
    scores = np.array(draw(st.lists(st.floats(0, 1), min_size=len(items), max_size=len(items))))
    return catalog, rules, c, items, scores, draw(st.integers(1, 6))


def in_scope(rule: Rule, c: Any) -> bool:
    placements = rule.scope.placements
    return rule.active_at(c.now) and (not placements or c.placement in placements)


def oracle_removes(rule: Rule, p: Product, c: Any, catalog: list[Product]) -> bool:
    """Would this safety rule remove product ``p``? (plain interpretation)"""
    kind = rule.type
    if kind == "exclude":
        return matches(rule.when, p)  # type: ignore[union-attr]
    if kind == "suppress":
        return (p.brand or "").lower() == "lumo"
    if kind == "pairing":
        around = [catalog[i] for i in (*c.context_items, *c.cart_items)]
        return any(matches(rule.context, a) for a in around) and matches(rule.forbid, p)  # type: ignore[union-attr,arg-type]
    if kind == "price_relation":
        if not c.context_items:
            return False
        anchor = catalog[c.context_items[0]].price
        return not (0.5 * anchor <= p.price <= 2.0 * anchor)  # type: ignore[operator]
    if kind == "margin_floor":
        return p.margin_band not in ("medium", "high")
    if kind == "require_in_stock":
        return not p.is_available or (p.stock_qty is not None and p.stock_qty < 2)
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_safety_removes_every_forbidden_item_and_traces_each_removal(case: Any) -> None:
    catalog, rules, c, items, scores, _ = case
    snap = snapshot_of(catalog)
    out = Rulebook(rules, snap).apply_safety(c, items, scores)
    survivors = set(out.items.tolist())
    assert survivors <= set(items.tolist())
    for i in survivors:
        p = catalog[i]
        assert p.is_available  # the built-in or a stored stock rule always applies
        for rule in rules:
            if in_scope(rule, c):
                assert not oracle_removes(rule, p, c, catalog), (rule.id, p.product_id)
    removed = [d for d in out.trace if d.action == "removed"]
    assert sorted(d.item for d in removed) == sorted(set(items.tolist()) - survivors)
    known = {r.id for r in rules} | {"builtin.in-stock"}
    assert all(d.rule_id in known for d in out.trace)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_boosts_never_re_add_and_evaluation_is_deterministic(case: Any) -> None:
    catalog, rules, c, items, scores, k = case
    snap = snapshot_of(catalog)
    first = Rulebook(rules, snap).apply_safety(c, items, scores)
    plain = Rulebook(rules, snap).apply_safety(c, items, scores, boost=False)
    again = Rulebook(list(reversed(rules)), snap).apply_safety(c, items, scores)
    assert first.items.tolist() == plain.items.tolist() == again.items.tolist()
    assert first.scores.tolist() == again.scores.tolist() and first.trace == again.trace
    order = np.argsort(-first.scores, kind="stable")
    a1 = Rulebook(rules, snap).arrange(c, first.items[order], first.scores[order], k)
    a2 = Rulebook(list(reversed(rules)), snap).arrange(
        c, first.items[order], first.scores[order], k
    )
    assert a1.items.tolist() == a2.items.tolist() and a1.trace == a2.trace


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_arrangement_holds_dedupe_caps_and_k(case: Any) -> None:
    catalog, rules, c, items, scores, k = case
    snap = snapshot_of(catalog)
    book = Rulebook(rules, snap)
    safe = book.apply_safety(c, items, scores)
    out = book.arrange(c, safe.items, safe.scores, k)
    slate = out.items.tolist()
    active = [r for r in rules if in_scope(r, c)]
    pinned = {d.item for d in out.trace if d.action == "pinned"}
    assert len(slate) <= k and len(set(slate)) == len(slate)
    assert set(slate) <= set(safe.items.tolist()) | pinned
    for i in pinned:  # a pinned item passed the safety rules on its own
        assert len(book.apply_safety(c, np.array([i]), np.zeros(1)).items) == 1
    if any(isinstance(r, DedupeVariantsRule) for r in active):
        groups = [catalog[i].variant_group for i in slate if catalog[i].variant_group]
        assert len(groups) == len(set(groups))
    for cap in (r for r in active if isinstance(r, CapRule)):
        for brand in {catalog[i].brand for i in slate if catalog[i].brand}:
            shown = [i for i in slate if catalog[i].brand == brand]
            pins = [i for i in shown if i in pinned]
            assert len(shown) <= max(cap.max_items, len(pins))
    pins_ok = [r for r in active if isinstance(r, PinRule)]
    assert len(pinned) <= len(pins_ok)


DROPPING = {"removed", "deduped", "capped"}  # what the trace counts as drops


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_trace_never_contradicts_the_slate(case: Any) -> None:
    """A served item is never traced as dropped or as a blocked pin, a dropped item is
    dropped once (so drop counts count items), and every item a rule pinned is served."""
    catalog, rules, c, items, scores, k = case
    book = Rulebook(rules, snapshot_of(catalog))
    safe = book.apply_safety(c, items, scores)
    out = book.arrange(c, safe.items, safe.scores, k)
    served = set(out.items.tolist())
    decisions = [*safe.trace, *out.trace]
    dropped = [d.item for d in decisions if d.action in DROPPING]
    blocked = {d.item for d in decisions if d.action == "pin_blocked"}
    assert not served & (set(dropped) | blocked), [d for d in decisions if d.item in served]
    assert len(dropped) == len(set(dropped)), [d for d in decisions if d.action in DROPPING]
    assert {d.item for d in out.trace if d.action == "pinned"} <= served
