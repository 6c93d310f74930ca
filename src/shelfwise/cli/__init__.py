"""The ``shelfwise`` command."""
