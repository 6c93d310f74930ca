"""The rule store on SQLite and PostgreSQL: audit, concurrency, validation, live reload."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from shelfwise.candidates.base import RecContext
from shelfwise.catalog import Product
from shelfwise.config import Settings
from shelfwise.errors import Conflict, NotFound
from shelfwise.rules import parse_rule
from shelfwise.rules.validate import RuleValidationError
from shelfwise.runtime import Runtime
from tests.conftest import REDIS_URL, service_missing


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CATALOG = [
    Product(
        product_id="lamp",
        title="Lamp",
        brand="Lumo",
        category_path="decor/premium",
        price=200.0,
        stock_qty=3,
    ),
    Product(
        product_id="vase",
        title="Vase",
        brand="Lumo",
        category_path="decor/premium",
        price=90.0,
        stock_qty=3,
    ),
    Product(
        product_id="hook",
        title="Hook",
        brand="Volt",
        category_path="home/utility",
        price=5.0,
        stock_qty=9,
        tags=("utility",),
    ),
    Product(
        product_id="rug",
        title="Rug",
        brand="Weave",
        category_path="decor/textiles",
        price=150.0,
        stock_qty=2,
        attributes={"material": "wool"},
    ),
]
SUPPRESS = {
    "id": "no-lumo",
    "type": "suppress",
    "reason": "supplier dispute",
    "values": ["Lumo"],
    "window": {"start": T0.isoformat(), "end": (T0 + timedelta(days=14)).isoformat()},
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def rt(settings: Settings, clock: ManualClock) -> Iterator[Runtime]:
    runtime = Runtime.open(settings, clock=clock)
    runtime.catalog.upsert(CATALOG)
    runtime.snapshot.load()
    yield runtime
    runtime.close()


def served(rt: Runtime, clock: ManualClock, placement: str = "home") -> list[str]:
    """What the live rulebook lets through for every product, as a worker would see it."""
    book = rt.rules.current()
    items = np.arange(len(rt.snapshot), dtype=np.int64)
    ctx = RecContext(placement=placement, now=clock())
    out = book.apply_safety(ctx, items, np.ones(len(items)))
    return sorted(rt.snapshot.ids[i] for i in out.items)


def rule(data: dict[str, Any]) -> Any:
    return parse_rule(data)


def test_create_update_history_diff_and_restore(rt: Runtime, clock: ManualClock) -> None:
    store = rt.rules.store
    v0 = store.version()
    created = store.save(rule(SUPPRESS), who="ana", why="dispute started")
    assert created.version == 1 and created.author == "ana"
    clock.now = T0 + timedelta(hours=1)
    longer = rule({**SUPPRESS, "values": ["Lumo", "Volt"]})
    updated = store.save(longer, who="ben", why="Volt too", expected_version=1)
    assert updated.version == 2
    history = store.history("no-lumo")
    assert [(e.version, e.action, e.who, e.why) for e in history] == [
        (1, "create", "ana", "dispute started"),
        (2, "update", "ben", "Volt too"),
    ]
    assert history[1].diff == {"values": [["Lumo"], ["Lumo", "Volt"]]}
    assert history[1].at == T0 + timedelta(hours=1)
    restored = store.restore("no-lumo", 1, who="ana", why="Volt is fine")
    assert restored.version == 3 and restored.values == ("Lumo",)
    assert store.history("no-lumo")[-1].action == "restore"
    assert store.version() == v0 + 3


def test_a_stale_write_is_a_conflict(rt: Runtime) -> None:
    store = rt.rules.store
    store.save(rule(SUPPRESS), who="ana", why="x")
    store.save(rule({**SUPPRESS, "priority": 5}), who="ana", why="y", expected_version=1)
    with pytest.raises(Conflict) as err:
        store.save(rule({**SUPPRESS, "priority": 9}), who="ben", why="z", expected_version=1)
    assert err.value.code == "stale_version" and err.value.details["actual"] == 2
    with pytest.raises(Conflict, match="already exists"):
        store.save(rule(SUPPRESS), who="ben", why="again")
    with pytest.raises(NotFound):
        store.get("nope")


def test_delete_disable_and_restore_after_delete(rt: Runtime, clock: ManualClock) -> None:
    store = rt.rules.store
    store.save(rule(SUPPRESS), who="ana", why="x")
    assert "lamp" not in served(rt, clock)
    store.set_enabled("no-lumo", False, who="ana", why="paused")
    assert "lamp" in served(rt, clock)
    store.delete("no-lumo", who="ana", why="over", expected_version=2)
    with pytest.raises(NotFound):
        store.get("no-lumo")
    back = store.restore("no-lumo", 1, who="ana", why="dispute again")
    assert back.version == 4 and back.enabled
    assert [e.action for e in store.history("no-lumo")] == [
        "create",
        "disable",
        "delete",
        "restore",
    ]


def test_validation_names_the_rules(rt: Runtime) -> None:
    store = rt.rules.store
    store.save(
        rule(
            {
                "id": "no-utility",
                "type": "exclude",
                "reason": "r",
                "when": {"attr": "tags", "op": "contains", "value": "utility"},
            }
        ),
        who="a",
        why="w",
    )
    bad = [
        (
            {"id": "pin-hook", "type": "pin", "reason": "r", "product_id": "hook", "position": 1},
            "pin 'pin-hook' places 'hook', which exclude rule 'no-utility' removes",
        ),
        (
            {"id": "pin-ghost", "type": "pin", "reason": "r", "product_id": "ghost", "position": 1},
            "pins unknown product 'ghost'",
        ),
        (
            {
                "id": "colour",
                "type": "exclude",
                "reason": "r",
                "when": {"attr": "attributes.colour", "value": "red"},
            },
            "no product has the attribute 'colour'",
        ),
        (
            {**SUPPRESS, "id": "old", "window": {"end": (T0 - timedelta(days=1)).isoformat()}},
            "its window ended",
        ),
        (
            {
                "id": "boost-utility",
                "type": "boost",
                "reason": "r",
                "multiply": 2,
                "when": {"attr": "tags", "op": "contains", "value": "utility"},
            },
            "boost 'boost-utility' can never apply",
        ),
    ]
    for data, message in bad:
        with pytest.raises(RuleValidationError, match=message) as err:
            store.save(rule(data), who="a", why="w")
        assert data["id"] in err.value.details[0]["rules"]
    store.save(
        rule(
            {
                "id": "wool-up",
                "type": "boost",
                "reason": "r",
                "multiply": 2,
                "when": {"attr": "attributes.material", "value": "wool"},
            }
        ),
        who="a",
        why="w",
    )
    with pytest.raises(RuleValidationError) as err:
        store.save(
            rule(
                {
                    "id": "wool-down",
                    "type": "bury",
                    "reason": "r",
                    "multiply": 0.5,
                    "when": {"attr": "attributes.material", "value": "wool"},
                }
            ),
            who="a",
            why="w",
        )
    assert err.value.details == [
        {
            "rules": ["wool-down", "wool-up"],
            "message": "boost 'wool-up' and bury 'wool-down' have the same condition",
        }
    ]


def test_two_workers_see_a_change_on_their_next_request(
    settings: Settings, rt: Runtime, clock: ManualClock
) -> None:
    other = Runtime.open(settings, clock=clock)  # a second worker process, with its own caches
    try:
        assert served(rt, clock) == served(other, clock) == ["hook", "lamp", "rug", "vase"]
        rt.rules.store.save(rule(SUPPRESS), who="ana", why="dispute")
        assert served(other, clock) == served(rt, clock) == ["hook", "rug"]
        clock.now = T0 + timedelta(days=14)  # the window is over: Lumo is back
        assert served(other, clock) == ["hook", "lamp", "rug", "vase"]
        other.rules.store.set_enabled("no-lumo", False, who="ben", why="paused")
        clock.now = T0 + timedelta(days=1)
        assert served(rt, clock) == ["hook", "lamp", "rug", "vase"]
        reloads = other.rules.reloads
        served(other, clock)
        served(other, clock)
        assert other.rules.reloads == reloads + 1  # reloaded once, then cached
    finally:
        other.close()


def test_apply_is_all_or_nothing_and_idempotent(rt: Runtime) -> None:
    store = rt.rules.store
    good = rule(SUPPRESS)
    bad = rule(
        {"id": "pin-ghost", "type": "pin", "reason": "r", "product_id": "ghost", "position": 1}
    )
    with pytest.raises(RuleValidationError):
        store.apply([good, bad], who="a", why="file")
    assert store.list_rules() == []
    first = store.apply([good], who="a", why="file")
    assert (first.created, first.updated, first.unchanged) == (["no-lumo"], [], [])
    again = store.apply([good], who="a", why="file")
    assert (again.created, again.updated, again.unchanged) == ([], [], ["no-lumo"])
    assert again.rulebook_version == first.rulebook_version


@pytest.mark.redis
def test_redis_broadcast_of_the_rulebook_version(
    sqlite_settings: Settings, clock: ManualClock
) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        service_missing("Redis at 127.0.0.1:6379")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    s = sqlite_settings.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": prefix})
    a, b = Runtime.open(s, clock=clock), Runtime.open(s, clock=clock)
    try:
        a.catalog.upsert(CATALOG)
        a.snapshot.load()
        b.snapshot.load()
        assert served(b, clock) == ["hook", "lamp", "rug", "vase"]
        a.rules.store.save(rule(SUPPRESS), who="ana", why="dispute")
        assert a.rules.redis_version is not None
        assert a.rules.redis_version.read() == a.rules.store.version()
        assert served(b, clock) == ["hook", "rug"]
    finally:
        redis.Redis.from_url(REDIS_URL).delete(f"{prefix}:rules:version")
        a.close()
        b.close()
