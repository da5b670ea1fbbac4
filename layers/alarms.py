"""Device alarms: every device of a scope now in alarm, with when its alarm began and what was
done about it (acknowledged: by whom, when, with what note; dispatched as which case), and one
device looked up to be shown on the map or acted on.

A device's alarm began at the first ``alarm`` status event after its last status event of
any other status (repeated alarm reports while it stays in alarm do not restart it). A
device in alarm with no such event (loaded without its history) has no start: it is listed
with an unknown time, never left out.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Connection

from layers.catalog import PointLayer, default_catalog
from layers.filters import Filters, Where
from layers.scope import Scope
from layers.sql import ident, run

# A device, its units' names, when its alarm began and what was done about the alarm
# (``alarm_action``: acknowledged, dispatched as a case), all from the device row ``t``.
FROM = """
FROM {table}
LEFT JOIN admin_unit cu ON cu.code = t.community_code
LEFT JOIN admin_unit gu ON gu.code = t.grid_code
LEFT JOIN LATERAL (
    SELECT min(e.ts) AS since FROM iot_event e
    WHERE e.device_id = t.id AND e.event_type = 'status' AND e.status = 'alarm'
      AND e.ts > coalesce((SELECT max(x.ts) FROM iot_event x
                           WHERE x.device_id = t.id AND x.event_type = 'status'
                             AND x.status <> 'alarm'), '-infinity')
      AND t.status = 'alarm'
) s ON true
LEFT JOIN alarm_action a ON t.status = 'alarm' AND a.device_id = t.id
      AND a.began_at = coalesce(s.since, '-infinity')
WHERE {where}
"""
DEVICE = """
SELECT t.id, t.kind, t.name, t.status, t.last_seen, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat,
       cu.name AS community_name, gu.name AS grid_name, t.grid_code, s.since AS alarm_since,
       a.acknowledged_by, a.acknowledged_at, a.note AS ack_note, a.case_id, a.dispatched_by,
       a.dispatched_at""" + FROM
# How many of the alarms nobody has acknowledged (nor dispatched, which acknowledges).
OPEN = "SELECT count(*) FILTER (WHERE a.device_id IS NULL)" + FROM


def active_alarms(conn: Connection, scope: Scope, filters: Filters, limit: int) -> dict:
    """The scope's devices in alarm, newest alarm first (unknown starts last), at most
    ``limit`` of them; ``numberMatched``: how many there are, ``numberOpen``: how many of
    those nobody has acknowledged."""
    devices = _devices()
    alarms = replace(filters, device_statuses=("alarm",), kinds=())
    count = devices.count_query(scope, alarms)
    total = run(conn, count.sql, count.params).scalar_one()
    where = devices.where(scope, alarms)
    rows = run(conn, _device_sql(devices, where) +
               " ORDER BY s.since DESC NULLS LAST, t.id LIMIT :limit",
               {**where.params, "limit": limit}).mappings().all()
    unacknowledged = run(conn, _device_sql(devices, where, OPEN), where.params).scalar_one()
    return {"features": [_feature(r) for r in rows], "numberReturned": len(rows),
            "numberMatched": int(total), "numberOpen": int(unacknowledged)}


def device(conn: Connection, scope: Scope, device_id: str) -> dict | None:
    """The device ``device_id`` if it lies in ``scope`` (a link may name one that does not,
    or no longer does: then None)."""
    if "\x00" in device_id:  # no id holds one, and PostgreSQL text cannot take it
        return None
    devices = _devices()
    where = devices.where(scope, Filters()).add("t.id = :device", device=device_id)
    row = run(conn, _device_sql(devices, where), where.params).mappings().first()
    return None if row is None else _feature(row)


def _devices() -> PointLayer:
    return default_catalog().get("iot-devices")


def _device_sql(devices: PointLayer, where: Where, sql: str = DEVICE) -> str:
    return sql.format(table=f"{ident(devices.table)} t", where=where.sql)


def _feature(row) -> dict:
    props = {k: v for k, v in row.items() if k not in ("lon", "lat")}
    return {"type": "Feature", "id": row["id"], "properties": props,
            "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]}}
