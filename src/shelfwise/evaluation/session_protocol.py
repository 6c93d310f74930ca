"""Session next-item: after each view of a test session, is the next view in the top k?

The protocol of the session-based recommendation literature (e.g. Ludewig &
Jannach 2018) on the store's own event log:

* sessions are the product views of one session, repeats collapsed
  (``evaluation.sessions``); the peers learn from the training sessions of at
  least two views;
* test sessions start in ``[cutoff, cutoff + window)``; validation sessions in
  the window before, with a model fitted on what precedes it. Every choice —
  the peers' neighbourhood and sample sizes, V-SKNN's position weighting and
  IDF, item-kNN's shrinkage, shelfwise's placement and session decay — is
  made there, by MRR@k; the test window is scored once;
* views of items never viewed in training are dropped from the evaluated
  sessions (nothing can recommend them), then sessions of fewer than two views;
* HR@k (the next item in the list) and MRR@k (1 / its rank, 0 beyond k), over
  every prediction, with bootstrap intervals over sessions.

shelfwise answers through the served pipeline (``evaluation.served_slates``): an
anonymous request of the placement, the session's views as its live session,
the last viewed product as the page's item on product placements.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import Artifacts, fit_all
from shelfwise.catalog import CatalogSnapshot
from shelfwise.evaluation.protocol_report import (
    ProtocolResult,
    Scored,
    Spec,
    require,
    span,
    summarise,
    windows,
)
from shelfwise.evaluation.served_slates import Context, served_slates
from shelfwise.evaluation.session_peers import (
    SKNN,
    VSKNN,
    CoViewKNN,
    SessionPeer,
    SessionPopularity,
    recommend,
)
from shelfwise.evaluation.sessions import IntArray, Prefixes, Sessions, ranks, view_sessions
from shelfwise.monitoring.coherence import ServedSlate, available, catalog_of, coherence
from shelfwise.serving.placements import Placement

Step = Callable[[str], None]
PROTOCOL = "session-next-item"


@dataclass(frozen=True)
class SessionFamily:
    name: str
    make: Callable[..., SessionPeer]
    grid: tuple[dict[str, Any], ...]


KS = (50, 100, 200, 500)
SAMPLES = (500, 1000, 0)  # 0: every session
FAMILIES: tuple[SessionFamily, ...] = (
    SessionFamily("popularity", SessionPopularity, ({},)),
    SessionFamily("item_knn", CoViewKNN, tuple({"lam": lam} for lam in (0.0, 5.0, 20.0, 50.0))),
    SessionFamily(
        "sknn", SKNN, tuple({"k": k, "sample": m} for k, m in itertools.product(KS, SAMPLES))
    ),
    SessionFamily(
        "vsknn",
        VSKNN,
        tuple(
            {"k": k, "sample": m, "weighting": w, "idf": idf}
            for k, m, w, idf in itertools.product(
                KS, SAMPLES, ("linear", "quadratic", "log"), (False, True)
            )
        ),
    ),
)
DECAYS = (0.5, 0.7, 0.9)
SESSION_PAGES = ("home", "product")


@dataclass(frozen=True)
class Window:
    """One evaluation: fit on ``train``, predict within ``sessions``."""

    train: InteractionLog
    sessions: Sessions
    prefixes: Prefixes
    train_sessions: Sessions


def window(log: InteractionLog, every: Sessions, start: float, end: float) -> Window:
    train = log.before(start)
    train_sessions = view_sessions(train, min_length=2)
    seen = np.zeros(log.n_items, dtype=bool)
    seen[view_sessions(train).items] = True
    inside = (every.start >= start) & (every.start < end)
    sessions = every.take(inside).only_items(seen, min_length=2)
    return Window(train, sessions, Prefixes.of(sessions), train_sessions)


def scores(lists: IntArray, prefixes: Prefixes, n_sessions: int) -> dict[str, np.ndarray]:
    """Per session, the sums of HR and reciprocal rank over its predictions."""
    r = ranks(lists, prefixes.target)
    hr = (r > 0).astype(np.float64)
    rr = np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0)
    return {
        "hr": np.bincount(prefixes.session, hr, minlength=n_sessions),
        "mrr": np.bincount(prefixes.session, rr, minlength=n_sessions),
    }


def mean_mrr(lists: IntArray, prefixes: Prefixes) -> float:
    r = ranks(lists, prefixes.target)
    return float(np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0).mean()) if len(r) else 0.0


def peer_lists(
    make: Callable[..., SessionPeer], params: dict[str, Any], w: Window, k: int
) -> IntArray:
    peer = make(
        **{p: (v or len(w.train_sessions) + 1) if p == "sample" else v for p, v in params.items()}
    )
    peer.fit(w.train_sessions)
    return recommend(peer, w.prefixes, k)


def shelfwise_lists(
    artifacts: Artifacts,
    snapshot: CatalogSnapshot,
    placement: Placement,
    w: Window,
    k: int,
) -> tuple[IntArray, str]:
    """Top-k of the served pipeline for every prediction of ``w``: an anonymous request,
    the session's views so far as its live session, the last view as the page's item
    (and which path answered)."""
    served = served_slates(snapshot, artifacts, [placement])
    p = w.prefixes
    items, times = p.sessions.items, p.sessions.times
    out = np.full((len(p), k), -1, dtype=np.int64)
    for j in range(len(p)):
        lo, hi = int(p.starts[j]), int(p.stops[j])
        session = [(int(items[i]), "product_view", float(times[i])) for i in range(lo, hi)]
        ctx = Context(at=float(times[hi - 1]) + 1.0, session=session, items=(int(items[hi - 1]),))
        got = served.top_k(placement.name, ctx, k)
        out[j, : len(got)] = got
    return out, served.label(placement.name)


def slate_coherence(lists: IntArray, p: Prefixes, snapshot: CatalogSnapshot) -> dict[str, Any]:
    """Coherence (``monitoring.coherence``) of the product-page slates ``lists`` of the
    predictions ``p``: each against the page's item (the prediction's last view). The
    requests carry the shopper's session, so personal reasons are allowed and not counted."""
    ids, items = snapshot.ids, p.sessions.items
    slates = [
        ServedSlate(
            ids[int(items[stop - 1])], [{"product_id": ids[int(i)]} for i in row if i >= 0], True
        )
        for row, stop in zip(lists, p.stops, strict=True)
    ]
    category, price, _ = catalog_of(snapshot, slates)
    return coherence(slates, category, price, available(snapshot)).as_dict(claims=False)


def with_decay(artifacts: Artifacts, decay: float) -> Artifacts:
    session = artifacts.config.session.model_copy(update={"decay_per_step": decay})
    return replace(artifacts, config=artifacts.config.model_copy(update={"session": session}))


def session_next_item(
    log: InteractionLog,
    snapshot: CatalogSnapshot,
    placements: Sequence[Placement],
    spec: Spec | None = None,
) -> ProtocolResult:
    """shelfwise's session slates against the session peers, chosen on validation."""
    started = time.perf_counter()
    spec = spec or Spec()
    say, k, config, products = spec.say, spec.k or 20, spec.config, spec.products
    every = view_sessions(log)
    require(len(every), "product views", "of the log")
    val_start, test_start, test_end = spec.windows(every.times)
    val = window(log, every, val_start, test_start)
    test = window(log, every, test_start, test_end)
    require(len(test.prefixes), "test sessions of 2+ known views", span(test_start, test_end))
    require(len(val.prefixes), "validation sessions of 2+ known views", span(val_start, test_start))
    candidates = [p for p in placements if p.page in SESSION_PAGES and not p.batch]

    scored: list[Scored] = []
    for family in FAMILIES:
        best: tuple[float, dict[str, Any]] | None = None
        for params in family.grid:
            say(f"validation: {family.name} {params}")
            got = mean_mrr(peer_lists(family.make, params, val, k), val.prefixes)
            if best is None or got > best[0] + 1e-12:
                best = (got, params)
        assert best is not None
        say(f"test: {family.name}")
        lists = peer_lists(family.make, best[1], test, k)
        scored.append(
            Scored(family.name, scores(lists, test.prefixes, len(test.sessions)), best[1], best[0])
        )

    say("validation: shelfwise sources")
    fitted = fit_all(val.train, products, config)
    choice: tuple[float, Placement, float] | None = None
    decays: dict[str, tuple[float, Placement, float]] = {}  # per placement, its best decay
    tried: list[str] = []
    for placement, decay in itertools.product(candidates, DECAYS):
        say(f"validation: shelfwise {placement.name} decay {decay}")
        lists, _ = shelfwise_lists(with_decay(fitted, decay), snapshot, placement, val, k)
        got = mean_mrr(lists, val.prefixes)
        tried.append(f"{placement.name} decay {decay}: {got:.4f}")
        if placement.name not in decays or got > decays[placement.name][0] + 1e-12:
            decays[placement.name] = (got, placement, decay)
        if choice is None or got > choice[0] + 1e-12:
            choice = (got, placement, decay)
    assert choice is not None
    say("test: shelfwise")
    # The content table depends on the catalog only: fitted once.
    fitted = fit_all(test.train, products, config, content=fitted.content)
    lists, served_label = shelfwise_lists(
        with_decay(fitted, choice[2]), snapshot, choice[1], test, k
    )
    chosen = {"placement": choice[1].name, "session_decay": choice[2]}
    # Every product placement's test slates, judged against the viewed product (the
    # chosen one's are the lists scored above; the others at their best decay).
    shown: dict[str, dict[str, Any]] = {}
    for name, (_, placement, decay) in decays.items():
        if not placement.requires_item:
            continue
        if placement is not choice[1]:
            say(f"test: coherence of {name}")
        its = (
            lists
            if placement is choice[1]
            else shelfwise_lists(with_decay(fitted, decay), snapshot, placement, test, k)[0]
        )
        shown[name] = {"session_decay": decay, **slate_coherence(its, test.prefixes, snapshot)}
    served = Scored(
        "shelfwise", scores(lists, test.prefixes, len(test.sessions)), chosen, choice[0], True
    )
    result = ProtocolResult(
        protocol=PROTOCOL,
        k=k,
        metrics=("hr", "mrr"),
        units="sessions",
        windows=windows(val_start, test_start, test_end),
        counts={
            "test sessions": len(test.sessions),
            "test predictions": len(test.prefixes),
            "validation sessions": len(val.sessions),
            "validation predictions": len(val.prefixes),
            "training sessions (2+ views)": len(test.train_sessions),
        },
        served_label=served_label,
        selection=f"MRR@{k}",
        coherence=shown,
        notes=[
            "anonymous requests: no person, the session's views as the live session, "
            "the last view as the product page's item",
            "consecutive repeat views collapsed; views of items unseen in training dropped "
            "from evaluated sessions; peers never list the item on screen",
            f"shelfwise on validation (MRR@{k}): " + "; ".join(tried),
        ],
    )
    summarise(
        result,
        [served, *scored],
        np.bincount(test.prefixes.session, minlength=len(test.sessions)).astype(np.float64),
        spec.resamples,
        spec.seed,
    )
    result.seconds = round(time.perf_counter() - started, 1)
    return result


__all__ = ["FAMILIES", "PROTOCOL", "session_next_item"]
