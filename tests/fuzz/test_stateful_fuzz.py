"""Stateful fuzzing: call sequences that follow the OpenAPI links (api/openapi.py) — create
a rule, read it, change it at the ETag read, disable, restore, delete it; the same for
experiments, keys, products, events and quarantine, slates and their decisions — with
positive and negative data, on SQLite and on PostgreSQL. Same checks as the per-operation
fuzzing (tests/fuzz/schema.py)."""

from __future__ import annotations

from typing import Any

import hypothesis
import hypothesis.errors
from fastapi import FastAPI
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, rule
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.generation.stateful.state_machine import APIStateMachine, StepInput, StepOutput

from tests.conftest import headers
from tests.fuzz.conftest import FuzzStores
from tests.fuzz.schema import CHECKS, SCENARIOS, STEPS, fuzz_schema
from tests.fuzz.seed import SEED

schema = fuzz_schema(GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def _created(path: str, method: str) -> st.SearchStrategy[Case]:
    return schema[path][method].as_strategy(generation_mode=GenerationMode.POSITIVE)


def workflow(stores: FuzzStores) -> type[APIStateMachine]:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        app: FastAPI

        def setup(self) -> None:
            # Every scenario starts on a fresh store: what a scenario's requests answer
            # depends on its own steps only (a rule id drawn twice is created twice, never
            # refused as taken by an earlier scenario), so hypothesis sees the same answers
            # whenever it replays the same choices.
            self.app = stores.open()

        def teardown(self) -> None:
            super().teardown()
            stores.close_all()  # this module opens no other store

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
            return {"app": self.app, "headers": headers("admin")}

        def validate_response(
            self, response: Response, case: Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            super().validate_response(response, case, additional_checks=CHECKS, **kwargs)

    return hypothesis.seed(SEED)(Workflow)


def test_call_sequences(fuzz_stores: FuzzStores) -> None:
    _run(fuzz_stores)


def _run(stores: FuzzStores) -> None:
    workflow(stores).run(
        settings=hypothesis.settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
