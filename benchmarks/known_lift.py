"""An A/B test on the simulator with a known truth, read out by shelfwise.

Three arms, a third each by shelfwise's hash: ``control`` shows each shopper the
truly best kitchen items, ``treatment`` the truly best bedding items, ``holdout``
nothing. The experiment's traffic goes through ingestion and the readout; the
same sessions are also played with everyone in each arm, which gives the true
per-category lifts and the true incremental share of exactly these people.
Prints, per category, the readout's lift of treatment over control (CUPED, 95%
interval, Holm-adjusted p) next to the truth, and the incrementality.

    .venv/bin/python benchmarks/known_lift.py [--people 3000 --sessions 8000 --seed 11]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from shelfwise.config import load_settings
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec
from shelfwise.simulate.experiment import known_lift_experiment


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--products", type=int, default=300)
    p.add_argument("--people", type=int, default=3_000)
    p.add_argument("--pre-days", type=int, default=3)
    p.add_argument("--days", type=int, default=7, help="days the experiment runs")
    p.add_argument("--sessions", type=int, default=8_000)
    p.add_argument("--rec-share", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=11)
    a = p.parse_args()
    spec = SimulationSpec(
        seed=a.seed,
        products=a.products,
        people=a.people,
        days=a.pre_days + a.days,
        rec_share=a.rec_share,
    )
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            database_url=f"sqlite:///{Path(tmp) / 'e.db'}", model_dir=Path(tmp) / "models"
        )
        k = known_lift_experiment(
            lambda: Runtime.open(settings), spec, a.pre_days, a.sessions, seed=a.seed
        )
    rep = k.report
    print(
        f"{k.persons:,} persons, {k.events:,} events; arms {rep.srm.counts} "
        f"(SRM p = {rep.srm.p_value:.3f}, valid: {rep.valid})"
    )
    print(f"{'category':<10}{'readout lift':>14}{'95% CI':>20}{'Holm p':>10}{'true lift':>11}")
    for cell in rep.cells:
        if cell.placement != "all" or cell.category == "uncategorised":
            continue
        comp = next(c for c in cell.comparisons if c.arm == "treatment")
        est = comp.estimates["revenue_per_person"]
        if est.lift is None or est.lift_low is None or est.lift_high is None:
            continue
        truth = k.truth.lift.get(cell.category, float("nan"))
        ci = f"{est.lift_low:+.3f} to {est.lift_high:+.3f}"
        p_adj = f"{est.p_adjusted:.4f}" if est.p_adjusted is not None else "-"
        print(f"{cell.category:<10}{est.lift:>+14.3f}{ci:>20}{p_adj:>10}{truth:>+11.3f}")
    overall = next(c for c in rep.cells if (c.placement, c.category) == ("all", "all"))
    inc = next(c for c in overall.comparisons if c.arm == "treatment").incrementality
    if inc is not None and inc.value is not None and inc.low is not None and inc.high is not None:
        print(
            f"incremental share, treatment vs holdout: {inc.value:.3f} "
            f"(95% CI {inc.low:.3f} to {inc.high:.3f}); true {k.incrementality:.3f}"
        )
    print(
        f"{time.perf_counter() - began:.0f} s wall, {time.process_time():.0f} s CPU; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
