"""Content similarity from catalog metadata, so new and rarely bought items get candidates.

Each product becomes a bag of tokens: words of its title and description,
every prefix of its category path, its brand, its price band (log-spaced
quantiles) and its ``attribute=value`` pairs. Tokens are TF-IDF weighted per
field, rows are L2-normalised, and the cosine neighbours of every item are kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shelfwise.candidates.base import Proposal, RecContext
from shelfwise.candidates.config import ContentConfig
from shelfwise.candidates.history import PersonHistory
from shelfwise.candidates.neighbours import (
    NeighbourTable,
    ReasonCache,
    block_rows,
    excluded,
    gather,
    top_k,
)
from shelfwise.catalog.model import Product

_WORD = re.compile(r"[a-z0-9]{2,}")
_STOP = frozenset(
    ["the", "and", "for", "with", "of", "in", "on", "to", "a", "an", "by", "from", "set", "pack"]
)


def _tokens(p: Product | None, band: int, config: ContentConfig) -> list[tuple[str, float]]:
    if p is None:
        return []
    out: list[tuple[str, float]] = []
    text = f"{p.title} {p.description or ''}".lower()
    out += [(f"w:{w}", config.text_weight) for w in _WORD.findall(text) if w not in _STOP]
    if p.category_path:
        parts = p.category_path.split("/")
        out += [
            (f"c:{'/'.join(parts[: i + 1])}", config.category_weight) for i in range(len(parts))
        ]
    if p.brand:
        out.append((f"b:{p.brand.lower()}", config.brand_weight))
    if band >= 0:
        out.append((f"p:{band}", config.price_weight))
    out += [(f"a:{k}={v}".lower(), config.attribute_weight) for k, v in p.attributes.items()]
    return out


def price_bands(prices: np.ndarray, bands: int) -> np.ndarray:
    """Quantile band of each price (-1 when unknown)."""
    out = np.full(len(prices), -1, dtype=np.int64)
    known = np.isfinite(prices) & (prices > 0)
    if known.sum() >= bands:
        edges = np.quantile(np.log(prices[known]), np.linspace(0, 1, bands + 1)[1:-1])
        out[known] = np.searchsorted(edges, np.log(prices[known]))
    return out


def feature_matrix(
    products: Sequence[Product | None], prices: np.ndarray, config: ContentConfig
) -> sp.csr_matrix:
    bands = price_bands(prices, config.price_bands)
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for i, p in enumerate(products):
        for tok, w in _tokens(p, int(bands[i]), config):
            rows.append(i)
            cols.append(vocab.setdefault(tok, len(vocab)))
            vals.append(w)
    n = len(products)
    x = sp.csr_matrix((vals, (rows, cols)), shape=(n, max(len(vocab), 1)), dtype=np.float64)
    x.sum_duplicates()
    weight = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=x.shape)
    weight.sum_duplicates()
    # tf = 1 + log(count) times the field weight; idf smoothed.
    x.data = (x.data / weight.data) * (1 + np.log(weight.data))
    df = np.bincount(x.indices, minlength=x.shape[1])
    idf = np.log((1 + n) / (1 + df)) + 1
    x = sp.csr_matrix(x @ sp.diags(idf))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1 / np.where(norms > 0, norms, 1)) @ x)


def fit_content(
    products: Sequence[Product | None], prices: np.ndarray, config: ContentConfig
) -> NeighbourTable:
    x = feature_matrix(products, prices, config)
    n = x.shape[0]
    xt = sp.csr_matrix(x.T)
    table = NeighbourTable(
        np.full((n, config.width), -1, dtype=np.int32), np.zeros((n, config.width), np.float32)
    )
    chunk = block_rows(n)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        block = (x[rows] @ xt).toarray()
        table.fill_dense(block, rows)
    return table


@dataclass(eq=False)
class ContentSource:
    """Items that look like what the shopper is looking at (or bought)."""

    table: NeighbourTable
    history: PersonHistory
    max_anchors: int = 10
    history_half_life_days: float = 60.0
    name: str = "content"
    _reasons: dict[str, ReasonCache] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        reasons = {k: ReasonCache(self.name, k) for k in ("similar_to",)}
        object.__setattr__(self, "_reasons", reasons)

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        seen = ctx.context_items + ctx.cart_items + tuple(e.item for e in ctx.session[::-1])
        anchors = np.array(list(dict.fromkeys(seen))[: self.max_anchors], dtype=np.int64)
        weights = np.ones(len(anchors))
        if not len(anchors):
            p = self.history.index(ctx.person_id)
            if p is None:
                return Proposal.empty(self.name)
            anchors, weights = self.history.recent_anchors(
                p, ctx.now.timestamp(), self.max_anchors, self.history_half_life_days
            )
        known = anchors < self.table.n_items
        got = gather(self.table, anchors[known], weights[known], excluded(ctx.exclude))
        top = top_k(got.scores, k)
        return Proposal(
            self.name,
            got.items[top],
            got.scores[top],
            self._reasons["similar_to"](got.anchors[top]),
        )
