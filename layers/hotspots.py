"""Hex bins and hotspots: H3 cells whose resolution follows the zoom, and Getis-Ord Gi*
on grid or hex counts, with significance levels and a trend over the period's two halves
(persistent, emerging, fading).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import h3
import numpy as np
from sqlalchemy import Connection, text

from layers.cases import raw_where, rollup_answers, rollup_rows, rollup_table, rollup_where
from layers.errors import BadParameter
from layers.filters import Filters
from layers.scope import Scope
from layers.sql import run

STORED_RESOLUTION = 11
ZOOM_RESOLUTION = ((9, 6), (11, 7), (12, 8), (14, 9), (15, 10))  # (up to zoom, resolution)
SIGNIFICANCE = ((2.576, 0.99), (1.960, 0.95), (1.645, 0.90))
HOT_Z = 1.960
MIN_UNITS = 3  # fewer units than this have no Gi* z-scores (see getis_ord)
GRID_LEVEL = 4
WEEKS_FROM_DAYS = 28  # periods this long are split into early and late halves on a Monday


def resolution_for_zoom(zoom: float) -> int:
    """Coarser cells when zoomed out: about 20–60 px across on screen."""
    for up_to, resolution in ZOOM_RESOLUTION:
        if zoom <= up_to:
            return resolution
    return STORED_RESOLUTION


def parent_sql(resolution: int) -> str:
    """SQL for the parent at ``resolution`` of the stored res-11 cell ``c.h3``: set the
    resolution field (bits 52–55) and mark the finer digits (3 bits each) unused (7)."""
    if not 0 <= resolution <= STORED_RESOLUTION:
        raise BadParameter("resolution", resolution, f"must be 0–{STORED_RESOLUTION}")
    unused = (1 << (3 * (15 - resolution))) - 1
    return (f"((c.h3 & ~(15::bigint << 52)) | ({resolution}::bigint << 52) "
            f"| {unused}::bigint)")


def hex_counts(conn: Connection, scope: Scope, filters: Filters, resolution: int) -> dict:
    """Case counts per H3 cell at ``resolution`` (cells with cases only)."""
    where = raw_where(filters, scope).add("c.h3 IS NOT NULL")
    query = (f"SELECT {parent_sql(resolution)} AS cell, count(*) AS n FROM case_event c "
             f"WHERE {where.sql} GROUP BY 1")
    return {int(cell): int(n) for cell, n in run(conn, query, where.params)}


def hexbins(conn: Connection, scope: Scope, filters: Filters, zoom: float) -> dict:
    """A FeatureCollection of hexagons with their case counts."""
    resolution = resolution_for_zoom(zoom)
    counts = hex_counts(conn, scope, filters, resolution)
    features = [_hex_feature(cell, {"n": n}) for cell, n in sorted(counts.items())]
    return {"type": "FeatureCollection", "features": features,
            "resolution": resolution}


def _hex_feature(cell: int, props: dict) -> dict:
    ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(h3.int_to_str(cell))]
    ring.append(ring[0])
    return {"type": "Feature", "id": h3.int_to_str(cell),
            "properties": {"cell": h3.int_to_str(cell), **props},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


# -- Getis-Ord Gi* ----------------------------------------------------------------------------
def getis_ord(values: np.ndarray, neighbours: list[list[int]]) -> np.ndarray:
    """Gi* z-scores with binary weights, each unit counted among its own neighbours."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < MIN_UNITS or x.std() == 0:
        return np.zeros(n)
    mean, s = x.mean(), x.std()
    w = np.array([len(nbrs) + 1 for nbrs in neighbours], dtype=float)
    members = np.fromiter((j for i, nbrs in enumerate(neighbours) for j in (i, *nbrs)),
                          dtype=np.intp, count=int(w.sum()))
    starts = np.concatenate(([0], np.cumsum(w[:-1]))).astype(np.intp)
    numerator = np.add.reduceat(x[members], starts) - mean * w
    denominator = s * np.sqrt((n * w - w * w) / (n - 1))
    return np.divide(numerator, denominator, out=np.zeros(n), where=denominator > 0)


def significance(z: float) -> float | None:
    """The confidence level a hot (or cold) spot reaches: 0.99, 0.95, 0.90 or None."""
    for bound, level in SIGNIFICANCE:
        if abs(z) >= bound:
            return level
    return None


def trend_class(z_early: float, z_late: float) -> str | None:
    hot_early, hot_late = z_early >= HOT_Z, z_late >= HOT_Z
    if hot_early and hot_late:
        return "persistent"
    if hot_late:
        return "emerging"
    if hot_early:
        return "fading"
    return None


@dataclass(frozen=True)
class Units:
    """The units hotspots are computed on: ids, geometries, neighbour lists."""

    ids: list
    geometries: list[dict] | None   # None: read afterwards for the units that are kept
    neighbours: list[list[int]]


def hotspots(conn: Connection, scope: Scope, filters: Filters, unit: str = "grid",
             zoom: float = 12, zone: str = "Asia/Shanghai") -> dict:
    """Gi* hotspots of case counts on grids or hexes within ``scope``, with their trend."""
    if unit not in ("grid", "hex"):
        raise BadParameter("unit", unit, "must be grid or hex")
    resolution = resolution_for_zoom(zoom)
    none = {"type": "FeatureCollection", "features": [], "unit": unit,
            "resolution": resolution if unit == "hex" else None}
    if unit == "grid" and scope.level == GRID_LEVEL:  # one grid: nothing to compare with
        return none
    units = _grid_units(conn, scope) if unit == "grid" else _hex_units(conn, scope, resolution)
    if len(units.ids) < MIN_UNITS:  # Gi* needs a neighbourhood to compare with
        return none
    early, late = _halves(conn, filters, zone)
    # The halves meet at a local midnight: the aggregates answer them when they answer the
    # whole period.
    if unit == "grid" and rollup_answers(conn, filters, zone):
        counts = _grid_counts_by_half(conn, filters, late, units.ids, zone)
    else:
        counts = {name: _counts(conn, scope, part, unit, resolution, units.ids, zone)
                  for name, part in (("all", filters), ("early", early), ("late", late))}
    z = {name: getis_ord(c, units.neighbours) for name, c in counts.items()}
    features = []
    for i, uid in enumerate(units.ids):
        level = significance(z["all"][i])
        trend = trend_class(z["early"][i], z["late"][i])
        if level is None and trend is None:
            continue
        props = {"id": str(uid) if unit == "grid" else h3.int_to_str(uid),
                 "n": int(counts["all"][i]), "z": round(float(z["all"][i]), 3),
                 "confidence": level, "hot": bool(z["all"][i] > 0), "trend": trend}
        features.append({"type": "Feature", "id": props["id"], "properties": props,
                         "geometry": units.geometries[i] if units.geometries else None})
    if units.geometries is None and features:
        shapes = _grid_shapes(conn, [f["id"] for f in features])
        for feature in features:
            feature["geometry"] = shapes[feature["id"]]
    features.sort(key=lambda f: -f["properties"]["z"])
    return {"type": "FeatureCollection", "features": features, "unit": unit,
            "resolution": resolution if unit == "hex" else None}


def _grid_units(conn: Connection, scope: Scope) -> Units:
    """The scope's grids with their neighbours (those inside the scope), in one statement."""
    scope_clause = f"a.{scope.column} = :scope" if scope.column else "TRUE"
    rows = run(conn,
               f"SELECT a.code, array_remove(array_agg(n.neighbour_code), NULL) FROM admin_unit a "
               f"LEFT JOIN grid_neighbour n ON n.grid_code = a.code WHERE a.level = 4 "
               f"AND {scope_clause} GROUP BY a.code ORDER BY a.code", {"scope": scope.code}).all()
    ids = [code for code, _ in rows]
    index = {code: i for i, code in enumerate(ids)}
    neighbours = [[index[b] for b in near if b in index] for _, near in rows]
    return Units(ids, None, neighbours)  # shapes are read for the hotspots found only


def _grid_shapes(conn: Connection, codes: list[str]) -> dict[str, dict]:
    rows = run(conn, "SELECT code, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, 0.00002), 6) "
                     "FROM admin_unit WHERE code = ANY(:codes)", {"codes": codes})
    return {code: json.loads(shape) for code, shape in rows}


def _hex_units(conn: Connection, scope: Scope, resolution: int) -> Units:
    """Every cell covering the scope's area, with or without cases."""
    clause = "code = :scope" if scope.code else "level = 1"
    shape = conn.execute(text(f"SELECT ST_AsGeoJSON(ST_Union(geom)) FROM admin_unit "
                              f"WHERE {clause}"), {"scope": scope.code}).scalar_one()
    if shape is None:
        return Units([], [], [])
    cells = sorted(h3.str_to_int(c) for c in h3.geo_to_cells(json.loads(shape), resolution))
    index = {cell: i for i, cell in enumerate(cells)}
    neighbours = [[index[n] for n in map(h3.str_to_int, h3.grid_disk(h3.int_to_str(c), 1))
                   if n in index and n != c] for c in cells]
    geometries = [_hex_feature(c, {})["geometry"] for c in cells]
    return Units(cells, geometries, neighbours)


def _counts(conn, scope: Scope, filters: Filters, unit: str, resolution: int,
            ids: list, zone: str) -> np.ndarray:
    if unit == "hex":
        found = hex_counts(conn, scope, filters, resolution)
    elif rollup_answers(conn, filters, zone):
        rows = _grid_rows(filters, ids, zone)
        found = dict(run(conn, f"SELECT r.unit_code, sum(r.total) FROM {rows.sql} GROUP BY 1",
                         rows.params).all())
    else:
        where = raw_where(filters, scope).add("c.grid_code IS NOT NULL")
        found = dict(run(conn, f"SELECT c.grid_code, count(*) FROM case_event c "
                               f"WHERE {where.sql} GROUP BY 1", where.params).all())
    return np.array([found.get(uid, 0) for uid in ids], dtype=float)


def _grid_counts_by_half(conn, filters: Filters, late: Filters, ids: list,
                         zone: str) -> dict[str, np.ndarray]:
    """Whole-period, early and late counts per grid in one pass over the aggregates (no
    early or late ones when there are no cases to halve an open period by)."""
    middle = late.start.astimezone(ZoneInfo(zone)).date() if late.start else None
    rows = _grid_rows(filters, ids, zone, cut=middle)
    counted = run(conn,
                  f"SELECT r.unit_code, sum(r.total), sum(r.total) FILTER (WHERE r.day < :middle), "
                  f"sum(r.total) FILTER (WHERE r.day >= :middle) FROM {rows.sql} GROUP BY 1",
                  {**rows.params, "middle": middle}).all()
    found = {code: (whole, early or 0, recent or 0) for code, whole, early, recent in counted}
    empty = (0, 0, 0)
    return {name: np.array([found.get(uid, empty)[i] for uid in ids], dtype=float)
            for i, name in enumerate(("all", "early", "late"))}


def _grid_rows(filters: Filters, ids: list, zone: str, cut: date | None = None):
    """The aggregate rows of the grids ``ids`` (the scope's, read already): looked up by
    unit code in the primary key, day range included, rather than by a join on the scope
    column, which scans every grid's days when the scope is the district; no week of them
    straddles the day ``cut``."""
    where = rollup_where(filters, 4, None, False).add("r.unit_code = ANY(:ids)", ids=ids)
    return rollup_rows(where, filters, zone, rollup_table(filters), cut=cut, counts=True)


def _halves(conn: Connection, filters: Filters, zone: str) -> tuple[Filters, Filters]:
    """The filter's period split in two halves at a local midnight (the data's own span
    when the period is open), so the daily aggregates can count both; from four weeks on,
    at the Monday nearest the middle, so that the weekly ones can too."""
    start, end = filters.start, filters.end
    if start is None or end is None:
        lo, hi = conn.execute(text(
            "SELECT min(reported_at), max(reported_at) FROM case_event")).one()
        start, end = start or lo, end or hi
    if start is None:
        return filters, filters
    local = ZoneInfo(zone)
    day = (start + (end - start) / 2).astimezone(local).date()
    if end - start >= timedelta(days=WEEKS_FROM_DAYS):  # weeks against weeks
        day += timedelta(days=-day.weekday() if day.weekday() < 4 else 7 - day.weekday())
    middle = datetime.combine(day, time(), local)
    return replace(filters, end=middle), replace(filters, start=middle)
