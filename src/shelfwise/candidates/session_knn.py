"""Session neighbourhood: what shoppers of recent sessions like the live one viewed.

A session-kNN in the manner of SKNN / V-SKNN (Jannach & Ludewig 2017, Ludewig &
Jannach 2018) with STAN's position terms (Garg et al. 2019), over a bounded
sample of the bundle's most recent sessions:

* fitting keeps the ``max_sessions`` most recent sessions (the views, cart adds
  and recommendation clicks of one basket, in order, repeats collapsed, at least
  two items) as CSR rows numbered most recent first, and an item -> sessions
  index whose lists are therefore sorted by recency;
* at a request, the live session's last ``max_events`` items weigh
  ``position_decay ** (steps back)``; the neighbour candidates are the
  ``sample`` most recent sessions sharing an item (each item's list is read up
  to ``sample`` entries: the cost is bounded whatever the item's popularity);
  a candidate's similarity is the sum of the weights of the items it shares
  (divided by ``sqrt(its length)`` when ``normalise``), and the
  ``neighbours`` most similar are kept;
* an item of a neighbour scores that neighbour's similarity times
  ``item_decay ** |distance to the neighbour's view of the latest shared item|``:
  what the neighbour viewed right around the shared item counts most.

The item on screen (the live session's latest) and the request's exclusions
never come out. The reason is impersonal and always true when a session
exists: shoppers who viewed what you viewed also viewed it. Memory: two int32
entries per kept view plus two int64 offsets per session and per item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from shelfwise.candidates.base import Proposal, Reason, RecContext, load_array
from shelfwise.candidates.config import SessionKNNConfig
from shelfwise.candidates.log import KIND_CODE, InteractionLog
from shelfwise.candidates.neighbours import drop_excluded, excluded, top_k

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]

VIEWED = ("product_view", "add_to_cart", "rec_click")  # event types that show an item seen
_SPAN = 1 << 32  # positions within one session stay below this
_ARRAYS = ("indptr", "items", "item_indptr", "item_sessions")


@dataclass(frozen=True)
class SessionIndex:
    """Sessions (most recent first) as CSR rows of items, and each item's sessions."""

    indptr: IntArray  # (n_sessions + 1,)
    items: I32  # each session's items in view order
    item_indptr: IntArray  # (n_items + 1,)
    item_sessions: I32  # each item's sessions, ascending = most recent first

    @property
    def n_items(self) -> int:
        return len(self.item_indptr) - 1

    @property
    def n_sessions(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def empty(cls, n_items: int) -> SessionIndex:
        z = np.zeros(1, np.int64)
        return cls(z, np.zeros(0, np.int32), np.zeros(n_items + 1, np.int64), np.zeros(0, np.int32))

    @classmethod
    def of(cls, sessions: list[IntArray] | tuple[IntArray, ...], n_items: int) -> SessionIndex:
        """From item sequences given most recent first (tests and :func:`fit_sessions`)."""
        lengths = np.array([len(s) for s in sessions], dtype=np.int64)
        indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        items = (
            np.concatenate(sessions).astype(np.int32) if len(sessions) else np.zeros(0, np.int32)
        )
        rows = np.repeat(np.arange(len(sessions)), lengths)
        index = sp.csr_matrix(
            (np.ones(len(items), np.int8), (items, rows)), shape=(n_items, len(sessions))
        )
        index.sum_duplicates()  # sorts each item's sessions ascending
        return cls(indptr, items, index.indptr.astype(np.int64), index.indices.astype(np.int32))

    def remap(self, to_new: IntArray, n_new: int) -> SessionIndex:
        """Re-index into another vocabulary (``to_new[old]``, -1 = gone)."""
        mapped = to_new[self.items]
        keep = mapped >= 0
        rows = np.repeat(np.arange(self.n_sessions), np.diff(self.indptr))[keep]
        lengths = np.bincount(rows, minlength=self.n_sessions)
        seqs = np.split(mapped[keep], np.cumsum(lengths)[:-1]) if self.n_sessions else []
        return SessionIndex.of(seqs, n_new)

    def save(self, folder: Path, name: str) -> None:
        for a in _ARRAYS:
            np.save(folder / f"{name}.{a}.npy", getattr(self, a))

    @classmethod
    def load(cls, folder: Path, name: str, mmap: bool = True) -> SessionIndex:
        got = {a: load_array(folder / f"{name}.{a}.npy", mmap) for a in _ARRAYS}
        return cls(**got)


def fit_sessions(log: InteractionLog, config: SessionKNNConfig) -> SessionIndex:
    """The ``max_sessions`` most recent sessions of 2+ items (repeats collapsed)."""
    codes = np.array([KIND_CODE[k] for k in VIEWED], dtype=np.int8)
    rows = log.select(np.isin(log.kind, codes))
    if not len(rows) or config.max_sessions == 0:
        return SessionIndex.empty(log.n_items)
    order = np.lexsort((rows.at, rows.basket))
    basket, item, at = rows.basket[order], rows.item[order], rows.at[order]
    repeat = np.r_[False, (basket[1:] == basket[:-1]) & (item[1:] == item[:-1])]
    basket, item, at = basket[~repeat], item[~repeat], at[~repeat]
    starts = np.flatnonzero(np.r_[True, basket[1:] != basket[:-1]])
    stops = np.r_[starts[1:], len(basket)]
    long = stops - starts >= 2
    starts, stops = starts[long], stops[long]
    recent = np.argsort(-at[stops - 1], kind="stable")[: config.max_sessions]
    seqs = [item[a:b] for a, b in zip(starts[recent], stops[recent], strict=True)]
    return SessionIndex.of(seqs, log.n_items)


def _ranges(starts: IntArray, stops: IntArray) -> IntArray:
    """The concatenated ``arange(start, stop)`` of each pair, in one pass."""
    lengths = stops - starts
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out: IntArray = np.repeat(starts, lengths) + offsets
    return out


@dataclass(eq=False)
class SessionKNNSource:
    index: SessionIndex
    config: SessionKNNConfig
    name: str = "session_knn"
    _reason: Reason = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._reason = Reason(self.name, "also_viewed")

    def query(self, ctx: RecContext) -> tuple[IntArray, FloatArray, IntArray]:
        """The live session's distinct recent items (sorted), their weights (latest: 1)
        and how recent each is (the latest: the highest)."""
        seen = [e.item for e in ctx.session if e.type in VIEWED and e.item < self.index.n_items]
        seen = [i for n, i in enumerate(seen) if n == 0 or seen[n - 1] != i]
        seen = seen[-self.config.max_events :]
        if not seen:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
        steps = np.arange(len(seen) - 1, -1, -1, dtype=np.float64)
        weights = np.power(self.config.position_decay, steps)
        items = np.array(seen, dtype=np.int64)
        # An item seen twice keeps its latest (heaviest) weight.
        order = np.lexsort((-weights, items))
        first = np.r_[True, items[order][1:] != items[order][:-1]]
        recency = np.arange(len(seen), dtype=np.int64)
        return items[order][first], weights[order][first], recency[order][first]

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        items, weights, recency = self.query(ctx)
        if not len(items):
            return Proposal.empty(self.name)
        c, ix = self.config, self.index
        lo = ix.item_indptr[items]
        hi = np.minimum(ix.item_indptr[items + 1], lo + c.sample)
        sessions = ix.item_sessions[_ranges(lo, hi)].astype(np.int64)
        if not len(sessions):
            return Proposal.empty(self.name)
        shared_w = np.repeat(weights, hi - lo)
        cand, inverse = np.unique(sessions, return_inverse=True)
        sim: FloatArray = np.bincount(inverse, shared_w).astype(np.float64)[: c.sample]
        cand = cand[: c.sample]  # session ids count from the most recent
        if c.normalise:
            sim = sim / np.sqrt(np.diff(ix.indptr)[cand])
        best = top_k(sim, c.neighbours)
        cand, sim = cand[best], sim[best]
        return self._items_of(ctx, cand, sim, items, recency, k)

    def _items_of(
        self,
        ctx: RecContext,
        cand: IntArray,
        sim: FloatArray,
        items: IntArray,
        recency: IntArray,
        k: int,
    ) -> Proposal:
        ix = self.index
        starts, stops = ix.indptr[cand], ix.indptr[cand + 1]
        lengths = stops - starts
        flat = ix.items[_ranges(starts, stops)].astype(np.int64)
        pos = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        # The neighbour's position of the shared item the live session saw last.
        at = np.minimum(np.searchsorted(items, flat), len(items) - 1)
        shared = items[at] == flat
        key = np.where(shared, (recency[at] + 1) * _SPAN + pos, 0)
        best = np.maximum.reduceat(key, np.cumsum(lengths) - lengths)
        anchor = np.repeat(best % _SPAN, lengths)
        factor = np.power(self.config.item_decay, np.abs(pos - anchor))
        contrib = np.repeat(sim, lengths) * factor
        out, inverse = np.unique(flat, return_inverse=True)
        scores = np.bincount(inverse, contrib)
        latest = ctx.session[-1].item if ctx.session else -1
        keep = (out != latest) & drop_excluded(out, excluded(ctx.exclude)) & (scores > 0)
        out, scores = out[keep], scores[keep]
        top = top_k(scores, k)
        return Proposal(self.name, out[top], scores[top], (self._reason,) * len(top))


__all__ = ["SessionIndex", "SessionKNNSource", "fit_sessions"]
