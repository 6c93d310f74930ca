"""Erasing a person on both stores: every linked id, every table, an audit without the ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, or_, select

from shelfwise.contracts.identity import IdentityGraph
from shelfwise.contracts.privacy import start_nodes, subject_hash
from shelfwise.errors import NotFound
from shelfwise.runtime import Runtime
from shelfwise.serving.decisions import Decision
from shelfwise.store.tables import (
    decisions,
    erasures,
    events,
    identity_links,
    interactions,
    quarantine,
)
from shelfwise.training.job import train
from tests.shop_fixture import fill

T = "2024-02-20T12:00:00Z"
# Ids with letters outside hex, so no opaque id or hash can contain them by chance.
ADA = ("cust-ada", "anon-ada-phone", "anon-ada-laptop", "dev-ada-phone", "sess-ada-1", "sess-ada-2")


def _ev(eid: str, type_: str = "product_view", **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": type_, "event_id": eid, "occurred_at": T}
    if type_ == "product_view":
        base.setdefault("product_id", "KI1")
    return {**base, **kw}


def _ada_and_bob(runtime: Runtime) -> None:
    """Ada: two anonymous ids, a device and a customer account over two sessions. Bob: one."""
    report = runtime.ingestor.ingest(
        [
            _ev("a1", anonymous_id="anon-ada-phone", device_id="dev-ada-phone", session_id="sess-ada-1"),
            _ev("a2", product_id="KI2", anonymous_id="anon-ada-phone", session_id="sess-ada-1"),
            _ev("a3", "login", anonymous_id="anon-ada-phone", customer_id="cust-ada", session_id="sess-ada-1"),
            _ev("a4", product_id="KI3", anonymous_id="anon-ada-laptop", session_id="sess-ada-2"),
            _ev("a5", "login", anonymous_id="anon-ada-laptop", customer_id="cust-ada", session_id="sess-ada-2"),
            _ev("b1", product_id="GA1", anonymous_id="anon-bob", customer_id="cust-bob", session_id="sess-bob"),
            _ev("b2", "login", anonymous_id="anon-bob", customer_id="cust-bob", session_id="sess-bob"),
            # rejected (no product): quarantined with the raw payload, ids included
            {"type": "product_view", "event_id": "qa", "occurred_at": T, "anonymous_id": "anon-ada-laptop"},
            {"type": "product_view", "event_id": "qb", "occurred_at": T, "anonymous_id": "anon-bob"},
        ]
    )  # fmt: skip
    assert report.counts()["accepted"] == 7 and report.counts()["rejected"] == 2
    at = datetime(2024, 2, 20, 12, tzinfo=UTC)
    for rec_id, person, session in (
        ("r-ada", "cust-ada", None),
        ("r-ada-anon", None, "sess-ada-2"),
        ("r-bob", "cust-bob", "sess-bob"),
    ):
        runtime.decisions.record(
            Decision(rec_id, at, "home", "model", {"placement": "home"}, [], person, session)
        )
    runtime.decisions.flush()


def _count(runtime: Runtime, table: Any, *where: Any) -> int:
    with runtime.db.engine.connect() as conn:
        query = select(func.count()).select_from(table)
        return int(conn.execute(query.where(*where) if where else query).scalar_one())


def test_erase_takes_every_linked_id_out_of_every_table(runtime: Runtime) -> None:
    _ada_and_bob(runtime)
    other_worker = IdentityGraph(runtime.db)
    assert other_worker.resolve("anon-ada-laptop") == "customer:cust-ada"
    assert runtime.sessions.read("sess-ada-1") and runtime.sessions.read("sess-bob")

    done = runtime.eraser.erase("anon-ada-laptop", who="dpo")

    assert done.ids == 4  # two anonymous ids, the device, the customer
    assert done.counts == {
        "events": 5,
        "interactions": 3,  # the three product views
        "duplicate_events": 0,
        "identity_links": 3,  # phone-device, and the customer with each anonymous id
        "identity_findings": 0,
        "decisions": 2,
        "quarantine": 1,
        "sessions": 2,
    }, done.counts
    ada_events = or_(
        events.c.anonymous_id.in_(ADA), events.c.customer_id.in_(ADA), events.c.device_id.in_(ADA)
    )
    assert _count(runtime, events, ada_events) == 0
    assert _count(runtime, interactions, interactions.c.anonymous_id.like("anon-ada%")) == 0
    assert _count(runtime, identity_links, identity_links.c.a.like("%ada%")) == 0
    assert _count(runtime, identity_links, identity_links.c.b.like("%ada%")) == 0
    assert _count(runtime, decisions, decisions.c.rec_id.like("r-ada%")) == 0
    assert _count(runtime, quarantine) == 1
    assert runtime.sessions.read("sess-ada-1") == [] == runtime.sessions.read("sess-ada-2")
    # Bob is untouched.
    assert _count(runtime, events, events.c.anonymous_id == "anon-bob") == 2
    assert runtime.identity.resolve("anon-bob") == "customer:cust-bob"
    assert runtime.decisions.get("r-bob") is not None and runtime.sessions.read("sess-bob")
    # Every worker forgets the links, not only the one that erased.
    assert runtime.identity.profile("customer:cust-ada") == ["customer:cust-ada"]
    assert other_worker.profile("anonymous:anon-ada-phone") == ["anonymous:anon-ada-phone"]

    # The audit has who, when and counts, and none of the ids.
    with runtime.db.engine.connect() as conn:
        row = dict(conn.execute(select(erasures)).one()._mapping)
    assert row["who"] == "dpo" and row["erasure_id"] == done.erasure_id
    assert row["counts"]["events"] == 5 and row["subject_hash"] is None
    # The erasure id is random hex, which may spell "ada" by chance: look past it.
    text = json.dumps({**row, "erasure_id": None}, default=str)
    assert not any(i in text for i in (*ADA, "ada")), text
    assert [e.erasure_id for e in runtime.eraser.audit()] == [done.erasure_id]


def test_unknown_person_is_not_found_and_nothing_is_audited(runtime: Runtime) -> None:
    _ada_and_bob(runtime)
    with pytest.raises(NotFound) as err:
        runtime.eraser.erase("customer:nobody-here", who="dpo")
    assert err.value.code == "person_not_found"
    assert _count(runtime, erasures) == 0
    # A bare id is every kind: the anonymous id of Bob's is found without its prefix.
    assert runtime.eraser.erase("anon-bob", who="dpo").counts["events"] == 2
    with pytest.raises(NotFound):
        runtime.eraser.erase("anon-bob", who="dpo")  # already gone


def test_salted_subject_hash_identifies_a_repeat_request_only_with_the_salt() -> None:
    salt = "a-long-installation-salt"
    assert subject_hash("cust-ada", salt) == subject_hash("cust-ada", salt)
    assert subject_hash("cust-ada", salt) != subject_hash("cust-ada", salt + "x")
    assert subject_hash("cust-ada", None) is None
    assert start_nodes("customer:42") == ["customer:42"]
    assert start_nodes("42") == ["customer:42", "anonymous:42", "device:42"]
    assert start_nodes("sku:42") == ["customer:sku:42", "anonymous:sku:42", "device:sku:42"]


def test_the_next_training_no_longer_sees_the_person(runtime: Runtime) -> None:
    fill(runtime)
    _ada_and_bob(runtime)
    before = train(runtime, force=True).bundle
    # People are keyed by their identity-graph person id ("customer:cust-ada" for Ada).
    assert [p for p in before.artifacts.people if "ada" in p]
    runtime.eraser.erase("cust-ada", who="dpo")
    after = train(runtime, force=True).bundle
    people = set(after.artifacts.people)
    assert not [p for p in people if "ada" in p], sorted(people)
    assert [p for p in people if "bob" in p] and "c0" in people
    assert after.info.counts["interactions"] == before.info.counts["interactions"] - 3
