"""Errors of the write side; each message says what was wrong and where."""

from onemap.errors import OnemapError


class LoadError(OnemapError):
    """A load that cannot go on; the batch is rolled back and recorded as failed."""
