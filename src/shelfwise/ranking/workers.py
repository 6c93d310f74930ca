"""A training's independent parts on several cores: forked worker processes.

A ranker's training windows, the designs it chooses among and a bundle's
placements are independent of one another, and each is a pure function of what
the training already holds (the log, the catalog, the fitted sources). They run
in worker processes forked from the training (``jobs`` at most, each part in
one), which share its memory as it is at the fork (copied on write) and return
their part by pickle; a part is computed by the same code on the same inputs
as in one process, so the result is the same, to the last bit, for any number
of workers (LightGBM and the BLAS keep the thread count the training gives
them). Only the time and the memory change: a worker's pages copied on write and
the parts in flight.

A part that raises in a worker raises the same error here; a worker that dies
(killed, out of memory) fails the training with ``training_worker_failed``,
never a hang.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager
from multiprocessing import get_context
from typing import Any, TypeVar

from shelfwise.errors import ShelfwiseError

T = TypeVar("T")
R = TypeVar("R")
PR_SET_PDEATHSIG = 1
logger = logging.getLogger("shelfwise.training.workers")

# What the forked workers run, set just before the fork (they inherit it): a part's
# function need not be picklable, only its result.
_WORK: tuple[Callable[[Any], Any], Sequence[Any]] | None = None
_IN_WORKER = False


class WorkerFailed(ShelfwiseError):
    """A worker process of a training ended without its part (killed, out of memory)."""

    code = "training_worker_failed"
    http_status = 500


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def end_with_parent() -> None:
    """Linux: this process ends with its parent, even one killed without a chance to
    clean up (a worker left behind would hold its memory)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _start() -> None:
    global _IN_WORKER
    _IN_WORKER = True
    end_with_parent()


def _run(n: int) -> tuple[Any, float]:
    """Part ``n``, and the CPU seconds it took in its worker."""
    if _WORK is None:  # pragma: no cover - set before every fork
        raise RuntimeError("a training worker started without its work")
    fn, items = _WORK
    started = time.process_time()
    out = fn(items[n])
    return out, time.process_time() - started


def workers_for(jobs: int, parts: int) -> int:
    """How many worker processes ``parts`` parts get with ``jobs`` (0: every core; one,
    or one part: none, the parts run here; inside a worker: none)."""
    wanted = available_cores() if jobs == 0 else jobs
    return 0 if _IN_WORKER or wanted <= 1 or parts <= 1 else min(wanted, parts)


def forked_imap(
    fn: Callable[[T], R],
    items: Sequence[T],
    jobs: int,
    while_forking: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
) -> Iterator[R]:
    """:func:`forked_map`'s results one by one, in order, each as soon as it and the
    ones before it are done; the workers go on with the next parts while the caller
    uses one. Every worker is forked once, at the start, inside ``while_forking()``
    (a caller whose threads must not be inside a driver during a fork pauses them
    there; the workers never fork again). Without workers, the parts run here, one
    per step."""
    workers = workers_for(jobs, len(items))
    if not workers:
        for x in items:
            yield fn(x)
        return
    global _WORK
    _WORK = (fn, items)
    try:
        with ProcessPoolExecutor(
            workers, mp_context=get_context("fork"), initializer=_start
        ) as pool:
            with while_forking():  # the first part forks every worker (the fork context)
                futures = [pool.submit(_run, 0)]
            futures += [pool.submit(_run, n) for n in range(1, len(items))]
            try:
                for f in futures:
                    yield f.result()[0]
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    except BrokenProcessPool as e:
        raise WorkerFailed(
            f"a worker process ended without its part ({e}); each worker holds a share "
            "of the memory: run with fewer jobs or on a machine with more memory",
        ) from e
    finally:
        _WORK = None


def forked_map(fn: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    """``[fn(x) for x in items]``, in order, the parts in up to ``jobs`` forked worker
    processes (:func:`workers_for`). The first part that fails ends the map with its
    error (the parts not started are cancelled)."""
    workers = workers_for(jobs, len(items))
    if not workers:
        return [fn(x) for x in items]
    global _WORK
    _WORK = (fn, items)
    started = time.perf_counter()
    try:
        with ProcessPoolExecutor(
            workers, mp_context=get_context("fork"), initializer=_start
        ) as pool:
            futures = [pool.submit(_run, n) for n in range(len(items))]
            try:
                done = [f.result() for f in futures]
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        # what each part cost, for a profile that does not depend on the machine's
        # load: the parts' CPU seconds, in the order they were handed out
        logger.debug(
            "%d parts on %d workers in %.2f s: CPU %s",
            len(items), workers, time.perf_counter() - started,
            " ".join(f"{cpu:.2f}" for _, cpu in done),
        )  # fmt: skip
        return [out for out, _ in done]
    except BrokenProcessPool as e:
        raise WorkerFailed(
            f"a training worker process ended without its part ({e}); with several "
            "jobs each worker holds a share of the memory: train with fewer jobs "
            "(--jobs, train_jobs) or on a machine with more memory",
        ) from e
    finally:
        _WORK = None
