"""Online replay on the simulator: the governed shelfwise pipeline against popularity only.

A simulated home-goods store lives ``--history-days`` days with popularity as its
recommender. A shelfwise store is set up on that history the way a merchant would
(catalog, events through the ingestion path, a rulebook: no slow shipping, a
premium-decor pairing rule, one colour per variant group and the best-selling
brand paused; then a trained bundle with the learned ranker). The next
``--replay-days`` days of traffic (``--sessions`` sessions, every one fixed by the
seed) are played twice: once with shelfwise serving every slate (sources → rules
→ learned ranker, in process), once with popularity only (units sold in the same
history). The shoppers click and buy by the simulator's ground truth (relevance,
price, availability).

Reported: revenue per session of each policy, their ratio with a 95% confidence
interval over paired sessions, the true expected revenue of the slates served,
and the rule violations found when every served slate is checked against the
rulebook independently of the pipeline (zero for shelfwise; popularity, which
knows no rules, shows what the check catches).

Then per placement (``--placements``; ``shelfwise.simulate.placement_replay``):
the same sessions replayed with ``product_similar`` or ``product_bought_with``
serving every product page, or ``cart`` every slate shown while the shopper
has a cart, by the governed store, co-purchase only and popularity only. Per
session: the revenue and margin those slates sold (order lines carrying their
rec_id) and the truth's expectation of it, with paired bootstrap intervals of
governed over each baseline; on product pages, each policy's coherence
(``monitoring.coherence``: same category, price ratio, top item share, coverage).

    .venv/bin/python benchmarks/online_replay.py [--products 2000 --people 2000
        --history-days 42 --sessions 3000 --seed 7 --placements all] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from shelfwise.config import load_settings
from shelfwise.ranking import RankingSettings
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec
from shelfwise.simulate.placement_replay import PLANS, PlacementRun, placement_replay
from shelfwise.simulate.replay import OnlineReplay, replay_against_popularity, replay_store


def run(args: argparse.Namespace) -> tuple[OnlineReplay, list[PlacementRun]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            database_url=f"sqlite:///{Path(tmp) / 'replay.db'}", model_dir=Path(tmp) / "models"
        )
        # No native compilation of the model: the replay measures slates, not latency.
        settings = settings.model_copy(update={"ranking": RankingSettings(compile_model=False)})
        spec = SimulationSpec(
            seed=args.seed,
            products=args.products,
            people=args.people,
            days=args.history_days + args.replay_days,
        )
        store = replay_store(lambda: Runtime.open(settings), spec, args.history_days)
        try:
            overall = replay_against_popularity(store, args.sessions, seed=args.seed)
            names = list(PLANS) if args.placements == "all" else args.placements.split(",")
            names = [n for n in names if n]
            return overall, [
                placement_replay(store, n, args.sessions, seed=args.seed) for n in names
            ]
        finally:
            store.close()


def show(result: OnlineReplay) -> None:
    r = result.revenue
    print(
        f"store: {result.spec.products:,} products, {result.spec.people:,} people, "
        f"{result.history_days} days of history ({result.history_events:,} events); "
        f"rules: {', '.join(x['id'] for x in result.governance.rules())} "
        f"(paused brand: {', '.join(result.governance.suppressed_brands)})"
    )
    print(
        f"{'policy':<12}{'rev/session':>12}{'orders':>8}{'slates':>8}{'E[rev]/slate':>14}"
        f"{'violations':>12}"
    )
    for run_ in (result.governed, result.popularity):
        a = run_.audit
        assert a is not None
        print(
            f"{run_.policy:<12}{run_.revenue_per_session:>12.3f}{int(run_.orders.sum()):>8}"
            f"{a.slates:>8}{a.expected_revenue / max(a.slates, 1):>14.4f}{a.violation_count:>12}"
        )
    print(
        f"governed / popularity revenue per session: {r.ratio:.3f} "
        f"(95% CI {r.low:.3f} to {r.high:.3f}; difference {r.diff:.3f}, "
        f"CI {r.diff_low:.3f} to {r.diff_high:.3f}, {r.n:,} paired sessions)"
    )
    if result.popularity.audit is not None:
        print(f"popularity's violations by rule: {dict(result.popularity.audit.violations)}")
    print(
        f"setup {result.setup_seconds:.0f} s; replay "
        + ", ".join(f"{k} {v:.0f} s" for k, v in result.replay_seconds.items())
        + f"; load average {os.getloadavg()[0]:.1f}"
    )


def show_placement(run: PlacementRun) -> None:
    plan = run.plan
    print(
        f"\n{plan.placement} (serving the simulator's {plan.page} slates; "
        f"{run.sessions:,} sessions)"
    )
    print(
        f"{'policy':<20}{'slates':>8}{'E[rev]/s':>10}{'E[margin]/s':>12}{'sold rev/s':>12}"
        f"{'sold margin/s':>15}{'violations':>12}"
    )
    for p in run.sold:
        print(
            f"{p:<20}{run.slates[p]:>8}{run.per_session(p, 'revenue'):>10.4f}"
            f"{run.per_session(p, 'margin'):>12.4f}"
            f"{run.per_session(p, 'revenue', sold=True):>12.4f}"
            f"{run.per_session(p, 'margin', sold=True):>15.4f}{run.violations[p]:>12}"
        )
    for base in run.baselines:
        cells = []
        for sold in (False, True):
            for what in ("revenue", "margin"):
                r = run.ratio(what, "governed", base, sold=sold)
                kind = "sold" if sold else "expected"
                cells.append(f"{kind} {what} {r.ratio:.2f} ({r.low:.2f}-{r.high:.2f})")
        print(f"governed / {base}: " + "; ".join(cells))
    if run.coherence:
        print(
            f"{'coherence':<20}{'same cat.':>10}{'price x':>9}{'top item share':>16}"
            f"{'coverage':>10}"
        )
        for p, c in run.coherence.items():
            ratio = c["median_price_ratio"]
            print(
                f"{p:<20}{c['same_category']:>10.1%}{ratio or float('nan'):>9.2f}"
                f"{c['top_item_share']:>16.1%}{c['coverage']:>10.1%}"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--products", type=int, default=2_000)
    p.add_argument("--people", type=int, default=2_000)
    p.add_argument("--history-days", type=int, default=42)
    p.add_argument("--replay-days", type=int, default=2)
    p.add_argument("--sessions", type=int, default=3_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--placements",
        default="all",
        help="placements replayed one by one: all, none, or a comma list of " + ", ".join(PLANS),
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = p.parse_args()
    if args.placements == "none":
        args.placements = ""
    result, placements = run(args)
    if args.json:
        out = result.as_dict() | {"placements": [r.as_dict() for r in placements]}
        print(json.dumps(out, indent=2))
    else:
        show(result)
        for r in placements:
            show_placement(r)
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
