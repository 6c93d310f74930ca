"""Privacy: erase a person across every linked id, and the audit of erasures (admin role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from shelfwise.api.auth import Principal, require
from shelfwise.api.deps import RuntimeDep
from shelfwise.contracts.privacy import Erasure
from shelfwise.values import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["privacy"])
Admin = Annotated[Principal, Depends(require("admin"))]


@router.delete("/people/{person_id:path}", response_model=Erasure)
def erase_person(
    person_id: Annotated[str, Path(min_length=1, max_length=200, pattern=ID_PATTERN)],
    runtime: RuntimeDep,
    who: Admin,
) -> Erasure:
    """Erase a person: ``customer:…``, ``anonymous:…``, ``device:…`` or a bare id (every kind).
    Shopper ids may hold ``/``: the id is the rest of the path.

    Every id linked to it goes: events and their interactions, identity links,
    decision-log slates, quarantined events and live sessions. The next training
    no longer sees them. The answer counts the rows deleted per table; the audit
    keeps those counts, never the ids (404 ``person_not_found`` when nothing is known).
    """
    return runtime.eraser.erase(person_id, who=who.name)


@router.get("/erasures", response_model=list[Erasure])
def erasures(
    runtime: RuntimeDep, _: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[Erasure]:
    """The audit of erasures, newest first: who, when, counts — no personal id."""
    return runtime.eraser.audit(limit)
