"""The batch path: read events, fit every source, write and promote a model bundle."""
