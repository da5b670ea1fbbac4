"""Running the read side's statements, written with ``:name`` placeholders.

Each statement's text is converted to the driver's placeholders once per process and then
sent as it is (``exec_driver_sql``): building and compiling a ``text()`` construct on every
call cost a view about as much as one more round trip per statement.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Connection, CursorResult, text
from sqlalchemy.dialects.postgresql import psycopg

_DIALECT = psycopg.dialect()


def run(conn: Connection, query: str, params: dict | None = None) -> CursorResult:
    """``query`` executed on ``conn`` with ``params`` bound to its ``:name`` placeholders."""
    return conn.exec_driver_sql(_driver_sql(query), params or {})


@lru_cache(maxsize=1024)
def _driver_sql(query: str) -> str:
    return str(text(query).compile(dialect=_DIALECT))


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (table, column): always quoted, so a name that
    is a reserved word or not lower case is read as written. Names come from code (the
    layer specs, the schema), never from a request."""
    return _DIALECT.identifier_preparer.quote_identifier(name)
