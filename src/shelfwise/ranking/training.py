"""Training the ranker from history: sources refitted at each decision time, then LambdaRank.

Decision times walk back from the cutoff in steps of ``horizon_days``: the
last window before the cutoff is the validation window (early stopping,
calibration), the ones before it train. At every decision time t the
sources are fitted on the log before t and the ``RankingState`` as of t, so
no row sees its own future. The candidates of a request are the union of
every source's proposals (``depth`` each) plus the placement's blend, whose
score and rank become features too.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.candidates.base import Proposal, RecContext
from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.config import RANKER_SOURCES, PlacementChain, SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import Artifacts, SourceFits, fit_all
from shelfwise.catalog.model import Product
from shelfwise.errors import InvalidInput
from shelfwise.ranking.dataset import (
    TrainingSet,
    build_bought_with_set,
    build_cart_set,
    build_training_set,
)
from shelfwise.ranking.explain import Names, TableNames
from shelfwise.ranking.features import FeatureSpec
from shelfwise.ranking.history import FloatArray, IntArray, from_interactions
from shelfwise.ranking.impressions import Impression, build_impression_set
from shelfwise.ranking.items import ItemColumns, ItemTable
from shelfwise.ranking.model import SEED, RankerModel
from shelfwise.ranking.objective import RankingSettings
from shelfwise.ranking.ranker import Ranker
from shelfwise.ranking.state import DAY, RankingState
from shelfwise.ranking.workers import forked_map, workers_for

RANKED_SOURCES: tuple[str, ...] = (*RANKER_SOURCES, "blend")
Step = Callable[[str], None]


class RankerTrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    depth: int = Field(default=100, ge=1, description="Candidates asked of each source.")
    horizon_days: float = Field(default=14.0, gt=0, description="Label window after t.")
    train_windows: int = Field(default=5, ge=1, description="Decision times that train.")
    placement: str = "home"
    task: Literal["requests", "bought_with", "cart"] = Field(
        default="requests",
        description="requests: every active person gets a request at t, labelled by what "
        "they did in the window (the home task); bought_with: one product-page request "
        "per item viewed or carted in a session, labelled by what was carted or bought "
        "after it in that session (ranking.dataset.build_bought_with_set); cart: one cart "
        "request per order with one item hidden, by the person who placed it, labelled "
        "by the hidden item (ranking.dataset.build_cart_set).",
    )
    max_requests: int = Field(
        default=4_000,
        ge=1,
        description="bought_with, cart: most requests per window (drawn evenly)",
    )
    max_people: int | None = Field(
        default=None,
        ge=1,
        description="requests (home, new items): most requests per window (of people drawn "
        "evenly), and most logged slates learned from (drawn evenly), seeded by the window; "
        "None asks every person active in the window and keeps every slate. "
        "``shelfwise train`` sets it from ``ranker_max_people`` (docs/sizing.md).",
    )
    new_items_only: bool = Field(
        default=False,
        description="Requests exclude what the person interacted with before t (new items only).",
    )
    new_item_requests: bool = Field(
        default=False,
        description="Also train (and early-stop) on each window's requests with the person's "
        "history excluded, as a new-items request is served (its blend from the new-items "
        "chain): one model for both kinds of request.",
    )
    rounds: int = Field(default=400, ge=1)
    patience: int = Field(default=20, ge=1)
    learning_rate: float = Field(default=0.1, gt=0)
    num_leaves: int = Field(default=63, ge=2)
    min_data_in_leaf: int = Field(
        default=100, ge=1, description="Capped at rows / 1000 (at least 20) for small stores."
    )
    negatives: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of each training request's unbought candidates the model "
        "trains on (a seeded sample; every bought or logged row is kept; the validation "
        "window that early-stops and calibrates it is whole).",
    )
    seed: int = Field(
        default=0,
        ge=0,
        description="Offset of the training's random draws (the negatives' sample, "
        "LightGBM's bagging and feature sampling): another draw of the same design.",
    )
    seeds: int = Field(
        default=1,
        ge=1,
        description="The refit trains this many models, each with its own draws (offsets "
        "``seed`` .. ``seed + seeds - 1``), and the ranker scores by the sum of their raw "
        "scores (one booster holding every model's trees, ``RankerModel.summed``): an "
        "average over draws, less dependent on any one of them. Early stopping and the "
        "choice among designs train one model (offset ``seed``).",
    )
    choice_windows: int = Field(
        default=1,
        ge=1,
        description="Inner validation windows the choice among designs (``choose_for``) "
        "scores each design and the blend on, by the mean of their NDCG@10: the window "
        "before the cutoff, and each earlier one with every design early-stopped on the "
        "windows before it as on the latest (``windows[k]`` validating, ``windows[k + "
        "1:]`` training); one more window is built for each. The choice reads the most "
        "its designs ask; the winner's refit is the same.",
    )
    refit: bool = Field(
        default=True,
        description="After early stopping, retrain on every window incl. the validation one "
        "for the rounds it chose (the latest window is the most like the next weeks).",
    )
    params: dict[str, float | int | str] = Field(
        default_factory=dict, description="More LightGBM parameters (override the defaults)."
    )


RankerTask = Literal["requests", "bought_with", "cart", "new_items"]

# The home ranker's designs: the training job and the backtest choose among these and
# the placement's blend on the validation window before the cutoff (``chosen_rankers``).
# Their refit averages three draws (``seeds``), as does the new-items shelf's ranker:
# decided on validation, 2026-12-07 (three draws of the design, each served single and
# averaged: the averaged figure is the same whatever the draw and at least the single
# draw's mean; benchmarks/README.md#backtest). The product placements' rankers keep one.
HOME_DRAWS = 3
RANKER_CHOICES: tuple[RankerTrainingConfig, ...] = (
    RankerTrainingConfig(seeds=HOME_DRAWS),
    RankerTrainingConfig(num_leaves=15, seeds=HOME_DRAWS),
    RankerTrainingConfig(train_windows=3, seeds=HOME_DRAWS),
)


def task_training(
    task: RankerTask, placement: str, sources: Mapping[str, float], fallback: Sequence[str]
) -> tuple[RankerTrainingConfig, PlacementChain]:
    """How the ranker of ``task`` is trained for a placement: its config, and the
    placement's chain (its ``sources`` blend and ``fallback``), which the ranker reads
    as source ``blend``. The training job and the cart protocol both use it.
    ``new_items`` (a new-items shelf): the home requests of each window as they are and
    with the person's history left out (``new_item_requests``)."""
    if task == "new_items":
        cfg = RankerTrainingConfig(placement=placement, new_item_requests=True, seeds=HOME_DRAWS)
    else:
        cfg = RankerTrainingConfig(task=task, placement=placement)
    chain = PlacementChain(blend=dict(sources), fallbacks=tuple(fallback), depth=cfg.depth)
    return cfg, chain


def propose_all(
    artifacts: Artifacts, depth: int, chain: PlacementChain | None = None
) -> Callable[[RecContext], Sequence[Proposal]]:
    """Every source's own proposal plus the placement's blend (as source ``blend``).

    ``chain`` overrides the placement's blend weights (e.g. weights tuned on a
    validation window); training and serving must use the same one.
    """
    sources = artifacts.sources()
    blend = CandidateBlend(sources, artifacts.config)

    def propose(ctx: RecContext) -> Sequence[Proposal]:
        own = {name: src.propose(ctx, depth) for name, src in sources.items()}

        def ask(name: str, asked: RecContext, k: int) -> Proposal:
            # the blend's sources are these: a source asked for this very request at
            # the same depth answers what it just proposed (fallbacks ask other contexts)
            if asked is ctx and k == depth and name in own:
                return own[name]
            return blend.ask(name, asked, k)

        return [*own.values(), blend.propose(ctx, depth, chain, ask=ask)]

    return propose


def item_columns(
    artifacts: Artifacts, products: Sequence[Product | None], prices: FloatArray
) -> ItemColumns:
    """Catalog columns for the log's items (unknown where the catalog says nothing)."""
    n = len(artifacts.items)
    cols = ItemColumns.unknown(n, price=prices[:n])
    cols.category = np.asarray(artifacts.category[:n], dtype=np.int32)
    cols.category_names = artifacts.category_names
    brands: dict[str, int] = {"": 0}
    titles = []
    for i in range(n):
        p = products[i] if i < len(products) else None
        titles.append(p.title if p is not None else artifacts.items[i])
        if p is None:
            continue
        if p.price is not None:
            cols.price[i] = p.price
        if p.stock_qty is not None:
            cols.stock[i] = p.stock_qty
        if p.margin_band is not None:
            cols.margin_band[i] = ("low", "medium", "high").index(p.margin_band)
        if p.shipping_sla_days is not None:
            cols.sla_days[i] = p.shipping_sla_days
        if p.brand:
            cols.brand[i] = brands.setdefault(p.brand, len(brands))
    cols.titles = tuple(titles)
    return cols


class WindowMemo:
    """Training windows kept by what makes them, so that two trainings that ask for
    the same decision time build it once: the promotion guard's home-ranker windows
    are the bundle's, one window earlier (``training.job``).

    A window at decision time t is made of the log before t + horizon (its
    features before t, its labels in the window), the item columns, the sources
    config, how its requests are drawn and proposed, and whether logged slates
    join it (labelled by their responses before t + horizon:
    ``Impression.labels_before``); its key holds each of them, the log by its
    vocabularies and the count of its rows before t + horizon. Two logs that
    agree there (one a prefix of the other, cut at or after t + horizon) make
    the same window. ``keep`` windows are held; when full, the earliest of those
    read at least once goes first, and a window built while every one held still
    waits for its first reader is not kept (windows built ahead for two trainings
    stay there for the second even when the first, whose keys differ, builds its
    own).
    """

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self.memo: dict[tuple[Any, ...], TrainingSet] = {}
        self.read: set[tuple[Any, ...]] = set()
        self.hits = self.misses = 0

    def get(self, key: tuple[Any, ...]) -> TrainingSet | None:
        got = self.memo.get(key)
        if got is None:
            self.misses += 1
        else:
            self.hits += 1
            self.read.add(key)
        return got

    def put(self, key: tuple[Any, ...], built: TrainingSet) -> None:
        if len(self.memo) >= self.keep:
            done = [k for k in self.memo if k in self.read]
            if not done:
                return
            gone = min(done, key=lambda k: k[0])  # the earliest decision time
            del self.memo[gone]
            self.read.discard(gone)
        self.memo[key] = built

    def clear(self) -> None:
        self.memo.clear()
        self.read.clear()


def _items_digest(items: ItemTable) -> str:
    """A digest of the item columns a window's features read (their identity when
    they are not plain columns)."""
    if not isinstance(items, ItemColumns):
        return f"table-{id(items)}"
    h = hashlib.blake2b(digest_size=16)
    for column in (items.price, items.stock, items.margin_band, items.sla_days, items.brand,
                   items.category):  # fmt: skip
        h.update(np.ascontiguousarray(column).tobytes())
    h.update(repr(items.category_names).encode())
    return h.hexdigest()


def _window_key(
    log: InteractionLog,
    items: str,
    sources: SourcesConfig,
    cfg: RankerTrainingConfig,
    t: int,
    new: bool,
    chain: PlacementChain | None,
    impressions: bool,
) -> tuple[Any, ...]:
    h = int(cfg.horizon_days * DAY)
    limit = cfg.max_people if cfg.task == "requests" else cfg.max_requests
    logged = impressions and not new and cfg.task == "requests"
    return (
        t,
        new,
        h,
        cfg.depth,
        cfg.task,
        cfg.placement,
        limit,
        None if chain is None else chain.model_dump_json(),
        logged,
        sources.config_hash(),
        items,
        len(log.people),
        len(log.items),
        int((log.at < t + h).sum()),
    )


def build_windows(
    log: InteractionLog,
    products: Sequence[Product | None],
    items: ItemTable,
    sources: SourcesConfig,
    cutoff: int,
    cfg: RankerTrainingConfig,
    step: Step | None = None,
    protocols: Sequence[bool] | None = None,
    chain: PlacementChain | None = None,
    impressions: Sequence[Impression] = (),
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None,
    new_chain: PlacementChain | None = None,
    memo: WindowMemo | None = None,
    jobs: int = 1,
) -> dict[bool, list[TrainingSet]]:
    """Training sets of every decision time before ``cutoff``, latest (validation) first.

    Keyed by ``new_items_only``; by default only ``cfg.new_items_only``. The
    sources are fitted once per decision time and shared by both protocols.
    Logged ``impressions`` served in a window ``[t, t + horizon)`` add one
    group each to that window's set (all-items protocol only: a real slate
    was not filtered by the new-items protocol), with inverse-propensity
    weights (``ranking.impressions``). ``fit_sources`` fits the sources on a
    prefix of the log (default ``fit_all``; a backtest passes a memo shared
    by its origins). ``new_chain``: the blend (source ``blend``) of the
    new-items requests, when they are served with another chain than ``chain``.
    ``memo``: windows another training built (:class:`WindowMemo`), taken as they
    are; the ones built here are added to it. ``jobs``: the decision times still to
    build are built in up to that many worker processes (``ranking.workers``; the
    same windows for any number).
    """
    history = from_interactions(log)
    h = int(cfg.horizon_days * DAY)
    times = [cutoff - h * (j + 1) for j in range(cfg.train_windows + 1)]
    wanted = tuple(protocols) if protocols is not None else (cfg.new_items_only,)
    spec = FeatureSpec.of(RANKED_SOURCES)
    digest = _items_digest(items) if memo is not None else ""
    keys: dict[tuple[int, bool], tuple[Any, ...]] = {}
    kept: dict[tuple[int, bool], TrainingSet] = {}
    if memo is not None:
        for t in times:
            for new in wanted:
                protocol_chain = new_chain if new and new_chain else chain
                keys[t, new] = _window_key(
                    log, digest, sources, cfg, t, new, protocol_chain, bool(impressions)
                )
                got = memo.get(keys[t, new])
                if got is not None:
                    kept[t, new] = got
    todo = [
        (n, t, missing)
        for n, t in enumerate(times, 1)
        if (missing := tuple(new for new in wanted if (t, new) not in kept))
    ]
    fits = fit_sources if isinstance(fit_sources, SourceFits) else None
    workers = workers_for(jobs, len(todo))
    if workers and step is not None:
        step(f"ranker windows {', '.join(str(n) for n, _, _ in todo)}/{len(times)} "
             f"on {workers} processes")  # fmt: skip

    def window(part: tuple[int, int, tuple[bool, ...]]) -> Built:
        n, t, missing = part
        if step is not None and not workers:
            step(f"ranker window {n}/{len(times)}")
        before = log.before(float(t))
        # a worker's fit goes back to the parent's memo, where later trainings read it
        fresh = workers and fits is not None and not fits.holds(before)
        artifacts = (
            fit_sources(before) if fit_sources is not None else fit_all(before, products, sources)
        )
        state = RankingState.fit(history, items, t)
        propose = propose_all(artifacts, cfg.depth, chain)
        propose_new = propose if new_chain is None else propose_all(artifacts, cfg.depth, new_chain)
        made: dict[bool, TrainingSet] = {}
        for new in missing:
            given = (history, items, state, spec, propose_new if new else propose, t, h)
            if cfg.task == "bought_with":  # product pages; no logged slate is one of theirs
                one = build_bought_with_set(*given, placement=cfg.placement, limit=cfg.max_requests)
            elif cfg.task == "cart":  # hide-one orders
                one = build_cart_set(*given, placement=cfg.placement, limit=cfg.max_requests)
            else:
                one = build_training_set(
                    *given, placement=cfg.placement, exclude_seen=new, limit=cfg.max_people
                )
            if impressions and not new and cfg.task == "requests":
                logged = build_impression_set(
                    impressions, history, items, state, spec, propose, t, t + h,
                    limit=cfg.max_people,
                )  # fmt: skip
                one = TrainingSet.concat([one, logged], len(spec.names))
            made[new] = one
        return Built(made, artifacts if fresh else None)

    for (_, t, _), done in zip(todo, forked_map(window, todo, jobs), strict=True):
        if fits is not None and done.artifacts is not None:
            fits.keep_fit(log.before(float(t)), done.artifacts)
        for new, one in done.sets.items():
            kept[t, new] = one
            if memo is not None:
                memo.put(keys[t, new], one)
    return {new: [kept[t, new] for t in times] for new in wanted}


@dataclass(frozen=True)
class Built:
    """One decision time's windows (by ``new_items_only``), and the sources fitted on
    its prefix when a worker process fitted them (for the parent's memo)."""

    sets: dict[bool, TrainingSet]
    artifacts: Artifacts | None


def requests_of(
    built: dict[bool, list[TrainingSet]], cfg: RankerTrainingConfig
) -> list[TrainingSet]:
    """The windows a config trains on, latest first: its own protocol's, or with
    ``new_item_requests`` each window's all-items and new-items requests together."""
    if not cfg.new_item_requests:
        return built[cfg.new_items_only]
    width = len(FeatureSpec.of(RANKED_SOURCES).names)
    return [TrainingSet.concat(pair, width) for pair in zip(built[False], built[True], strict=True)]


def window_protocols(cfgs: Sequence[RankerTrainingConfig]) -> tuple[bool, ...]:
    """The request kinds (``new_items_only``) the windows of ``cfgs`` need."""
    kinds = {c.new_items_only for c in cfgs} | {
        k for c in cfgs if c.new_item_requests for k in (False, True)
    }
    return tuple(sorted(kinds))


def with_threads(cfg: RankerTrainingConfig, threads: int) -> RankerTrainingConfig:
    """``cfg`` with LightGBM fitting on ``threads`` (the sources config's ``threads``, so
    one setting gives a training its cores; 0: every core), unless its ``params`` name
    ``num_threads``. One thread is LightGBM's default here (``ranking.model``)."""
    if threads == 1 or "num_threads" in cfg.params:
        return cfg
    return cfg.model_copy(update={"params": {**cfg.params, "num_threads": threads}})


def _params(cfg: RankerTrainingConfig, rows: int, draw: int = 0) -> dict[str, float | int | str]:
    """LightGBM's parameters of ``cfg`` for ``rows`` training rows, its random draws
    offset by ``draw`` (added to ``cfg.seed``)."""
    return {
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": min(cfg.min_data_in_leaf, max(20, rows // 1000)),
        "seed": SEED + cfg.seed + draw,
        **cfg.params,
    }


@dataclass(frozen=True)
class Joined:
    """What the refit, the model's metrics and the choice among designs need of the
    windows an early-stopped model saw: the size of its joined training rows (the rows
    themselves are not kept), and its raw scores of its validation window's rows."""

    rows: int
    requests: int
    weighted_rows: int
    valid_raw: FloatArray


def _training_windows(
    windows: Sequence[TrainingSet], cfg: RankerTrainingConfig
) -> list[TrainingSet]:
    """The (at most ``cfg.train_windows``) windows after the validation one that hold a
    request."""
    return [w for w in windows[1 : 1 + cfg.train_windows] if len(w.groups)]


def _early_stopped(
    windows: Sequence[TrainingSet], cfg: RankerTrainingConfig
) -> tuple[RankerModel, Joined]:
    """LambdaRank on the ``cfg.train_windows`` windows after ``windows[0]``, early-stopped
    and calibrated on ``windows[0]``; with the size of the joined training set."""
    spec = FeatureSpec.of(RANKED_SOURCES)
    valid = windows[0]
    train = _training_windows(windows, cfg)
    if not train or not len(valid.groups):
        raise InvalidInput(
            "not enough history before the cutoff to train the ranker "
            "(a validation window and at least one training window need purchases)",
            code="ranker_no_data",
        )
    joined = TrainingSet.concat(train, len(spec.names)).thinned(cfg.negatives, cfg.seed)
    model, valid_raw = RankerModel.train(
        spec,
        (joined.x, joined.y, joined.groups),
        (valid.x, valid.y, valid.groups),
        _params(cfg, len(joined.y)),
        cfg.rounds,
        cfg.patience,
        weights=(joined.weights, valid.weights),
    )
    weighted = int((joined.row_weights() != 1.0).sum())
    return model, Joined(len(joined.y), len(joined.groups), weighted, valid_raw)


def fit_ranker(
    windows: Sequence[TrainingSet], cfg: RankerTrainingConfig, jobs: int = 1
) -> RankerModel:
    """LambdaRank on ``windows[1:]`` (at most ``cfg.train_windows``), early-stopped and
    calibrated on ``windows[0]``, then refitted on every window when ``cfg.refit`` (its
    draws in up to ``jobs`` worker processes)."""
    model, joined = _early_stopped(windows, cfg)
    return _refitted(model, windows, joined, cfg, jobs)


def _refitted(
    model: RankerModel,
    windows: Sequence[TrainingSet],
    joined: Joined,
    cfg: RankerTrainingConfig,
    jobs: int = 1,
) -> RankerModel:
    """``model`` refitted on every window (``cfg.refit``), its draws (``cfg.seeds``) in up
    to ``jobs`` worker processes."""
    spec = model.spec
    stopped = model.metrics
    if cfg.refit:
        rounds = int(stopped["best_iteration"]) or cfg.rounds
        valid = windows[0]
        train = _training_windows(windows, cfg)
        everything = TrainingSet.concat([valid, *train], len(spec.names))

        def drawn(draw: int) -> RankerModel:
            rows = everything.thinned(cfg.negatives, cfg.seed + draw)
            one, _ = RankerModel.train(
                spec,
                (rows.x, rows.y, rows.groups),
                (valid.x, valid.y, valid.groups),
                _params(cfg, joined.rows, draw),
                rounds,
                None,
                weights=(rows.weights, valid.weights),
            )
            return one

        models = forked_map(drawn, list(range(cfg.seeds)), jobs)
        model = models[0] if len(models) == 1 else RankerModel.summed(models, (valid.x, valid.y))
        model.metrics.update({f"{k}_early_stopped": v for k, v in stopped.items()})
    model.metrics.update(
        {
            "train_rows": float(joined.rows),
            "train_requests": float(joined.requests),
            "valid_requests": float(len(windows[0].groups)),
            "train_weighted_rows": float(joined.weighted_rows),
        }
    )
    return model


def group_ndcg(scores: FloatArray, labels: IntArray, groups: IntArray, k: int = 10) -> float:
    """Mean NDCG@k over the requests (``groups``: rows per request, in order) of ordering
    each request's rows by ``scores`` (NaN last; ties by row order), gain ``2^label - 1``."""
    if not len(groups):
        return 0.0
    starts = np.concatenate([[0], np.cumsum(groups)])
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for a, b in itertools.pairwise(starts):
        s = np.nan_to_num(scores[a:b], nan=-np.inf)
        gain = np.exp2(labels[a:b].astype(np.float64)) - 1.0
        top = np.argsort(-s, kind="stable")[:k]
        ideal = np.sort(gain)[::-1][:k]
        best = float(ideal @ discount[: len(ideal)])
        total += float(gain[top] @ discount[: len(top)]) / best if best > 0 else 0.0
    return total / len(groups)


@dataclass(frozen=True)
class RankerChoice:
    """What the validation window chose: a ranker config, or the blend (``config`` None)."""

    config: RankerTrainingConfig | None
    scores: dict[str, float]  # candidate label -> validation NDCG@10 (mean of the windows)
    # With ``choice_windows`` above 1: the scores of each inner window, latest first.
    by_window: tuple[dict[str, float], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        chosen = "blend" if self.config is None else label_of(self.config)
        out: dict[str, Any] = {"chosen": chosen, "validation_ndcg@10": self.scores}
        if self.by_window:
            out["validation_ndcg@10_by_window"] = list(self.by_window)
        return out


def label_of(cfg: RankerTrainingConfig) -> str:
    more = (
        ", new-item requests"
        if cfg.new_item_requests
        else ", new items only"
        if cfg.new_items_only
        else ""
    )
    return f"ranker(windows={cfg.train_windows}, leaves={cfg.num_leaves}{more})"


Stopped = tuple[RankerModel, Joined]  # an early-stopped model, the size of its training set


def _ndcgs(
    valid: TrainingSet,
    trained: Sequence[tuple[RankerTrainingConfig, Stopped]],
    known: Sequence[FloatArray | None] = (),
) -> list[float]:
    """NDCG@10 of ``valid``'s requests ordered by the placement's blend (source
    ``blend``'s score), then by each of ``trained``. ``known``: each design's raw
    scores of ``valid``'s rows where its training already gave them (None, or none
    given: they are predicted here)."""
    blend_column = FeatureSpec.of(RANKED_SOURCES).source_columns()["blend"][0]
    out = [group_ndcg(valid.x[:, blend_column], valid.y, valid.groups)]
    for n, (_, (model, _)) in enumerate(trained):
        raw = known[n] if n < len(known) else None
        raw = model.raw(valid.x) if raw is None else raw
        out.append(group_ndcg(raw, valid.y, valid.groups))
    return out


def _pick(
    cfgs: Sequence[RankerTrainingConfig], ndcgs: Sequence[float]
) -> tuple[int | None, dict[str, float]]:
    """The best of ``cfgs`` by ``ndcgs`` (the blend's first, then each config's; the
    first of equals), None when the blend does as well; with every score."""
    scores = {"blend": round(ndcgs[0], 4)}
    scores |= {label_of(c): round(v, 4) for c, v in zip(cfgs, ndcgs[1:], strict=True)}
    best = max(range(len(cfgs)), key=lambda n: ndcgs[n + 1], default=None)
    if best is None or ndcgs[best + 1] <= ndcgs[0]:
        return None, scores
    return best, scores


def _best(
    valid: TrainingSet,
    trained: Sequence[tuple[RankerTrainingConfig, Stopped]],
    known: Sequence[FloatArray | None] = (),
) -> tuple[int | None, dict[str, float]]:
    """Which of ``trained`` orders ``valid``'s requests best by NDCG@10 (None: the
    placement's blend, source ``blend``'s score, does as well), with every score
    (``known``: as :func:`_ndcgs`)."""
    return _pick([cfg for cfg, _ in trained], _ndcgs(valid, trained, known))


def choose_ranker(
    windows: Sequence[TrainingSet], choices: Sequence[RankerTrainingConfig]
) -> tuple[RankerModel | None, RankerChoice]:
    """The best of ``choices`` and the placement's blend on the validation window only.

    Each choice is trained early-stopped on its windows before ``windows[0]``; its
    order of ``windows[0]``'s requests and the blend's (source ``blend``'s score) are
    scored by NDCG@10 against what those people did in the window. The best choice
    is refitted (``refit``) and returned; ``None`` when the blend orders better. The
    test window after the cutoff is never read."""
    trained = [(cfg, _early_stopped(windows, cfg)) for cfg in choices]
    n, scores = _best(windows[0], trained, [joined.valid_raw for _, (_, joined) in trained])
    if n is None:
        return None, RankerChoice(None, scores)
    cfg, (model, joined) = trained[n]
    return _refitted(model, windows, joined, cfg), RankerChoice(cfg, scores)


def _scored(
    built: dict[bool, list[TrainingSet]],
    cfg: RankerTrainingConfig,
    joined: Joined,
    new_items: bool,
) -> FloatArray | None:
    """An early-stopped design's raw scores of the validation window's requests of
    kind ``new_items``, cut from its own validation rows (``requests_of``: its own
    kind's, or both kinds' with the all-items requests first); None when it did not
    see them."""
    if cfg.new_item_requests:
        first = len(built[False][0].y)
        return joined.valid_raw[first:] if new_items else joined.valid_raw[:first]
    return joined.valid_raw if cfg.new_items_only == new_items else None


def choose_for(
    built: dict[bool, list[TrainingSet]],
    choices: Sequence[RankerTrainingConfig],
    new_items: bool,
    stopped: dict[str, Stopped] | None = None,
    refits: dict[str, RankerModel] | None = None,
    jobs: int = 1,
) -> tuple[RankerModel | None, RankerChoice]:
    """:func:`choose_ranker` for the placement that serves one kind of request: the
    choices may train on either kind (``requests_of``), and all are scored on the
    validation window's requests of the placement's kind (``new_items``: the person's
    history excluded, their blend the new-items chain's, as a new-items placement is
    asked). ``stopped`` and ``refits`` keep each config's early-stopped and refitted
    model, so that a config among two placements' choices is trained once.

    With ``choice_windows`` k above 1 (the most of ``choices``), every design is also
    early-stopped and scored one, .., k - 1 windows earlier (``built``'s windows from
    the j-th on, as if the cutoff were j windows earlier; left out where they hold too
    little history), and the choice is by the mean of each one's scores. ``jobs``: the
    designs are early-stopped in up to that many worker processes."""
    memo: dict[str, Stopped] = {} if stopped is None else stopped
    trained = _stopped_on(built, choices, memo, jobs=jobs)
    ndcgs = [_kind_ndcgs(built, trained, new_items)]
    for j in range(1, max(c.choice_windows for c in choices)):
        earlier = {kind: w[j:] for kind, w in built.items()}
        try:
            inner = _stopped_on(earlier, choices, memo, f"window {j}:", jobs)
        except InvalidInput:
            break
        ndcgs.append(_kind_ndcgs(earlier, inner, new_items))
    n, scores = _pick(choices, [sum(v) / len(v) for v in zip(*ndcgs, strict=True)])
    by_window = tuple(_pick(choices, v)[1] for v in ndcgs) if len(ndcgs) > 1 else ()
    if n is None:
        return None, RankerChoice(None, scores, by_window)
    cfg, (model, joined) = trained[n]
    done: dict[str, RankerModel] = {} if refits is None else refits
    key = cfg.model_dump_json()
    if key not in done:
        done[key] = _refitted(model, requests_of(built, cfg), joined, cfg, jobs)
    return done[key], RankerChoice(cfg, scores, by_window)


def _stopped_on(
    built: dict[bool, list[TrainingSet]],
    choices: Sequence[RankerTrainingConfig],
    memo: dict[str, Stopped],
    prefix: str = "",
    jobs: int = 1,
) -> list[tuple[RankerTrainingConfig, Stopped]]:
    """Each of ``choices`` early-stopped on its windows of ``built``, from ``memo``
    (keyed by ``prefix`` and the config) where it was trained already; the others in
    up to ``jobs`` worker processes (``ranking.workers``)."""
    todo = [
        (key, cfg)
        for key, cfg in {prefix + c.model_dump_json(): c for c in choices}.items()
        if key not in memo
    ]

    def stop(cfg: RankerTrainingConfig) -> Stopped:
        return _early_stopped(requests_of(built, cfg), cfg)

    for (key, _), got in zip(todo, forked_map(stop, [c for _, c in todo], jobs), strict=True):
        memo[key] = got
    return [(cfg, memo[prefix + cfg.model_dump_json()]) for cfg in choices]


def _kind_ndcgs(
    built: dict[bool, list[TrainingSet]],
    trained: Sequence[tuple[RankerTrainingConfig, Stopped]],
    new_items: bool,
) -> list[float]:
    """:func:`_ndcgs` of ``built``'s validation window's requests of kind ``new_items``,
    from the scores the designs' training gave where they saw them (``_scored``)."""
    known = [_scored(built, cfg, joined, new_items) for cfg, (_, joined) in trained]
    return _ndcgs(built[new_items][0], trained, known)


def train_ranker(
    log: InteractionLog,
    products: Sequence[Product | None],
    items: ItemTable,
    sources: SourcesConfig,
    cutoff: int,
    cfg: RankerTrainingConfig,
    step: Step | None = None,
    impressions: Sequence[Impression] = (),
    chain: PlacementChain | None = None,
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None,
    new_chain: PlacementChain | None = None,
    jobs: int = 1,
) -> RankerModel:
    """Fit a LambdaRank model on decision times before ``cutoff`` (see the module doc),
    LightGBM on the sources config's ``threads``, the windows built in up to ``jobs``
    worker processes."""
    cfg = with_threads(cfg, sources.threads)
    windows = build_windows(
        log,
        products,
        items,
        sources,
        cutoff,
        cfg,
        step,
        protocols=window_protocols([cfg]),
        chain=chain,
        impressions=impressions,
        fit_sources=fit_sources,
        new_chain=new_chain,
        jobs=jobs,
    )
    return fit_ranker(requests_of(windows, cfg), cfg, jobs)


def bundle_ranker(
    log: InteractionLog,
    products: Sequence[Product | None],
    artifacts: Artifacts,
    sources: SourcesConfig,
    settings: RankingSettings,
    cfg: RankerTrainingConfig | None = None,
    step: Step | None = None,
    impressions: Sequence[Impression] = (),
    *,
    now: int | None = None,
    chain: PlacementChain | None = None,
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None,
    names: Names | None = None,
    new_chain: PlacementChain | None = None,
    jobs: int = 1,
) -> Ranker:
    """The ranker a bundle serves: trained on the windows before ``now`` (default: just
    after the log's last event), its state as of ``now``.

    ``impressions`` are the logged slates (``ranking.impressions.read_impressions``);
    ``chain`` the placement blend the ranker reads as source ``blend``;
    ``fit_sources`` a memo of source fits (a backtest's); ``names`` how reasons
    name items (default: the log's titles); ``new_chain`` the blend of new-items
    requests (``cfg.new_item_requests``; default ``chain``); ``jobs`` the worker
    processes its windows are built in (:func:`build_windows`).
    """
    cfg = cfg or RankerTrainingConfig()
    now = int(log.end) + 1 if now is None else now
    items = item_columns(artifacts, products, log.item_prices())
    model = train_ranker(
        log, products, items, sources, now, cfg, step, impressions, chain, fit_sources, new_chain,
        jobs,
    )  # fmt: skip
    state = RankingState.fit(from_interactions(log), items, now)
    names = names or TableNames(items.titles, items.category_names)
    return Ranker(state, names, settings, model)


def chosen_rankers(
    log: InteractionLog,
    products: Sequence[Product | None],
    artifacts: Artifacts,
    sources: SourcesConfig,
    settings: RankingSettings,
    choices: Mapping[bool, Sequence[RankerTrainingConfig]],
    step: Step | None = None,
    *,
    now: int | None = None,
    chain: PlacementChain | None = None,
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None,
    names: Names | None = None,
    new_chain: PlacementChain | None = None,
    impressions: Sequence[Impression] = (),
    windows: WindowMemo | None = None,
    jobs: int = 1,
) -> dict[bool, tuple[Ranker | None, RankerChoice]]:
    """The ranker of each kind of placement (keyed by ``new_items``: False the all-items
    placement, True a new-items one, whose requests leave the person's history out and
    read ``new_chain``), each the best of its ``choices`` and the blend on the
    validation window before ``now`` scored on that kind's requests
    (:func:`choose_for`; None where the blend orders that window better). The windows
    are built once, for the most training windows any choice asks and the choice's
    earlier windows (``choice_windows``; the choices share ``depth``, ``horizon_days``
    and ``placement``); a config both placements choose is trained and refitted once.
    ``impressions``: the logged slates the all-items requests' windows learn from
    (``build_windows``); ``windows``: a memo of windows shared with another training
    (:class:`WindowMemo`); ``jobs``: the windows are built, and the designs
    early-stopped, in up to that many worker processes (``ranking.workers``: the same
    rankers for any number)."""
    choices = {k: [with_threads(c, sources.threads) for c in v] for k, v in choices.items()}
    now = int(log.end) + 1 if now is None else now
    items = item_columns(artifacts, products, log.item_prices())
    built = choice_windows(
        log, products, items, sources, choices, now, step, chain=chain, impressions=impressions,
        fit_sources=fit_sources, new_chain=new_chain, windows=windows, jobs=jobs,
    )  # fmt: skip
    stopped: dict[str, Stopped] = {}
    state = RankingState.fit(from_interactions(log), items, now)
    names = names or TableNames(items.titles, items.category_names)
    out: dict[bool, tuple[Ranker | None, RankerChoice]] = {}
    served: dict[str, Ranker] = {}
    refits: dict[str, RankerModel] = {}
    for kind, among in choices.items():
        model, choice = choose_for(built, among, kind, stopped, refits, jobs)
        if model is None or choice.config is None:
            out[kind] = (None, choice)
            continue
        key = choice.config.model_dump_json()
        if key not in served:
            served[key] = Ranker(state, names, settings, model)
        out[kind] = (served[key], choice)
    return out


def choice_windows(
    log: InteractionLog,
    products: Sequence[Product | None],
    items: ItemTable,
    sources: SourcesConfig,
    choices: Mapping[bool, Sequence[RankerTrainingConfig]],
    now: int,
    step: Step | None = None,
    *,
    chain: PlacementChain | None = None,
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None,
    new_chain: PlacementChain | None = None,
    impressions: Sequence[Impression] = (),
    windows: WindowMemo | None = None,
    jobs: int = 1,
    before: int = 0,
) -> dict[bool, list[TrainingSet]]:
    """The windows :func:`chosen_rankers` chooses among ``choices`` on (before ``now``:
    for the most training windows any choice asks and the choice's earlier windows),
    and ``before`` windows more, earlier still: with a memo (``windows``), those of a
    training whose cutoff is ``before`` windows earlier (the promotion guard's) are
    then built in the same map of worker processes and wait there for it."""
    every = [c for kind in choices.values() for c in kind]
    if not every or not all(choices.values()):
        raise InvalidInput("choose among at least one ranker config", code="ranker_no_choice")
    most = max(every, key=lambda c: c.train_windows)
    earlier = max(c.choice_windows for c in every) - 1 + before
    most = most.model_copy(update={"train_windows": most.train_windows + earlier})
    built = build_windows(
        log,
        products,
        items,
        sources,
        now,
        most,
        step,
        protocols=tuple(sorted({*window_protocols(every), *choices})),
        chain=chain,
        impressions=impressions,
        fit_sources=fit_sources,
        new_chain=new_chain,
        memo=windows,
        jobs=jobs,
    )
    return {kind: sets[: len(sets) - before] for kind, sets in built.items()}
