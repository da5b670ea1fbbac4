"""What changed last: the data's version, which moves with every write a screen shows.

The table ``data_change`` holds a version per feed (``cases``, ``iot``, ``loads``), bumped in
the writing transaction (migration 0005 says by whom), so a version is visible exactly when
the data it stands for is; every bump is notified on the channel ``data_change`` at commit
(migration 0011). Screens hold an ask for it (``/api/changes?since=…``), answered as soon as
it moves (:class:`Latest`), and redraw only when it moved; the view cache, the hotspots'
verdicts and the tiles' validators key on it, so none of them answers with data older than
the newest change.

A version is read before the data it keys: data read after it may be newer than it says
(a cache entry then redraws once more than needed), never older.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

import psycopg
from sqlalchemy import Connection, Engine, text

FEEDS = ("cases", "iot", "loads")
READ = "SELECT feed, version FROM data_change"
CHANNEL = "data_change"  # where every move of a version is notified (migration 0011)
HOLD_S = 25  # the longest a screen's ask is held: well inside proxies' idle timeouts

log = logging.getLogger("onemap.changes")


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
    """The version as the screens get it, kept in this process for every screen it serves.

    Asked (:meth:`get`): read at most once per ``seconds`` and answered from memory in
    between, so a hundred screens asking every second cost the database a few reads of
    three rows a second; concurrent askers of a stale answer wait for one read.

    Held (:meth:`wait`): an ask naming the version its screen knows is answered as soon as
    the version moves, or after its wait with the same version. One thread per process
    listens on the primary (``listen``) to the channel every move of a version is notified
    on (:data:`CHANNEL`, migration 0011, at the writer's commit) and reads the version again
    (through the asker's engine, perhaps a replica) at each notification and every
    ``reread`` seconds besides, so a notification lost with its connection or a replica
    behind the primary costs at most that long. At most ``most_held`` asks are held at once
    (each holds a server thread): an ask beyond them, or while the listening thread is not
    connected, is answered at once and says it was not held, and its screen asks again a
    second later."""

    def __init__(self, seconds: float = 0.25, listen: Engine | None = None,
                 most_held: int = 16, reread: float = 1.0):
        self.seconds, self.listen, self.most_held, self.reread = seconds, listen, most_held, reread
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)
        self._value: str | None = None
        self._until = 0.0
        self._live = False      # the listening thread is connected: _value is current
        self._held = 0
        self._thread: threading.Thread | None = None

    def get(self, engine: Engine) -> str:
        """The version now (from memory while the listening thread keeps it current)."""
        with self._lock:
            if self._live and self._value is not None:
                return self._value
            if self._value is None or time.monotonic() >= self._until:
                self._value = current(engine)
                self._until = time.monotonic() + self.seconds
            return self._value

    def wait(self, engine: Engine, since: str, seconds: float) -> tuple[str, bool]:
        """The version once it is not ``since`` any more, or after ``seconds`` (it may then
        be ``since`` still), and whether the ask was held (False: answered at once, the
        listening thread being away or ``most_held`` asks held already)."""
        self._start(engine)
        with self._moved:
            held = self._live and self._held < self.most_held
            if held:
                self._held += 1
                try:
                    self._moved.wait_for(
                        lambda: not self._live or self._value != since, timeout=seconds)
                finally:
                    self._held -= 1
                if self._live:
                    return self._value, True
        return self.get(engine), False

    @property
    def held(self) -> int:
        """How many asks are held now."""
        return self._held

    def _start(self, engine: Engine) -> None:
        if self.listen is None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listening, args=(engine,),
                                                name="onemap-data-change", daemon=True)
                self._thread.start()

    def _listening(self, engine: Engine) -> None:
        """Listen for as long as the process lives; a lost connection is made again (the
        held asks are answered meanwhile, as not held)."""
        url = self.listen.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        delay = 0.5
        while True:
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while True:
                        self._publish(current(engine))
                        delay = 0.5
                        for _ in conn.notifies(timeout=self.reread, stop_after=1):
                            pass
            except Exception as exc:  # the database away: say so, try again
                log.warning("not listening for data changes (%s); again in %.1f s",
                            str(exc).strip().splitlines()[0] if str(exc).strip() else
                            type(exc).__name__, delay)
            with self._moved:
                self._live = False
                self._moved.notify_all()
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _publish(self, value: str) -> None:
        with self._moved:
            self._live = True
            if value != self._value:
                self._value = value
                self._moved.notify_all()


def moved(before: str | None, after: str) -> set[str]:
    """The feeds whose versions differ between two tokens (every feed when ``before`` is
    not a token: nothing known was drawn)."""
    try:
        was = _parsed(before or "")
    except ValueError:
        return set(FEEDS)
    now = _parsed(after)
    return {feed for feed in FEEDS if was.get(feed) != now.get(feed)}


def _parsed(token: str) -> dict[str, int]:
    found = {}
    for part in token.split("-"):
        feed, _, number = part.partition(".")
        found[feed] = int(number)
    return found
