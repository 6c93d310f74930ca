"""Changing the rulebook from the dashboard: create, edit, enable/disable, delete, restore.

Every change goes through the same ``RuleStore`` calls as the API
(``api/routes/rules.py``), with the version the page was rendered from: a
change made by someone else in between is refused as ``stale_version`` and
nothing is overwritten. The audit log records the signed-in key's name as
``who``. Rules apply to the next request (the live rulebook follows the
store's version); nothing is retrained.

Only a key that may write rules through the API (role ``merchandiser``, or
``admin``) sees the forms; a POST from any other is refused (403
``rules_read_only``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from shelfwise.access import Principal
from shelfwise.config import Role
from shelfwise.dashboard.format import placement_label
from shelfwise.dashboard.preview import preview_tables
from shelfwise.dashboard.ruleform import (
    RULE_TYPES,
    TYPE_FIELDS,
    FormProblem,
    form_values,
    parse_form,
    problems,
    type_doc,
)
from shelfwise.dashboard.slots import PanelTable
from shelfwise.errors import Forbidden, InvalidInput, NotFound, ShelfwiseError

if TYPE_CHECKING:
    from shelfwise.runtime import Runtime

# The role the rules API requires of a writer (``require("merchandiser")``).
WRITER_ROLE: Role = "merchandiser"
CHANGES = ("enable", "disable", "delete", "restore")
# What the rules page says after a change (the ``done`` query value, nothing else is shown).
DONE = {
    "create": "created",
    "update": "saved",
    "enable": "enabled",
    "disable": "disabled",
    "delete": "deleted",
    "restore": "restored",
}
PLACEMENT_FIELD = "placement."  # one checkbox per rule scope: ``placement.home=1``


def may_write(principal: Principal | None) -> bool:
    return principal is not None and principal.has(WRITER_ROLE)


def _require_writer(principal: Principal) -> None:
    if not may_write(principal):
        raise Forbidden(
            f"the key {principal.name!r} may read the rules but not change them",
            code="rules_read_only",
        )


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class Scope:
    """A rule scope the form offers, with the placements it covers."""

    name: str
    label: str


def scopes(runtime: Runtime) -> list[Scope]:
    """Rule scopes of the configured placements: rules match the placement's
    ``rule_scope``, which several placements may share (``product_page``)."""
    covered: dict[str, list[str]] = {}
    for p in runtime.placements:
        covered.setdefault(p.rule_scope, []).append(p.name)
    return [
        Scope(name, " + ".join(placement_label(p) for p in names))
        for name, names in covered.items()
    ]


def scope_label(runtime: Runtime, scope: str) -> str:
    """The placements a rule scope covers, by their labels (unknown scopes by their own)."""
    for s in scopes(runtime):
        if s.name == scope:
            return s.label
    return placement_label(scope)


def done_url(rule_id: str, action: str) -> str:
    return "/dashboard/rules?" + urlencode({"rule": rule_id, "done": action})


def _checked(form: dict[str, str]) -> list[str]:
    return [
        k[len(PLACEMENT_FIELD) :] for k, v in form.items() if k.startswith(PLACEMENT_FIELD) and v
    ]


def _version(form: dict[str, str]) -> int:
    raw = form.get("version", "").strip()
    if not raw.isdigit():
        raise InvalidInput(
            "say which version you are changing: reload the page and send the form again",
            code="version_required",
        )
    return int(raw)


def editor(
    runtime: Runtime, principal: Principal, query: dict[str, str], form: dict[str, str]
) -> dict[str, Any] | Redirect:
    """The editor page: a type picker, a new rule of one type, or a stored rule;
    a POSTed form is saved (then back to the rules page) or shown again with why not.
    The form's Preview button (``intent=preview``) saves nothing: the form comes back
    with the impact of the rule as it stands in the form, replayed over the last
    served slates (``Runtime.preview``)."""
    writer = may_write(principal)
    store = runtime.rules.store
    trouble: list[FormProblem] = []
    preview: list[PanelTable] = []
    if form:
        _require_writer(principal)
        values = dict(form)
        try:
            rule = parse_form(form, _checked(form))
            expected = _version(form)
            if form.get("intent") == "preview":
                report = runtime.preview([rule])
                preview = preview_tables(report, runtime.settings.currency)
            else:
                why = form.get("why", "").strip() or rule.reason
                saved = store.save(rule, who=principal.name, why=why, expected_version=expected)
                return Redirect(done_url(saved.id, "create" if expected == 0 else "update"))
        except ShelfwiseError as e:
            trouble = problems(e)
        checked = set(_checked(form))
    elif query.get("rule"):
        try:
            values = form_values(store.get(query["rule"]))
        except NotFound as e:
            return {"picker": True, "problems": problems(e), "types": _types(), "writer": writer}
        checked = set(filter(None, values["placements"].split(",")))
    elif query.get("type") in RULE_TYPES:
        values = {"type": query["type"], "version": "0", "enabled": "1", **_defaults(query["type"])}
        checked = set()
    else:
        return {"picker": True, "problems": [], "types": _types(), "writer": writer}
    rule_type = values.get("type", "")
    if rule_type not in RULE_TYPES:
        return {"picker": True, "problems": trouble, "types": _types(), "writer": writer}
    offered = scopes(runtime)
    known = {s.name for s in offered}
    offered += [Scope(name, placement_label(name)) for name in sorted(checked - known)]
    stored = values.get("version", "0") not in ("", "0")
    return {
        "picker": False,
        "writer": writer,
        "rule_type": rule_type,
        "doc": type_doc(rule_type),
        "fields": TYPE_FIELDS[rule_type],
        "values": values,
        "scopes": offered,
        "checked": checked,
        "stored": stored,
        "problems": trouble,
        "stale": any(p.code == "stale_version" for p in trouble),
        "placement_field": PLACEMENT_FIELD,
        "preview": preview,
    }


def _defaults(rule_type: str) -> dict[str, str]:
    """A new rule of ``rule_type`` starts from the model's defaults."""
    out: dict[str, str] = {}
    for name, info in RULE_TYPES[rule_type].model_fields.items():
        if name not in {f.name for f in TYPE_FIELDS[rule_type]} or info.is_required():
            continue
        default = info.get_default(call_default_factory=True)
        if isinstance(default, bool):
            out[name] = "1" if default else ""
        elif default is not None:
            out[name] = str(default)
    return out


def _types() -> list[tuple[str, str]]:
    return [(name, type_doc(name)) for name in RULE_TYPES]


def change(runtime: Runtime, principal: Principal, form: dict[str, str]) -> Redirect:
    """Enable, disable, delete or restore a rule at the version the page showed.

    Raises the store's errors (``stale_version``, ``rule_not_found``...) for the
    rules page to show."""
    _require_writer(principal)
    action, rule_id = form.get("action", ""), form.get("rule", "")
    if action not in CHANGES:
        raise InvalidInput(f"unknown change {action!r}", code="change_unknown")
    expected = _version(form)
    store, who = runtime.rules.store, principal.name
    why = form.get("why", "").strip()
    if action in ("enable", "disable"):
        store.set_enabled(
            rule_id, action == "enable", who=who, why=why or f"{action}d", expected_version=expected
        )
    elif action == "delete":
        store.delete(rule_id, who=who, why=why or "deleted", expected_version=expected)
    else:
        raw = form.get("restore_version", "").strip()
        if not raw.isdigit():
            raise InvalidInput("say which version to restore", code="version_required")
        store.restore(
            rule_id,
            int(raw),
            who=who,
            why=why or f"restored version {raw}",
            expected_version=expected,
        )
    return Redirect(done_url(rule_id, action))
