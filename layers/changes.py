"""What changed last: the data's version, which moves with every write a screen shows.

The table ``data_change`` holds a version per feed (``cases``, ``iot``, ``loads``), bumped in
the writing transaction (migration 0005 says by whom), so a version is visible exactly when
the data it stands for is. Screens poll it (``/api/changes``, about once a second) and
redraw only when it moved; the view cache, the hotspots' verdicts and the tiles' validators
key on it, so none of them answers with data older than the newest change.

A version is read before the data it keys: data read after it may be newer than it says
(a cache entry then redraws once more than needed), never older.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, text

FEEDS = ("cases", "iot", "loads")
READ = "SELECT feed, version FROM data_change"


def versions(conn: Connection) -> dict[str, int]:
    """Each feed's version now."""
    return {feed: int(version) for feed, version in conn.execute(text(READ))}


def version(conn: Connection, feeds: Iterable[str] = FEEDS) -> str:
    """The version of ``feeds`` as one token (``cases.12-iot.345-loads.6``): equal tokens,
    the same data."""
    return tagged(versions(conn), feeds)


def tagged(found: dict[str, int], feeds: Iterable[str] = FEEDS) -> str:
    return "-".join(f"{feed}.{found.get(feed, 0)}" for feed in feeds)


def current(engine: Engine) -> str:
    """The version of every feed, read now (what a view is keyed on)."""
    with engine.connect() as conn:
        return version(conn)


class Latest:
    """The version as the screens' polls get it: read at most once per ``seconds`` in this
    process and answered from memory in between, so a hundred screens polling every second
    cost the database a few reads of three rows a second. Concurrent askers of a stale
    answer wait for one read."""

    def __init__(self, seconds: float = 0.25):
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: str | None = None
        self._until = 0.0

    def get(self, engine: Engine) -> str:
        with self._lock:
            if self._value is None or time.monotonic() >= self._until:
                self._value = current(engine)
                self._until = time.monotonic() + self.seconds
            return self._value
