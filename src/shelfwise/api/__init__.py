"""The HTTP API: thin routers over the core."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shelfwise.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use: a worker process unpickles ``shelfwise.api.workers``
    # before it answers health checks, and the app takes seconds to import.
    if name == "create_app":
        from shelfwise.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
