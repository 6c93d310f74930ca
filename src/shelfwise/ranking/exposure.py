"""The exposure cap: the largest share of a placement's slates one item may take.

A product placement's ranker prefers the same few items for many viewed products
(a substitute that is good and cheap, an add-on every category pairs with), so
one item can fill a large share of every slate of the store. A merchant caps
that share (``Objective.exposure_cap`` in placements.yaml). The cap is set
where it is cheap and stable: when the bundle is trained, over every in-stock
viewed product of the catalog (its *anchors*; home's anchors are the people the
bundle knows, ``pipeline/exposure.py``), not per request from a counter that
would move with traffic.

Calibration (:func:`calibrate`) takes each anchor's candidates, valued as served
(the ranker's expected value), and gives each item a *floor*: the least
:func:`margin` (its value over that of the best candidate left out of the slate,
the (k+1)-th) at which it may still take a slot. An item over the cap keeps its slots where it is
relatively strongest and is demoted elsewhere; the freed slots go to the next
items, which may in turn pass the cap, so the floors are raised until no item
takes more than ``cap x anchors`` slates (floors only rise, each time above at
least one of the item's slots, so this ends). A demoted item is not removed: it
goes below every item that is not demoted, so a slate with too few others
still fills with it. A slot the arrangement empties (one variant of a group
stays) goes to the next item served, in the calibration as served
(:class:`AnchorCandidates` ``groups``; serving fills it in the ranker's order,
``Scored.fill``). The ranker's features read the clock (an item's age), so the
same anchor is calibrated at several clocks after training, each capped on its
own (``pipeline/exposure.py``).

Serving (:func:`demoted`) applies the bundle's floors to the request's own
candidates (``ranking.ranker.Ranker.scored``); the trace names the items the cap
demoted out of the slate (``pipeline/learned.py``). The floors are computed on
the catalog and the rules as they were at training (a rule changed since frees
or takes slots), so the served share is near the cap, not bound by it:
``benchmarks/product_pages.py`` measures it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from shelfwise.ranking.history import FloatArray, IntArray

EXPOSURE_FOLDER = "exposure"  # a bundle's folder of floors, one file per placement


@dataclass(frozen=True)
class ExposureFloors:
    """One placement's floors, as calibrated for a bundle."""

    placement: str
    cap: float
    k: int
    anchors: int
    floors: dict[str, float]  # product id -> least margin it may be served at

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.placement}.json").write_text(
            json.dumps(
                {
                    "placement": self.placement,
                    "cap": self.cap,
                    "k": self.k,
                    "anchors": self.anchors,
                    "floors": dict(sorted(self.floors.items())),
                },
                indent=1,
            )
        )

    @classmethod
    def load(cls, folder: Path, placement: str) -> ExposureFloors | None:
        """The floors of ``placement`` kept in ``folder``; None when it has none."""
        path = folder / f"{placement}.json"
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        return cls(
            str(raw["placement"]),
            float(raw["cap"]),
            int(raw["k"]),
            int(raw["anchors"]),
            {str(k): float(v) for k, v in raw["floors"].items()},
        )

    def dense(self, ids: Sequence[str]) -> Floors:
        """The floors over the catalog's index space ``ids`` (0: no floor)."""
        out = np.zeros(len(ids), dtype=np.float64)
        if self.floors:
            index = {pid: i for i, pid in enumerate(ids)}
            for pid, floor in self.floors.items():
                i = index.get(pid)
                if i is not None:
                    out[i] = floor
        return Floors(out, self.k)


class Floors(NamedTuple):
    """A placement's floors as serving reads them: over the catalog's index space, and
    the slate size they were calibrated for (the margin's edge)."""

    values: FloatArray
    k: int


def margin(expected: FloatArray, k: int) -> FloatArray:
    """Each candidate's expected value over that of the best candidate *outside* the
    best ``k`` (the slate's edge): how much better than the first item left out it is.
    ``inf`` for all when there are no more than ``k`` candidates (nothing competes)."""
    if len(expected) <= k:
        return np.full(len(expected), np.inf)
    edge = float(-np.partition(-np.nan_to_num(expected, nan=0.0), k)[k])
    if not math.isfinite(edge) or edge <= 0:
        return np.full(len(expected), np.inf)
    out: FloatArray = np.nan_to_num(expected / edge, nan=0.0)
    return out


def demoted(items: IntArray, expected: FloatArray, floors: Floors) -> npt.NDArray[np.bool_]:
    """Which candidates the cap demotes: their :func:`margin` is below their floor
    (an item past the end of the floors has none)."""
    return judged(items, expected, floors)[0]


def standing(items: IntArray, expected: FloatArray, floors: Floors) -> FloatArray:
    """Each candidate's :func:`margin` over its floor (``inf`` without one): below 1 it
    is demoted, and the lower, the more the cap holds it back."""
    return judged(items, expected, floors)[1]


def judged(
    items: IntArray, expected: FloatArray, floors: Floors
) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
    """:func:`demoted`, :func:`standing` and :func:`margin` of the candidates, from one
    margin and one look-up of the floors (a served request needs all three)."""
    floor = _floor_of(items, floors)
    rel = margin(expected, floors.k)
    demote: npt.NDArray[np.bool_] = rel < floor
    stand: FloatArray = np.full(len(items), np.inf)
    has = floor > 0
    stand[has] = rel[has] / floor[has]
    return demote, stand, rel


def _floor_of(items: IntArray, floors: Floors) -> FloatArray:
    values = floors.values
    inside = items < len(values)
    out: FloatArray = np.zeros(len(items))
    out[inside] = values[items[inside]]
    return out


def served_order(
    expected: FloatArray, demote: npt.NDArray[np.bool_], stand: FloatArray | None = None
) -> IntArray:
    """Candidates best first: every one not demoted, by value, then the demoted, by
    value, or with ``stand`` (:func:`standing`) those the cap holds back least first:
    a slate short of others fills with them, and the item most over its share last."""
    key = expected if stand is None else np.where(demote, stand, expected)
    out: IntArray = np.lexsort((-key, demote))
    return out


class AnchorCandidates(NamedTuple):
    """One anchor's candidates as the calibration reads them."""

    items: IntArray
    expected: FloatArray  # each candidate's expected value (any order)
    # each candidate's variant group as the arrangement de-duplicates it (0: none; of a
    # group only the best one served stays; NEVER: the arrangement drops it in any
    # order, e.g. a variant of the viewed product); None: no de-duplication
    groups: IntArray | None = None
    # which of the clocks calibrated at (each clock's slates are capped on their own)
    clock: int = 0


NEVER = -1  # AnchorCandidates.groups: never served (still the slate's edge, unserved)


def calibrate(
    anchors: Sequence[tuple[IntArray, FloatArray] | AnchorCandidates],
    k: int,
    cap: float,
    max_rounds: int = 10_000,
) -> dict[int, float]:
    """The floors that keep every item within ``cap`` of the anchors' slates.

    ``anchors``: each anchor's candidates and their expected values (any order), and
    how the arrangement de-duplicates them (:class:`AnchorCandidates`): a slot one
    variant leaves goes to the next item served, as it does served. Returns item ->
    floor (a :func:`margin`) for the items that need one. When an anchor has fewer
    than ``k`` candidates above their floors, demoted ones fill its slate, and an
    anchor with no more than ``k`` candidates serves them all: those slots are not
    held against the cap (nothing else could fill them)."""
    n = len(anchors)
    if n == 0 or k <= 0:
        return {}
    width = max((len(a[0]) for a in anchors), default=0)
    if width == 0:
        return {}
    # each clock's slates are capped on their own (the same anchors at another clock)
    clocks, clock = np.unique(
        [a.clock if isinstance(a, AnchorCandidates) else 0 for a in anchors], return_inverse=True
    )
    limits = np.floor(cap * np.bincount(clock) + 1e-9).astype(np.int64)
    items, rel, groups = _rows_of(anchors, k, width)
    present = items >= 0
    universe = int(items.max(initial=-1)) + 1
    floor = np.zeros(universe)
    row_clock = np.repeat(clock[:, None], width, axis=1)
    for _ in range(max_rounds):
        held = _held(items, rel, present, floor, k, groups)
        held &= np.isfinite(rel)  # an anchor with no more than k candidates: no choice
        key = row_clock[held] * universe + items[held]  # (clock, item) of every slot
        counts = np.bincount(key, minlength=len(clocks) * universe)
        over = np.flatnonzero(counts > np.repeat(limits, universe))
        if not len(over):
            break
        # each (clock, item) over the cap: the item's floor just above its (limit + 1)-th
        # best slot at that clock, so at most ``limit`` of its slots there stay
        slot_rel = rel[held]
        mine = np.isin(key, over)
        slot_key, slot_rel = key[mine], slot_rel[mine]
        order = np.lexsort((-slot_rel, slot_key))
        slot_key, slot_rel = slot_key[order], slot_rel[order]
        first = np.searchsorted(slot_key, over)
        raised = np.nextafter(slot_rel[first + limits[over // universe]], np.inf)
        np.maximum.at(floor, over % universe, raised)
    return {int(i): float(floor[i]) for i in np.flatnonzero(floor > 0).tolist()}


def _rows_of(
    anchors: Sequence[tuple[IntArray, FloatArray] | AnchorCandidates], k: int, width: int
) -> tuple[IntArray, FloatArray, IntArray | None]:
    """(items, margins, groups) of every anchor, one row each, best first (-1, -inf,
    NEVER past a row's end; groups None when no anchor has any)."""
    n = len(anchors)
    items = np.full((n, width), -1, dtype=np.int64)
    rel = np.full((n, width), -np.inf)
    grouped = any(len(a) > 2 and a[2] is not None for a in anchors)
    groups = np.full((n, width), NEVER, dtype=np.int64) if grouped else None
    for row, a in enumerate(anchors):
        its, exp = a[0], a[1]
        value = np.asarray(exp, dtype=np.float64)
        r = margin(value, k)
        order = np.argsort(-value, kind="stable")
        items[row, : len(its)] = np.asarray(its, dtype=np.int64)[order]
        rel[row, : len(its)] = r[order]
        if groups is not None:
            g = a[2] if len(a) > 2 else None
            groups[row, : len(its)] = 0 if g is None else np.asarray(g, dtype=np.int64)[order]
    return items, rel, groups


def _held(
    items: IntArray,
    rel: FloatArray,
    present: npt.NDArray[np.bool_],
    floor: FloatArray,
    k: int,
    groups: IntArray | None = None,
) -> npt.NDArray[np.bool_]:
    """The slots of each anchor's slate taken by an item at or above its floor (rows
    best first: the first ``k`` of those, after the arrangement's de-duplication)."""
    allowed = present & (rel >= floor[np.maximum(items, 0)])
    if groups is not None:
        allowed &= _first_of_group(allowed & (groups != NEVER), groups)
    return allowed & (np.cumsum(allowed, axis=1) <= k)


def _first_of_group(allowed: npt.NDArray[np.bool_], groups: IntArray) -> npt.NDArray[np.bool_]:
    """``allowed`` less every item of a variant group after the group's first allowed
    one in its row (rows best first)."""
    out = allowed.copy()
    rows, cols = np.nonzero(allowed & (groups > 0))  # row-major: each row best first
    if len(rows):
        key = rows * (int(groups.max()) + 1) + groups[rows, cols]
        _, first = np.unique(key, return_index=True)
        later = np.ones(len(rows), dtype=bool)
        later[first] = False
        out[rows[later], cols[later]] = False
    return out


def slates(
    anchors: Sequence[tuple[IntArray, FloatArray] | AnchorCandidates],
    k: int,
    floors: Mapping[int, float],
) -> list[IntArray]:
    """Each anchor's served top ``k`` under ``floors`` (as :func:`demoted` and
    :func:`served_order` order them and the arrangement de-duplicates them): what the
    calibration promises, checked."""
    universe = 1 + max((int(a[0].max(initial=-1)) for a in anchors), default=-1)
    values = np.zeros(max(universe, 1))
    for item, f in floors.items():
        if item < len(values):
            values[item] = f
    dense = Floors(values, k)
    out = []
    for a in anchors:
        its = np.asarray(a[0], dtype=np.int64)
        exp = np.asarray(a[1], dtype=np.float64)
        order = served_order(exp, demoted(its, exp, dense), standing(its, exp, dense))
        g = a[2] if len(a) > 2 else None
        if g is not None:
            g = np.asarray(g, dtype=np.int64)[order]
            keep = _first_of_group((g != NEVER)[None, :], g[None, :])[0]
            order = order[keep]
        out.append(its[order[:k]])
    return out


__all__ = [
    "EXPOSURE_FOLDER",
    "NEVER",
    "AnchorCandidates",
    "ExposureFloors",
    "Floors",
    "calibrate",
    "demoted",
    "margin",
    "served_order",
    "slates",
    "standing",
]
