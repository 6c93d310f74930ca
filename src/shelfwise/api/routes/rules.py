"""The merchant's rules: CRUD with optimistic concurrency, history, restore, impact preview.

Versions travel as ETags: GET answers ``ETag: "3"``; PUT/DELETE need
``If-Match: "3"`` (or ``version`` in the body) and answer 409 ``stale_version``
when someone else saved first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.api.auth import Principal, require
from shelfwise.api.deps import RuntimeDep
from shelfwise.errors import InvalidInput
from shelfwise.pipeline.preview import PreviewReport
from shelfwise.rules.model import Rule
from shelfwise.rules.replay import RecordedRequestIn
from shelfwise.rules.store import AuditEntry
from shelfwise.runtime import Runtime
from shelfwise.values import PATH_ID_PATTERN, Text

router = APIRouter(prefix="/v1", tags=["rules"])

Merchandiser = Annotated[Principal, Depends(require("merchandiser"))]
RuleIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=PATH_ID_PATTERN)]
IfMatch = Annotated[str | None, Header(description='The version you read, e.g. "3".')]
ChangeReason = Annotated[
    str | None, Header(description="Why this change is made (kept in the audit log).")
]


class RuleList(BaseModel):
    rulebook_version: int
    rules: list[Rule]


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    why: str = Field(min_length=1, max_length=1000)


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(description="The draft: saved over the current rules by id.")
    requests: list[RecordedRequestIn] | None = Field(
        default=None,
        max_length=10_000,
        description="Requests to replay; omitted: the last `last` served slates of the decision log.",
    )
    last: int = Field(default=500, ge=1, le=10_000)
    placement: Text | None = Field(default=None, max_length=64)
    k: int | None = Field(
        default=None, ge=1, le=100, description="Slate size to replay at; omitted: as served."
    )
    replace: bool = Field(default=False, description="Draft replaces the whole rulebook.")
    top: int = Field(default=10, ge=1, le=100)


def _version(if_match: str | None, body_version: int | None) -> int:
    if if_match:
        tag = if_match.strip().removeprefix("W/").strip('"')
        if not tag.isdigit():
            raise InvalidInput(f"If-Match {if_match!r} is not a rule version", code="bad_if_match")
        return int(tag)
    if body_version:
        return body_version
    raise InvalidInput(
        "say which version you are changing: If-Match header or version in the body",
        code="version_required",
    )


def _etag(response: Response, rule: Rule) -> Rule:
    response.headers["ETag"] = f'"{rule.version}"'
    return rule


@router.get("/rules", response_model=RuleList)
def list_rules(runtime: RuntimeDep, _: Merchandiser) -> RuleList:
    store = runtime.rules.store
    return RuleList(rulebook_version=store.version(), rules=store.list_rules())


@router.post("/rules", response_model=Rule, status_code=201)
def create_rule(
    rule: Annotated[Rule, Body()],
    runtime: RuntimeDep,
    who: Merchandiser,
    response: Response,
    x_change_reason: ChangeReason = None,
) -> Rule:
    """Create a rule (409 ``rule_exists`` if the id is taken; 422 ``rule_invalid`` names clashes)."""
    saved = runtime.rules.store.save(
        rule, who=who.name, why=x_change_reason or rule.reason, expected_version=0
    )
    return _etag(response, saved)


@router.get("/rules/{rule_id}", response_model=Rule)
def get_rule(rule_id: RuleIdPath, runtime: RuntimeDep, _: Merchandiser, response: Response) -> Rule:
    return _etag(response, runtime.rules.store.get(rule_id))


@router.put("/rules/{rule_id}", response_model=Rule)
def update_rule(
    rule_id: RuleIdPath,
    rule: Annotated[Rule, Body()],
    runtime: RuntimeDep,
    who: Merchandiser,
    response: Response,
    if_match: IfMatch = None,
    x_change_reason: ChangeReason = None,
) -> Rule:
    """Replace a rule at the version you read (409 ``stale_version`` otherwise)."""
    if rule.id != rule_id:
        raise InvalidInput(f"body id {rule.id!r} differs from path {rule_id!r}", code="id_mismatch")
    expected = _version(if_match, rule.version)
    saved = runtime.rules.store.save(
        rule, who=who.name, why=x_change_reason or rule.reason, expected_version=expected
    )
    return _etag(response, saved)


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(
    rule_id: RuleIdPath,
    runtime: RuntimeDep,
    who: Merchandiser,
    if_match: IfMatch = None,
    x_change_reason: ChangeReason = None,
) -> Response:
    runtime.rules.store.delete(
        rule_id,
        who=who.name,
        why=x_change_reason or "deleted",
        expected_version=_version(if_match, None),
    )
    return Response(status_code=204)


def _set_enabled(
    runtime: Runtime,
    rule_id: str,
    enabled: bool,
    who: Principal,
    response: Response,
    if_match: str | None,
    reason: str | None,
) -> Rule:
    expected = _version(if_match, None) if if_match else None
    saved = runtime.rules.store.set_enabled(
        rule_id,
        enabled,
        who=who.name,
        why=reason or ("enabled" if enabled else "disabled"),
        expected_version=expected,
    )
    return _etag(response, saved)


@router.post("/rules/{rule_id}/disable", response_model=Rule)
def disable_rule(
    rule_id: RuleIdPath,
    runtime: RuntimeDep,
    who: Merchandiser,
    response: Response,
    if_match: IfMatch = None,
    x_change_reason: ChangeReason = None,
) -> Rule:
    return _set_enabled(runtime, rule_id, False, who, response, if_match, x_change_reason)


@router.post("/rules/{rule_id}/enable", response_model=Rule)
def enable_rule(
    rule_id: RuleIdPath,
    runtime: RuntimeDep,
    who: Merchandiser,
    response: Response,
    if_match: IfMatch = None,
    x_change_reason: ChangeReason = None,
) -> Rule:
    return _set_enabled(runtime, rule_id, True, who, response, if_match, x_change_reason)


@router.get("/rules/{rule_id}/history", response_model=list[AuditEntry])
def rule_history(rule_id: RuleIdPath, runtime: RuntimeDep, _: Merchandiser) -> list[AuditEntry]:
    """Every version: who, when, why and the diff."""
    return runtime.rules.store.history(rule_id)


@router.post("/rules/{rule_id}/restore", response_model=Rule)
def restore_rule(
    rule_id: RuleIdPath, body: RestoreIn, runtime: RuntimeDep, who: Merchandiser, response: Response
) -> Rule:
    saved = runtime.rules.store.restore(rule_id, body.version, who=who.name, why=body.why)
    return _etag(response, saved)


@router.post("/rules/preview", response_model=PreviewReport)
def preview_rules(body: PreviewIn, runtime: RuntimeDep, _: Merchandiser) -> PreviewReport:
    """Replay the last served slates of the decision log (or the requests given)
    through the pipeline that served them, with the current rules and with the
    draft; report the change per placement and category, and its estimated worth."""
    return runtime.preview(
        body.rules,
        requests=body.requests,
        last=body.last,
        placement=body.placement,
        k=body.k,
        replace=body.replace,
        top=body.top,
    )
