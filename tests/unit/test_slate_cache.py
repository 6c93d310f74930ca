"""The slate cache's bounds: least recently used out first, a new stamp forgets everything."""

from __future__ import annotations

from shelfwise.pipeline.slates import KeptSlate, SlateCache


def kept(name: str) -> KeptSlate:
    return KeptSlate(name, "degraded", None, "1", b"{}", b"[]", False, (), None)


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = SlateCache(2)
    assert cache.get("a", 1) is None  # the first stamp seen
    cache.put("a", 1, kept("a"))
    cache.put("b", 1, kept("b"))
    assert cache.get("a", 1) == kept("a")  # "a" is now the most recent
    cache.put("c", 1, kept("c"))
    assert len(cache) == 2
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) == kept("a") and cache.get("c", 1) == kept("c")


def test_a_new_stamp_forgets_all_and_late_puts_are_refused() -> None:
    cache = SlateCache(10)
    cache.get("a", 1)
    cache.put("a", 1, kept("a"))
    assert cache.get("a", 2) is None and len(cache) == 0
    cache.put("a", 1, kept("old"))  # computed under the old stamp: not kept
    assert len(cache) == 0 and cache.get("a", 2) is None


def test_size_zero_keeps_nothing() -> None:
    cache = SlateCache(0)
    assert not cache.enabled
    cache.get("a", 1)
    cache.put("a", 1, kept("a"))
    assert len(cache) == 0
