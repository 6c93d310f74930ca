"""A training's parts in forked worker processes: the same results in the same order,
errors raised as they were, and a worker that dies fails the training, not hangs it."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterator

import pytest

from shelfwise.errors import InvalidInput
from shelfwise.ranking import workers
from shelfwise.ranking.workers import WorkerFailed, forked_map, workers_for


def test_the_parts_come_back_in_order_from_other_processes() -> None:
    held = {n: n * n for n in range(6)}  # read by the workers through the fork, not sent
    parent = os.getpid()

    def part(n: int) -> tuple[int, bool]:
        return held[n], os.getpid() != parent

    got = forked_map(part, list(range(6)), 2)
    assert [value for value, _ in got] == [0, 1, 4, 9, 16, 25]
    assert all(elsewhere for _, elsewhere in got)
    assert forked_map(part, list(range(6)), 1) == [(n * n, False) for n in range(6)]


def test_how_many_workers() -> None:
    assert workers_for(1, 8) == 0  # one job: this process
    assert workers_for(4, 1) == 0  # one part: this process
    assert workers_for(4, 3) == 3
    assert workers_for(2, 8) == 2
    assert workers_for(0, 64) == workers.available_cores() or workers.available_cores() == 1


def test_a_worker_runs_its_own_parts_in_itself() -> None:
    def part(n: int) -> int:
        return workers_for(2, 4)  # inside a worker: no workers of its own

    assert forked_map(part, [1, 2], 2) == [0, 0]


def test_an_error_in_a_worker_is_raised_here_with_its_code() -> None:
    def part(n: int) -> int:
        if n == 1:
            raise InvalidInput("not enough history", code="ranker_no_data")
        return n

    with pytest.raises(InvalidInput) as caught:
        forked_map(part, [0, 1, 2], 2)
    assert caught.value.code == "ranker_no_data"


@pytest.mark.timeout(60)
def test_a_worker_that_dies_fails_the_map_with_a_stable_code() -> None:
    def part(n: int) -> int:
        if n == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer ends it
        return n

    with pytest.raises(WorkerFailed) as caught:
        forked_map(part, [0, 1, 2, 3], 2)
    assert caught.value.code == "training_worker_failed"
    assert "fewer jobs" in caught.value.message
    assert workers._WORK is None  # nothing left for the next map


def test_imap_streams_the_parts_in_order_forking_once_inside_the_guard() -> None:
    """The streaming map (the email batch's): results in order as they are done, every
    worker forked once inside the caller's guard, and the same results without workers."""
    parent = os.getpid()
    guarded: list[tuple[str, int]] = []
    pids: set[int] = set()

    @contextlib.contextmanager
    def while_forking() -> Iterator[None]:
        guarded.append(("in", len(multiprocessing.active_children())))
        yield
        guarded.append(("out", len(multiprocessing.active_children())))

    def part(n: int) -> tuple[int, int]:
        return n * n, os.getpid()

    got = []
    for value, pid in workers.forked_imap(part, list(range(9)), 2, while_forking):
        got.append(value)
        pids.add(pid)
    assert got == [n * n for n in range(9)]
    assert parent not in pids and 1 <= len(pids) <= 2  # two workers at most, forked once
    assert guarded == [("in", 0), ("out", 2)]  # both forked inside the guard, none after
    assert [v for v, _ in workers.forked_imap(part, [3, 4], 1)] == [9, 16]


def test_imap_left_early_stops_its_workers() -> None:
    def part(n: int) -> int:
        return n

    stream = workers.forked_imap(part, list(range(50)), 2)
    assert next(stream) == 0
    stream.close()  # the caller stops reading: the pool is shut down, nothing left over
    assert workers._WORK is None
    assert multiprocessing.active_children() == []
