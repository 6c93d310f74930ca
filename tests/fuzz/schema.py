"""The schemathesis view of shelfwise's OpenAPI document, and the checks every fuzz test runs.

The document is the app's own (``create_app(...).openapi()``, links included); the
requests go to the per-backend app of the ``fuzz_app`` fixture.

Checks: schemathesis' defaults (no 5xx; status codes, content types, headers and
bodies as documented; what the schema refuses is refused — ``negative_data_rejection``)
except ``positive_data_acceptance``, which wants every schema-valid request accepted.
shelfwise refuses some schema-valid requests on purpose, each with its own code (an
expiry in the past: 422 ``key_expiry_invalid``; a stale If-Match: 409), so
:func:`not_refused_as_malformed` takes its place: a schema-valid request may be refused
for a reason of its own, never as malformed (``invalid_request``) for a reason JSON
Schema can state (a type, a length, a missing field), which would mean the schema promises
more than the validators accept. Cross-field rules (``value_error``: arm shares must sum
to 1) are beyond JSON Schema and count as reasons of their own.
"""

from __future__ import annotations

from typing import Any

import orjson
import schemathesis
from schemathesis.config import HealthCheck
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.schemas import OpenApiSchema

from shelfwise.api import create_app
from shelfwise.config import load_settings
from tests.fuzz.seed import SEED

# Requests per operation, per generation mode and backend; scenarios and steps of the
# stateful test. The whole fuzz suite's budget is measured in docs/security.md#fuzzing.
EXAMPLES = 15
SCENARIOS = 20
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
    return schema


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
    """An ``invalid_request`` answer naming at least one reason other than ``value_error``."""
    try:
        body = orjson.loads(response.content)
        error = body["error"]
        codes = {detail["code"] for detail in error.get("details", [])}
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return False
    return error.get("code") == "invalid_request" and bool(codes - {"value_error"})


CHECKS = [not_refused_as_malformed]
