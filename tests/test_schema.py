"""One baseline migration, schema.sql in step with it, and databases the replaced
migrations made."""

from __future__ import annotations

import difflib

import psycopg
import pytest

from onemap.cluster import find_bin_dir
from onemap.errors import MigrationError
from onemap.migrate import REPLACED_LAST, SCHEMA_FILE, available, dump_schema, migrate

pytestmark = pytest.mark.db


def test_schema_sql_is_the_schema_the_migrations_make(fresh_db):
    """A freshly migrated database dumps as schema.sql says, line for line."""
    made = dump_schema(fresh_db(), str(find_bin_dir() / "pg_dump"))
    kept = SCHEMA_FILE.read_text()
    diff = "".join(difflib.unified_diff(kept.splitlines(True), made.splitlines(True),
                                        "schema.sql", "migrated"))
    assert made == kept, (
        "schema.sql is not the schema the migrations make: run `make schema` "
        f"(python -m onemap.migrate) and commit schema.sql.\n{diff}")


def test_one_baseline_then_small_steps_that_say_why():
    """The first migration is the baseline; every later one opens with a comment (why)."""
    migrations = available()
    assert (migrations[0].version, migrations[0].name) == (1, "baseline")
    for migration in migrations[1:]:
        assert migration.path.read_text().startswith("--"), migration.path.name


def ledger(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version, name FROM schema_migration ORDER BY 1").fetchall()


def replaced_ledger(url: str, last: int) -> None:
    """Make the database's ledger that of the replaced migrations, applied up to ``last``
    (0001_schema first; the last one of them by its own name)."""
    version, name = REPLACED_LAST
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM schema_migration")
        for v in range(1, last + 1):
            conn.execute("INSERT INTO schema_migration (version, name) VALUES (%s, %s)",
                         (v, "schema" if v == 1 else name if v == version else f"step_{v}"))
        conn.execute("INSERT INTO rollup_zone (zone) VALUES ('Asia/Shanghai')")


def test_a_database_the_replaced_migrations_made_is_adopted(fresh_db):
    """Migrated in full by the migrations the baseline replaced, a database keeps its data
    and is recorded as migrated by the baseline; later migrations apply on top."""
    url = fresh_db()
    replaced_ledger(url, REPLACED_LAST[0])
    assert [m.version for m in migrate(url)] == [m.version for m in available()[1:]]
    assert ledger(url)[0] == (1, "baseline")
    assert [v for v, _ in ledger(url)] == [m.version for m in available()]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT zone FROM rollup_zone").fetchall() == [("Asia/Shanghai",)]


# What a database the replaced migrations made up to 0022 had that 0023 took away: the
# aggregates' parent codes and sums of hours, weekly keys named day, a default.
BEFORE_0023 = """
ALTER TABLE case_rollup ADD COLUMN parent_code text,
    ADD COLUMN hours_sum double precision NOT NULL DEFAULT 0, ALTER above_grid SET DEFAULT 0;
ALTER TABLE case_unit_day ADD COLUMN parent_code text,
    ADD COLUMN hours_sum double precision NOT NULL DEFAULT 0, ALTER above_grid SET DEFAULT 0;
ALTER TABLE case_unit_week ADD COLUMN parent_code text,
    ADD COLUMN hours_sum double precision NOT NULL DEFAULT 0, ALTER above_grid SET DEFAULT 0;
ALTER TABLE case_rollup_week ADD COLUMN parent_code text;
ALTER TABLE case_rollup_week RENAME COLUMN week TO day;
ALTER TABLE case_unit_week RENAME COLUMN week TO day;
ALTER TABLE case_hours_week RENAME COLUMN week TO day;
"""


def test_a_database_the_replaced_migrations_made_up_to_0022_is_brought_forward(fresh_db):
    """Every database before the baseline stood at 0022: it gets the last replaced step,
    then is adopted; its schema is then schema.sql's, its data kept."""
    url = fresh_db()
    with psycopg.connect(url) as conn:
        conn.execute(BEFORE_0023)
    replaced_ledger(url, REPLACED_LAST[0] - 1)
    migrate(url)
    assert ledger(url)[0] == (1, "baseline")
    assert dump_schema(url, str(find_bin_dir() / "pg_dump")) == SCHEMA_FILE.read_text()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT zone FROM rollup_zone").fetchall() == [("Asia/Shanghai",)]


def test_a_database_the_replaced_migrations_made_in_part_is_refused(fresh_db):
    """Migrated only part of the way by the replaced migrations, a database is left as it
    is and the message says what to do."""
    url = fresh_db()
    replaced_ledger(url, 20)
    with pytest.raises(MigrationError) as refused:
        migrate(url)
    message = str(refused.value)
    assert "only up to 0020_step_20" in message and "DROP DATABASE" in message
    assert "onemap db up" in message
    assert len(ledger(url)) == 20
