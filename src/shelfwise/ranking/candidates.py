"""The union of the sources' proposals for one request, as matrices the features read.

Sources answer separately (``Proposal``); the ranker needs one row per unique
item with every source's score and rank side by side. Reasons stay in the
proposals and are looked up lazily for the few items that are served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shelfwise.candidates.base import Proposal, Reason
from shelfwise.ranking.history import FloatArray, IntArray


@dataclass(frozen=True)
class CandidateSet:
    """Unique items with per-source scores/ranks (NaN where a source did not propose)."""

    items: IntArray
    scores: FloatArray  # (n, sources)
    ranks: FloatArray  # (n, sources), 1 = the source's best
    reason_at: IntArray  # (n, sources) index into proposals[s].reasons, -1 = absent
    sources: tuple[str, ...]
    proposals: tuple[Proposal, ...]  # aligned with ``sources`` (empty when absent)

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def from_proposals(cls, proposals: Sequence[Proposal], sources: Sequence[str]) -> CandidateSet:
        """Union the proposals of the known ``sources`` (others are ignored)."""
        by_name = {p.source: p for p in proposals}
        aligned = tuple(by_name.get(s) or Proposal.empty(s) for s in sources)
        lengths = [len(p.items) for p in aligned]
        if sum(lengths) == 0:
            n_src = len(sources)
            return cls(
                np.zeros(0, dtype=np.int64),
                np.zeros((0, n_src)),
                np.zeros((0, n_src)),
                np.zeros((0, n_src), dtype=np.int64),
                tuple(sources),
                aligned,
            )
        all_items = np.concatenate([p.items for p in aligned]).astype(np.int64)
        all_scores = np.concatenate([p.scores for p in aligned]).astype(np.float64)
        col = np.repeat(np.arange(len(aligned)), lengths)
        starts = np.repeat(np.cumsum([0, *lengths[:-1]]), lengths)
        pos = np.arange(len(all_items)) - starts
        rank = _source_ranks(all_scores, lengths)
        items, row = unique_inverse(all_items)
        shape = (len(items), len(aligned))
        scores, ranks = np.full(shape, np.nan), np.full(shape, np.nan)
        reason_at = np.full(shape, -1, dtype=np.int64)
        scores[row, col] = all_scores
        ranks[row, col] = rank
        reason_at[row, col] = pos
        return cls(items, scores, ranks, reason_at, tuple(sources), aligned)

    @classmethod
    def of_items(
        cls, proposals: Sequence[Proposal], sources: Sequence[str], items: IntArray
    ) -> CandidateSet:
        """``from_proposals(proposals, sources)`` restricted to ``items`` (unique), in
        their order, those no proposal names left out: the rows ``take`` would keep,
        made for them alone (the rules' pool is a fraction of every source's proposal).
        Each source's ranks are still over its whole proposal."""
        by_name = {p.source: p for p in proposals}
        aligned = tuple(by_name.get(s) or Proposal.empty(s) for s in sources)
        n_src = len(aligned)
        lengths = [len(p.items) for p in aligned]
        wanted = np.asarray(items, dtype=np.int64)
        if sum(lengths) == 0 or not len(wanted):
            empty = np.zeros((0, n_src))
            return cls(wanted[:0], empty, empty.copy(), np.zeros((0, n_src), np.int64),
                       tuple(sources), aligned)  # fmt: skip
        all_items = np.concatenate([p.items for p in aligned]).astype(np.int64)
        sorter = np.argsort(wanted, kind="stable")
        ordered = wanted[sorter]
        at = np.minimum(np.searchsorted(ordered, all_items), len(ordered) - 1)
        hit = np.flatnonzero(ordered[at] == all_items)  # entries naming a wanted item
        where = sorter[at[hit]]  # ... and its position in ``items``
        col = np.repeat(np.arange(n_src), lengths)[hit]
        starts = np.repeat(np.cumsum([0, *lengths[:-1]]), lengths)[hit]
        pos = hit - starts
        present = np.zeros(len(wanted), dtype=bool)
        present[where] = True
        row = (np.cumsum(present) - 1)[where]
        shape = (int(present.sum()), n_src)
        scores, ranks = np.full(shape, np.nan), np.full(shape, np.nan)
        reason_at = np.full(shape, -1, dtype=np.int64)
        all_scores = np.concatenate([p.scores for p in aligned]).astype(np.float64)
        scores[row, col] = all_scores[hit]
        ranks[row, col] = _source_ranks(all_scores, lengths)[hit]
        reason_at[row, col] = pos
        return cls(wanted[present], scores, ranks, reason_at, tuple(sources), aligned)

    def take(self, rows: IntArray) -> CandidateSet:
        """The candidates at ``rows`` (e.g. those the rules allow), in that order."""
        return CandidateSet(
            self.items[rows],
            self.scores[rows],
            self.ranks[rows],
            self.reason_at[rows],
            self.sources,
            self.proposals,
        )

    def align(self, items: IntArray) -> CandidateSet:
        """Exactly ``items``, in that order: a row the sources did not propose has NaN columns."""
        items = np.asarray(items, dtype=np.int64)
        n, n_src = len(items), len(self.sources)
        scores, ranks = np.full((n, n_src), np.nan), np.full((n, n_src), np.nan)
        reason_at = np.full((n, n_src), -1, dtype=np.int64)
        if len(self.items):
            order = np.argsort(self.items, kind="stable")
            pos = order[np.minimum(np.searchsorted(self.items[order], items), len(order) - 1)]
            hit = self.items[pos] == items
            scores[hit], ranks[hit] = self.scores[pos[hit]], self.ranks[pos[hit]]
            reason_at[hit] = self.reason_at[pos[hit]]
        return CandidateSet(items, scores, ranks, reason_at, self.sources, self.proposals)

    def reasons_at(self, rows: IntArray) -> list[list[Reason]]:
        """:meth:`reasons_of` of each of ``rows`` (one sort for all of them)."""
        at = self.reason_at[rows]
        r, s = np.nonzero(at >= 0)  # row by row, each row's sources in column order
        chain = np.array([name != "blend" for name in self.sources], dtype=bool)
        # per row: the chain first, then best-ranked first, ties in column order
        order = np.lexsort((s, self.ranks[rows][r, s], chain[s], r))
        out: list[list[Reason]] = [[] for _ in range(len(at))]
        proposals = self.proposals
        rows_, cols, pos = r[order].tolist(), s[order].tolist(), at[r, s][order].tolist()
        for i, c, a in zip(rows_, cols, pos, strict=True):
            out[i].append(proposals[c].reasons[a])
        return out

    def reasons_of(self, row: int) -> list[Reason]:
        """The reasons every source gave for the candidate at ``row``: the placement's
        own chain (``blend``) first, as it put the item in the pool, then the other
        sources, best-ranked first."""
        at = self.reason_at[row]
        present = np.flatnonzero(at >= 0)
        chain = np.array([self.sources[s] != "blend" for s in present.tolist()], dtype=bool)
        present = present[np.lexsort((self.ranks[row, present], chain))]
        return [self.proposals[s].reasons[at[s]] for s in present]


def _source_ranks(scores: FloatArray, lengths: Sequence[int]) -> FloatArray:
    """Each entry's rank within its proposal (1 = the best score; ties by position): the
    proposals' ``scores`` one after the other, ``lengths`` each. Proposals best first
    already (every source's, but some tests') are numbered as they stand, without the
    sort by (source, -score)."""
    starts = np.cumsum([0, *lengths[:-1]])
    first = np.repeat(starts, lengths)
    pos: FloatArray = np.arange(len(scores), dtype=np.float64) - first + 1.0
    down = scores[1:] <= scores[:-1]
    cut = starts[1:]
    down[cut[(cut > 0) & (cut < len(scores))] - 1] = True  # a new proposal may go up
    if down.all():
        return pos
    order = np.lexsort((-scores, np.repeat(np.arange(len(lengths)), lengths)))
    rank = np.empty(len(order), dtype=np.float64)
    rank[order] = pos
    return rank


def unique_inverse(values: IntArray) -> tuple[IntArray, IntArray]:
    """``np.unique(values, return_inverse=True)`` of catalog indices: through a mark per
    index up to the largest when that is not much more than the values (a few hundred
    proposals over a catalog of thousands), without ``np.unique``'s sort."""
    if not len(values) or int(values.min()) < 0 or int(values.max()) >= 32 * len(values) + 1024:
        items, inverse = np.unique(values, return_inverse=True)
        return items, inverse
    mark = np.zeros(int(values.max()) + 1, dtype=bool)
    mark[values] = True
    index = np.cumsum(mark) - 1
    return np.flatnonzero(mark), index[values]
