"""The aggregates' declaration (onemap.aggregates) against the schema the migrations make."""

from __future__ import annotations

import psycopg
import pytest

from onemap import aggregates as agg

pytestmark = pytest.mark.db

# information_schema names an array column's type by its element's internal name.
ARRAYS = {"_int2": "smallint[]", "_int4": "integer[]"}


def columns(url: str) -> dict[str, list[tuple[str, str, bool]]]:
    """Every table of the public schema: its columns in order as (name, type, nullable)."""
    found: dict[str, list[tuple[str, str, bool]]] = {}
    with psycopg.connect(url) as conn:
        for table, name, data_type, udt, nullable in conn.execute(
                "SELECT table_name, column_name, data_type, udt_name, is_nullable = 'YES' "
                "FROM information_schema.columns WHERE table_schema = 'public' "
                "ORDER BY table_name, ordinal_position"):
            kind = ARRAYS.get(udt, udt) if data_type == "ARRAY" else data_type
            found.setdefault(table, []).append((name, kind, nullable))
    return found


def test_every_declared_column_exists_with_its_type_and_no_other(fresh_db):
    """Each declared table has exactly the declared columns, in order, typed and NOT NULL;
    no other aggregate table of cases (by level and unit) exists; the zone table is
    there."""
    schema = columns(fresh_db())
    for table in agg.TABLES:
        declared = [(c.name, c.type, False) for c in table.columns]
        assert schema.get(table.name) == declared, table.name
    stray = {t for t in schema if t.startswith("case_")  # a table of cases by unit
             and {"level", "unit_code"} <= {name for name, _, _ in schema[t]}}
    assert stray == set(agg.TABLE)
    assert ("zone", "text", False) in schema[agg.ZONE_TABLE]


def test_every_declared_key_is_the_tables_primary_key(fresh_db):
    """The declared key (unit, period, keys; the count included) is each table's primary
    key: the refresh's inserts and the views' lookups rely on it."""
    with psycopg.connect(fresh_db()) as conn:
        keys = dict(conn.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'p' AND conrelid::regclass::text = ANY(%s)",
            (list(agg.TABLE),)).fetchall())
    assert keys == {t.name: t.primary_key for t in agg.TABLES}


def test_each_table_refuses_the_levels_it_does_not_keep(fresh_db):
    """Each table's check admits its declared levels alone: no category and channel rows of
    a grid, no weeks of them of a community (a writer putting one back fails)."""
    with psycopg.connect(fresh_db()) as conn:
        checks = dict(conn.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'c' AND conname LIKE '%%level_check' "
            "AND conrelid::regclass::text = ANY(%s)", (list(agg.TABLE),)).fetchall())
        assert checks == {t.name: t.level_check for t in agg.TABLES}
        assert agg.ROLLUP.levels == agg.COARSE == (1, 2, 3)
        assert agg.ROLLUP_WEEK.levels == agg.COARSE_WEEKS == (1, 2)
        row = {"unit_code": "X", "day": "2026-03-02", "category_1": "roads",
               "channel": "app", "status": "open", "total": 1}
        columns = [c.name for c in agg.ROLLUP.columns]
        values = [row.get(c, 0) for c in columns]
        for level, admitted in ((3, True), (4, False)):
            values[0] = level
            with conn.transaction(force_rollback=True):
                statement = (f"INSERT INTO {agg.ROLLUP.name} ({', '.join(columns)}) "
                             f"VALUES ({', '.join(['%s'] * len(columns))})")
                if admitted:
                    conn.execute(statement, values)
                else:
                    with pytest.raises(psycopg.errors.CheckViolation):
                        conn.execute(statement, values)


def test_weeks_are_read_as_days():
    """A weekly table's Monday is read under the daily table's name for the period, and its
    columns read from the daily table give the same shape (the rows are read as one)."""
    assert agg.UNIT_WEEK.read_as_days(agg.UNIT_WEEK).split(", ")[:3] == [
        "level", "unit_code", "week AS day"]
    assert agg.ROLLUP_WEEK.read_as_days(agg.ROLLUP) == \
        "level, unit_code, day, category_1, channel, status, total"
    assert {t.period for t in agg.TABLES if t.daily} == {"week"}
    assert all(agg.TABLE[t.daily].period == "day" for t in agg.TABLES if t.daily)


def test_what_a_view_shows_is_made_of_declared_measures():
    """Each shown count, ratio and resolution share names a measure the tables keep: a
    renamed measure cannot leave a figure reading a column that is gone (it would read 0)."""
    kept = {c.name for c in agg.UNIT_DAY.values}
    named = {*agg.SHOWN, *agg.RESOLVED,
             *(name for r in agg.RATIOS for name in (r.part, *r.whole))}
    assert named <= kept, named - kept
    assert len({r.name for r in agg.RATIOS}) == len(agg.RATIOS)
