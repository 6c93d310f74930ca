"""The request path's person memo against the identity graph's version: what a new erasure
and a new merge-log row make it forget, and the version it hands the graph."""

from __future__ import annotations

from shelfwise.contracts.identity import IdentityVersion
from shelfwise.serving.identity import PersonCache


class _Graph:
    """A graph of fixed profiles that records what it was asked."""

    def __init__(self, links: list[tuple[str, str]]) -> None:
        self.links = links
        self.asked: list[tuple[str, IdentityVersion | None]] = []
        self.merge_reads = 0

    def _profiles(self) -> dict[str, str]:
        person: dict[str, str] = {}
        for a, b in self.links:
            who = person.get(a) or person.get(b) or b  # b: the customer node
            person[a] = person[b] = who
        return person

    def person(self, any_id: str, as_of: IdentityVersion | None = None) -> str:
        self.asked.append((any_id, as_of))
        profiles = self._profiles()
        for n in (any_id, f"customer:{any_id}", f"anonymous:{any_id}", f"device:{any_id}"):
            if n in profiles:
                return profiles[n]
        return any_id

    def profile(self, any_id: str) -> list[str]:
        who = self._profiles().get(any_id)
        return sorted(n for n, p in self._profiles().items() if p == who) if who else [any_id]

    def merges(self, limit: int = 100) -> list[dict[str, object]]:
        self.merge_reads += 1
        rows = [{"id": i, "a": a, "b": b} for i, (a, b) in enumerate(self.links, 1)]
        return rows[::-1][:limit]


def test_a_memoised_person_is_served_without_asking_the_graph() -> None:
    graph = _Graph([("anonymous:p1", "customer:c1")])
    cache = PersonCache(graph)
    v = IdentityVersion(1, 0, 0)
    assert cache.person("p1", v) == "customer:c1"
    assert graph.asked == [("p1", v)]  # the version the clock read goes to the graph
    for _ in range(10):
        assert cache.person("p1", v) == "customer:c1"
    assert cache.person("stranger", v) == "stranger"  # never linked: not asked either
    assert graph.asked == [("p1", v)]


def _two_people() -> tuple[_Graph, PersonCache]:
    """Two linked people, both memoised at version (2, 0); the memo never ages out here."""
    graph = _Graph([("anonymous:p1", "customer:c1"), ("anonymous:p2", "customer:c2")])
    cache = PersonCache(graph, max_age_seconds=3600)
    for who in ("1", "2"):
        assert cache.person(f"p{who}", IdentityVersion(2, 0, 0)) == f"customer:c{who}"
    return graph, cache


def test_a_new_erasure_forgets_every_memoised_id_at_once() -> None:
    graph, cache = _two_people()
    reads = graph.merge_reads
    graph.links = [("anonymous:p2", "customer:c2")]  # c1 erased: the newest row stays
    erased = IdentityVersion(2, 1, 0)
    assert cache.person("p1", erased) == "p1"
    assert len(cache) == 1
    assert graph.merge_reads == reads + 1  # the linked nodes read again, without c1's
    assert cache.person("p2", erased) == "customer:c2"
    assert graph.asked[-1] == ("p2", erased)


def test_a_new_merge_log_row_forgets_only_the_profiles_it_touched() -> None:
    graph, cache = _two_people()
    assert cache.person("p3", IdentityVersion(2, 0, 0)) == "p3"
    graph.links.append(("anonymous:p3", "customer:c2"))
    grown = IdentityVersion(3, 0, 0)
    asked = len(graph.asked)
    assert cache.person("p1", grown) == "customer:c1"  # untouched: kept
    assert len(graph.asked) == asked
    assert cache.person("p3", grown) == "customer:c2"
    assert graph.asked[-1] == ("p3", grown)


def test_the_store_unreachable_serves_the_memo() -> None:
    graph = _Graph([("anonymous:p1", "customer:c1")])
    cache = PersonCache(graph)
    assert cache.person("p1", IdentityVersion(1, 0, 0)) == "customer:c1"
    assert cache.person("p1", None) == "customer:c1"
    assert len(graph.asked) == 1


def test_the_memos_age_drops_the_ids_but_does_not_read_the_merge_log_again() -> None:
    graph = _Graph([("anonymous:p1", "customer:c1")])
    cache = PersonCache(graph, max_age_seconds=0.0)  # every request finds the memo old
    v = IdentityVersion(1, 0, 0)
    for _ in range(3):
        assert cache.person("p1", v) == "customer:c1"
    assert len(graph.asked) == 3  # the ids went
    assert graph.merge_reads == 1  # the linked nodes stayed
    cache.clear()
    assert cache.person("p1", v) == "customer:c1"
    assert graph.merge_reads == 2
