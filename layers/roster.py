"""Grid workers (网格员): who works a scope's grids, how each did on the cases that name
them as handler, and who to call about a case.

The roster (``grid_worker``, loaded by ``onemap load roster``) has a row per worker and
grid; a station head (站长) covering a community's grids has one for each. A worker is
listed once, with every grid of the scope they cover. Their figures count the cases whose
``handler`` is their id, under the view's filters (period, category, channel, status)
wherever the case was placed: a worker's case placed in their community, for want of a
point, still counts as theirs. Phones are personal: masked in SQL unless the viewer holds
the grant, absent for those who never see personal fields (``layers.access``).
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Connection, Engine, text

from layers.access import scope_for
from layers.cases import local_zone, raw_where
from layers.filters import Filters
from layers.masking import MASK_SQL
from layers.scope import Scope
from onemap.principal import Principal
from onemap.vocabulary import WORKER_ROLES

# Scope of the case filters that count a worker's cases: anywhere (the worker is in scope).
ANYWHERE = Scope(None, "", 0, None, 0.0, ())
LIST_LIMIT = 2000  # workers listed at most (a district of ~450 grids has about 700)

WORKERS = """
WITH w AS (
    SELECT w.id, min(w.name) AS name, min(w.role) AS role, min({phone}) AS phone,
           array_agg(w.grid_code ORDER BY w.grid_code) AS grids
    FROM grid_worker w WHERE {scope}
    GROUP BY w.id
)
SELECT w.id, w.name, w.role, w.phone, w.grids, count(*) OVER () AS total,
       f.received, f.closed, f.on_time, f.timed, f.median_hours
FROM w LEFT JOIN LATERAL (
    SELECT count(*) AS received,
           count(*) FILTER (WHERE c.status = 'closed') AS closed,
           count(*) FILTER (WHERE c.status = 'closed' AND c.on_time) AS on_time,
           count(*) FILTER (WHERE c.status = 'closed' AND c.on_time IS NOT NULL) AS timed,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY c.handling_hours)
               FILTER (WHERE c.status = 'closed') AS median_hours
    FROM case_event c WHERE c.handler = w.id AND {cases}
) f ON true
ORDER BY array_position(CAST(:roles AS text[]), w.role), w.id
LIMIT :limit
"""

# Cases of the scope naming a handler the roster does not hold: counted, so that a
# worker's figures are never read as every case the scope's handlers took.
UNLISTED = """
SELECT count(*) FROM case_event c
WHERE {cases} AND c.handler IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM grid_worker w WHERE w.id = c.handler)
"""

CASE_WORKERS = """
SELECT w.id, min(w.name) AS name, min(w.role) AS role, min({phone}) AS phone
FROM grid_worker w
WHERE (CASE WHEN CAST(:grid AS text) IS NOT NULL THEN w.grid_code = :grid
            ELSE w.community_code = :community AND w.role = 'station_head' END
       OR w.id = :handler)
  AND {scope}
GROUP BY w.id
ORDER BY w.id = :handler DESC, array_position(CAST(:roles AS text[]), min(w.role)), w.id
"""


def phone_column(personal: str | None, alias: str = "w") -> str:
    """The worker's phone as ``personal`` allows: in clear, masked, or none."""
    column = f"{alias}.phone"
    if personal == "clear":
        return column
    if personal == "masked":
        return MASK_SQL["phone"].format(c=column)
    return "CAST(NULL AS text)"


def scope_workers(conn: Connection, scope: Scope, filters: Filters,
                  personal: str | None, limit: int = LIST_LIMIT) -> dict:
    """The workers of ``scope``'s grids, each with their grids and their figures over the
    cases naming them as handler under ``filters``: received, closed, closed on time (of
    those whose on-time is known) and the median handling time of the closed, in hours.
    ``unlisted``: the scope's cases under ``filters`` naming a handler not in the roster."""
    cases = raw_where(replace(filters, bbox=None), ANYWHERE)
    mine = f"w.{scope.column} = :scope" if scope.column else "true"
    rows = conn.execute(text(WORKERS.format(phone=phone_column(personal), scope=mine,
                                            cases=cases.sql)),
                        {**cases.params, "scope": scope.code, "roles": list(WORKER_ROLES),
                         "limit": limit}).mappings().all()
    scoped = raw_where(replace(filters, bbox=None), scope)
    unlisted = conn.execute(text(UNLISTED.format(cases=scoped.sql)), scoped.params).scalar()
    return {"workers": [_worker(r) for r in rows],
            "total": rows[0]["total"] if rows else 0, "unlisted": unlisted}


def _worker(row) -> dict:
    timed = row["timed"] or 0
    median = row["median_hours"]
    return {"id": row["id"], "name": row["name"], "role": row["role"], "phone": row["phone"],
            "grids": list(row["grids"]), "received": row["received"],
            "closed": row["closed"], "on_time": row["on_time"],
            "on_time_rate": row["on_time"] / timed if timed else None,
            "median_hours": None if median is None else float(median)}


def case_workers(conn: Connection, case: dict, scope: Scope,
                 personal: str | None) -> list[dict]:
    """Whom to call about ``case`` (a case detail's properties): its grid's workers, or,
    placed above the grids, its community's station heads; and its handler, first, marked
    ``handler``, when they work within ``scope`` (the viewer's)."""
    mine = f"w.{scope.column} = :scope" if scope.column else "true"
    rows = conn.execute(text(CASE_WORKERS.format(phone=phone_column(personal), scope=mine)), {
        "grid": case.get("grid_code"), "community": case.get("community_code"),
        "handler": case.get("handler"), "roles": list(WORKER_ROLES),
        "scope": scope.code}).mappings()
    return [{**r, "handler": r["id"] == case.get("handler")} for r in rows]


def grid_panel(engine: Engine, filters: Filters, who: Principal, zone: str) -> dict | None:
    """The grid view's workers (:func:`scope_workers` of the grid ``filters`` name, its
    period placed in the aggregates' zone, else ``zone``), as ``who`` may see them; None
    when the view is not of a grid."""
    with engine.connect() as conn:
        scope = scope_for(conn, who, filters.scope)
        if scope.level != 4:
            return None
        filters = filters.resolved(local_zone(conn, zone))
        return scope_workers(conn, scope, filters, who.personal)
