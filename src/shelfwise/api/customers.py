"""Whose history a storefront (public) key may use: the customer-token checks.

With a storefront key (docs/storefront.md, "Customers"):

- **Slates.** A request with a customer token (``X-Customer-Token`` header or
  ``?customer_token=``) is for the token's customer: its ``person``, if given, must be
  that customer, and the profile that customer resolves to must be theirs (not merged
  under another customer's id). Without a token, ``person`` may name only an id whose
  history is no known customer's: not an id seen as an event's ``customer_id``, and not
  one identity stitching linked to a customer (an anonymous id of a browser a customer
  signed in on is that customer's history too). Otherwise 403
  ``customer_token_required`` / ``_invalid`` / ``_expired`` / ``_mismatch``.
- **Events.** A batch in which an event names a ``customer_id`` needs a valid token for
  that customer (all of them the same one), or it is refused whole, before anything is
  stored: a ``login`` naming someone else's customer id would link the sender's
  anonymous id to that customer, whose slate the sender could then read.

``read``, ``ingest`` and ``admin`` keys are server-side and unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from shelfwise.access import Principal
from shelfwise.access.customers import (
    CustomerTokenError,
    CustomerTokens,
    KnownCustomers,
)
from shelfwise.contracts.identity import is_placeholder
from shelfwise.pipeline import RecommendRequest
from shelfwise.pipeline.recommender import Guard

__all__ = ["TOKEN_HEADER", "TOKEN_PARAM", "check_events", "check_slate", "token_of"]

TOKEN_HEADER = "x-customer-token"
TOKEN_PARAM = "customer_token"


def token_of(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    return headers.get(TOKEN_HEADER) or query.get(TOKEN_PARAM) or None


def _own(person: str, customer: str) -> bool:
    return person in (customer, f"customer:{customer}")


def check_slate(
    principal: Principal,
    req: RecommendRequest,
    token: str | None,
    tokens: Callable[[], CustomerTokens],
    customers: KnownCustomers,
) -> tuple[RecommendRequest, Guard]:
    """``req`` as a storefront key may ask it (``person`` set to the token's customer
    when it named none), and the guard the request path calls with the person it
    resolved ``person`` to (the identity graph as of that very request), which raises
    :class:`CustomerTokenError` when that person's history is not the caller's to use."""
    if token is not None:
        customer = tokens().customer(principal.key_id, token)
        if req.person is not None and req.person != customer:
            raise CustomerTokenError(
                "the customer token is for another person than `person`",
                code="customer_token_mismatch",
            )

        def token_holder(person: str) -> None:
            if not _own(person, customer):
                raise CustomerTokenError(
                    "this customer's profile is merged under another customer's id",
                    code="customer_token_mismatch",
                )

        if req.person is not None:
            return req, token_holder
        try:
            asked = RecommendRequest.model_validate({**req.model_dump(), "person": customer})
        except ValidationError as e:
            raise CustomerTokenError("the customer token's customer id is not an id") from e
        if asked.person != customer:  # an id is taken without surrounding spaces
            raise CustomerTokenError("the customer token's customer id is not an id")
        return asked, token_holder
    given = req.person

    def anonymous(person: str) -> None:
        if person.startswith("customer:") or (person == given and person in customers):
            raise CustomerTokenError(
                "`person` is a customer's (or linked to one): a storefront key needs a "
                "customer token for it (docs/storefront.md)",
                code="customer_token_required",
            )

    return req, anonymous


def _customer_of(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return None
    value = raw.get("customer_id")
    if value is None or (isinstance(value, str) and is_placeholder(value)):
        return None
    return str(value)


def check_events(
    principal: Principal,
    raws: Sequence[Any],
    token: str | None,
    tokens: Callable[[], CustomerTokens],
) -> None:
    """Refuse a storefront key's batch naming a customer without that customer's token."""
    named = {c for c in map(_customer_of, raws) if c is not None}
    if not named:
        return
    if token is None:
        raise CustomerTokenError(
            "events naming a customer_id need that customer's token (docs/storefront.md)",
            code="customer_token_required",
        )
    customer = tokens().customer(principal.key_id, token)
    if named != {customer}:
        raise CustomerTokenError(
            "an event names another customer_id than the customer token's",
            code="customer_token_mismatch",
        )


# Where a storefront key's customer token may be given (documented in OpenAPI).
TOKEN_OPERATIONS = (
    ("get", "/v1/recommendations"),
    ("post", "/v1/recommendations"),
    ("post", "/v1/events"),
)
_TOKEN_DOC = (
    "A storefront key's customer token for a signed-in customer (docs/storefront.md): "
    "needed for a customer's slate and for events naming a `customer_id`; "
    "other keys' requests ignore it"
)


def publish(document: dict[str, Any]) -> None:
    """Document the customer token (query and header) on the operations that read it."""
    schema = {"type": "string"}  # any text: one no token can be is 403 customer_token_invalid
    for method, path in TOKEN_OPERATIONS:
        operation = document["paths"][path][method]
        parameters = operation.setdefault("parameters", [])
        parameters += [
            {"name": TOKEN_PARAM, "in": "query", "required": False, "schema": schema,
             "description": _TOKEN_DOC},
            {"name": "X-Customer-Token", "in": "header", "required": False, "schema": schema,
             "description": f"{_TOKEN_DOC} (as `{TOKEN_PARAM}`)"},
        ]  # fmt: skip
