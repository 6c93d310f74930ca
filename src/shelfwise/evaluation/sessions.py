"""Sessions of product views as ragged arrays, and the next-item predictions they pose.

A session is the ordered product views of one basket of the interaction log
(the log's basket is the session id when events carry one). Consecutive views
of the same item are collapsed into one: a reload is not a next item, and
left in, any model that repeats the item on screen scores a free hit.

A session ``[i1, ..., in]`` poses ``n - 1`` predictions: after ``i1..it``,
which item comes next (``i(t+1)``)? :class:`Prefixes` holds them flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from shelfwise.candidates.log import KIND_CODE, InteractionLog

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
VIEW = KIND_CODE["product_view"]


@dataclass(frozen=True)
class Sessions:
    """``items[indptr[s]:indptr[s+1]]`` are session ``s``'s views in order (dense item
    ids); ``times`` the time of each view; ``start``/``end`` each session's span."""

    indptr: IntArray
    items: IntArray
    times: FloatArray
    n_items: int

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> IntArray:
        return np.diff(self.indptr)

    @property
    def start(self) -> FloatArray:
        return self.times[self.indptr[:-1]] if len(self) else np.zeros(0)

    @property
    def end(self) -> FloatArray:
        return self.times[self.indptr[1:] - 1] if len(self) else np.zeros(0)

    def session(self, s: int) -> IntArray:
        return self.items[self.indptr[s] : self.indptr[s + 1]]

    def take(self, keep: npt.NDArray[np.bool_]) -> Sessions:
        """The sessions where ``keep`` holds."""
        lengths = self.lengths[keep]
        rows = np.repeat(keep, self.lengths)
        return Sessions(
            np.r_[0, np.cumsum(lengths)].astype(np.int64),
            self.items[rows],
            self.times[rows],
            self.n_items,
        )

    def only_items(self, known: npt.NDArray[np.bool_], min_length: int = 2) -> Sessions:
        """Views of ``known`` items only (collapsing repeats the removal brings
        together); then sessions of at least ``min_length`` views."""
        sid = np.repeat(np.arange(len(self)), self.lengths)
        keep = known[self.items]
        return _build(sid[keep], self.items[keep], self.times[keep], self.n_items, min_length)

    def matrix(self) -> sp.csr_matrix:
        """Binary sessions x items."""
        rows = np.repeat(np.arange(len(self)), self.lengths)
        x = sp.csr_matrix((np.ones(len(rows)), (rows, self.items)), shape=(len(self), self.n_items))
        x.sum_duplicates()
        x.data[:] = 1.0
        return x


def _build(
    sid: IntArray, items: IntArray, times: FloatArray, n_items: int, min_length: int
) -> Sessions:
    """Sessions from rows sorted by (session, time): repeats collapsed, short ones dropped."""
    if len(sid):
        repeat = np.r_[False, (sid[1:] == sid[:-1]) & (items[1:] == items[:-1])]
        sid, items, times = sid[~repeat], items[~repeat], times[~repeat]
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]]) if len(sid) else np.zeros(0, int)
    lengths = np.diff(np.r_[starts, len(sid)])
    keep = np.repeat(lengths >= min_length, lengths)
    lengths = lengths[lengths >= min_length]
    return Sessions(
        np.r_[0, np.cumsum(lengths)].astype(np.int64),
        items[keep].astype(np.int64),
        times[keep].astype(np.float64),
        n_items,
    )


def view_sessions(log: InteractionLog, min_length: int = 1) -> Sessions:
    """The product-view sessions of ``log`` (one per basket), ordered by their first view."""
    views = log.select(log.kind == VIEW)
    first = np.full(int(views.basket.max()) + 1 if len(views) else 0, np.inf)
    np.minimum.at(first, views.basket, views.at)
    order = np.lexsort((views.at, views.basket, first[views.basket]))
    return _build(views.basket[order], views.item[order], views.at[order], log.n_items, min_length)


@dataclass(frozen=True)
class Prefixes:
    """Every next-item prediction of some sessions, flat: prediction ``j`` knows the
    views ``items[starts[j]:stops[j]]`` of its session and must find ``target[j]``."""

    sessions: Sessions
    session: IntArray  # the session of each prediction
    stops: IntArray

    @classmethod
    def of(cls, sessions: Sessions) -> Prefixes:
        lengths = sessions.lengths
        session = np.repeat(np.arange(len(sessions)), np.maximum(lengths - 1, 0))
        offset = np.arange(len(session)) - np.repeat(
            np.r_[0, np.cumsum(np.maximum(lengths - 1, 0))][:-1], np.maximum(lengths - 1, 0)
        )
        stops = sessions.indptr[session] + offset + 1
        return cls(sessions, session.astype(np.int64), stops.astype(np.int64))

    def __len__(self) -> int:
        return len(self.stops)

    @property
    def starts(self) -> IntArray:
        return self.sessions.indptr[self.session]

    @property
    def target(self) -> IntArray:
        return self.sessions.items[self.stops]

    @property
    def last(self) -> IntArray:
        return self.sessions.items[self.stops - 1]

    @property
    def at(self) -> FloatArray:
        """The time of the last known view: when the next slate is asked for."""
        return self.sessions.times[self.stops - 1]

    def known(self, j: int) -> IntArray:
        return self.sessions.items[self.starts[j] : self.stops[j]]

    def batch(self, rows: IntArray) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """The known views of predictions ``rows`` as (row in batch, position from the
        start 1..L, item), and each prediction's length L."""
        starts, stops = self.starts[rows], self.stops[rows]
        lengths = stops - starts
        which = np.repeat(np.arange(len(rows)), lengths)
        pos = np.arange(lengths.sum()) - np.repeat(np.r_[0, np.cumsum(lengths)][:-1], lengths)
        items = self.sessions.items[np.repeat(starts, lengths) + pos]
        return which, pos + 1, items, lengths


def ranks(lists: IntArray, target: IntArray) -> IntArray:
    """1-based rank of each target in its row of ``lists`` (-1 padding), 0 when absent."""
    hit = lists == target[:, None]
    found = hit.any(axis=1)
    return np.where(found, hit.argmax(axis=1) + 1, 0).astype(np.int64)


__all__ = ["Prefixes", "Sessions", "ranks", "view_sessions"]
