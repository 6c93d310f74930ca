"""Named checks that turn a raw event into findings with stable codes and field paths.

Shape errors come from pydantic and are mapped onto a small, documented set of
codes (pydantic's own error names are an implementation detail). Semantic checks
need context the model does not have — the clock and the tolerances in
Settings — and run on events that already have the right shape.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import ErrorDetails

from shelfwise.contracts.events import EVENT_TYPES, Event
from shelfwise.documents import nesting_ok
from shelfwise.values import MAX_SAFE_INT

_PRICE_FIELDS = frozenset({"price", "unit_price", "revenue"})
_BOUNDS = frozenset({"greater_than_equal", "greater_than", "less_than", "less_than_equal"})
_TYPE_ERRORS = frozenset(
    {
        "string_type",
        "int_type",
        "int_parsing",
        "int_from_float",
        "float_type",
        "float_parsing",
        "bool_type",
        "list_type",
        "tuple_type",
        "finite_number",
        "bool_not_number",
    }
)
_DIRECT = {
    "union_tag_invalid": "unknown_event_type",
    "union_tag_not_found": "missing_event_type",
    "model_attributes_type": "not_an_object",
    "model_type": "not_an_object",
    "dict_type": "not_an_object",
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "unknown_currency": "unknown_currency",
    "timezone_aware": "naive_timestamp",
    "timestamp_format": "invalid_timestamp",
    "timestamp_range": "timestamp_out_of_range",
    "string_unicode": "invalid_format",
    "datetime_parsing": "invalid_timestamp",
    "datetime_from_date_parsing": "invalid_timestamp",
    "datetime_type": "invalid_timestamp",
    "string_too_short": "empty_value",
    "string_too_long": "too_long",
    "too_long": "too_many_items",
    "too_short": "empty_list",
    "string_pattern_mismatch": "invalid_format",
    "literal_error": "invalid_value",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason an event was rejected: a stable ``code``, the ``field`` path, a message."""

    code: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


def field_path(loc: Sequence[int | str]) -> str:
    """``("purchase", "lines", 0, "quantity")`` -> ``"lines[0].quantity"`` (tag dropped)."""
    parts = list(loc)
    if parts and isinstance(parts[0], str) and parts[0] in EVENT_TYPES:
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _code(error: ErrorDetails, leaf: str) -> str:
    kind = error["type"]
    if kind in _BOUNDS:
        if kind == "greater_than_equal" and leaf in _PRICE_FIELDS:
            return "negative_price"
        if leaf == "quantity" and kind in ("greater_than_equal", "greater_than"):
            return "invalid_quantity"
        return "out_of_range"
    if kind in _TYPE_ERRORS:
        return "wrong_type"
    return _DIRECT.get(kind, "invalid_value")


def shape_problems(errors: Sequence[ErrorDetails]) -> list[Problem]:
    out: list[Problem] = []
    for err in errors:
        loc = err["loc"]
        leaf = str(loc[-1]) if loc else ""
        path = field_path(loc)
        code = _code(err, leaf)
        if code in ("unknown_event_type", "missing_event_type"):
            path = "type"
        out.append(Problem(code=code, field=path, message=err["msg"]))
    # pydantic counts only the valid items against a min length: a list whose
    # items failed is not also "empty".
    return [
        p
        for p in out
        if p.code != "empty_list" or not any(q.field.startswith(p.field + "[") for q in out)
    ]


@dataclass(frozen=True)
class SemanticRules:
    """Tolerances of the semantic checks (from Settings)."""

    future_tolerance: timedelta = timedelta(minutes=5)
    revenue_tolerance: float = 0.01  # relative, with a floor of one cent


def semantic_problems(e: Event, now: datetime, rules: SemanticRules) -> list[Problem]:
    """Checks beyond shape; the empty list means the event is sound."""
    out: list[Problem] = []
    if e.occurred_at > now + rules.future_tolerance:
        out.append(
            Problem(
                "future_timestamp",
                "occurred_at",
                f"occurred_at is {(e.occurred_at - now).total_seconds():.0f}s in the future",
            )
        )
    if e.type == "purchase":
        expected = sum(ln.quantity * ln.unit_price for ln in e.lines)
        if abs(e.revenue - expected) > max(0.01, rules.revenue_tolerance * expected):
            out.append(
                Problem(
                    "revenue_mismatch",
                    "revenue",
                    f"revenue {e.revenue:.2f} differs from the lines' total {expected:.2f}",
                )
            )
    return out


def product_ids_of(e: Event) -> list[str]:
    """Every product id an event mentions, in order."""
    match e.type:
        case "product_view" | "add_to_cart" | "remove_from_cart" | "rec_click":
            return [e.product_id]
        case "purchase" | "return":
            return [ln.product_id for ln in e.lines]
        case "rec_impression":
            return [it.product_id for it in e.items]
        case _:
            return []


UNSTORABLE = "unstorable_payload"
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def json_safe(raw: Any) -> Any:
    """A copy of a raw payload every store can hold (quarantine keeps what was sent).

    A payload nested deeper than ``documents.MAX_DEPTH`` is kept as a marker only;
    one with a NUL or a lone surrogate (PostgreSQL text and JSON refuse both) or a
    number JSON cannot hold is kept as its JSON text, escaped to ASCII, under
    ``unstorable_payload``: lossless, and never a valid event on replay."""
    if not nesting_ok(raw):
        return {UNSTORABLE: None, "reason": "nested too deep to keep"}
    plain = _plain(raw)
    if _storable(plain):
        return plain
    return {UNSTORABLE: json.dumps(plain, ensure_ascii=True, default=str)}


def _plain(raw: Any) -> Any:
    if raw is None or isinstance(raw, str | int | float | bool):
        return raw
    if isinstance(raw, dict):
        return {str(k): _plain(v) for k, v in raw.items()}
    if isinstance(raw, list | tuple):
        return [_plain(v) for v in raw]
    return str(raw)


def _storable(plain: Any) -> bool:
    stack = [plain]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE_TEXT.search(node):
                return False
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if not -MAX_SAFE_INT <= node <= MAX_SAFE_INT:
                return False
        elif isinstance(node, float):
            if not math.isfinite(node):
                return False
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        else:
            stack.extend(node)
    return True
