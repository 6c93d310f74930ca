"""Basket completion: hide one item of a test basket, rank the catalog from the others.

* baskets are the purchases of one order (the log's basket), distinct items;
  test baskets are bought in ``[cutoff, cutoff + window)``, validation baskets
  in the window before (fitted on what precedes it), with 2 to
  ``MAX_BASKET`` items; the hidden item (one per basket, drawn with ``seed``)
  must have been bought in training;
* the peers learn from the training baskets as rows (basket x item):
  co-occurrence counts, item-kNN and EASE of ``evaluation.baselines`` (their
  grids of ``evaluation.peers`` searched on validation by NDCG@k) and
  popularity; a basket's scores are the sum of its visible items' rows;
* shelfwise serves its ``cart`` placement through the served pipeline
  (``evaluation.served_slates``): a request whose cart is the visible items and
  whose person is the basket's buyer (a signed-in shopper: the peers see the
  basket only; the same pipeline without the person is reported beside it);
  what it chooses on validation is ``evaluation.cart_choice``'s;
* NDCG@k of the one hidden item (``1 / log2(rank + 1)``) and HR@k, the visible
  items excluded from every list, with bootstrap intervals over baskets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from shelfwise.candidates.log import PURCHASE, InteractionLog
from shelfwise.catalog import CatalogSnapshot
from shelfwise.evaluation.baselines import EASE, ItemKNN, binary_matrix
from shelfwise.evaluation.cart_choice import choose, serve
from shelfwise.evaluation.peers import FAMILIES as PEOPLE_FAMILIES
from shelfwise.evaluation.protocol_report import (
    ProtocolResult,
    Scored,
    Spec,
    require,
    span,
    summarise,
    windows,
)
from shelfwise.evaluation.served_slates import Context, ServedSlates
from shelfwise.evaluation.session_peers import top_lists
from shelfwise.evaluation.sessions import FloatArray, IntArray, ranks
from shelfwise.serving.placements import Placement

PROTOCOL = "basket-completion"
MAX_BASKET = 50
Step = Callable[[str], None]


@dataclass(frozen=True)
class Baskets:
    """``visible[indptr[b]:indptr[b+1]]`` are basket ``b``'s shown items; ``hidden[b]``
    the one to find; ``at[b]`` when it was bought; ``person[b]`` who bought it (an
    index into the log's ``people``)."""

    indptr: IntArray
    visible: IntArray
    hidden: IntArray
    at: FloatArray
    person: IntArray

    def __len__(self) -> int:
        return len(self.hidden)

    def matrix(self, n_items: int) -> sp.csr_matrix:
        rows = np.repeat(np.arange(len(self)), np.diff(self.indptr))
        return sp.csr_matrix((np.ones(len(rows)), (rows, self.visible)), shape=(len(self), n_items))


def basket_log(log: InteractionLog) -> InteractionLog:
    """The purchases of ``log`` with each basket as its own row ("person") of the matrix."""
    buys = log.select(log.kind == PURCHASE)
    _, rows = np.unique(buys.basket, return_inverse=True)
    n = int(rows.max()) + 1 if len(rows) else 0
    return InteractionLog(
        person=rows.astype(np.int64),
        item=buys.item,
        kind=buys.kind,
        at=buys.at,
        basket=buys.basket,
        quantity=buys.quantity,
        price=buys.price,
        people=tuple(str(i) for i in range(n)),
        items=log.items,
    )


def hide_one(log: InteractionLog, start: float, end: float, seed: int) -> Baskets:
    """Test baskets bought in ``[start, end)``: one item of each hidden (seeded), the
    hidden item bought before ``start``."""
    seen = np.zeros(log.n_items, dtype=bool)
    past = log.select((log.kind == PURCHASE) & (log.at < start))
    seen[past.item] = True
    inside = basket_log(log.between(start, end))
    x = binary_matrix(inside)
    at = np.zeros(x.shape[0])
    np.maximum.at(at, inside.person, inside.at)
    owner = np.zeros(x.shape[0], dtype=np.int64)
    owner[inside.person] = log.between(start, end).purchases().person
    sizes = np.diff(x.indptr)
    rng = np.random.default_rng(seed)
    indptr, visible, hidden, when, who = [0], [], [], [], []
    for b in np.flatnonzero((sizes >= 2) & (sizes <= MAX_BASKET)):
        items = x.indices[x.indptr[b] : x.indptr[b + 1]]
        h = int(items[rng.integers(len(items))])
        if not seen[h]:
            continue
        visible.append(items[items != h])
        indptr.append(indptr[-1] + len(items) - 1)
        hidden.append(h)
        when.append(at[b])
        who.append(owner[b])
    return Baskets(
        np.asarray(indptr, dtype=np.int64),
        np.concatenate(visible).astype(np.int64) if visible else np.zeros(0, np.int64),
        np.asarray(hidden, dtype=np.int64),
        np.asarray(when, dtype=np.float64),
        np.asarray(who, dtype=np.int64),
    )


class ItemScores:
    """A peer as an item x item score matrix: a basket scores the sum of its items' rows."""

    def __init__(self, name: str, rows: sp.csr_matrix | npt.NDArray[Any]) -> None:
        self.name, self.rows = name, rows

    def lists(self, baskets: Baskets, k: int, n_items: int) -> IntArray:
        out = np.full((len(baskets), k), -1, dtype=np.int64)
        x = baskets.matrix(n_items)
        for start in range(0, len(baskets), 256):
            part = x[start : start + 256]
            scores = self.score(part)
            scores[part.nonzero()] = 0.0
            out[start : start + len(scores)] = top_lists(scores, k)
        return out

    def score(self, baskets: sp.csr_matrix) -> FloatArray:
        s = baskets @ self.rows
        return np.asarray(s.toarray() if sp.issparse(s) else s, dtype=np.float64)


class PopularScores(ItemScores):
    """Every basket gets the items' counts of training baskets."""

    def score(self, baskets: sp.csr_matrix) -> FloatArray:
        return np.tile(np.asarray(self.rows, dtype=np.float64), (baskets.shape[0], 1))


def cooccurrence(train: InteractionLog) -> ItemScores:
    x = binary_matrix(basket_log(train))
    co = (x.T @ x).tocsr().astype(np.float64)
    co.setdiag(0.0)
    co.eliminate_zeros()
    return ItemScores("cooccurrence", co)


def popularity(train: InteractionLog) -> ItemScores:
    counts = np.asarray(binary_matrix(basket_log(train)).sum(axis=0), dtype=np.float64).ravel()
    return PopularScores("popularity", counts)


def item_knn(train: InteractionLog, neighbours: float) -> ItemScores:
    model = ItemKNN(int(neighbours))
    model.fit(basket_log(train))
    return ItemScores("item_knn", model.sim)


def ease(train: InteractionLog, regularization: float) -> ItemScores:
    model = EASE(regularization)
    model.fit(basket_log(train))
    return ItemScores("ease", model.b.astype(np.float64))


class EaseHistory:
    """A peer that sees the shopper too: EASE's basket scores and the shopper's own
    purchases before the window (``log1p`` of their orders of each item), each scaled
    by its row's best, the history weighted ``weight``."""

    name = "ease_history"

    def __init__(self, ease: ItemScores, train: InteractionLog, weight: float) -> None:
        buys = train.purchases()
        counts = sp.csr_matrix(
            (np.ones(len(buys)), (buys.person, buys.item)),
            shape=(train.n_people, train.n_items),
        )
        counts.sum_duplicates()
        counts.data = np.log1p(counts.data)
        self.ease, self.history, self.weight = ease, counts, weight

    def lists(self, baskets: Baskets, k: int, n_items: int) -> IntArray:
        out = np.full((len(baskets), k), -1, dtype=np.int64)
        x = baskets.matrix(n_items)
        for start in range(0, len(baskets), 256):
            part = x[start : start + 256]
            ease = self.ease.score(part)
            own = self.history[baskets.person[start : start + 256]].toarray()
            scores = _row_scaled(ease) + self.weight * _row_scaled(own)
            scores[part.nonzero()] = 0.0
            out[start : start + len(scores)] = top_lists(scores, k)
        return out


def _row_scaled(scores: FloatArray) -> FloatArray:
    top = np.abs(scores).max(axis=1, keepdims=True)
    return scores / np.where(top > 0, top, 1.0)


HISTORY_WEIGHTS = (0.1, 0.25, 0.5, 1.0)  # the ease_history peer's, chosen on validation


GRIDS: dict[str, tuple[Callable[..., ItemScores], tuple[dict[str, float], ...]]] = {
    "item_knn": (item_knn, next(f.grid for f in PEOPLE_FAMILIES if f.name == "item_knn")),  # type: ignore[misc]
    "ease": (ease, next(f.grid for f in PEOPLE_FAMILIES if f.name == "ease")),  # type: ignore[misc]
}


def ndcg_sums(lists: IntArray, hidden: IntArray) -> dict[str, FloatArray]:
    r = ranks(lists, hidden)
    return {
        "ndcg": np.where(r > 0, 1.0 / np.log2(np.maximum(r, 1) + 1.0), 0.0),
        "hr": (r > 0).astype(np.float64),
    }


def cart_lists(
    served: ServedSlates,
    placement: str,
    baskets: Baskets,
    k: int,
    people: Sequence[str] | None = None,
) -> IntArray:
    """The served cart slate of every basket; with ``people`` (the log's), the request
    names the shopper, as a signed-in storefront's does."""
    out = np.full((len(baskets), k), -1, dtype=np.int64)
    for b in range(len(baskets)):
        cart = baskets.visible[baskets.indptr[b] : baskets.indptr[b + 1]].tolist()
        who = people[baskets.person[b]] if people is not None else None
        ctx = Context(at=float(baskets.at[b]), cart=cart, person=who)
        got = served.top_k(placement, ctx, k)
        out[b, : len(got)] = got
    return out


def history_peer(
    val_train: InteractionLog,
    test_train: InteractionLog,
    val: Baskets,
    test: Baskets,
    k: int,
    ease_params: dict[str, float],
    say: Step,
) -> Scored:
    """The ``ease_history`` reference (EASE at its chosen λ plus the shopper's own
    purchases), its history weight chosen on validation; not one of the peers."""
    n = val_train.n_items
    fitted = ease(val_train, **ease_params)
    best: tuple[float, float] | None = None
    for w in HISTORY_WEIGHTS:
        say(f"validation: ease_history, weight {w:g}")
        lists = EaseHistory(fitted, val_train, w).lists(val, k, n)
        got = float(ndcg_sums(lists, val.hidden)["ndcg"].mean())
        if best is None or got > best[0] + 1e-12:
            best = (got, w)
    assert best is not None
    say("test: ease_history")
    lists = EaseHistory(ease(test_train, **ease_params), test_train, best[1]).lists(test, k, n)
    chosen = {**ease_params, "history_weight": best[1]}
    return Scored("ease_history", ndcg_sums(lists, test.hidden), chosen, best[0], own=True)


def known_before(log: InteractionLog, baskets: Baskets, start: float) -> int:
    """How many of ``baskets`` were bought by someone who bought before ``start``."""
    buyers = np.zeros(log.n_people, dtype=bool)
    buyers[log.select((log.kind == PURCHASE) & (log.at < start)).person] = True
    return int(buyers[baskets.person].sum())


def basket_completion(
    log: InteractionLog,
    snapshot: CatalogSnapshot,
    placements: Sequence[Placement],
    spec: Spec | None = None,
    placement: str = "cart",
) -> ProtocolResult:
    """shelfwise's cart slates against co-occurrence, item-kNN, EASE and popularity."""
    started = time.perf_counter()
    spec = spec or Spec()
    say, k, seed = spec.say, spec.k or 10, spec.seed
    buys = log.at[log.kind == PURCHASE]
    require(len(buys), "purchases", "of the log")
    val_start, test_start, test_end = spec.windows(buys)
    val = hide_one(log, val_start, test_start, seed)
    test = hide_one(log, test_start, test_end, seed)
    require(len(test), "test baskets", span(test_start, test_end))
    require(len(val), "validation baskets", span(val_start, test_start))
    val_train, test_train = log.before(val_start), log.before(test_start)
    n = log.n_items

    scored: list[Scored] = []
    for make in (cooccurrence, popularity):
        say(f"test: {make.__name__}")
        lists = make(test_train).lists(test, k, n)
        scored.append(Scored(make.__name__, ndcg_sums(lists, test.hidden)))
    for name, (fit, grid) in GRIDS.items():
        best: tuple[float, dict[str, float]] | None = None
        for params in grid:
            say(f"validation: {name} {dict(params)}")
            got = float(
                ndcg_sums(fit(val_train, **params).lists(val, k, n), val.hidden)["ndcg"].mean()
            )
            if best is None or got > best[0] + 1e-12:
                best = (got, dict(params))
        assert best is not None
        say(f"test: {name}")
        lists = fit(test_train, **best[1]).lists(test, k, n)
        scored.append(Scored(name, ndcg_sums(lists, test.hidden), best[1], best[0]))
        if name == "ease":
            scored.append(history_peer(val_train, test_train, val, test, k, best[1], say))

    people = log.people

    def on_validation(served: ServedSlates) -> float:
        lists = cart_lists(served, placement, val, k, people)
        return float(ndcg_sums(lists, val.hidden)["ndcg"].mean())

    say("validation: shelfwise sources")
    choice, content = choose(
        val_train, snapshot, placements, spec, placement, on_validation, spec.ranking
    )
    say("test: shelfwise sources")
    served = serve(choice, test_train, snapshot, placements, spec, placement, spec.ranking, content)
    say(f"test: shelfwise {placement}")
    chosen = {"placement": placement, **choice.as_dict()}
    lists = cart_lists(served, placement, test, k, people)
    mine = Scored("shelfwise", ndcg_sums(lists, test.hidden), chosen, choice.validation, True)
    say(f"test: shelfwise {placement}, anonymous requests")
    lists = cart_lists(served, placement, test, k)
    anonymous = Scored("shelfwise, anonymous cart", ndcg_sums(lists, test.hidden), chosen, own=True)
    ranker = f"; the cart task's ranker trained in {choice.ranker_seconds} s" * bool(
        choice.ranker_seconds
    )
    result = ProtocolResult(
        protocol=PROTOCOL,
        k=k,
        metrics=("ndcg", "hr"),
        units="baskets",
        windows=windows(val_start, test_start, test_end),
        counts={
            "test baskets": len(test),
            "validation baskets": len(val),
            "training baskets": len(np.unique(test_train.purchases().basket)),
            "test baskets of shoppers with history": int(known_before(log, test, test_start)),
        },
        served_label=served.label(placement),
        selection=f"NDCG@{k}",
        notes=[
            "cart requests name the shopper (a signed-in storefront's do): shelfwise reads "
            "their purchases before the window, the peers see the basket only; "
            "'shelfwise, anonymous cart' is the same pipeline without the person; "
            "'ease_history' (a reference, not one of the issue's peers) is EASE plus the "
            "shopper's own purchases, as much as shelfwise is told",
            f"baskets of 2..{MAX_BASKET} distinct items; one hidden item per basket (seed "
            f"{seed}), bought in training; the visible items excluded from every list",
            f"shelfwise: its {placement} placement as configured; chosen on validation "
            f"(NDCG@{k}): " + "; ".join(choice.tried) + ranker,
        ],
    )
    summarise(result, [mine, anonymous, *scored], np.ones(len(test)), spec.resamples, seed)
    result.seconds = round(time.perf_counter() - started, 1)
    return result


__all__ = ["PROTOCOL", "Baskets", "basket_completion", "hide_one"]
