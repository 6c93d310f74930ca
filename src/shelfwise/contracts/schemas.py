"""JSON Schemas of the event contract, their examples, and a compatibility check.

``export(out)`` writes ``<out>/v<version>/<type>.schema.json`` plus one valid
and one invalid example per event type. ``compare(old, new)`` classifies a
schema change from the senders' side: it is *breaking* when an event valid
under ``old`` can be invalid under ``new`` (a field removed — the contract
forbids unknown fields —, a new required field, a narrower type, enum or
bound), otherwise *compatible* (new optional fields, wider enums, looser
bounds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shelfwise.contracts.events import EVENT_TYPES, SCHEMA_VERSION

T = "2026-11-01T12:00:00Z"
_COMMON = {"event_id": "e-1", "occurred_at": T, "anonymous_id": "anon-1", "session_id": "s-1"}

VALID: dict[str, dict[str, Any]] = {
    "page_view": {**_COMMON, "type": "page_view", "page_type": "search", "query": "linen duvet"},
    "product_view": {
        **_COMMON,
        "type": "product_view",
        "product_id": "P1",
        "price": 59.0,
        "currency": "EUR",
        "platform": "web",
        "browser": "Firefox",
    },
    "add_to_cart": {
        **_COMMON,
        "type": "add_to_cart",
        "product_id": "P1",
        "quantity": 2,
        "unit_price": 59.0,
        "currency": "EUR",
        "placement": "product-page",
        "rec_id": "r-9",
    },
    "remove_from_cart": {**_COMMON, "type": "remove_from_cart", "product_id": "P1"},
    "purchase": {
        **_COMMON,
        "type": "purchase",
        "customer_id": "c-7",
        "order_id": "o-1",
        "currency": "EUR",
        "revenue": 118.0,
        "lines": [{"product_id": "P1", "quantity": 2, "unit_price": 59.0}],
    },
    "return": {
        **_COMMON,
        "type": "return",
        "order_id": "o-1",
        "lines": [{"product_id": "P1", "quantity": 1}],
    },
    "rec_impression": {
        **_COMMON,
        "type": "rec_impression",
        "rec_id": "r-9",
        "placement": "product-page",
        "experiment_id": "x1",
        "arm": "b",
        "items": [{"product_id": "P2", "position": 1}, {"product_id": "P3", "position": 2}],
    },
    "rec_click": {
        **_COMMON,
        "type": "rec_click",
        "rec_id": "r-9",
        "placement": "product-page",
        "product_id": "P2",
        "position": 1,
    },
    "login": {**_COMMON, "type": "login", "customer_id": "c-7", "device_id": "d-1"},
}

# (change to the valid example, the code the ingestion reports)
INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "page_view": ({"page_type": "checkout"}, "invalid_value"),
    "product_view": ({"price": -5.0}, "negative_price"),
    "add_to_cart": ({"quantity": 0}, "invalid_quantity"),
    "remove_from_cart": ({"product_id": ""}, "empty_value"),
    "purchase": ({"currency": "ZZZ"}, "unknown_currency"),
    "return": ({"lines": []}, "empty_list"),
    "rec_impression": ({"placement": "Product Page!"}, "invalid_format"),
    "rec_click": ({"colour": "red"}, "unknown_field"),
    "login": ({"occurred_at": "2026-11-01T12:00:00"}, "naive_timestamp"),
}


def invalid_example(event_type: str) -> dict[str, Any]:
    return {**VALID[event_type], **INVALID[event_type][0]}


def schema_of(event_type: str) -> dict[str, Any]:
    return EVENT_TYPES[event_type].model_json_schema()


def export(out: Path) -> list[Path]:
    """Write every schema and example; returns the files written."""
    folder = out / f"v{SCHEMA_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in EVENT_TYPES:
        for suffix, data in (
            ("schema", schema_of(name)),
            ("valid", VALID[name]),
            ("invalid", {"event": invalid_example(name), "expected_code": INVALID[name][1]}),
        ):
            path = folder / f"{name}.{suffix}.json"
            path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            written.append(path)
    return written


@dataclass
class Compatibility:
    kind: Literal["identical", "compatible", "breaking"] = "identical"
    changes: list[str] = field(default_factory=list)

    def note(self, breaking: bool, text: str) -> None:
        self.changes.append(("BREAKING " if breaking else "") + text)
        if breaking:
            self.kind = "breaking"
        elif self.kind == "identical":
            self.kind = "compatible"


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root["$defs"][ref.split("/")[-1]], root)
    return node


def _options(node: dict[str, Any], root: dict[str, Any]) -> list[dict[str, Any]]:
    node = _resolve(node, root)
    if "anyOf" in node:
        return [o for n in node["anyOf"] for o in _options(n, root)]
    return [node]


def _values(node: dict[str, Any]) -> set[Any] | None:
    if "const" in node:
        return {json.dumps(node["const"])}
    if "enum" in node:
        return {json.dumps(v) for v in node["enum"]}
    return None


_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")


def _compare_node(
    old: dict[str, Any],
    new: dict[str, Any],
    ro: dict[str, Any],
    rn: dict[str, Any],
    path: str,
    out: Compatibility,
) -> None:
    old_opts, new_opts = _options(old, ro), _options(new, rn)
    old_types = {o.get("type", "object" if "properties" in o else "any") for o in old_opts}
    new_types = {o.get("type", "object" if "properties" in o else "any") for o in new_opts}
    if "any" not in new_types:
        for t in sorted(old_types - new_types):
            out.note(True, f"{path}: type {t} no longer accepted")
    for t in sorted(new_types - old_types):
        out.note(False, f"{path}: type {t} now accepted")
    for t in sorted(old_types & new_types):
        o = next(
            x for x in old_opts if x.get("type", "object" if "properties" in x else "any") == t
        )
        n = next(
            x for x in new_opts if x.get("type", "object" if "properties" in x else "any") == t
        )
        ov, nv = _values(o), _values(n)
        if ov is not None or nv is not None:
            if nv is not None and (ov is None or ov - nv):
                out.note(True, f"{path}: allowed values narrowed")
            elif ov is not None and (nv is None or nv - ov):
                out.note(False, f"{path}: allowed values widened")
        for key in _LOWER + _UPPER + ("pattern", "format"):
            a, b = o.get(key), n.get(key)
            if a == b:
                continue
            if key in ("pattern", "format"):
                out.note(b is not None, f"{path}: {key} {a!r} -> {b!r}")
            elif b is None or a is None:
                out.note(a is None, f"{path}: {key} {a!r} -> {b!r}")
            else:
                tighter = b > a if key in _LOWER else b < a
                out.note(tighter, f"{path}: {key} {a!r} -> {b!r}")
        if t == "object":
            _compare_object(o, n, ro, rn, path, out)
        if t == "array" and "items" in o and "items" in n:
            _compare_node(o["items"], n["items"], ro, rn, f"{path}[]", out)


def _compare_object(
    old: dict[str, Any],
    new: dict[str, Any],
    ro: dict[str, Any],
    rn: dict[str, Any],
    path: str,
    out: Compatibility,
) -> None:
    op, np_ = old.get("properties", {}), new.get("properties", {})
    oreq, nreq = set(old.get("required", ())), set(new.get("required", ()))
    prefix = f"{path}." if path else ""
    for name in sorted(set(op) - set(np_)):
        out.note(new.get("additionalProperties") is False, f"{prefix}{name}: removed")
    for name in sorted(set(np_) - set(op)):
        out.note(
            name in nreq, f"{prefix}{name}: added ({'required' if name in nreq else 'optional'})"
        )
    for name in sorted(set(op) & set(np_)):
        if name in nreq and name not in oreq:
            out.note(True, f"{prefix}{name}: now required")
        elif name in oreq and name not in nreq:
            out.note(False, f"{prefix}{name}: now optional")
        _compare_node(op[name], np_[name], ro, rn, f"{prefix}{name}", out)


def compare(old: dict[str, Any], new: dict[str, Any]) -> Compatibility:
    """Classify the change from schema ``old`` to schema ``new``."""
    out = Compatibility()
    _compare_node(old, new, old, new, "", out)
    return out
