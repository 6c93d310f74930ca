"""The identity graph's version on the change clock: a worker that memoised a person sees
another worker's erasure and merge on its very next request, and asks the store nothing
when nothing is newer (both stores)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shelfwise.contracts.identity import IdentityGraph, IdentityVersion
from shelfwise.errors import NotFound
from shelfwise.pipeline import RecommendRequest
from shelfwise.runtime import Runtime
from shelfwise.serving.freshness import ChangeClock
from tests import shop_fixture

NOW = datetime(2024, 3, 5, tzinfo=UTC)


@pytest.fixture
def other(runtime: Runtime) -> Iterator[Runtime]:
    """Another worker (or the CLI) on the same store."""
    rt = Runtime.open(runtime.settings)
    yield rt
    rt.close()


def _served_person(runtime: Runtime, person: str) -> str:
    """The person id the request path resolved ``person`` to, as its decision logged it."""
    slate = runtime.recommender.recommend(RecommendRequest(placement="email", person=person), NOW)
    runtime.decisions.flush()
    logged = {d.rec_id: d for d in runtime.decisions.recent(placement="email")}
    who = logged[slate["rec_id"]].person_id
    assert who is not None
    return who


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run through ``engine`` inside the block."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_another_workers_erase_and_merge_reach_a_worker_that_memoised_the_person(
    runtime: Runtime, other: Runtime
) -> None:
    shop_fixture.fill(runtime)
    other.identity.link("customer:c7", "anonymous:phone-7", reason="login")
    other.identity.link("customer:c7", "anonymous:laptop-7", reason="login")
    assert _served_person(runtime, "phone-7") == "customer:c7"
    assert _served_person(runtime, "tablet-7") == "tablet-7"  # never linked, memoised
    persons = runtime.recommender.persons
    assert persons is not None and len(persons) == 2

    other.identity.link("customer:c7", "anonymous:tablet-7", reason="login")  # a merge
    assert _served_person(runtime, "tablet-7") == "customer:c7"
    assert _served_person(runtime, "laptop-7") == "customer:c7"
    other.identity.link("customer:c8", "anonymous:phone-8", reason="login")
    assert _served_person(runtime, "phone-8") == "customer:c8"

    # The privacy erase, elsewhere; the merge log's newest row (c8's) stays, so only
    # the erasures tell this worker.
    other.eraser.erase("customer:c7", who="admin")
    # Memoised ids and a never-memoised one alike: the erased links are gone at once,
    # not after identity_refresh_seconds (5 s by default).
    assert runtime.settings.identity_refresh_seconds >= 5
    assert _served_person(runtime, "phone-7") == "phone-7"
    assert _served_person(runtime, "tablet-7") == "tablet-7"
    assert _served_person(runtime, "c7") == "c7"
    # The worker's graph, asked at the version the request read, read the erasure too.
    version = runtime.recommender.clock.identity
    assert version is not None and version == IdentityVersion(4, 1, 0)
    assert runtime.identity.person("laptop-7", version) == "laptop-7"
    assert _served_person(runtime, "phone-8") == "customer:c8"

    other.identity.link("customer:c7", "anonymous:phone-7", reason="login")  # new evidence
    assert _served_person(runtime, "phone-7") == "customer:c7"
    assert _served_person(runtime, "laptop-7") == "laptop-7"


def test_the_change_clock_reads_the_merge_logs_newest_row_and_the_newest_erasure(
    runtime: Runtime,
) -> None:
    clock = ChangeClock(runtime.db)
    try:
        assert clock.read() is not None and clock.identity == IdentityVersion(0, 0, 0)
        runtime.identity.link("customer:c1", "anonymous:a1", reason="login")
        runtime.identity.link("customer:c1", "anonymous:a2", reason="login")
        runtime.identity.link("customer:c2", "anonymous:b1", reason="login")
        assert clock.read() is not None and clock.identity == IdentityVersion(3, 0, 0)
        runtime.eraser.erase("customer:c2", who="admin")  # the newest link goes
        assert clock.read() is not None and clock.identity == IdentityVersion(2, 1, 0)
        runtime.eraser.erase("customer:c1", who="admin")
        assert clock.read() is not None and clock.identity == IdentityVersion(0, 2, 0)
    finally:
        clock.close()


def test_the_graph_reads_the_store_only_when_the_clock_says_something_is_newer(
    runtime: Runtime,
) -> None:
    writer, graph = runtime.identity, IdentityGraph(runtime.db)  # two workers' graphs
    clock = ChangeClock(runtime.db)

    def version() -> IdentityVersion:
        assert clock.read() is not None and clock.identity is not None
        return clock.identity

    try:
        writer.link("customer:c1", "anonymous:a1", reason="login")
        v = version()
        assert graph.person("a1", v) == "customer:c1"  # first: loads
        with _statements(runtime.db.engine) as sql:
            assert graph.person("a1", v) == graph.person("c1", v) == "customer:c1"
            assert graph.person("nobody", v) == "nobody"
        assert sql == []
        with _statements(runtime.db.engine) as sql:
            assert graph.person("a1") == "customer:c1"  # no version: reads, as before
        assert len(sql) == 2

        writer.link("customer:c1", "anonymous:a2", reason="login")  # a merge elsewhere
        assert graph.person("a2", v) == "a2"  # the old version: not read yet
        assert graph.person("a2", version()) == "customer:c1"

        writer.link("customer:c3", "anonymous:a3", reason="login")
        v = version()
        assert graph.person("a3", v) == "customer:c3"
        runtime.eraser.erase("customer:c1", who="admin")  # its links are not the newest
        after = version()
        assert after.links == v.links and after.erasures == v.erasures + 1
        assert graph.person("a1", after) == "a1"
        assert graph.person("a2", after) == "a2"
        assert graph.person("a3", after) == "customer:c3"
        with _statements(runtime.db.engine) as sql:
            assert graph.person("a1", after) == "a1"
        assert sql == []
    finally:
        clock.close()


def test_another_process_unmerge_reaches_a_worker_that_memoised_the_person(
    runtime: Runtime, other: Runtime
) -> None:
    """`shelfwise signals unmerge` runs in a process of its own: the undone link marks a
    row of the merge log and adds none, so only ``identity_unmerges`` on the clock can
    tell the running workers (before it, they kept the link until a restart)."""
    shop_fixture.fill(runtime)
    other.identity.link("customer:c7", "anonymous:phone-7", reason="login")
    other.identity.link("customer:c7", "anonymous:laptop-7", reason="login")
    assert _served_person(runtime, "phone-7") == "customer:c7"
    assert _served_person(runtime, "laptop-7") == "customer:c7"
    before = runtime.recommender.clock.identity
    assert before is not None and before == IdentityVersion(2, 0, 0)

    phone = next(
        int(str(r["id"])) for r in other.identity.merges() if "phone-7" in f"{r['a']} {r['b']}"
    )
    other.identity.unmerge(phone)
    assert _served_person(runtime, "phone-7") == "phone-7"  # memoised, now undone
    assert _served_person(runtime, "laptop-7") == "customer:c7"
    after = runtime.recommender.clock.identity
    assert after == IdentityVersion(2, 0, 1)  # the merge log's newest row did not move
    # The worker's graph, asked at that version, re-read its links too.
    assert runtime.identity.person("phone-7", after) == "phone-7"
    with _statements(runtime.db.engine) as sql:
        assert runtime.identity.person("laptop-7", after) == "customer:c7"
    assert sql == []  # and nothing more to read at that version


def test_the_change_clock_counts_unmerges(runtime: Runtime) -> None:
    clock = ChangeClock(runtime.db)
    try:
        first = runtime.identity.link("customer:c1", "anonymous:a1", reason="login")
        runtime.identity.link("customer:c1", "anonymous:a2", reason="login")
        assert first == 1
        assert clock.read() is not None and clock.identity == IdentityVersion(2, 0, 0)
        link = int(str(runtime.identity.merges()[-1]["id"]))
        runtime.identity.unmerge(link)
        assert clock.read() is not None and clock.identity == IdentityVersion(2, 0, 1)
        with pytest.raises(NotFound):  # undone already: nothing moves
            runtime.identity.unmerge(link)
        assert clock.read() is not None and clock.identity == IdentityVersion(2, 0, 1)
    finally:
        clock.close()
