"""Errors of the read side, each with the HTTP status an adapter should answer with."""

from onemap.errors import OnemapError


class LayerError(OnemapError):
    """A request the read side cannot answer; ``status`` is its HTTP status."""

    status = 400


class BadParameter(LayerError):
    """A malformed or out-of-range parameter: the message names it and says why."""

    def __init__(self, name: str, value, reason: str):
        super().__init__(f"parameter '{name}' = {value!r}: {reason}")
        self.name = name


class NotFound(LayerError):
    status = 404


class UnknownLayer(NotFound):
    """A layer id the catalog does not know."""


class UnknownScope(NotFound):
    """An admin code that is not loaded."""


class StorageError(LayerError):
    """An export cannot be written: read-only folder, full disk. The message names the path."""

    status = 507


class Busy(LayerError):
    """Too much of one kind of work at once (exports): try again after ``retry_after``
    seconds."""

    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(LayerError):
    """Outside what the caller may see or do; the attempt is logged."""

    status = 403

    def __init__(self, message: str, action: str = "read", target: str | None = None):
        super().__init__(message)
        self.action, self.target = action, target


class Conflict(LayerError):
    """The thing asked about is not in the state the request expects (an alarm that ended or
    began again since it was shown: look again), or a change contradicts one recorded
    before (a case merged twice)."""

    status = 409
