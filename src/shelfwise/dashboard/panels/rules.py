"""Rules: the rulebook, its audit log (all rules, or one rule's history) and the
impact preview of a draft, replayed over the last served slates. For a key that
may write rules, each rule has its edit, enable/disable and delete actions and
each past version a restore button (``dashboard.ruleedit`` does the changes)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import yaml
from pydantic import ValidationError

from shelfwise.dashboard.format import label, when
from shelfwise.dashboard.panels.cells import badge
from shelfwise.dashboard.preview import preview_tables
from shelfwise.dashboard.ruleedit import DONE, may_write, scope_label
from shelfwise.dashboard.ruleform import RULE_TYPES
from shelfwise.dashboard.slots import (
    Cell,
    Panel,
    PanelAction,
    PanelActions,
    PanelCell,
    PanelField,
    PanelForm,
    PanelTable,
    SlotParams,
)
from shelfwise.documents import load_yaml
from shelfwise.errors import NotFound, ShelfwiseError
from shelfwise.pipeline.preview import PreviewReport
from shelfwise.rules.model import RULES, Rule
from shelfwise.rules.store import AuditEntry

if TYPE_CHECKING:
    from shelfwise.runtime import Runtime

CHANGE_URL = "/dashboard/rules/change"
EXAMPLE = (
    "- id: no-cheap-addons\n  type: exclude\n  reason: no add-ons under 5\n"
    "  when: {attr: price, op: lt, value: 5}\n"
)


def rules_panel(runtime: Runtime, params: SlotParams) -> Panel:
    store = runtime.rules.store
    rules = store.list_rules()
    writer = may_write(params.principal)
    selected = params.query.get("rule") or ""
    error = ""
    tables = []
    form = params.form
    if form:
        try:
            tables += preview_tables(_run_preview(runtime, form), runtime.settings.currency)
        except (ValueError, yaml.YAMLError, ShelfwiseError) as e:
            error = _message(e)
    columns = ["Rule", "Type", "Why", "Placements", "Priority", "Version", "State"]
    tables.append(
        PanelTable(
            f"Rulebook (version {store.version()})",
            [*columns, "Change"] if writer else columns,
            [_rule_row(runtime, r, writer) for r in rules],
            testid="rules",
            empty="No rules: every candidate is allowed.",
        )
    )
    stored = {r.id: r.version for r in rules}
    audit = []
    if selected:
        try:
            audit = store.history(selected)  # a deleted rule keeps its history (to restore)
        except NotFound:
            error = error or f"No rule {selected!r}."
    title = f"History of {selected}" if audit else "Audit log (latest changes)"
    entries = list(reversed(audit)) if audit else store.recent_changes(50)
    restorable = writer and bool(audit)
    audit_columns = ["#", "When", "Who", "Rule", "Action", "Version", "Why", "Change"]
    tables.append(
        PanelTable(
            title,
            [*audit_columns, "Restore"] if restorable else audit_columns,
            [_audit_row(a, stored.get(a.rule_id, 0) if restorable else None) for a in entries],
            testid="audit",
            empty="No change recorded yet.",
        )
    )
    return Panel(
        title="Rules",
        summary=f"{len(rules)} rules, {sum(r.enabled for r in rules)} enabled."
        + ("" if writer else " Your key may read the rules but not change them."),
        notice=_notice(params, stored),
        error=error,
        ranged=False,
        links=[
            PanelAction(f"New {label(t).lower()} rule", f"/dashboard/rules/edit?type={t}")
            for t in RULE_TYPES
        ]
        if writer
        else [],
        forms=[_preview_form(form)],
        tables=tables,
    )


def _notice(params: SlotParams, stored: dict[str, int]) -> str:
    """What the change that led here did, read back from the store (the query only
    names the rule and the kind of change)."""
    done, rule_id = params.query.get("done", ""), params.query.get("rule", "")
    if done not in DONE or not rule_id:
        return ""
    now = f"now at version {stored[rule_id]}" if rule_id in stored else "no longer in the rulebook"
    return f"Rule {rule_id} {DONE[done]}: {now}. It applies to the next request."


def _message(e: Exception) -> str:
    if isinstance(e, ShelfwiseError) and e.code.startswith(("invalid_yaml", "document_")):
        return f"The draft could not be read: {e.message}"
    if isinstance(e, ShelfwiseError):
        return e.message
    if isinstance(e, ValidationError):
        first = e.errors(include_url=False)[:3]
        return "The draft is not a valid rule: " + "; ".join(
            f"{_where(err['loc'])}: {err['msg']}" for err in first
        )
    return f"The draft could not be read: {e}"


def _where(loc: tuple[int | str, ...]) -> str:
    """``(0, "exclude", "when")`` -> ``rule 1, when``."""
    head, *rest = loc or ("",)
    parts = [f"rule {head + 1}" if isinstance(head, int) else str(head)]
    return ", ".join(parts + [str(p) for p in rest[1:] if p])


def _run_preview(runtime: Runtime, form: dict[str, str] | Any) -> PreviewReport:
    text = (form.get("draft") or "").strip()
    if not text:
        raise ValueError("write one rule or a list of rules (YAML or JSON)")
    data = load_yaml(text)
    draft: list[Rule] = RULES.validate_python(data if isinstance(data, list) else [data])
    last = int(form.get("last") or 500)
    if not 1 <= last <= 10_000:
        raise ValueError("replay between 1 and 10,000 slates")
    return runtime.preview(
        draft,
        last=last,
        placement=form.get("placement") or None,
        replace=bool(form.get("replace")),
    )


def _preview_form(form: dict[str, str] | Any) -> PanelForm:
    return PanelForm(
        title="Preview a change",
        note="The draft is saved over the current rules by id (nothing is stored); the last"
        " served slates are replayed with and without it.",
        method="post",
        submit="Preview",
        fields=[
            PanelField(
                "draft", "Draft rules (YAML or JSON)", form.get("draft", ""), "textarea", EXAMPLE
            ),
            PanelField("placement", "Only placement", form.get("placement", ""), "text", "all"),
            PanelField("last", "Slates to replay", form.get("last", "500"), "number"),
            PanelField(
                "replace", "Replace the whole rulebook", form.get("replace", ""), "checkbox"
            ),
        ],
    )


def _rule_row(runtime: Runtime, r: Rule, writer: bool) -> list[Cell]:
    row: list[Cell] = [
        PanelCell(r.id, href="?" + urlencode({"rule": r.id})),
        label(r.type),
        r.reason,
        ", ".join(scope_label(runtime, p) for p in r.scope.placements) or "All placements",
        str(r.priority),
        PanelCell(str(r.version), value=r.version, testid=f"version-{r.id}"),
        badge("Enabled", "ok", f"state-{r.id}")
        if r.enabled
        else badge("Disabled", "resolved", f"state-{r.id}"),
    ]
    if writer:
        switch = "disable" if r.enabled else "enable"
        version = {"rule": r.id, "version": str(r.version)}
        row.append(
            PanelActions(
                (
                    PanelAction(
                        "Edit",
                        "/dashboard/rules/edit?" + urlencode({"rule": r.id}),
                        testid=f"edit-{r.id}",
                    ),
                    PanelAction(
                        switch.title(),
                        CHANGE_URL,
                        {**version, "action": switch},
                        testid=f"{switch}-{r.id}",
                    ),
                    PanelAction(
                        "Delete",
                        CHANGE_URL,
                        {**version, "action": "delete"},
                        confirm=f"Delete rule {r.id}? Its history stays and can restore it.",
                        testid=f"delete-{r.id}",
                    ),
                )
            )
        )
    return row


def _short(v: object) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


def _audit_row(a: AuditEntry, current: int | None) -> list[Cell]:
    """One audit entry; with ``current`` (the rule's stored version, 0 when deleted)
    a button restoring the version the entry wrote."""
    if a.action in ("create", "delete"):
        change = a.action + "d"
    else:
        change = "; ".join(f"{k}: {_short(o)} → {_short(n)}" for k, (o, n) in a.diff.items())
    row: list[Cell] = [
        str(a.seq),
        when(a.at),
        a.who,
        PanelCell(a.rule_id, href="?" + urlencode({"rule": a.rule_id})),
        label(a.action),
        str(a.version),
        a.why,
        change if len(change) <= 160 else change[:159] + "…",
    ]
    if current is not None:
        restore = a.body is not None and a.version != current
        fields = {
            "action": "restore",
            "rule": a.rule_id,
            "version": str(current),
            "restore_version": str(a.version),
        }
        row.append(
            PanelActions(
                (
                    PanelAction(
                        f"Restore version {a.version}",
                        CHANGE_URL,
                        fields,
                        testid=f"restore-{a.rule_id}-{a.version}",
                    ),
                )
            )
            if restore
            else ""
        )
    return row
