"""One exception hierarchy with stable codes; the API maps it to HTTP in one place."""

from __future__ import annotations

from typing import Any


class ShelfwiseError(Exception):
    """Base of every error shelfwise raises on purpose.

    ``code`` is stable and documented; ``http_status`` is what the API answers;
    ``details`` carries structured context (field paths, rule ids) safe to show.
    """

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


def validation_details(errors: list[Any], prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """pydantic's errors as an error's ``details``: field path, code, message (the API's
    422 ``invalid_request`` answer and the dashboard's rule form show the same)."""
    return [
        {
            "field": ".".join(str(p) for p in (*prefix, *e.get("loc", ()))),
            "code": e.get("type"),
            "message": e.get("msg"),
        }
        for e in errors
    ]


class ConfigError(ShelfwiseError):
    code = "config_invalid"
    http_status = 500


class InvalidInput(ShelfwiseError):
    code = "invalid_input"
    http_status = 422


class NotFound(ShelfwiseError):
    code = "not_found"
    http_status = 404


class Conflict(ShelfwiseError):
    code = "conflict"
    http_status = 409


class Unauthorized(ShelfwiseError):
    code = "unauthorized"
    http_status = 401


class Forbidden(ShelfwiseError):
    code = "forbidden"
    http_status = 403


class PayloadTooLarge(ShelfwiseError):
    code = "payload_too_large"
    http_status = 413


class RateLimited(ShelfwiseError):
    """Over a rate limit; ``retry_after``: whole seconds until the window resets."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(ShelfwiseError):
    code = "service_unavailable"
    http_status = 503


class PreconditionRequired(ShelfwiseError):
    code = "precondition_required"
    http_status = 428
