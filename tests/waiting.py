"""Waiting on what the product says, never on how long it usually takes.

A test that sleeps for a fixed time, or gives up after a few seconds, measures the
machine: it passes idle and fails beside a busy neighbour. :func:`eventually` polls
an explicit signal (an answer, a gauge, a row) and gives up only at a ceiling meant
to end a hung run, far above what a loaded machine needs (``make test-stress``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

CEILING = 120.0  # seconds: under pytest's own per-test timeout (600 s), far above any wait


def eventually(
    check: Callable[[], T], what: str, seconds: float = CEILING, every: float = 0.05
) -> T:
    """Poll ``check`` until it returns something truthy, and return that; fail naming
    ``what`` (the awaited signal) after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        time.sleep(every)
