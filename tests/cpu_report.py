"""The CPU each test costs, printed at the end of the run beside ``--durations``.

CI's limit is wall time on two cores, and the suite is CPU-bound: its wall time is
about the CPU it spends divided by the cores, whatever else runs. A test's wall
duration says how long it waited as much as what it cost (on a busy machine a
cheap test can wait minutes), so this reports what each test spent: the test
process's user and system time from the start of its setup to the end of its
teardown, plus that of the child processes it ended and waited for in that time
(CLI commands, servers). A server a module fixture keeps for several tests is
counted to the test whose teardown ends it; the per-file table adds them up.
Under xdist each worker measures its own tests and the controller prints.
``TEST_CPU_REPORT=path.json`` also writes every test's figure there.
"""

from __future__ import annotations

import json
import os
import resource
from collections import defaultdict
from collections.abc import Generator
from typing import Any

import pytest

KEY = "cpu_seconds"
_started: dict[str, float] = {}
_spent: dict[str, float] = {}


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _started[item.nodeid] = _cpu()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    if call.when == "teardown" and item.nodeid in _started:
        report = outcome.get_result()
        report.user_properties.append((KEY, _cpu() - _started.pop(item.nodeid)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "teardown":
        return
    for name, value in report.user_properties:
        if name == KEY:
            _spent[report.nodeid] = float(value)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _spent:
        return
    total = sum(_spent.values())
    if path := os.environ.get("TEST_CPU_REPORT"):
        with open(path, "w") as out:
            json.dump(dict(sorted(_spent.items(), key=lambda kv: -kv[1])), out, indent=0)
    by_file: dict[str, float] = defaultdict(float)
    for nodeid, seconds in _spent.items():
        by_file[nodeid.split("::", 1)[0]] += seconds
    write = terminalreporter.write_line
    terminalreporter.section(f"CPU spent: {total:,.0f} s over {len(_spent)} tests")
    write("files that cost most (user + system, children included):")
    for path, seconds in sorted(by_file.items(), key=lambda kv: -kv[1])[:15]:
        write(f"{seconds:9.1f} s {100 * seconds / total:5.1f}%  {path}")
    write("tests that cost most:")
    for nodeid, seconds in sorted(_spent.items(), key=lambda kv: -kv[1])[:20]:
        write(f"{seconds:9.1f} s  {nodeid}")
