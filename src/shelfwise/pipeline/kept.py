"""What the request path keeps between requests, each entry valid as long as what it was made of.

Two things are kept this way: candidate pools (``pipeline/memo.py``) and whole
served slates (``pipeline/slates.py``). Each entry is checked on every read:

- against the store-wide *stamp* (the catalog's size, the model bundle, the
  rulebook version: whatever, when it moves, may change any entry): a new stamp
  forgets every entry at once;
- against the catalog products it *depends on* (the candidates it was computed
  from, the viewed items, the rulebook's pinned products): it is dropped as soon
  as one of them has changed since (stock, price, any attribute; the snapshot's
  per-product change sequence, ``CatalogSnapshot.changed_seq``).

So a stock or price change reaches the very next request that could show it, and
a live feed of such changes costs only the entries it touches: with one shared
catalog-wide stamp, every change emptied everything.

A full store drops its least recently used entry. The learned path's entries serve
one time bucket each (their key holds the bucket's clock), so an earlier bucket's
entries are the least recently used as soon as the next bucket's requests come.

Least recently used was chosen over two scan-resistant admissions, replayed on the
serving benchmark's traffic (benchmarks/README.md, "Which entries a full store
keeps"): *first come* (a full store of the current bucket's entries refuses new
ones) and *ask counts* (a new entry displaces the least asked of the oldest entries
only when asked more often). Both kept a cyclic walk wider than the store serving,
and both lost the repeated contexts (personal home) that came after a burst of
one-off contexts in the same minute: 0.57 of home served kept under least recently
used, 0-0.24 in some rounds under the others.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

V = TypeVar("V")
Depends = npt.NDArray[np.int32]


def depends_on(*parts: npt.ArrayLike) -> Depends:
    """The catalog indices an entry was made of (a repeat is harmless: not deduplicated)."""
    if not parts:
        return np.zeros(0, np.int32)
    return np.concatenate([np.asarray(p, dtype=np.int32).ravel() for p in parts])


class KeptStore(Generic[V]):
    """Entries by key, least recently used out first past ``max_entries``."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[Hashable, tuple[V, Depends, int]] = OrderedDict()
        self._stamp: Hashable = None
        self._lock = threading.Lock()
        self.hits = 0  # reads answered (for benchmarks and tests; not thread-exact)
        self.misses = 0
        self.evicted = 0  # entries dropped to make room

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def __len__(self) -> int:
        return len(self._data)

    def values(self) -> list[V]:
        """The kept entries (for measures and tests: not checked against anything)."""
        with self._lock:
            return [v[0] for v in self._data.values()]

    def get(self, key: Hashable, stamp: Hashable, changed_seq: npt.NDArray[np.int64]) -> V | None:
        """The entry of ``key`` if it was kept under ``stamp`` and none of the products it
        depends on changed after it was made (``changed_seq``: each product's last change)."""
        with self._lock:
            if stamp != self._stamp:
                self._data.clear()
                self._stamp = stamp
                self.misses += 1
                return None
            got = self._data.get(key)
            if got is None:
                self.misses += 1
                return None
            value, deps, seq = got
            if len(deps) and int(changed_seq[deps].max()) > seq:
                del self._data[key]  # made of a product that has changed since
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, stamp: Hashable, value: V, deps: Depends, seq: int) -> None:
        """Keep ``value``, made of the products ``deps`` as of the catalog's change ``seq``."""
        with self._lock:
            if stamp != self._stamp or not self.enabled:
                return  # made against a state that has moved on since
            data = self._data
            data[key] = (value, deps, seq)
            data.move_to_end(key)
            while len(data) > self.max_entries:
                data.popitem(last=False)
                self.evicted += 1
