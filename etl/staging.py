"""Temporary staging tables in the load's transaction, filled with COPY."""

from __future__ import annotations

import io

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql

from etl.targets import Target

POINT_COLUMNS = {"geom": "geometry", "h3": "bigint", "grid_code": "text"}
SQL_TYPES = {"text": "text", "timestamp": "timestamptz", "float": "float8", "int": "int8",
             "bool": "boolean", "json": "jsonb"}


def create(conn: psycopg.Connection, target: Target, place_rules: int = 0) -> None:
    """``stage`` for rows that passed the chunk checks, ``stage_reject`` for those that did not.
    Each of the mapping's ``place_rules`` has a column ``place_1`` … of its values."""
    typed = [sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(SQL_TYPES[f.type]))
             for f in target.fields]
    typed += [sql.SQL("{} text").format(sql.Identifier(c)) for c in place_columns(place_rules)]
    # Where a point falls (a field of the same name, the roster's grid, is given instead).
    typed += [sql.SQL(f"{name} {kind}") for name, kind in POINT_COLUMNS.items()
              if name not in target.names]
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE stage (row_number bigint NOT NULL, source_file text NOT NULL, "
        "file_no integer NOT NULL, {}) ON COMMIT DROP"
    ).format(sql.SQL(", ").join(typed)))
    conn.execute(
        "CREATE TEMP TABLE stage_reject (row_number bigint NOT NULL, source_file text NOT NULL,"
        " field text, reason text NOT NULL, raw jsonb) ON COMMIT DROP"
    )


def place_columns(rules: int) -> list[str]:
    """The staging columns holding each placement rule's value of a row."""
    return [f"place_{i}" for i in range(1, rules + 1)]


def copy_frame(conn: psycopg.Connection, table: str, frame: pd.DataFrame) -> None:
    """COPY a frame into ``table`` (columns by name; None → NULL)."""
    if frame.empty:
        return
    buffer = io.BytesIO()
    # pyarrow writes CSV several times faster than pandas; nulls become unquoted empties,
    # which COPY reads as NULL, while empty strings stay quoted.
    table_data = pa.Table.from_pandas(frame, preserve_index=False)
    pa_csv.write_csv(table_data, buffer, pa_csv.WriteOptions(include_header=False))
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.Identifier(table), columns)
    with conn.cursor().copy(statement) as copy:
        copy.write(buffer.getvalue())
