"""With the store unreachable, the request path keeps what it last read: the rulebook
(without asking the store on every request) and the running experiments."""

from __future__ import annotations

from typing import Any, cast

import pytest
from sqlalchemy.exc import OperationalError

from shelfwise.experiments.repository import ExperimentRepository, RunningExperiments
from shelfwise.pipeline.governed import Governor
from shelfwise.pipeline.pool import Trace
from shelfwise.rules.rulebook import Rulebook

DOWN = OperationalError("SELECT 1", {}, Exception("connection refused"))


class Flaky:
    """Answers ``value`` until ``down`` is set, then raises; counts the calls."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.down = False
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.down:
            raise DOWN
        return self.value


def test_governor_serves_the_last_rulebook_without_asking_a_store_known_down() -> None:
    book = cast(Rulebook, type("Book", (), {"version": 3})())
    current = Flaky(book)
    governor = Governor(current)
    assert governor.book(Trace(), rules_seq=3) is book and current.calls == 1
    assert governor.book(Trace(), rules_seq=3) is book and current.calls == 1
    current.down = True
    trace = Trace()
    assert governor.book(trace, rules_seq=None) is book
    assert current.calls == 1  # the clock said the store is down: not asked
    assert trace.notes == ["rule store unreachable: serving the last rulebook loaded"]
    assert governor.book(Trace(), rules_seq=4) is book and current.calls == 2  # tried, failed


def test_running_experiments_keep_assigning_from_the_last_read() -> None:
    running = Flaky(["exp"])
    repo = cast(ExperimentRepository, type("Repo", (), {"running": staticmethod(running)})())
    live = RunningExperiments(repo, refresh_seconds=0.0)
    assert live.current() == ["exp"]
    running.down = True
    assert live.current() == ["exp"] and running.calls == 2
    never = RunningExperiments(repo, refresh_seconds=0.0)
    with pytest.raises(OperationalError):
        never.current()  # nothing read yet: the caller decides (no experiment arm)
