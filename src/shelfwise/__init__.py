"""shelfwise: a recommendation engine for online stores under the merchant's control."""

__version__ = "0.1.0"

__all__ = ["__version__"]
