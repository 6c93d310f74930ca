"""The fuzzing seed: ``FUZZ_SEED`` when set (CI picks one; not
``SHELFWISE_…``, which the settings loader refuses as an unknown setting), else drawn now.

Either way it is printed in the report header and in every fuzz failure, so a
red run is replayed exactly with ``FUZZ_SEED=<seed>``.
"""

from __future__ import annotations

import os
import random

ENV = "FUZZ_SEED"


def _seed() -> int:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return random.SystemRandom().randrange(2**32)
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{ENV}={raw!r} is not an integer") from None


SEED = _seed()


def replay_hint() -> str:
    return f"replay with {ENV}={SEED}"
