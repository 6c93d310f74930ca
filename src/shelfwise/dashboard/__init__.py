"""The merchandiser dashboard: server-rendered pages at ``/dashboard``."""
