"""Untrusted JSON and YAML documents, parsed with bounded depth and size.

Python's ``json`` and PyYAML parse nested containers recursively: a body of
5,000 ``[`` raises ``RecursionError`` (a 500), and YAML aliases can expand a
small text into a billion nodes. Every entry that parses a document a client or
an operator hands in (API bodies, the dashboard's rule draft, the CLI's files)
goes through here: JSON with orjson (no recursion; it refuses depth > 1024),
then :func:`check_shape` walks the result without recursion and refuses more
than :data:`MAX_DEPTH` levels (422 ``document_too_deep``) or more than
:data:`MAX_NODES` values (413 ``document_too_large``).
"""

from __future__ import annotations

from typing import Any, Final

import orjson
import yaml

from shelfwise.errors import InvalidInput, PayloadTooLarge

MAX_DEPTH: Final = 32  # a rule's predicate nests a few levels; an event two or three
MAX_NODES: Final = 2_000_000  # ~ what a 5 MB body can hold; YAML aliases can hold more


def _too_deep() -> InvalidInput:
    return InvalidInput(
        f"the document nests deeper than {MAX_DEPTH} levels", code="document_too_deep"
    )


def nesting_ok(data: Any, max_depth: int = MAX_DEPTH) -> bool:
    """True when ``data`` nests at most ``max_depth`` containers deep (iteratively)."""
    return _walk(data, max_depth, MAX_NODES) == "ok"


def _walk(data: Any, max_depth: int, max_nodes: int) -> str:
    # Exact type checks: decoded JSON and YAML hold plain dicts and lists (and
    # ``type(x) is`` is about twice as fast as isinstance on a 1,000-event body).
    level: list[Any] = [data] if type(data) in (dict, list, tuple) else []
    depth = 0
    seen = 0
    while level:
        depth += 1
        if depth > max_depth:
            return "deep"
        below: list[Any] = []
        for node in level:
            values = node.values() if type(node) is dict else node
            seen += len(values)
            below.extend(v for v in values if type(v) in (dict, list, tuple))
        if seen > max_nodes:
            return "large"
        level = below
    return "ok"


def check_shape(data: Any) -> Any:
    """``data`` itself, or InvalidInput/PayloadTooLarge when too deep or too large."""
    verdict = _walk(data, MAX_DEPTH, MAX_NODES)
    if verdict == "deep":
        raise _too_deep()
    if verdict == "large":
        raise PayloadTooLarge(
            f"the document holds more than {MAX_NODES} values", code="document_too_large"
        )
    return data


def is_too_deep(error: orjson.JSONDecodeError) -> bool:
    """orjson's refusal of a document nested deeper than it parses (1024 levels)."""
    return "depth limit" in error.msg or "recursion" in error.msg.lower()


def load_json(text: str | bytes) -> Any:
    """A JSON document; InvalidInput ``invalid_json`` when it is not one."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        if is_too_deep(e):
            raise _too_deep() from e
        raise InvalidInput(f"not valid JSON: {e.msg}", code="invalid_json") from e
    return check_shape(data)


def load_yaml(text: str) -> Any:
    """A YAML (or JSON) document; InvalidInput ``invalid_yaml`` when it is not one."""
    try:
        data = yaml.safe_load(text)
    except RecursionError as e:  # PyYAML's composer recurses once per level
        raise _too_deep() from e
    except yaml.YAMLError as e:
        raise InvalidInput(f"not valid YAML: {e}", code="invalid_yaml") from e
    return check_shape(data)
