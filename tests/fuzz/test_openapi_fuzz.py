"""Fuzz every operation of the OpenAPI schema, on SQLite and on PostgreSQL, with data that
fits the schema (positive) and data that does not (negative): no 5xx, every response as
documented, what the schema refuses is refused (checks: tests/fuzz/schema.py).

Requests without a key are covered endpoint by endpoint in tests/e2e/test_role_matrix.py;
call sequences (create, then read, change, delete) in test_stateful_fuzz.py."""

from __future__ import annotations

from fastapi import FastAPI
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case

from tests.conftest import headers
from tests.fuzz.schema import CHECKS, fuzz_schema

positive = fuzz_schema(GenerationMode.POSITIVE)
negative = fuzz_schema(GenerationMode.NEGATIVE)


@positive.parametrize()
def test_valid_requests(case: Case, fuzz_app: FastAPI) -> None:
    case.call_and_validate(app=fuzz_app, headers=headers("admin"), additional_checks=CHECKS)


@negative.parametrize()
def test_invalid_requests(case: Case, fuzz_app: FastAPI) -> None:
    case.call_and_validate(app=fuzz_app, headers=headers("admin"), additional_checks=CHECKS)


# A browser's storefront key on the operations it may call: what it is answered (a
# customer token that is none, a person that is a customer's) is documented too.
storefront = fuzz_schema(GenerationMode.POSITIVE, GenerationMode.NEGATIVE).include(
    path_regex="^/v1/(recommendations|events)$"
)


@storefront.parametrize()
def test_storefront_key_requests(case: Case, fuzz_app: FastAPI) -> None:
    case.call_and_validate(app=fuzz_app, headers=headers("storefront"), additional_checks=CHECKS)
