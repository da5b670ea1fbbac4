"""Versioned schema migrations: numbered SQL files in ``onemap/migrations``, applied in order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from onemap.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([\w-]+)\.sql$")

LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migration (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


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
        have = applied(conn)
        conn.commit()
        for migration in available():
            if migration.version in have:
                continue
            _apply(conn, migration)
            done.append(migration)
    return done


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
