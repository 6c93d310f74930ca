"""The time split by person and the two protocols.

Train on everything before ``cutoff``; test on the purchases in
``[cutoff, end)``; evaluate the people with at least one purchase on each side.
Protocol ``all``: every item bought in the test window is a target.
Protocol ``new``: only items the person had not interacted with before the
cutoff are targets, and those history items are excluded from the
recommendations (people left with no target are not evaluated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.log import InteractionLog

Protocol = Literal["all", "new"]
PROTOCOLS: tuple[Protocol, ...] = ("all", "new")
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Target:
    person: int
    items: IntArray  # sorted, unique
    value: npt.NDArray[np.float64]  # revenue of each target item in the test window
    history: IntArray  # sorted items the person interacted with before the cutoff


@dataclass(frozen=True)
class Split:
    train: InteractionLog
    cutoff: float
    end: float
    targets: dict[Protocol, list[Target]]


def _grouped(person: IntArray, item: IntArray) -> dict[int, IntArray]:
    order = np.lexsort((item, person))
    person, item = person[order], item[order]
    if len(person) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
    ends = np.r_[starts[1:], len(person)]
    return {int(person[s]): np.unique(item[s:e]) for s, e in zip(starts, ends, strict=True)}


def time_split(log: InteractionLog, cutoff: float, end: float | None = None) -> Split:
    end = end if end is not None else log.end + 1
    train = log.before(cutoff)
    test = log.between(cutoff, end).purchases()
    bought_before = set(np.unique(train.purchases().person).tolist())
    history = _grouped(train.person, train.item)
    revenue = np.nan_to_num(test.price) * np.maximum(test.quantity, 1.0)
    key = test.person * log.n_items + test.item
    uniq, inverse = np.unique(key, return_inverse=True)
    value_of = dict(zip(uniq.tolist(), np.bincount(inverse, revenue).tolist(), strict=True))
    targets: dict[Protocol, list[Target]] = {"all": [], "new": []}
    for person, items in sorted(_grouped(test.person, test.item).items()):
        if person not in bought_before:
            continue
        seen = history.get(person, np.zeros(0, np.int64))
        fresh = np.setdiff1d(items, seen)
        for protocol, chosen in (("all", items), ("new", fresh)):
            if len(chosen):
                value = np.array([value_of[person * log.n_items + i] for i in chosen.tolist()])
                targets[protocol].append(Target(person, chosen, value, seen))  # type: ignore[index]
    return Split(train, cutoff, end, targets)
