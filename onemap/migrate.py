"""Versioned schema migrations: numbered SQL files in ``onemap/migrations``, applied in order.

``0001_baseline`` is the whole schema; each later migration is a small step that says why.
``schema.sql`` (at the project's root) is the schema they make, as ``pg_dump`` prints it:
``python -m onemap.migrate`` (``make schema``) writes it again, and a test keeps it in step.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from onemap.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.sql"
_NAME = re.compile(r"^(\d{4})_([\w-]+)\.sql$")

LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migration (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

# The migrations the baseline replaced, 0001_schema … 0023_aggregates_declared: a database
# they made in full has the baseline's schema (both were dumped alike when it was written),
# so its ledger is rewritten to name the baseline alone. One they made up to 0022 gets the
# last of them first (kept in migrations/replaced/); one they made less far cannot be
# brought forward without them.
REPLACED_FIRST, REPLACED_LAST = (1, "schema"), (23, "aggregates_declared")
REPLACED_STEP = MIGRATIONS_DIR / "replaced" / "0023_aggregates_declared.sql"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files, in version order."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path))
    return found


def applied(conn: psycopg.Connection) -> set[int]:
    """Versions already applied to the database behind ``conn``."""
    conn.execute(LEDGER)
    return {row[0] for row in conn.execute("SELECT version FROM schema_migration")}


def migrate(url: str) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied."""
    done: list[Migration] = []
    with psycopg.connect(url) as conn:
        conn.execute("SELECT pg_advisory_lock(4242)")  # two migrators never interleave
        applied(conn)
        _adopt_replaced(conn, available()[0])
        have = applied(conn)
        conn.commit()
        for migration in available():
            if migration.version in have:
                continue
            _apply(conn, migration)
            done.append(migration)
    return done


def _adopt_replaced(conn: psycopg.Connection, baseline: Migration) -> None:
    """A database migrated by the replaced migrations: in full, it is recorded as migrated
    by the baseline; in part, refused with what to do."""
    ledger = dict(conn.execute("SELECT version, name FROM schema_migration").fetchall())
    if ledger.get(REPLACED_FIRST[0]) != REPLACED_FIRST[1]:
        return
    version, name = REPLACED_LAST
    if set(ledger) == set(range(1, version)):
        conn.execute(REPLACED_STEP.read_text())
    elif ledger.get(version) != name or set(ledger) != set(range(1, version + 1)):
        last = max(ledger)
        raise MigrationError(
            f"database {conn.info.dbname} was migrated by the migrations the baseline replaced,"
            f" only up to {last:04d}_{ledger[last]} (of {version:04d}_{name}), and cannot be "
            f"brought to the current schema. Recreate it and load its data again: drop the "
            f"database (psql: DROP DATABASE {conn.info.dbname}), then `onemap db up` (or "
            f"`onemap db migrate` with DATABASE_URL) makes it anew.")
    conn.execute("DELETE FROM schema_migration")
    conn.execute("INSERT INTO schema_migration (version, name) VALUES (%s, %s)",
                 (baseline.version, baseline.name))


def _apply(conn: psycopg.Connection, migration: Migration) -> None:
    try:
        conn.execute(migration.path.read_text())
        conn.execute(
            "INSERT INTO schema_migration (version, name) VALUES (%s, %s)",
            (migration.version, migration.name),
        )
        conn.commit()
    except psycopg.Error as exc:
        conn.rollback()
        raise MigrationError(f"migration {migration.path.name} failed: {exc}") from exc


# -- schema.sql ------------------------------------------------------------------------------
SCHEMA_HEADER = """\
-- onemap's schema as the migrations in onemap/migrations make it: pg_dump --schema-only of
-- a freshly migrated database, without its comments and settings. Not run by anything: read
-- it to see the tables whole. Written by `make schema` (python -m onemap.migrate);
-- tests/test_schema.py fails when it differs from what the migrations make.
"""
# pg_dump lines that say nothing about the schema: its comments, session settings and the
# random key of \\restrict (pg_dump 15.14 and later).
_NOISE = re.compile(r"^(--.*|SET .*|SELECT pg_catalog\.set_config\(.*|\\(un)?restrict .*)$")


def dump_schema(url: str, pg_dump: str = "pg_dump") -> str:
    """The schema of the database at ``url`` as schema.sql holds it."""
    out = subprocess.run([pg_dump, "--schema-only", "--no-owner", "--no-privileges",
                          "--no-comments", "--dbname", url],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise MigrationError(f"pg_dump failed: {out.stderr.strip()}")
    lines = [line.rstrip() for line in out.stdout.splitlines() if not _NOISE.match(line)]
    return SCHEMA_HEADER + "\n" + re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def write_schema() -> Path:
    """schema.sql from a scratch database on the configured server, migrated and dropped."""
    from sqlalchemy.engine import make_url

    from onemap.cluster import find_bin_dir
    from onemap.database import admin_url, database_url, libpq_url
    from onemap.roles import create_database
    from onemap.settings import get_settings

    settings = get_settings()
    url, admin = libpq_url(database_url(settings, start=True)), admin_url(settings, start=True)
    name = f"onemap_schema_{uuid.uuid4().hex[:8]}"
    create_database(admin, name, make_url(url).username)
    try:
        scratch = make_url(url).set(database=name).render_as_string(hide_password=False)
        migrate(scratch)
        SCHEMA_FILE.write_text(dump_schema(scratch, str(find_bin_dir() / "pg_dump")))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
    return SCHEMA_FILE


if __name__ == "__main__":
    print(write_schema(), file=sys.stderr)
