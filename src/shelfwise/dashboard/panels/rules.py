"""Rules: the rulebook, its audit log (all rules, or one rule's history) and the
impact preview of a draft, replayed over the last served slates."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import yaml
from pydantic import ValidationError

from shelfwise.dashboard.format import label, money, percent, when
from shelfwise.dashboard.panels.cells import badge, count_cell, money_cell
from shelfwise.dashboard.slots import (
    Cell,
    Panel,
    PanelCell,
    PanelField,
    PanelForm,
    PanelTable,
    SlotParams,
)
from shelfwise.documents import load_yaml
from shelfwise.errors import ShelfwiseError
from shelfwise.rules.model import RULES, Rule
from shelfwise.rules.preview import PreviewReport, preview_draft
from shelfwise.rules.store import AuditEntry

if TYPE_CHECKING:
    from shelfwise.runtime import Runtime

EXAMPLE = (
    "- id: no-cheap-addons\n  type: exclude\n  reason: no add-ons under 5\n"
    "  when: {attr: price, op: lt, value: 5}\n"
)


def rules_panel(runtime: Runtime, params: SlotParams) -> Panel:
    store = runtime.rules.store
    rules = store.list_rules()
    selected = params.query.get("rule") or ""
    error = ""
    tables = []
    form = params.form
    if form:
        try:
            tables.append(_preview_table(_run_preview(runtime, form), runtime.settings.currency))
        except (ValueError, yaml.YAMLError, ShelfwiseError) as e:
            error = _message(e)
    tables.append(
        PanelTable(
            f"Rulebook (version {store.version()})",
            ["Rule", "Type", "Why", "Placements", "Priority", "Version", "State"],
            [_rule_row(r) for r in rules],
            testid="rules",
            empty="No rules: every candidate is allowed.",
        )
    )
    if selected and selected not in {r.id for r in rules}:
        error = error or f"No rule {selected!r}."
    audit = store.history(selected) if selected in {r.id for r in rules} else []
    title = f"History of {selected}" if audit else "Audit log (latest changes)"
    entries = list(reversed(audit)) if audit else store.recent_changes(50)
    tables.append(
        PanelTable(
            title,
            ["#", "When", "Who", "Rule", "Action", "Version", "Why", "Change"],
            [_audit_row(a) for a in entries],
            testid="audit",
            empty="No change recorded yet.",
        )
    )
    return Panel(
        title="Rules",
        summary=f"{len(rules)} rules, {sum(r.enabled for r in rules)} enabled.",
        error=error,
        ranged=False,
        forms=[_preview_form(form)],
        tables=tables,
    )


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
    return preview_draft(
        draft,
        live=runtime.rules.current,
        snapshot=runtime.snapshot,
        clock=runtime.clock,
        slates=runtime.decisions,
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


def _preview_table(p: PreviewReport, currency: str) -> PanelTable:
    def items(counts: list[Any]) -> str:
        return ", ".join(f"{c.product_id} ({c.count})" for c in counts) or "none"

    return PanelTable(
        "Impact of the draft",
        [
            "Slates replayed",
            "Slates changed",
            "Share changed",
            "Expected revenue before",
            "After",
            "Change",
            "Added most often",
            "Removed most often",
        ],
        [
            [
                count_cell(p.requests, "preview-requests"),
                count_cell(p.slates_changed, "preview-changed"),
                percent(p.share_changed, 1),
                money(p.expected_revenue_before, currency),
                money(p.expected_revenue_after, currency),
                money_cell(p.revenue_change, currency, "preview-revenue-change"),
                items(p.added_most_often),
                items(p.removed_most_often),
            ]
        ],
        testid="preview",
    )


def _rule_row(r: Rule) -> list[Cell]:
    return [
        PanelCell(r.id, href="?" + urlencode({"rule": r.id})),
        label(r.type),
        r.reason,
        ", ".join(label(p) for p in r.scope.placements) or "All",
        str(r.priority),
        PanelCell(str(r.version), value=r.version, testid=f"version-{r.id}"),
        badge("Enabled", "ok") if r.enabled else badge("Disabled", "resolved"),
    ]


def _short(v: object) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


def _audit_row(a: AuditEntry) -> list[Cell]:
    if a.action in ("create", "delete"):
        change = a.action + "d"
    else:
        change = "; ".join(f"{k}: {_short(o)} → {_short(n)}" for k, (o, n) in a.diff.items())
    return [
        str(a.seq),
        when(a.at),
        a.who,
        PanelCell(a.rule_id, href="?" + urlencode({"rule": a.rule_id})),
        label(a.action),
        str(a.version),
        a.why,
        change if len(change) <= 160 else change[:159] + "…",
    ]
