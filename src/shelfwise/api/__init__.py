"""The HTTP API: thin routers over the core."""

from shelfwise.api.app import create_app

__all__ = ["create_app"]
