"""The fuzzing seed: ``FUZZ_SEED`` when set (not ``SHELFWISE_…``, which the settings
loader refuses as an unknown setting), else a fixed one, so ``make test`` gives the same
verdict on every run of the same code. ``FUZZ_SEED=random`` draws a new seed: that is
exploration (``make fuzz-explore``), kept out of the gate.

Either way it is printed in the report header and in every fuzz failure, so a
red run is replayed exactly with ``FUZZ_SEED=<seed>``.
"""

from __future__ import annotations

import os
import random

ENV = "FUZZ_SEED"
FIXED = 20261204


def _seed() -> int:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return FIXED
    if raw == "random":
        return random.SystemRandom().randrange(2**32)
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{ENV}={raw!r} is not an integer") from None


SEED = _seed()
EXPLORING = os.environ.get(ENV, "").strip() == "random"


def replay_hint() -> str:
    return f"replay with {ENV}={SEED}"
