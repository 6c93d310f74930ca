"""Write-time validation of a prospective rulebook: errors name the rules involved.

Checked for every rule being written: feed attributes that no product has, a
window that is already over, a pin of an unknown product; and between a rule
being written and any other enabled rule whose scope and window overlap it: a
pin of a product that an exclude-like rule removes, a boost and a bury with the
same condition, a boost whose every item is excluded, two pins of different
products at the same position and priority.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from shelfwise.catalog import CatalogSnapshot
from shelfwise.errors import InvalidInput
from shelfwise.rules.compiled import Compiled, compile_rule
from shelfwise.rules.masks import CatalogMasks
from shelfwise.rules.model import (
    BoostRule,
    BuryRule,
    CapRule,
    ExcludeRule,
    MarginFloorRule,
    PairingRule,
    PinRule,
    PriceRelationRule,
    RequireInStockRule,
    Rule,
    Scope,
    SuppressRule,
    Window,
)
from shelfwise.rules.predicate import Predicate, custom_attribute, leaves

_STATIC_REMOVERS = (ExcludeRule, SuppressRule, RequireInStockRule, MarginFloorRule)


class RuleValidationError(InvalidInput):
    code = "rule_invalid"


def predicates(rule: Rule) -> list[Predicate]:
    if isinstance(rule, ExcludeRule | BoostRule | BuryRule):
        return [rule.when]
    if isinstance(rule, SuppressRule):
        return [rule.when]
    if isinstance(rule, PairingRule):
        return [p for p in (rule.context, rule.forbid, rule.allow) if p is not None]
    if isinstance(rule, PriceRelationRule) and rule.applies_to is not None:
        return [rule.applies_to]
    return []


def attributes_of(rule: Rule) -> set[str]:
    names = {c.attr for p in predicates(rule) for c in leaves(p)}
    if isinstance(rule, CapRule):
        names.add(rule.attribute)
    return names


def scopes_overlap(a: Scope, b: Scope) -> bool:
    if a.placements and b.placements and not set(a.placements) & set(b.placements):
        return False
    for key in set(a.segments) & set(b.segments):
        if not set(a.segments[key]) & set(b.segments[key]):
            return False
    if a.context_categories and b.context_categories:
        return any(
            x == y or x.startswith(y + "/") or y.startswith(x + "/")
            for x in a.context_categories
            for y in b.context_categories
        )
    return True


def windows_overlap(a: Window | None, b: Window | None) -> bool:
    if a is None or b is None:
        return True
    lo = [t for t in (a.start_utc, b.start_utc) if t is not None]
    hi = [t for t in (a.end_utc, b.end_utc) if t is not None]
    return not lo or not hi or max(lo) < min(hi)


def overlap(a: Rule, b: Rule) -> bool:
    return scopes_overlap(a.scope, b.scope) and windows_overlap(a.window, b.window)


def validate_rulebook(
    rules: Sequence[Rule], changed: Iterable[str], snapshot: CatalogSnapshot, now: datetime
) -> None:
    """Raise :class:`RuleValidationError` listing every problem; ``details`` holds
    ``{"rules": [...], "message": ...}`` for each."""
    changed = set(changed)
    problems: list[dict[str, Any]] = []

    def problem(ids: Iterable[str], message: str) -> None:
        problems.append({"rules": sorted(set(ids)), "message": message})

    known = {k for p in snapshot.products for k in p.attributes}
    enabled = [r for r in rules if r.enabled]
    masks = CatalogMasks(snapshot)
    masks.sync()
    compiled: dict[str, Compiled] = {r.id: compile_rule(r, masks) for r in enabled}
    for rule in enabled:  # a disabled rule is inert: disabling is always allowed
        if rule.id not in changed:
            continue
        for attr in sorted(attributes_of(rule)):
            name = custom_attribute(attr)
            if name is not None and len(snapshot) and name not in known:
                problem([rule.id], f"rule {rule.id!r}: no product has the attribute {name!r}")
        end = rule.window.end_utc if rule.window is not None else None
        if end is not None and end <= now:
            problem([rule.id], f"rule {rule.id!r}: its window ended at {end.isoformat()}")
        if isinstance(rule, PinRule) and snapshot.index_of(rule.product_id) is None:
            problem([rule.id], f"rule {rule.id!r}: pins unknown product {rule.product_id!r}")
    for a in enabled:
        for b in enabled:
            if a.id < b.id and (a.id in changed or b.id in changed) and overlap(a, b):
                for first, second in ((a, b), (b, a)):
                    message = _clash(first, second, compiled)
                    if message:
                        problem([a.id, b.id], message)
    if problems:
        text = "; ".join(p["message"] for p in problems)
        raise RuleValidationError(f"the rulebook is not valid: {text}", details=problems)


def _clash(a: Rule, b: Rule, compiled: dict[str, Compiled]) -> str | None:
    """A contradiction where ``a`` is undone by ``b`` (checked both ways round)."""
    if isinstance(a, PinRule) and isinstance(b, _STATIC_REMOVERS):
        item, remove = compiled[a.id].pin_index, compiled[b.id].remove
        if item is not None and remove is not None and remove[item]:
            return f"pin {a.id!r} places {a.product_id!r}, which {b.type} rule {b.id!r} removes"
    if isinstance(a, BoostRule) and isinstance(b, BuryRule) and _same(a.when, b.when):
        return f"boost {a.id!r} and bury {b.id!r} have the same condition"
    if isinstance(a, BoostRule) and isinstance(b, ExcludeRule | SuppressRule):
        boosted, remove = compiled[a.id].applies, compiled[b.id].remove
        if boosted is not None and remove is not None and boosted.any():  # noqa: SIM102
            if not np.any(boosted & ~remove):
                return f"boost {a.id!r} can never apply: {b.type} rule {b.id!r} removes every item it matches"
    if (
        isinstance(a, PinRule)
        and isinstance(b, PinRule)
        and a.id < b.id
        and a.position == b.position
        and a.priority == b.priority
        and a.product_id != b.product_id
    ):
        return (
            f"pins {a.id!r} and {b.id!r} both claim position {a.position} at priority {a.priority}"
        )
    return None


def _same(a: Predicate, b: Predicate) -> bool:
    return bool(a.model_dump_json() == b.model_dump_json())
