"""The rule editor's form: one per rule type, derived from the rule contract itself.

The fields of each type come from its pydantic model (``rules.model``), so a
type or field added there shows up here; a submitted form becomes the same
JSON-ready dict the API receives and is validated by the same ``RULE``
adapter, so a refused form carries the API's codes and messages
(``invalid_request`` with a field, code and message per problem, or the
store's ``rule_invalid``, ``rule_exists``, ``stale_version``).

Field kinds: a ``Literal`` is a choice, a ``bool`` a checkbox, a number a
number, a tuple a comma-separated list, a predicate (``when``, ``forbid``...)
one line of YAML or JSON such as ``{attr: price, op: lt, value: 5}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from shelfwise.documents import load_yaml
from shelfwise.errors import InvalidInput, ShelfwiseError, validation_details
from shelfwise.rules.model import RULE, Rule, RuleBase
from shelfwise.rules.predicate import Cmp

Kind = Literal["text", "number", "checkbox", "choice", "list", "predicate"]

# RuleBase fields the form shows itself (version and author are the store's).
_COMMON = frozenset(RuleBase.model_fields) | {"type"}
PREDICATE_HINT = "{attr: price, op: lt, value: 5}"


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: Kind
    required: bool
    choices: tuple[str, ...] = ()
    hint: str = ""


@dataclass(frozen=True)
class FormProblem:
    """One refusal as the API would answer it: its code, message and, for a field, its path."""

    code: str
    message: str
    field: str = ""


def _mentions(annotation: Any, target: type) -> bool:
    if annotation is target:
        return True
    return any(_mentions(a, target) for a in get_args(annotation))


def _literal(annotation: Any) -> tuple[str, ...]:
    if get_origin(annotation) is Literal:
        return tuple(str(a) for a in get_args(annotation))
    for a in get_args(annotation):
        found = _literal(a)
        if found:
            return found
    return ()


def _kind(annotation: Any) -> Kind:
    if _literal(annotation):
        return "choice"
    if annotation is bool:
        return "checkbox"
    if _mentions(annotation, Cmp):
        return "predicate"
    if get_origin(annotation) is tuple:
        return "list"
    if _mentions(annotation, int) or _mentions(annotation, float):
        return "number"
    return "text"


def _field(name: str, info: FieldInfo) -> FormField:
    kind = _kind(info.annotation)
    hint = PREDICATE_HINT if kind == "predicate" else ""
    if kind == "list":
        hint = "comma-separated, e.g. Acme, Globex"
    return FormField(
        name=name,
        label=name.replace("_", " ").capitalize(),
        kind=kind,
        required=info.is_required(),
        choices=_literal(info.annotation),
        hint=hint,
    )


def _rule_types() -> dict[str, type[RuleBase]]:
    union = get_args(get_args(Rule)[0])
    return {cls.model_fields["type"].default: cls for cls in union}


RULE_TYPES: dict[str, type[RuleBase]] = _rule_types()
TYPE_FIELDS: dict[str, tuple[FormField, ...]] = {
    name: tuple(_field(f, info) for f, info in cls.model_fields.items() if f not in _COMMON)
    for name, cls in RULE_TYPES.items()
}


def type_doc(rule_type: str) -> str:
    """The rule type's docstring: what it does, in one or two sentences."""
    return " ".join((RULE_TYPES[rule_type].__doc__ or "").replace("``", "").split())


def _text(value: object) -> str:
    """A stored value as the form shows it (the inverse of ``_parse``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _local(value: object, timezone: str) -> str:
    """``2026-12-24T18:00`` for a ``datetime-local`` input: the time as read in the
    window's ``timezone`` (a stored time with an offset is converted to it)."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(ZoneInfo(timezone))
    spec = "seconds" if parsed.second else "minutes"
    return parsed.replace(tzinfo=None).isoformat(timespec=spec)


def form_values(rule: Rule) -> dict[str, str]:
    """A stored rule as the form's values (what the edit page starts from)."""
    body = rule.model_dump(mode="json", by_alias=True)
    out = {name: _text(body.get(name)) for name in (f.name for f in TYPE_FIELDS[rule.type])}
    scope, window = body["scope"], body.get("window") or {}
    out.update(
        id=rule.id,
        type=rule.type,
        version=str(rule.version),
        reason=rule.reason,
        priority=str(rule.priority),
        enabled="1" if rule.enabled else "",
        placements=",".join(scope["placements"]),
        context_categories=", ".join(scope["context_categories"]),
        segments=json.dumps(scope["segments"]) if scope["segments"] else "",
        window_start=_local(window.get("start"), window.get("timezone", "UTC")),
        window_end=_local(window.get("end"), window.get("timezone", "UTC")),
        window_timezone=window.get("timezone", "") if window else "",
    )
    return out


def _items(text: str) -> list[Any]:
    """``Acme, 10, true`` -> ``["Acme", 10, True]`` (each item read as a YAML scalar)."""
    out: list[Any] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = yaml.safe_load(part)
        except yaml.YAMLError:
            value = part
        out.append(value if isinstance(value, bool | int | float | str) else part)
    return out


def _yaml_field(name: str, text: str) -> Any:
    try:
        return load_yaml(text)
    except ShelfwiseError as e:
        raise InvalidInput(f"{name}: {e.message}", code=e.code, details={"field": name}) from e


def rule_data(form: Mapping[str, str], placements: Iterable[str]) -> dict[str, Any]:
    """The JSON-ready rule a submitted form describes (not yet validated).

    ``placements`` are the checked placement boxes (a form field may repeat)."""
    rule_type = form.get("type", "")
    data: dict[str, Any] = {"type": rule_type, "id": form.get("id", "").strip()}
    data["reason"] = form.get("reason", "").strip()
    data["enabled"] = bool(form.get("enabled"))
    if form.get("priority", "").strip():
        data["priority"] = form["priority"].strip()
    scope: dict[str, Any] = {}
    chosen = [p for p in placements if p]
    if chosen:
        scope["placements"] = chosen
    categories = [c.strip() for c in form.get("context_categories", "").split(",") if c.strip()]
    if categories:
        scope["context_categories"] = categories
    if form.get("segments", "").strip():
        scope["segments"] = _yaml_field("segments", form["segments"])
    if scope:
        data["scope"] = scope
    start, end = form.get("window_start", "").strip(), form.get("window_end", "").strip()
    if start or end:
        window: dict[str, Any] = {"timezone": form.get("window_timezone", "").strip() or "UTC"}
        if start:
            window["start"] = start
        if end:
            window["end"] = end
        data["window"] = window
    for f in TYPE_FIELDS.get(rule_type, ()):
        raw = form.get(f.name, "")
        if f.kind == "checkbox":
            data[f.name] = bool(raw)
        elif not raw.strip():
            continue
        elif f.kind == "predicate":
            data[f.name] = _yaml_field(f.name, raw)
        elif f.kind == "list":
            data[f.name] = _items(raw)
        else:
            data[f.name] = raw.strip()
    return data


def parse_form(form: Mapping[str, str], placements: Iterable[str]) -> Rule:
    """The rule a submitted form describes, validated as the API validates a body.

    Raises ``InvalidInput`` (``invalid_request`` with the API's details, or
    ``invalid_yaml`` for a predicate that does not parse)."""
    if form.get("type") not in RULE_TYPES:
        raise InvalidInput(
            f"unknown rule type {form.get('type')!r}; one of {', '.join(RULE_TYPES)}",
            code="rule_type_unknown",
        )
    data = rule_data(form, placements)
    try:
        return RULE.validate_python(data)
    except ValidationError as e:
        details = validation_details(list(e.errors(include_url=False)))
        raise InvalidInput(
            "the request is not valid", code="invalid_request", details=details
        ) from e


def problems(error: ShelfwiseError) -> list[FormProblem]:
    """What the form shows for a refusal: the error, then one line per field problem."""
    out = [FormProblem(error.code, error.message)]
    details = error.details
    if isinstance(details, list):
        out += [
            FormProblem(
                str(d.get("code")), str(d.get("message")), _without_tag(str(d.get("field")))
            )
            for d in details
            if isinstance(d, dict) and "field" in d
        ]
    return out


def _without_tag(path: str) -> str:
    """``exclude.when.cmp.op`` -> ``when.cmp.op``: pydantic names the union member first
    (the API's details say ``exclude.when...`` too; the form is already that type)."""
    head, _, rest = path.partition(".")
    return rest if head in RULE_TYPES and rest else path
