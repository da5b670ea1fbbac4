"""Which database to use, and SQLAlchemy engines for it.

``DATABASE_URL`` (or ``ONEMAP_DATABASE_URL``) names a server; without it the embedded local
cluster is used and started on demand, the app signing in as its own role, reads as the
read-only one. URLs shown to people stay plain ``postgresql://`` so psql and ogr2ogr
understand them; engines name the psycopg 3 driver explicitly.
"""

from __future__ import annotations

from psycopg.errors import LockNotAvailable
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from onemap.cluster import LocalCluster
from onemap.settings import Settings


def database_url(settings: Settings, start: bool = True) -> str:
    """The URL of the database to use; starts the local cluster when ``start`` and needed."""
    if settings.database_url:
        return settings.database_url
    cluster = LocalCluster(settings)
    if start:
        cluster.up()
    return cluster.url()


def read_url(settings: Settings, start: bool = True) -> str:
    """Where read queries go: ``DATABASE_READ_URL`` when set, else ``DATABASE_URL``, else
    the local cluster's read-only role (which can change nothing, whatever a read path
    were made to run)."""
    if settings.database_read_url or settings.database_url:
        return settings.database_read_url or settings.database_url
    cluster = LocalCluster(settings)
    if start:
        cluster.up()
    return cluster.read_url()


def admin_url(settings: Settings, start: bool = True) -> str:
    """A role that may create databases (its ``postgres`` database): ``DATABASE_URL``'s own,
    else the local cluster's superuser."""
    if settings.database_url:
        return make_url(settings.database_url).set(database="postgres").render_as_string(
            hide_password=False)
    cluster = LocalCluster(settings)
    if start:
        cluster.up()
    return cluster.admin_url()


def sqlalchemy_url(url: str) -> str:
    """``postgresql://…`` → ``postgresql+psycopg://…`` (SQLAlchemy 2.1 needs the driver named)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The plain URL libpq tools (psql, ogr2ogr, psycopg.connect) understand."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str, lock_timeout: float | None = None, **kwargs) -> Engine:
    """An engine that checks connections before use, so a restarted server is survived.

    ``lock_timeout``: seconds a statement may wait for a table lock before it fails with
    :class:`psycopg.errors.LockNotAvailable` (see :func:`waited_for_a_load`); by default it
    waits as long as it takes."""
    options = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}
    options.update(kwargs)
    engine = create_engine(sqlalchemy_url(url), **options)
    settings = ["SET plan_cache_mode = force_custom_plan",
                "SET max_parallel_workers_per_gather = 0"]
    if lock_timeout:
        settings.append(f"SET lock_timeout = {int(lock_timeout * 1000)}")
    event.listen(engine, "connect", lambda conn, _record: _session(conn, settings))
    return engine


def _session(dbapi_connection, statements: list[str]) -> None:
    """Session settings of every new connection.

    ``plan_cache_mode``: plan every statement for its values. psycopg prepares a statement
    after a few runs, and PostgreSQL may then switch to a generic plan, blind to the scope's
    grid list and period: the district's hotspot counts went from 17 ms to 140 ms on the
    tenth view.

    ``max_parallel_workers_per_gather``: no parallel workers. Most of a view's statements
    read a few thousand aggregate rows, where starting workers costs more than they save:
    the district's hotspot counts at L took 21 ms alone and 45-57 ms with two workers. The
    statements that scan cases (hex bins, filters the aggregates cannot answer, exports)
    run without them too, leaving the cores to concurrent requests."""
    with dbapi_connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    dbapi_connection.commit()


def waited_for_a_load(exc: BaseException) -> bool:
    """True when ``exc`` is a statement that gave up waiting for a table lock: a large load
    holds its tables from the moment it rebuilds their indexes until it commits."""
    return isinstance(exc, DBAPIError) and isinstance(exc.orig, LockNotAvailable)
