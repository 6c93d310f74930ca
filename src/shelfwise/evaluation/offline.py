"""The whole offline comparison in one call: split, tune on validation, evaluate, report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from shelfwise.candidates.config import SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.catalog.model import Product
from shelfwise.errors import InvalidInput
from shelfwise.evaluation.baselines import Recommender, baselines
from shelfwise.evaluation.run import EvaluationResult, Progress, evaluate
from shelfwise.evaluation.served import ServedModel
from shelfwise.evaluation.split import time_split
from shelfwise.evaluation.tune import tune_chains
from shelfwise.ranking.objective import RankingSettings
from shelfwise.ranking.training import RANKER_CHOICES
from shelfwise.rules.model import Rule
from shelfwise.serving.placements import Placement


def compare(
    log: InteractionLog,
    cutoff: datetime,
    end: datetime | None = None,
    *,
    config: SourcesConfig | None = None,
    products: Sequence[Product | None] = (),
    ks: Sequence[int] = (10, 20),
    tune: bool = True,
    with_baselines: bool = True,
    with_ranker: bool = False,
    step: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    resamples: int = 1000,
    seed: int = 0,
    rules: Sequence[Rule] = (),
    rulebook_version: int = 0,
    placement: Placement | None = None,
    ranking: RankingSettings | None = None,
) -> EvaluationResult:
    """Fit shelfwise and the baselines before ``cutoff``; evaluate on ``[cutoff, end)``.

    Shelfwise is the served pipeline (``evaluation.served``) on ``placement``
    (default: the shipped ``home``) with the merchant's ``rules`` in force; its
    row ``shelfwise`` ranks with the blend ranker and, ``with_ranker``, the row
    ``shelfwise+ranker`` with the learned ranker (``ranking``: the store's
    ranking settings). With ``tune``, the blend weights of each protocol are
    chosen on the validation window of the same length just before the cutoff.
    Each NDCG gets a bootstrap interval over people (``resamples`` draws,
    ``seed``; 0 draws: none), and shelfwise's difference with each peer a
    paired one.
    """
    config = config or SourcesConfig()
    t_cut = cutoff.timestamp()
    t_end = end.timestamp() if end else log.end + 1
    if not (log.at < t_cut).any() or not (log.at >= t_cut).any():
        raise InvalidInput("the cutoff must fall inside the data", code="bad_cutoff")
    split = time_split(log, t_cut, t_end)
    served = ServedModel(config, products, rules=rules, rulebook_version=rulebook_version)
    if placement is not None:
        served.placement = placement
    if ranking is not None:
        served.ranking = ranking
    notes: dict[str, object] = {"served": served_note(served)}
    if tune:
        tuned = tune_chains(log, t_cut, t_end - t_cut, config, products, step=step)
        served.chains = {p: chain for p, (chain, _) in tuned.items()}
        for protocol, (chain, score) in tuned.items():
            weights = ", ".join(f"{n} {w:g}" for n, w in chain.blend.items())
            notes[f"blend[{protocol}]"] = f"{weights} (validation NDCG@10 {score:.4f})"
    models: list[Recommender] = [*(baselines() if with_baselines else []), served]
    if with_ranker:
        models.append(
            # the home ranker's design, or the blend, chosen as `shelfwise train --ranker`
            # chooses it, on the validation window before the cutoff
            replace(served, name="shelfwise+ranker", choices=RANKER_CHOICES, step=step)
        )
    if step:
        step("evaluate")
    result = evaluate(split, models, ks, progress=progress, resamples=resamples, seed=seed)
    result.notes.update(notes)
    result.notes["config_hash"] = config.config_hash()
    return result


def served_note(model: ServedModel) -> str:
    """What the shelfwise rows are, in one line of the report."""
    rules = len(model.rules)
    return (
        f"the served pipeline (Pipeline.offline) on placement {model.placement.name!r}, "
        f"rulebook version {model.rulebook_version} ({rules} enabled rule(s) + in-stock)"
    )
