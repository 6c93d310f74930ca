"""Item-to-item neighbour lists as fixed-width 2-D blocks, and the request-time gather.

Row ``i`` of ``items`` holds the best ``width`` neighbours of item ``i`` (padded
with -1, score 0), best first. A 2-D block lets one fancy index fetch the
neighbours of every anchor of a request, and ``.npy`` files of it can be
memory-mapped so workers share one page-cache copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from shelfwise.candidates.base import Reason, load_array

T = TypeVar("T")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


# Float64 cells of one dense block of similarity rows while keeping each row's best
# neighbours: with its negated copy, partition indices and sorted values a block costs
# ~4x its size (~128 MB here). 20M cells needed ~2 GB at 20,000 products.
BLOCK_CELLS = 4_000_000
# From this many items a sparse similarity keeps each row's best entries from its own
# stored entries instead of dense blocks: a dense row costs the whole catalog, so the
# blocks grow with the square of the items (at 100,000 products the co-occurrence
# table's blocks were three quarters of a training's time, for a matrix of a few
# entries per row). Smaller catalogs keep the dense blocks, and so their tables to the
# last tie (the two ways order tied scores differently).
SPARSE_FROM = 50_000


def block_rows(width: int) -> int:
    """Rows of ``width`` cells in one dense block (at least one)."""
    return max(1, BLOCK_CELLS // max(width, 1))


@dataclass(frozen=True)
class NeighbourTable:
    items: npt.NDArray[np.int32]  # (n_items, width), -1 = empty
    scores: npt.NDArray[np.float32]  # (n_items, width), 0 where empty

    @property
    def n_items(self) -> int:
        return int(self.items.shape[0])

    @property
    def width(self) -> int:
        return int(self.items.shape[1])

    def of(self, item: int) -> tuple[IntArray, FloatArray]:
        """One item's neighbours and scores, best first."""
        row = self.items[item]
        keep = row >= 0
        return row[keep].astype(np.int64), self.scores[item][keep].astype(np.float64)

    @classmethod
    def from_sparse(cls, sim: sp.spmatrix | sp.sparray, width: int) -> NeighbourTable:
        """Keep the ``width`` best positive entries of each row (the diagonal is dropped)."""
        m = sp.csr_matrix(sim, dtype=np.float64)
        n = m.shape[0]
        table = cls(np.full((n, width), -1, dtype=np.int32), np.zeros((n, width), np.float32))
        if m.shape[1] >= SPARSE_FROM:
            table.fill_sparse(m)
            return table
        # Dense blocks of rows: a handful of vectorised calls instead of a loop per item.
        chunk = block_rows(m.shape[1])
        for start in range(0, n, chunk):
            rows = np.arange(start, min(n, start + chunk))
            table.fill_dense(m[rows].toarray(), rows)
        return table

    @classmethod
    def from_dense_rows(
        cls, block: FloatArray, rows: IntArray, n: int, width: int
    ) -> NeighbourTable:
        """As :meth:`from_sparse` for a dense block of similarity rows (``rows`` are their items)."""
        items = np.full((n, width), -1, dtype=np.int32)
        scores = np.zeros((n, width), dtype=np.float32)
        table = cls(items, scores)
        table.fill_dense(block, rows)
        return table

    def fill_sparse(self, m: sp.csr_matrix) -> None:
        """Each row's ``width`` best positive stored entries off the diagonal, best first
        (ties: the lower item first), in one sort of the stored entries."""
        coo = m.tocoo()
        keep = (coo.data > 0) & (coo.row != coo.col)
        row, col, val = coo.row[keep], coo.col[keep], coo.data[keep]
        order = np.lexsort((col, -val, row))
        row, col, val = row[order], col[order], val[order]
        rank = np.arange(len(row)) - np.searchsorted(row, row, side="left")
        best = rank < self.width
        self.items[row[best], rank[best]] = col[best]
        self.scores[row[best], rank[best]] = val[best]

    def fill_dense(self, block: FloatArray, rows: IntArray) -> None:
        width = self.width
        block = block.copy()
        block[np.arange(len(rows)), rows] = 0.0
        k = min(width, block.shape[1] - 1)
        if k <= 0:
            return
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        valid = vals > 0
        self.items[rows, :k] = np.where(valid, top, -1)
        self.scores[rows, :k] = np.where(valid, vals, 0.0)

    def remap(self, to_new: IntArray, n_new: int) -> NeighbourTable:
        """Re-index rows and entries into another vocabulary (``to_new[old]``, -1 = gone)."""
        items = np.full((n_new, self.width), -1, dtype=np.int32)
        scores = np.zeros((n_new, self.width), dtype=np.float32)
        keep = to_new >= 0
        mapped = np.where(self.items >= 0, to_new[np.maximum(self.items, 0)], -1)
        items[to_new[keep]] = mapped[keep]
        scores[to_new[keep]] = np.where(mapped[keep] >= 0, self.scores[keep], 0.0)
        return NeighbourTable(items, scores)

    def save(self, folder: Path, name: str) -> list[Path]:
        paths = [folder / f"{name}.items.npy", folder / f"{name}.scores.npy"]
        np.save(paths[0], self.items)
        np.save(paths[1], self.scores)
        return paths

    @classmethod
    def load(cls, folder: Path, name: str, mmap: bool = True) -> NeighbourTable:
        return cls(
            load_array(folder / f"{name}.items.npy", mmap),
            load_array(folder / f"{name}.scores.npy", mmap),
        )


@dataclass(frozen=True)
class Gathered:
    """Unique candidate items with summed scores and the anchor that contributed most."""

    items: IntArray
    scores: FloatArray
    anchors: IntArray


EMPTY = Gathered(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))


def gather(
    table: NeighbourTable,
    anchors: IntArray,
    weights: FloatArray,
    exclude: IntArray | None = None,
) -> Gathered:
    """Sum ``weights[a] * score(a, j)`` over anchors ``a`` for every neighbour ``j``.

    A fixed dozen numpy calls whatever the number of anchors (no Python loop and
    no sort: sums scatter into a dense per-item array). An item's anchor is the
    heaviest anchor that lists it. Anchors themselves and ``exclude`` never come out.
    """
    if len(anchors) == 0:
        return EMPTY
    if len(anchors) == 1:  # a product page: one row, no sums over the catalog
        one = _gather_one(table, int(anchors[0]), weights[:1], exclude)
        if one is not None:
            return one
    heavy = np.argsort(-weights, kind="stable")
    anchors, weights = anchors[heavy], weights[heavy]
    nb = table.items[anchors].ravel()
    sc = (table.scores[anchors] * weights[:, None]).ravel()
    an = np.repeat(anchors, table.width)
    keep = nb >= 0
    nb, sc, an = nb[keep], sc[keep], an[keep]
    totals: FloatArray = np.bincount(nb, sc, minlength=table.n_items).astype(np.float64)
    totals[anchors] = 0.0
    if exclude is not None and len(exclude):
        totals[exclude[exclude < table.n_items]] = 0.0
    items = np.flatnonzero(totals > 0)
    anchor_of = np.empty(table.n_items, dtype=np.int64)
    anchor_of[nb[::-1]] = an[::-1]  # the last write wins: the heaviest anchor
    return Gathered(items.astype(np.int64), totals[items], anchor_of[items])


def _gather_one(
    table: NeighbourTable, anchor: int, weight: FloatArray, exclude: IntArray | None
) -> Gathered | None:
    """:func:`gather` of one anchor from its row alone (the same items, scores and
    anchors; nothing the size of the catalog is made); None when the row names an
    item twice (the general path sums its scores)."""
    row = table.items[anchor]
    keep = row >= 0
    nb = row[keep].astype(np.int64)
    sc: FloatArray = table.scores[anchor][keep] * weight  # float64, as gather's product
    order = np.argsort(nb, kind="stable")
    nb, sc = nb[order], sc[order]
    if len(nb) > 1 and bool((nb[1:] == nb[:-1]).any()):
        return None
    ok = (sc > 0) & (nb != anchor)
    if exclude is not None and len(exclude):
        ok &= drop_excluded(nb, exclude[exclude < table.n_items])
    items = nb[ok]
    return Gathered(items, sc[ok], np.full(len(items), anchor, dtype=np.int64))


_BROADCAST_MAX = 16_384  # up to this many pairs, comparing all pairs is cheapest


def top_k(scores: FloatArray, k: int) -> IntArray:
    """Positions of the ``k`` highest scores, best first (ties by position)."""
    if len(scores) <= k:
        return np.lexsort((np.arange(len(scores)), -scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]


@lru_cache(maxsize=64)
def excluded(ctx_exclude: frozenset[int]) -> IntArray:
    """A request's exclude set as the sorted array ``gather`` and masks expect (read
    only: remembered, since every source of a request asks for the same one)."""
    out = np.array(sorted(ctx_exclude), dtype=np.int64)
    out.flags.writeable = False
    return out


def drop_excluded(items: IntArray, banned: IntArray) -> npt.NDArray[np.bool_]:
    """True where ``items`` is not in the sorted array ``banned``."""
    if len(banned) == 0:
        return np.ones(len(items), dtype=bool)
    pos = np.minimum(np.searchsorted(banned, items), len(banned) - 1)
    return np.asarray(banned[pos] != items)


def member(values: IntArray, of: IntArray) -> npt.NDArray[np.bool_]:
    """``np.isin`` for dense catalog indices, several times cheaper at request sizes.

    ``np.isin`` sorts both sides (two ``unique`` calls, ~50-200 µs for a few hundred
    items); small sides are compared pairwise, larger ones through a lookup table
    over the values (a bool array of at most the catalog's size)."""
    if not len(values) or not len(of):
        return np.zeros(len(values), dtype=bool)
    if len(values) * len(of) <= _BROADCAST_MAX:
        out: npt.NDArray[np.bool_] = (values[:, None] == of[None, :]).any(axis=1)
        return out
    table = np.zeros(max(int(values.max()), int(of.max())) + 1, dtype=bool)
    table[of] = True
    hit: npt.NDArray[np.bool_] = table[values]
    return hit


class ReasonCache:
    """Reasons are immutable: share one object per anchor across requests."""

    def __init__(self, source: str, kind: str) -> None:
        self.source, self.kind = source, kind
        self._by_anchor: dict[int, Reason] = {}

    def __call__(self, anchors: IntArray) -> tuple[Reason, ...]:
        cache = self._by_anchor
        keys = anchors.tolist()
        try:
            return tuple(map(cache.__getitem__, keys))
        except KeyError:  # an anchor met for the first time
            for a in keys:
                if a not in cache:
                    cache[a] = Reason(self.source, self.kind, anchor=a)
            return tuple(map(cache.__getitem__, keys))


def personal_reasons(
    viewed: ReasonCache, bought: ReasonCache, anchors: IntArray, was_bought: npt.NDArray[np.bool_]
) -> tuple[Reason, ...]:
    """Each anchor's personal reason as it is true: "because you bought" where the
    shopper bought the anchor, else "because you viewed" (a purchase-only store's
    history holds nothing but purchases: none of them was seen as a view)."""
    if not was_bought.any():
        return viewed(anchors)
    flags = was_bought.tolist()
    return tuple(
        b if f else v for v, b, f in zip(viewed(anchors), bought(anchors), flags, strict=True)
    )


def picked(values: Sequence[T], at: list[int]) -> tuple[T, ...]:
    """``tuple(values[i] for i in at)``, at C speed (a proposal's reasons of its top k)."""
    if len(at) > 1:
        got: tuple[T, ...] = itemgetter(*at)(values)
        return got
    return (values[at[0]],) if at else ()
