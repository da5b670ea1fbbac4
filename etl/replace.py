"""A batch that replaces what its source loaded before.

Rows that earlier batches of the same kind loaded from the same file(s) and that this batch
no longer holds are deleted in its transaction: a regenerated demo city leaves none of the
earlier city's cases, device reports or alarms behind. A row rejected this time counts as
no longer held. Rows that other sources loaded (or last changed) stay.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from etl.targets import Target

# Earlier batches of the source; ``{held}`` matches a row of the table with a staged row
# that this batch loads (not rejected).
ABSENT = """
DELETE FROM {table} t
WHERE t.batch_id IN (SELECT id FROM load_batch
                     WHERE kind = %(kind)s AND source = %(source)s AND id <> %(batch)s)
  AND NOT EXISTS (SELECT 1 FROM stage s
                  WHERE {held}
                    AND NOT EXISTS (SELECT 1 FROM stage_reject r WHERE r.row_number = s.row_number
                                    AND r.source_file = s.source_file))
"""

# Cases: the days of the deleted ones are recounted by the aggregates' refresh; a batch
# going by delta keeps their rows too (``{kept}``), to subtract from the aggregates.
CASES = """
WITH gone AS ({delete} RETURNING {returned}),
     days AS (INSERT INTO touched_day
              SELECT DISTINCT (reported_at AT TIME ZONE %(tz)s)::date FROM gone){kept}
SELECT count(*) FROM gone
"""
KEPT = ",\n     kept AS (INSERT INTO {} SELECT * FROM gone)"
OTHERS = "WITH gone AS ({delete} RETURNING 1) SELECT count(*) FROM gone"
EARLIER = "SELECT EXISTS (SELECT 1 FROM load_batch WHERE kind = %s AND source = %s AND id <> %s)"


def remove_absent(conn: psycopg.Connection, target: Target, batch_id: int, source: str,
                  timezone: str, staged_key: dict[str, sql.Composable],
                  kept: str | None = None) -> int:
    """Delete the rows earlier batches of ``source`` loaded that this one does not hold;
    return how many. For cases, their local days (in ``timezone``) join ``touched_day``,
    and their whole rows the table ``kept`` when one is named.
    ``staged_key``: each key column's value as the upsert takes it from the stage."""
    if not conn.execute(EARLIER, (target.kind, source, batch_id)).fetchone()[0]:
        return 0  # a first load of these files: nothing to look for in the table
    held = sql.SQL(" AND ").join(sql.SQL("t.{} = {}").format(sql.Identifier(k), staged_key[k])
                                 for k in target.key)
    delete = sql.SQL(ABSENT).format(table=sql.Identifier(target.table), held=held)
    if target.kind == "cases":
        statement = sql.SQL(CASES).format(
            delete=delete, returned=sql.SQL("t.*" if kept else "t.reported_at"),
            kept=sql.SQL(KEPT).format(sql.Identifier(kept)) if kept else sql.SQL(""))
    else:
        statement = sql.SQL(OTHERS).format(delete=delete)
    params = {"kind": target.kind, "source": source, "batch": batch_id, "tz": timezone}
    return conn.execute(statement, params).fetchone()[0]
