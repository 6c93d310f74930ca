"""The decision log on both stores: batched off the hot path, flushed on close, read back."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shelfwise.runtime import Runtime
from shelfwise.serving.decisions import WRITER, Decision, DecisionLog, keeps_trace
from tests.waiting import eventually

T0 = datetime(2026, 11, 1, 9, tzinfo=UTC)


def _d(rec_id: str, minutes: int = 0, placement: str = "home") -> Decision:
    return Decision(
        rec_id=rec_id,
        served_at=T0 + timedelta(minutes=minutes),
        placement=placement,
        mode="degraded",
        request={"placement": placement},
        items=[{"product_id": "P1", "position": 1, "score": 0.5, "reasons": []}],
        arm="B",
        trace={"drops": {"unavailable": 2}},
    )


def test_background_writer_stores_in_batches(runtime: Runtime) -> None:
    log = DecisionLog(runtime.db, flush_seconds=0.05, batch_size=2)
    for i in range(5):
        log.record(_d(f"r{i}", minutes=i))
    eventually(lambda: log.pending == 0, "the writer stored the queue", every=0.02)
    got = log.get("r3")
    assert got is not None and got.arm == "B" and got.trace == {"drops": {"unavailable": 2}}
    assert got.served_at == T0 + timedelta(minutes=3)
    assert [d.rec_id for d in log.recent(limit=2)] == ["r4", "r3"]
    assert [d.rec_id for d in log.recent(since=T0 + timedelta(minutes=3))] == ["r4", "r3"]
    log.close()


def test_a_paused_writer_runs_no_thread_and_writes_the_queue_after(runtime: Runtime) -> None:
    """While the process forks (a parallel email batch) no writer thread may run: the
    slates recorded meanwhile wait, and are written once the writer is back."""

    def writers() -> int:  # the runtime's own log may run one too
        return sum(t.name == WRITER for t in threading.enumerate())

    idle = writers()
    log = DecisionLog(runtime.db, flush_seconds=0.02)
    log.record(_d("before"))
    eventually(lambda: log.pending == 0, "the writer stored the first slate", every=0.02)
    assert writers() == idle + 1
    with log.paused():
        assert writers() == idle
        log.record(_d("during"))
        time.sleep(0.1)  # five of the writer's rounds: nothing is written
        assert log.pending == 1 and writers() == idle
    assert writers() == idle + 1
    eventually(lambda: log.pending == 0, "the writer is back and stored the queue", every=0.02)
    assert log.get("during") is not None and log.get("before") is not None
    log.close()


def test_close_flushes_what_is_pending(runtime: Runtime) -> None:
    log = DecisionLog(runtime.db, flush_seconds=60)
    log.record(_d("a"))
    log.record(_d("b", placement="cart"))
    log.close()
    reader = DecisionLog(runtime.db)
    assert [d.rec_id for d in reader.recent(placement="cart")] == ["b"]
    assert reader.get("a") is not None and reader.get("zzz") is None


def test_a_pending_slate_reads_back_as_it_will_be_stored(runtime: Runtime) -> None:
    """Before the writer runs, ``get`` answers from the queued row: the same decision
    as after the write, with pre-encoded items (a kept slate's) taken as they are."""
    log = DecisionLog(runtime.db, flush_seconds=60)
    log.record(_d("p1", minutes=7))
    kept_items = b'[{"product_id":"P9","position":1,"score":0.25,"reasons":[]}]'
    log.record(replace(_d("p2"), items=[]), items_json=kept_items)
    before = [log.get("p1"), log.get("p2")]
    assert log.pending == 2
    log.flush()
    after = [log.get("p1"), log.get("p2")]
    assert log.pending == 0 and before == after
    assert after[0] == _d("p1", minutes=7)
    assert after[1] is not None and after[1].items == [
        {"product_id": "P9", "position": 1, "score": 0.25, "reasons": []}
    ]
    log.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking(runtime: Runtime) -> None:
    dropped: list[int] = []
    log = DecisionLog(runtime.db, flush_seconds=60, queue_max=100, on_drop=dropped.append)
    for i in range(103):
        log.record(_d(f"q{i}"))
    assert (log.pending, log.dropped, sum(dropped)) == (100, 3, 3)
    log.close()


def test_trace_sampling_is_deterministic_per_rec_id() -> None:
    ids = [f"{i:032x}" for i in range(2000)]
    kept = [r for r in ids if keeps_trace("sampled", 0.1, r)]
    assert 120 < len(kept) < 280
    assert kept == [r for r in ids if keeps_trace("sampled", 0.1, r)]
    assert all(keeps_trace("full", 0.0, r) for r in ids[:10])
    assert not any(keeps_trace("none", 1.0, r) for r in ids[:10])
