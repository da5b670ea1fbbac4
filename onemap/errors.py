"""Errors the plumbing raises; each carries a message meant for the person at the keyboard."""


class OnemapError(Exception):
    """Base class: ``str(error)`` is a complete, user-facing message."""


class ClusterError(OnemapError):
    """The local PostGIS cluster cannot be created, started or reached."""


class MigrationError(OnemapError):
    """A schema migration failed."""
