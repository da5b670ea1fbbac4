"""Rewriting a large share of a table: drop its indexes, write, build them again.

A batch that writes hundreds of thousands of rows next to a table of similar size finishes
sooner by building each index once, in one sorted pass, than by inserting every row into
every index (random inserts, page splits, each logged). Everything happens inside the
batch's transaction, so readers see the old table with its indexes until the commit.
"""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import sql

REBUILD_MIN_ROWS = 100_000
REBUILD_SHARE = 0.3


def worth_rebuilding(written: int, kept: float) -> bool:
    """Whether writing ``written`` rows next to ``kept`` untouched ones is a rebuild."""
    return written >= max(REBUILD_MIN_ROWS, REBUILD_SHARE * kept)


def row_estimate(conn: psycopg.Connection, table: str) -> float:
    """The planner's row count of ``table`` (0 for a table never analysed)."""
    return conn.execute("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %s::regclass",
                        (table,)).fetchone()[0]


def rebuilt_if_large(conn: psycopg.Connection, table: str, written: int, kept: float, *,
                     constraints: bool = False):
    """:func:`rebuilt` when writing ``written`` rows next to ``kept`` untouched ones is
    worth it, else a block that keeps the indexes as they are."""
    if worth_rebuilding(written, kept):
        return rebuilt(conn, table, constraints=constraints)
    return contextlib.nullcontext()


@contextlib.contextmanager
def rebuilt(conn: psycopg.Connection, table: str, *, constraints: bool = False):
    """Drop ``table``'s indexes for the block and build them again after it, then analyse the
    table, so the first views after the commit are planned on its new contents rather than
    on statistics of before (autovacuum comes minutes later). Indexes that back a constraint
    (the key an upsert's ON CONFLICT needs) stay unless ``constraints``."""
    kept = _constraints(conn, table)
    indexes = [(name, ddl) for name, ddl in _indexes(conn, table) if name not in kept]
    dropped = kept if constraints else {}
    for name in dropped:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(table), sql.Identifier(name)))
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    for name, definition in dropped.items():
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)))
    for _, ddl in indexes:
        conn.execute(ddl)
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def _constraints(conn, table: str) -> dict[str, str]:
    """Primary key and unique constraints: name → definition."""
    return dict(conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')", (table,)).fetchall())


def _indexes(conn, table: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = %s", (table,)).fetchall()
