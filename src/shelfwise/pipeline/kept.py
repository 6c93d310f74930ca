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

A full store drops its least recently used entry, unless its entries are kept for a
*generation* (the learned path's time bucket, ``pipeline/learned.py``: an entry can
only serve requests of its own bucket). Then a full store drops entries of earlier
generations only, and keeps no new entry while every kept one is still live: the
first contexts of a bucket stay for the whole bucket. Least recently used alone
served nothing at all when a bucket saw more distinct contexts than the store holds
(every product page of a 2,000-product store against 1,000 entries: each entry
was dropped before its context came back); first come keeps ``max_entries`` of
them serving.
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
        self._data: OrderedDict[Hashable, tuple[V, Depends, int, int | None]] = OrderedDict()
        self._stamp: Hashable = None
        self._lock = threading.Lock()
        self.hits = 0  # reads answered (for benchmarks and tests; not thread-exact)
        self.misses = 0
        self.refused = 0  # entries not kept: the store was full of live ones

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
            value, deps, seq, _ = got
            if len(deps) and int(changed_seq[deps].max()) > seq:
                del self._data[key]  # made of a product that has changed since
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(
        self,
        key: Hashable,
        stamp: Hashable,
        value: V,
        deps: Depends,
        seq: int,
        generation: int | None = None,
    ) -> None:
        """Keep ``value``, made of the products ``deps`` as of the catalog's change ``seq``
        (``generation``: the time bucket it serves; a full store then keeps first comers)."""
        with self._lock:
            if stamp != self._stamp or not self.enabled:
                return  # made against a state that has moved on since
            data = self._data
            if key not in data:
                while len(data) >= self.max_entries:
                    oldest = next(iter(data.values()))[3]  # the least recently used
                    if generation is not None and oldest is not None and oldest >= generation:
                        self.refused += 1
                        return  # full of entries still serving their bucket
                    data.popitem(last=False)
            data[key] = (value, deps, seq, generation)
            data.move_to_end(key)
