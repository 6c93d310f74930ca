"""Preview accuracy: the rules' impact preview against the truth, on the simulator.

A simulated store lives ``--history-days`` days; a shelfwise store is set up on that
history (catalog, events, a rulebook with slow-shipping exclusion, a pairing rule and
variant de-duplication, then a bundle with the learned ranker). The next day's
``--sessions`` simulated sessions are served by the real request path (the
``Recommender`` that ``GET /v1/recommendations`` calls, decisions logged with their
traces) on every placement: ``home`` and ``product_similar`` as the shoppers ask,
``product_bought_with`` and ``cart`` for the same requests. The sessions' events
(impressions, clicks, purchases carrying the rec_id) are ingested.

Then, for each draft rule (brand suppressions, exclusions, caps), per placement:

- **preview**: ``Runtime.preview([draft])`` over every logged slate (the replay of
  the served pipeline, ``pipeline/preview.py``): the share of slates it changes;
- **truth**: the rule saved into the store, every logged request served again by
  the same request path (same time, person, viewed item, cart and session), and
  the share of slates that differ from the slate served; the rule deleted again.

Target: the preview within 2 points of the truth on every placement and draft. The
request path's own non-determinism (the same requests served again with no rule
added) is reported too: the truth can be no sharper than that.

Money, per draft: the preview's estimated revenue change (with its 95% interval)
against the true change, the simulator's expected revenue through the rec_ids of
the slates the shoppers were shown (``simulate.slate_attributed_revenue``) with the
draft's slates (the truth's) in place of the served ones. Only the slate the
shopper asked for is shown; the other placements' slates earn nothing either way.
One session in 150 to 300 buys through a shown slate: a run with no such purchase
checks no money and exits 1 (serve more sessions).

    .venv/bin/python benchmarks/preview.py [--products 1000 --people 1000
        --history-days 35 --sessions 600 --seed 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from shelfwise.config import Settings, load_settings
from shelfwise.pipeline import RecommendRequest
from shelfwise.pipeline.preview import MoneyEstimate
from shelfwise.ranking import RankingSettings
from shelfwise.rules.model import RULE, Rule
from shelfwise.runtime import Runtime
from shelfwise.serving.session import SessionRecord
from shelfwise.simulate import (
    SimulationSpec,
    World,
    build_world,
    simulate,
    slate_attributed_revenue,
)
from shelfwise.simulate.policy import RequestContext, Slate
from shelfwise.simulate.replay import Governance, draw_traffic, governed_store, replay_sessions

TARGET_POINTS = 2.0


@dataclass(frozen=True)
class Served:
    """One served request, as the benchmark can serve it again."""

    rec_id: str
    req: RecommendRequest
    now: datetime
    records: tuple[SessionRecord, ...]
    items: tuple[str, ...]


@dataclass
class Recording:
    """A simulator policy serving through the real request path, recording every
    request (and, with ``others``, serving the other placements for the same request
    too: logged, never shown)."""

    runtime: Runtime
    others: bool = True
    name: str = "shelfwise"
    served: list[Served] = field(default_factory=list)
    shown: dict[str, RequestContext] = field(default_factory=dict)  # rec_id -> request

    def serve(self, req: RecommendRequest, now: datetime) -> Served:
        rec = self.runtime.recommender
        records = tuple(rec.sessions.read(req.session)) if req.session else ()
        out = rec.recommend(req, now, records=records)
        got = Served(
            str(out["rec_id"]),
            req,
            now,
            records,
            tuple(str(i["product_id"]) for i in out["items"]),
        )
        self.served.append(got)
        return got

    def recommend(self, ctx: RequestContext) -> Slate:
        base = {
            "person": ctx.customer_id or ctx.anonymous_id,
            "session": ctx.session_id,
            "k": ctx.k,
        }
        item = (ctx.item,) if ctx.item else ()
        name = "product_similar" if ctx.placement == "product_page" else ctx.placement
        shown = self.serve(
            RecommendRequest(placement=name, item=item, cart=ctx.cart, **base), ctx.now
        )
        if item and self.others:
            self.serve(
                RecommendRequest(placement="product_bought_with", item=item, **base), ctx.now
            )
        cart = ctx.cart or item
        if cart and self.others:
            self.serve(RecommendRequest(placement="cart", cart=cart, **base), ctx.now)
        self.shown[shown.rec_id] = ctx
        return Slate(shown.rec_id, shown.items)


def reserve(runtime: Runtime, served: Sequence[Served]) -> dict[str, tuple[str, ...]]:
    """Every request served again by the request path as the rulebook stands now,
    under its logged ``rec_id``: with the exploration draw of the slate it stands for
    (the preview replays that slate with its own draw: the truth must too)."""
    rec = runtime.recommender
    out = {}
    for s in served:
        got = rec.recommend(s.req, s.now, record=False, records=s.records, rec_id=s.rec_id)
        out[s.rec_id] = tuple(str(i["product_id"]) for i in got["items"])
    return out


def changed_share(
    served: Sequence[Served], again: dict[str, tuple[str, ...]]
) -> dict[str, tuple[int, int]]:
    """Per placement: (slates that differ from the served one, slates)."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in served:
        c = out[s.req.placement]
        c[0] += again[s.rec_id] != s.items
        c[1] += 1
    return {p: (c[0], c[1]) for p, c in out.items()}


def drafts(runtime: Runtime, served: Sequence[Served]) -> list[Rule]:
    """Brand suppressions (the brand in most slates, and one in about a quarter of
    them), exclusions (the category in about a third of the slates, the dearest
    items of about a third) and caps (two per brand, three per top category)."""
    snapshot = runtime.snapshot
    brands: Counter[str] = Counter()
    cats: Counter[str] = Counter()
    dearest = []
    for s in served:
        shown = [snapshot.products[snapshot.vocab[pid]] for pid in s.items]
        brands.update({p.brand for p in shown if p.brand})
        cats.update({p.category_path.split("/")[0] for p in shown if p.category_path})
        dearest.append(max((p.price or 0.0 for p in shown), default=0.0))
    n = len(served)

    def near(counts: Counter[str], share: float) -> str:
        return min(counts, key=lambda v: (abs(counts[v] / n - share), v))

    # The price above which about a third of the slates show an item.
    tops = sorted(set(dearest))
    dear = min(tops, key=lambda t: abs(sum(d > t for d in dearest) / n - 0.33))
    bodies: list[dict[str, Any]] = [
        {"type": "suppress", "attribute": "brand", "values": [brands.most_common(1)[0][0]]},
        {"type": "suppress", "attribute": "brand", "values": [near(brands, 0.25)]},
        {
            "type": "exclude",
            "when": {"attr": "category", "op": "prefix", "value": near(cats, 0.33)},
        },
        {"type": "exclude", "when": {"attr": "price", "op": "gt", "value": dear}},
        {"type": "cap", "attribute": "brand", "max_items": 2},
        {"type": "cap", "attribute": "category", "max_items": 3, "depth": 1},
    ]
    return [
        RULE.validate_python({**b, "id": f"draft-{i}", "reason": "preview benchmark"})
        for i, b in enumerate(bodies)
    ]


def describe(rule: Rule) -> str:
    body = rule.model_dump(
        exclude={"id", "version", "enabled", "scope", "window", "priority", "author", "reason"}
    )
    kind = body.pop("type")
    if kind == "suppress":
        return f"suppress brand {body['values'][0]}"
    if kind == "exclude":
        w = body["when"]
        return f"exclude {w['attr']} {w['op']} {w['value']}"
    return f"cap {body['attribute']} at {body['max_items']}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            database_url=args.database_url or f"sqlite:///{Path(tmp) / 'preview.db'}",
            model_dir=Path(tmp) / "models",
        )
        return measure(
            settings,
            SimulationSpec(
                seed=args.seed,
                products=args.products,
                people=args.people,
                days=args.history_days + 1,
            ),
            args.sessions,
        )


def governed_settings(settings: Settings) -> Settings:
    """``settings`` as the preview's store runs: every trace kept, the ranker not compiled."""
    return settings.model_copy(
        update={"ranking": RankingSettings(compile_model=False), "decision_trace": "full"}
    )


def governed_shop(settings: Settings, spec: SimulationSpec) -> tuple[World, Runtime]:
    """The simulated world and a shelfwise store set up on all its days but the last
    (every trace kept; a bundle with the learned ranker, not compiled)."""
    settings = governed_settings(settings)
    world = build_world(spec)
    sim = simulate(spec, world=world, days=spec.days - 1)
    shop = governed_store(lambda: Runtime.open(settings), world, sim.events, Governance())
    assert isinstance(shop, Runtime)
    return world, shop


def measure(settings: Settings, spec: SimulationSpec, sessions: int) -> dict[str, Any]:
    """Set the store up on ``spec``'s history (all days but the last), serve
    ``sessions`` sessions of the last day, then compare previews with the truth."""
    began = time.perf_counter()
    world, shop = governed_shop(settings, spec)
    return measure_on(world, shop, spec, sessions, began)


def measure_on(
    world: World, shop: Runtime, spec: SimulationSpec, sessions: int, began: float
) -> dict[str, Any]:
    """:func:`measure` on a store already set up (``governed_shop``, begun at
    ``began``); closes ``shop``."""
    history_days = spec.days - 1
    try:
        setup = time.perf_counter() - began
        t = time.perf_counter()
        recording = Recording(shop)
        traffic = draw_traffic(world, sessions, spec.seed, history_days, 1)
        played = replay_sessions(world, recording, traffic)
        shop.decisions.flush()
        served = recording.served
        serving = time.perf_counter() - t
        result = compare(shop, world, recording, played.events)
        result["setup_seconds"] = round(setup, 1)
        result["serving_seconds"] = round(serving, 1)
        result["ranker"] = dict(
            Counter(
                (d.trace or {}).get("ranker", {}).get("kind", "?")
                for d in shop.decisions.recent(limit=len(served))
            )
        )
    finally:
        shop.close()
    result["spec"] = {
        "products": spec.products,
        "people": spec.people,
        "history_days": history_days,
        "sessions": sessions,
        "seed": spec.seed,
    }
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result


def compare(
    shop: Runtime, world: World, recording: Recording, events: Sequence[Any]
) -> dict[str, Any]:
    """Preview and truth per draft and placement, the money estimate against the
    simulator's true money, and the request path's own noise.

    The truth is measured before the sessions' ``events`` are ingested: ingestion
    links anonymous ids to customers, so the same request would afterwards be
    served to another person (the preview replays the person logged). The events
    are ingested before the previews, for their money estimates."""
    served = recording.served
    noise = changed_share(served, reserve(shop, served))
    reproduced = _reproduced(shop, len(served))
    store = shop.rules.store
    truths = {}
    for draft in drafts(shop, served):
        saved = store.save(draft, who="benchmark", why="the truth")
        try:
            again = reserve(shop, served)
            truths[draft.id] = (
                draft,
                changed_share(served, again),
                money_truth(world, recording, again),
            )
        finally:
            store.delete(draft.id, who="benchmark", why="measured", expected_version=saved.version)
    ingested = Counter(v.status for v in shop.ingestor.ingest(events, source="simulator").verdicts)
    rows = []
    money = []
    previewed = 0.0
    for draft, truth, true_change in truths.values():
        t = time.perf_counter()
        report = shop.preview([draft], last=len(served))
        previewed += time.perf_counter() - t
        by = {g.placement: g for g in report.by_placement}
        for placement, (changed, n) in sorted(truth.items()):
            g = by.get(placement)
            share = g.share_changed if g is not None else float("nan")
            rows.append(
                {
                    "draft": describe(draft),
                    "placement": placement,
                    "slates": n,
                    "replayed": g.slates if g is not None else 0,
                    "preview": round(100 * share, 2),
                    "truth": round(100 * changed / n, 2),
                    "gap": round(100 * abs(share - changed / n), 2),
                }
            )
        money.append(money_row(describe(draft), report.money, true_change))
    return {
        "slates": len(served),
        "noise": {p: round(100 * c / n, 2) for p, (c, n) in noise.items()},
        "rows": rows,
        "worst_gap": max(r["gap"] for r in rows),
        "money": money,
        "money_served": served_money(world, recording, events),
        "preview_seconds": round(previewed, 1),
        "reproduced": reproduced,
        "events_ingested": dict(ingested),
    }


def money_truth(world: World, recording: Recording, again: dict[str, tuple[str, ...]]) -> float:
    """The true change in expected revenue through the slates' rec_ids if each shown
    slate had been ``again``'s (``simulate.slate_attributed_revenue``). Slates served
    but not shown (the other placements of a request) earn nothing either way."""
    items = {s.rec_id: s.items for s in recording.served}
    return sum(
        slate_attributed_revenue(world, ctx, again[r])
        - slate_attributed_revenue(world, ctx, items[r])
        for r, ctx in recording.shown.items()
    )


def served_money(world: World, recording: Recording, events: Sequence[Any]) -> dict[str, Any]:
    """The money the shown slates earned: in the sessions (purchase lines carrying
    their rec_id) and as the simulator expects it (the truth's scale)."""
    lines = [
        ln
        for e in events
        if e["type"] == "purchase"
        for ln in e["lines"]
        if ln.get("rec_id") in recording.shown
    ]
    items = {s.rec_id: s.items for s in recording.served}
    expected = sum(
        slate_attributed_revenue(world, ctx, items[r]) for r, ctx in recording.shown.items()
    )
    return {
        "shown_slates": len(recording.shown),
        "purchase_lines": len(lines),
        "revenue": round(sum(ln["quantity"] * ln["unit_price"] for ln in lines), 2),
        "expected": round(expected, 2),
    }


def money_row(draft: str, m: MoneyEstimate, truth: float) -> dict[str, Any]:
    """The preview's money estimate for a draft against the true change."""
    row: dict[str, Any] = {
        "draft": draft,
        "currency": m.currency,
        "purchases": m.purchases,
        "slates": m.slates,
        "estimate": m.change,
        "low": m.low,
        "high": m.high,
        "truth": round(truth, 2),
    }
    if m.change is not None and m.low is not None and m.high is not None:
        row["error"] = round(m.change - truth, 2)
        row["inside"] = m.low <= truth <= m.high
    return row


def _reproduced(shop: Runtime, n: int) -> tuple[int, int]:
    report = shop.preview([], last=n)
    return report.reproduced, report.comparable


def show(result: dict[str, Any]) -> None:
    spec = result["spec"]
    print(
        f"store: {spec['products']:,} products, {spec['people']:,} people, "
        f"{spec['history_days']} days of history; {spec['sessions']:,} sessions served "
        f"{result['slates']:,} slates (ranker: {dict(result['ranker'])})"
    )
    print(f"request path served again with no rule added, share changed: {result['noise']}")
    got, of = result["reproduced"]
    print(f"replays with the live rulebook equal to the served slate: {got:,} of {of:,}")
    print("| draft | placement | slates | preview | truth | gap (points) |")
    print("|---|---|---|---|---|---|")
    for r in result["rows"]:
        print(
            f"| {r['draft']} | {r['placement']} | {r['slates']:,} | {r['preview']:.1f}% "
            f"| {r['truth']:.1f}% | {r['gap']:.2f} |"
        )
    sm = result["money_served"]
    print(
        f"shown slates: {sm['shown_slates']:,}, {sm['purchase_lines']} purchase lines carrying "
        f"their rec_id, revenue {sm['revenue']:,.2f} (simulator's expectation {sm['expected']:,.2f})"
    )
    print("| draft | estimated change (95% interval) | true change | error | truth inside |")
    print("|---|---|---|---|---|")
    for m in result["money"]:
        if m["estimate"] is None:
            got = f"no estimate ({m['purchases']} purchases)"
            print(f"| {m['draft']} | {got} | {m['truth']:+,.2f} | - | - |")
            continue
        print(
            f"| {m['draft']} | {m['estimate']:+,.2f} ({m['low']:+,.2f} to {m['high']:+,.2f}) "
            f"| {m['truth']:+,.2f} | {m['error']:+,.2f} | {'yes' if m['inside'] else 'NO'} |"
        )
    if not money_checked(result):
        print("money NOT CHECKED: no purchase line carries a shown slate's rec_id")
    verdict = "met" if result["worst_gap"] <= TARGET_POINTS else "MISSED"
    print(f"worst gap {result['worst_gap']:.2f} points: target {TARGET_POINTS} {verdict}")
    print(
        f"setup {result['setup_seconds']} s, serving {result['serving_seconds']} s, "
        f"previews {result['preview_seconds']} s, total {result['seconds']} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--history-days", type=int, default=35)
    parser.add_argument("--sessions", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        show(result)
    if result["worst_gap"] > TARGET_POINTS or not money_checked(result):
        raise SystemExit(1)


def money_checked(result: dict[str, Any]) -> bool:
    """Every draft got a money estimate (a run whose shown slates carry no purchase
    line measures nothing: serve more sessions)."""
    return all(m["estimate"] is not None for m in result["money"])


if __name__ == "__main__":
    main()
