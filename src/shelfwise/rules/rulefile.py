"""Rule files (YAML): rules, plus example contexts with expected outcomes.

```yaml
rules:
  - {id: no-slow-shipping, type: exclude, reason: ..., when: {attr: sla_days, op: gt, value: 10}}
tests:
  - name: a slow rug never shows
    request: {placement: product_page, context_items: [lamp], candidates: [rug, vase]}
    expect: {excludes: [rug], removed_by: {rug: no-slow-shipping}}
```
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shelfwise.catalog import CatalogSnapshot
from shelfwise.documents import load_yaml
from shelfwise.errors import InvalidInput
from shelfwise.rules.model import Rule
from shelfwise.rules.replay import RecordedRequestIn, serve
from shelfwise.rules.rulebook import Rulebook


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slate: list[str] | None = None  # exact slate, in order
    includes: list[str] = []
    excludes: list[str] = []
    removed_by: dict[str, str] = {}  # product id -> the rule that removed/deduped/capped it


class RuleTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    request: RecordedRequestIn
    k: int = Field(default=10, ge=1, le=100)
    expect: Expect


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = []
    tests: list[RuleTest] = []


class TestOutcome(BaseModel):
    name: str
    passed: bool
    slate: list[str]
    failures: list[str]


def load_rule_file(path: Path) -> RuleFile:
    if not path.is_file():
        raise InvalidInput(f"rule file {path} does not exist", code="rule_file_missing")
    try:
        data = load_yaml(path.read_text()) or {}
        return RuleFile.model_validate(data)
    except InvalidInput as e:
        raise InvalidInput(f"{path}: {e.message}", code="rule_file_invalid") from e
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise InvalidInput(f"{path}: {problems}", code="rule_file_invalid") from e


def run_tests(
    tests: Sequence[RuleTest], rules: Sequence[Rule], snapshot: CatalogSnapshot, now: datetime
) -> list[TestOutcome]:
    """Evaluate each example with ``rules`` and compare with what it expects."""
    book = Rulebook(rules, snapshot)
    ids = snapshot.ids
    out: list[TestOutcome] = []
    for test in tests:
        served = serve(book, test.request.to_request(snapshot, now), test.k)
        slate = [ids[i] for i in served.items.tolist()]
        removed = {ids[d.item]: d.rule_id for d in served.trace if d.action in _REMOVALS}
        failures: list[str] = []
        exp = test.expect
        if exp.slate is not None and slate != exp.slate:
            failures.append(f"slate is {slate}, expected {exp.slate}")
        failures += [f"{p} is missing from the slate" for p in exp.includes if p not in slate]
        failures += [f"{p} is in the slate" for p in exp.excludes if p in slate]
        for pid, rule_id in exp.removed_by.items():
            if removed.get(pid) != rule_id:
                got = removed.get(pid)
                failures.append(
                    f"{pid} was removed by {got!r}, expected {rule_id!r}"
                    if got
                    else f"{pid} was not removed (expected {rule_id!r})"
                )
        out.append(TestOutcome(name=test.name, passed=not failures, slate=slate, failures=failures))
    return out


_REMOVALS = frozenset({"removed", "deduped", "capped"})
