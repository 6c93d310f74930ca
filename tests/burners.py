"""CPU burners beside the tests: ``pytest --cpu-burners 2`` (what ``make test-stress`` runs).

A test that waits on a wall-clock guess passes on an idle machine and fails on a
busy one. Two processes spinning on the CPU, started before the first test and
ended after the last (on failure and on Ctrl-C too), give the suite the machine
CI gives it on a bad day. Each burner also ends by itself once pytest is gone
(its parent changes), so a killed run leaves none behind.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Spins until its parent (this pytest) is gone.
_BURN = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    pass\n"

_burners: list[subprocess.Popen[bytes]] = []


def addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-burners",
        type=int,
        default=int(os.environ.get("CPU_BURNERS", "0")),
        metavar="N",
        help="run N processes that keep a CPU busy for the whole run (stress mode; "
        "default: $CPU_BURNERS or 0)",
    )


def start(config: pytest.Config) -> None:
    # The xdist workers inherit the option: only the process that runs the session starts burners.
    if hasattr(config, "workerinput"):
        return
    n = int(config.getoption("--cpu-burners"))
    if n < 0:
        raise pytest.UsageError("--cpu-burners must be 0 or more")
    _burners.extend(subprocess.Popen([sys.executable, "-c", _BURN]) for _ in range(n))


def stop() -> None:
    while _burners:
        proc = _burners.pop()
        proc.kill()
        proc.wait()


def header(config: pytest.Config) -> str | None:
    n = len(_burners)
    return f"stress mode: {n} CPU burners (pids {[p.pid for p in _burners]})" if n else None
