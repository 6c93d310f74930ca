"""API key administration (admin role): create (secret shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.access import CreatedKey, KeyStore, StoredKey
from shelfwise.api.auth import Principal, require
from shelfwise.api.deps import RuntimeDep
from shelfwise.config import Role
from shelfwise.values import PATH_ID_PATTERN, PathId, Timestamp

router = APIRouter(prefix="/v1/keys", tags=["access"])
Admin = Annotated[Principal, Depends(require("admin"))]


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: PathId = Field(max_length=64)
    roles: list[Role] = Field(min_length=1, max_length=5)
    expires_at: Timestamp | None = None
    origins: list[Annotated[str, Field(min_length=1, max_length=260)]] | None = Field(
        default=None,
        max_length=50,
        description="A storefront key's web origins (scheme://host[:port]; * = any)",
        examples=[["https://shop.example.com"]],
    )
    rate_limit: str | None = Field(
        default=None,
        max_length=32,
        description="A storefront key's own rate limit, e.g. 600/minute",
    )


@router.post("", response_model=CreatedKey, status_code=201)
def create_key(body: KeyRequest, runtime: RuntimeDep, who: Admin) -> CreatedKey:
    """Create a key. The secret is in this response only; store it now.

    A ``storefront`` key (for browsers: slates and events only) holds no other role and
    may name its ``origins`` and its own ``rate_limit`` (docs/security.md)."""
    created = KeyStore(runtime.db).create(
        body.name, body.roles, who.name, body.expires_at, body.origins, body.rate_limit
    )
    runtime.keyring.invalidate()
    return created


@router.get("", response_model=list[StoredKey])
def list_keys(runtime: RuntimeDep, _: Admin) -> list[StoredKey]:
    return KeyStore(runtime.db).list()


@router.delete("/{key_id}", response_model=StoredKey)
def revoke_key(
    key_id: Annotated[str, Path(max_length=32, pattern=PATH_ID_PATTERN)],
    runtime: RuntimeDep,
    _: Admin,
) -> StoredKey:
    """Revoke a key; every worker refuses it within the keyring refresh time (2 s)."""
    revoked = KeyStore(runtime.db).revoke(key_id)
    runtime.keyring.invalidate()
    return revoked
