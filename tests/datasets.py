"""Where the shared public data sets live, from a clone or from a git worktree.

``SHARED_DATA_DIR`` when set; else the first ``shared/data`` found walking up
from the repository (a clone at ``/work/<name>`` and a worktree at
``/work/wt/<name>`` both find ``/work/shared/data``); else the conventional
``<repo>/../shared/data``, so a test that needs a file names where it looked.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    given = os.environ.get("SHARED_DATA_DIR")
    if given:
        return Path(given)
    for folder in REPO.parents:
        if (folder / "shared" / "data").is_dir():
            return folder / "shared" / "data"
    return REPO.parent / "shared" / "data"
