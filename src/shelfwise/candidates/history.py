"""What each known person did, as CSR rows: the anchors of personal recommendations.

Row ``p`` lists the distinct items person ``p`` interacted with, with the
weighted, time-decayed strength, the last time, and how often they bought it.
Sources look people up by external id through ``index``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import load_array
from shelfwise.candidates.log import PURCHASE, InteractionLog

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_ARRAYS = ("indptr", "items", "strength", "last_at", "bought")


@dataclass(frozen=True)
class PersonHistory:
    people: tuple[str, ...]
    indptr: IntArray  # (n_people + 1,)
    items: IntArray  # distinct items per row, sorted
    strength: FloatArray  # sum of event weight x decay
    last_at: FloatArray  # unix seconds of the last interaction
    bought: FloatArray  # purchase events (orders) of the item

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {p: i for i, p in enumerate(self.people)})

    def index(self, person_id: str | None) -> int | None:
        if person_id is None:
            return None
        got: int | None = self.__dict__["_index"].get(person_id)
        return got

    def row(self, p: int) -> slice:
        return slice(int(self.indptr[p]), int(self.indptr[p + 1]))

    def recent_anchors(
        self, p: int, now: float, n: int, half_life_days: float
    ) -> tuple[IntArray, FloatArray]:
        """The ``n`` strongest items of person ``p``, weighted by strength and recency."""
        s = self.row(p)
        items, strength, last = self.items[s], self.strength[s], self.last_at[s]
        w = np.log1p(strength) * np.exp2(-np.maximum(now - last, 0.0) / (86400.0 * half_life_days))
        if len(items) > n:
            top = np.argpartition(-w, n - 1)[:n]
            items, w = items[top], w[top]
        return items, w

    def bought_any(self, p: int, items: IntArray) -> npt.NDArray[np.bool_]:
        """Whether person ``p`` bought each of ``items`` (False for one not in the row)."""
        s = self.row(p)
        row, bought = self.items[s], self.bought[s]
        if not len(row):
            return np.zeros(len(items), dtype=bool)
        at = np.minimum(np.searchsorted(row, items), len(row) - 1)
        got: npt.NDArray[np.bool_] = (row[at] == items) & (bought[at] > 0)
        return got

    @classmethod
    def fit(
        cls, log: InteractionLog, kind_weights: FloatArray, half_life_days: float
    ) -> PersonHistory:
        end = log.end
        w = kind_weights[log.kind] * np.exp2(-(end - log.at) / (86400.0 * half_life_days))
        key = log.person * log.n_items + log.item
        order = np.lexsort((log.at, key))
        key_s = key[order]
        starts = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]]) if len(key_s) else key_s
        ends = np.r_[starts[1:], len(key_s)].astype(np.int64)
        uniq = key_s[starts]
        person = uniq // max(log.n_items, 1)
        strength = np.add.reduceat(w[order], starts) if len(starts) else np.zeros(0)
        bought_rows = (log.kind[order] == PURCHASE).astype(np.float64)
        bought = np.add.reduceat(bought_rows, starts) if len(starts) else np.zeros(0)
        indptr = np.zeros(log.n_people + 1, dtype=np.int64)
        np.add.at(indptr, person + 1, 1)
        return cls(
            people=log.people,
            indptr=np.cumsum(indptr),
            items=(uniq % max(log.n_items, 1)).astype(np.int64),
            strength=strength.astype(np.float64),
            last_at=log.at[order][ends - 1] if len(starts) else np.zeros(0),
            bought=bought,
        )

    def save(self, folder: Path) -> list[Path]:
        paths = []
        for name in _ARRAYS:
            path = folder / f"history.{name}.npy"
            np.save(path, getattr(self, name))
            paths.append(path)
        return paths

    @classmethod
    def load(cls, folder: Path, people: tuple[str, ...], mmap: bool = True) -> PersonHistory:
        arrays = {n: load_array(folder / f"history.{n}.npy", mmap) for n in _ARRAYS}
        return cls(people=people, **arrays)
