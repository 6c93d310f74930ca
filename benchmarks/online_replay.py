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

    .venv/bin/python benchmarks/online_replay.py [--products 2000 --people 2000
        --history-days 42 --sessions 3000 --seed 7] [--json]
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
from shelfwise.simulate.replay import OnlineReplay, online_replay


def run(args: argparse.Namespace) -> OnlineReplay:
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
        return online_replay(
            lambda: Runtime.open(settings), spec, args.history_days, args.sessions, seed=args.seed
        )


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--products", type=int, default=2_000)
    p.add_argument("--people", type=int, default=2_000)
    p.add_argument("--history-days", type=int, default=42)
    p.add_argument("--replay-days", type=int, default=2)
    p.add_argument("--sessions", type=int, default=3_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = p.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        show(result)


if __name__ == "__main__":
    main()
