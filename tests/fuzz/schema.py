"""The schemathesis view of shelfwise's OpenAPI document, and the checks every fuzz test runs.

The document is the app's own (``create_app(...).openapi()``, links included); the
requests go to the per-backend app of the ``fuzz_app`` fixture.

Checks: schemathesis' defaults (no 5xx; status codes, content types, headers and
bodies as documented; what the schema refuses is refused — ``negative_data_rejection``)
except ``ignored_auth`` (requests without a key: tests/e2e/test_role_matrix.py) and
``positive_data_acceptance``, which wants every schema-valid request accepted.
shelfwise refuses some schema-valid requests on purpose, each with its own code (an
expiry in the past: 422 ``key_expiry_invalid``; a stale If-Match: 409), so
:func:`not_refused_as_malformed` takes its place: a schema-valid request may be refused
for a reason of its own, never as malformed (``invalid_request``) for a reason JSON
Schema can state (a type, a length, a missing field), which would mean the schema promises
more than the validators accept. Cross-field rules (``value_error``: arm shares must sum
to 1) are beyond JSON Schema and count as reasons of their own.

One generator quirk is corrected (:func:`sent_as_drawn`): schemathesis percent-decodes a
drawn path value before it encodes it for the URL, so a drawn ``%ff`` or ``%0a`` goes out
as U+FFFD or a newline; such a positive case is not the request drawn and is dropped.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import jsonschema_rs
import orjson
import schemathesis
from schemathesis.config import HealthCheck
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.checks import use_after_free
from schemathesis.specs.openapi.schemas import OpenApiSchema

from shelfwise.api import create_app
from shelfwise.config import load_settings
from tests.fuzz.seed import SEED

# Requests per operation, per generation mode and backend; scenarios and steps of the
# stateful test. The whole fuzz suite's budget is measured in docs/security.md#fuzzing.
EXAMPLES = 10
SCENARIOS = 14
STEPS = 10


def openapi_document() -> dict[str, Any]:
    # Building the app opens nothing: the store is opened by the runtime, later.
    settings = load_settings(database_url="sqlite://", model_watch_seconds=0)
    return create_app(settings).openapi()


def fuzz_schema(*modes: GenerationMode) -> OpenApiSchema:
    schema = schemathesis.openapi.from_dict(openapi_document())
    config = schema.config
    config.seed = SEED
    config.generation.update(modes=list(modes), max_examples=EXAMPLES, database="none")
    # The coverage phase enumerates boundary combinations without a bound (over 30,000
    # requests for the rule preview body alone); the fuzzing phase has a fixed budget.
    config.phases.coverage.enabled = False
    config.phases.stateful.max_steps = STEPS
    config.suppress_health_check = [HealthCheck.all]
    config.checks.positive_data_acceptance.enabled = False
    # ``ignored_auth`` probes each keyed operation without its key, over HTTP to the
    # schema's server, which an in-process app has not (schemathesis' probe does not go
    # through ``app=``); tests/e2e/test_role_matrix.py asks every keyed endpoint without
    # a key, with an unknown key and with each role instead.
    config.checks.ignored_auth.enabled = False
    # ``use_after_free`` runs as :func:`deleted_stays_deleted`, which knows that a
    # deleted rule's history is its audit trail and stays readable.
    config.checks.use_after_free.enabled = False
    # A body past a documented bound (an event batch over max_batch_size) is refused
    # as too large: 413, a refusal schemathesis does not list by default.
    rejection = config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    schema.hook("filter_case")(sent_as_drawn)
    return schema


def sent_as_drawn(ctx: Any, case: Case) -> bool:
    """False for a positive case whose path values, as schemathesis sends them
    (``quote(unquote(drawn))``: a drawn ``%41`` is sent as ``A``), leave their schema."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return True
    for parameter in case.operation.path_parameters:
        sent = case.path_parameters.get(parameter.name) if case.path_parameters else None
        schema = parameter.definition.get("schema", {})
        if isinstance(sent, str) and not jsonschema_rs.validator_for(schema).is_valid(
            unquote(sent)
        ):
            return False
    return True


def not_refused_as_malformed(ctx: Any, response: Response, case: Case) -> bool | None:
    """A schema-valid request is never refused as malformed."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code in (400, 422) and _schema_expressible(response):
        raise AssertionError(
            "a request valid by the OpenAPI schema was refused as malformed: the schema "
            f"promises more than the validators accept\n{response.content.decode(errors='replace')}"
        )
    return None


def _schema_expressible(response: Response) -> bool:
    """An ``invalid_request`` answer naming at least one reason other than ``value_error``
    and its consequences: pydantic counts a list's length after dropping the items it
    refused (``too_short`` ... "after validation"), so a list whose items were refused
    for reasons of their own may be reported too short as well."""
    try:
        body = orjson.loads(response.content)
        error = body["error"]
        details = [(detail["field"], detail["code"]) for detail in error.get("details", [])]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return False
    own = [field for field, code in details if code == "value_error"]
    reasons = {
        code
        for field, code in details
        if code != "value_error"
        and not (code == "too_short" and any(f.startswith(f"{field}.") for f in own))
    }
    return error.get("code") == "invalid_request" and bool(reasons)


def deleted_stays_deleted(ctx: Any, response: Response, case: Case) -> bool | None:
    """schemathesis' use-after-free check (a deleted resource answers 404 afterwards),
    except for ``…/history``: a deleted rule's history is its audit trail, kept on purpose
    (who deleted it, and the versions ``restore`` brings back)."""
    if case.path.endswith("/history"):
        return None
    result: bool | None = use_after_free(ctx, response, case)
    return result


CHECKS = [not_refused_as_malformed, deleted_stays_deleted]
