"""The slate cache's bounds: least recently used out first, a new stamp forgets
everything, an entry goes when a product it depends on changes."""

from __future__ import annotations

import numpy as np

from shelfwise.pipeline.kept import KeptStore, depends_on
from shelfwise.pipeline.slates import KeptSlate, SlateCache

UNCHANGED = np.zeros(10, dtype=np.int64)  # no product changed since the catalog loaded
NONE = depends_on()


def kept(name: str) -> KeptSlate:
    return KeptSlate(name, "degraded", None, "1", b"{}", b"[]", False, (), None)


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = SlateCache(2)
    assert cache.get("a", 1, UNCHANGED) is None  # the first stamp seen
    cache.put("a", 1, kept("a"), NONE, 0)
    cache.put("b", 1, kept("b"), NONE, 0)
    assert cache.get("a", 1, UNCHANGED) == kept("a")  # "a" is now the most recent
    cache.put("c", 1, kept("c"), NONE, 0)
    assert len(cache) == 2
    assert cache.get("b", 1, UNCHANGED) is None
    assert cache.get("a", 1, UNCHANGED) == kept("a") and cache.get("c", 1, UNCHANGED) == kept("c")


def test_entries_asked_again_after_a_burst_of_one_offs_are_kept() -> None:
    """One-off keys fill the store; keys asked after them are kept in their turn and
    served when asked again (first come would have refused them)."""
    store: KeptStore[str] = KeptStore(2)
    store.get("x", 1, UNCHANGED)
    for key in ("once-1", "once-2", "once-3", "a", "b", "a", "b", "a", "b"):
        if store.get(key, 1, UNCHANGED) is None:
            store.put(key, 1, key, NONE, 0)
    assert (store.hits, store.misses, store.evicted) == (4, 6, 3)
    assert store.values() == ["a", "b"]


def test_a_new_stamp_forgets_all_and_late_puts_are_refused() -> None:
    cache = SlateCache(10)
    cache.get("a", 1, UNCHANGED)
    cache.put("a", 1, kept("a"), NONE, 0)
    assert cache.get("a", 2, UNCHANGED) is None and len(cache) == 0
    cache.put("a", 1, kept("old"), NONE, 0)  # computed under the old stamp: not kept
    assert len(cache) == 0 and cache.get("a", 2, UNCHANGED) is None


def test_size_zero_keeps_nothing() -> None:
    cache = SlateCache(0)
    assert not cache.enabled
    cache.get("a", 1, UNCHANGED)
    cache.put("a", 1, kept("a"), NONE, 0)
    assert len(cache) == 0


def test_an_entry_goes_when_a_product_it_depends_on_changes_and_not_otherwise() -> None:
    cache = SlateCache(10)
    changed = np.zeros(10, dtype=np.int64)
    cache.get("a", 1, changed)
    cache.put("a", 1, kept("a"), depends_on([3, 5], (7,)), seq=4)
    cache.put("b", 1, kept("b"), depends_on([1, 2]), seq=4)
    changed[[0, 9]] = 5  # products no entry is made of
    assert cache.get("a", 1, changed) == kept("a") and cache.get("b", 1, changed) == kept("b")
    changed[7] = 4  # changed at or before the entry was made: still current
    assert cache.get("a", 1, changed) == kept("a")
    changed[7] = 6
    assert cache.get("a", 1, changed) is None and len(cache) == 1
    assert cache.get("b", 1, changed) == kept("b")


def test_depends_on_is_every_index_given() -> None:
    got = depends_on(np.array([5, 3]), (3, 9), [])
    assert sorted(got.tolist()) == [3, 3, 5, 9] and got.dtype == np.int32
    assert depends_on().tolist() == []
