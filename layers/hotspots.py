"""Hex bins and hotspots: H3 cells whose resolution follows the zoom, and Getis-Ord Gi*
on grid or hex counts, with significance levels and a trend over the period's two halves
(persistent, emerging, fading).

How a unit is judged hot, so that a person can act on it:

* Gi* with binary weights: a unit's neighbourhood is itself and the units it touches; its
  z-score is tested two-sided against the normal distribution.
* The many units are tested at once, so the p-values are corrected by the Benjamini–Hochberg
  false discovery rate: a unit is a hot (or cold) spot when its q-value is at most ``ALPHA``
  (5 %: of the hotspots shown, about one in twenty may be chance). ``confidence`` says 0.99
  when q ≤ 1 %, 0.95 when q ≤ 5 %.
* A hot unit stands out itself: it holds cases, at least ``MIN_CASES`` around it, and its
  own count is above the family's mean at a false discovery rate of ``CORE_ALPHA`` (1 %).
  So a unit with no case in the period is never hot, nor one that only touches a hot one.
* Grids are judged in one fixed context, the whole district holding them: every grid of the
  district enters the z-scores and the correction's family, whatever the viewer's scope, so
  a grid's verdict is the same for the district and for the official of its street; a view
  keeps the grids of its scope. (The scope's parent as context would judge a grid apart for
  the district and for its community's official.) Hexes are judged within the area of the
  scope asked for: they are no admin unit, and their counts are read from the raw cases.
  Being the same for all, a district's verdicts are judged once and shared (``Verdicts``):
  a street's view reads its grids' from them instead of counting the whole district again.
* A unit hot in the period or in either of its halves (each judged the same way) has a
  trend: emerging or fading when the share of its cases in the later half is above or
  below the rest of the district's, significantly (at ``ALPHA``, corrected over the hot
  units) and by ``TREND_ODDS`` or more in odds; else persistent. It is a hotspot when it is
  hot where its trend says: persistent ones over the whole period, emerging ones in the
  later half (or the period), fading ones in the earlier half (or the period).
"""

from __future__ import annotations

import json
import math
import threading
import time as clock
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import h3
import numpy as np
from sqlalchemy import Connection, text

from layers import changes
from layers.case_query import CaseQuery
from layers.cases import raw_where
from layers.errors import BadParameter
from layers.filters import Filters
from layers.scope import Scope
from layers.sql import run

STORED_RESOLUTION = 11
ZOOM_RESOLUTION = ((9, 6), (11, 7), (12, 8), (14, 9), (15, 10))  # (up to zoom, resolution)
ALPHA = 0.05  # the false discovery rate a hot or cold spot is judged at
CONFIDENCE = ((0.01, 0.99), (ALPHA, 0.95))  # (q-value at most, confidence shown)
# Fewer cases than this around a unit (in it and the units it touches) make no hotspot: the
# normal distribution behind Gi*'s p-values does not hold for so few, and one case among
# empty neighbours would be "hot at 0.99".
MIN_CASES = 5
# A hot unit stands out itself: its own count is above the family's mean at this false
# discovery rate (a unit next to a hot one is inside a hot neighbourhood, not a hotspot).
CORE_ALPHA = 0.01
# A trend is a change worth acting on: the odds of a case in the later half differ from
# the rest of the district's by this factor or more (and significantly, at ALPHA).
TREND_ODDS = 1.5
MIN_UNITS = 3  # fewer units than this have no Gi* z-scores (see getis_ord)
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


# -- Getis-Ord Gi* ---------------------------------------------------------------------------
def getis_ord(values: np.ndarray, neighbours: list[list[int]]) -> np.ndarray:
    """Gi* z-scores with binary weights, each unit counted among its own neighbours."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < MIN_UNITS or x.std() == 0:
        return np.zeros(n)
    mean, s = x.mean(), x.std()
    w = np.array([len(nbrs) + 1 for nbrs in neighbours], dtype=float)
    numerator = neighbourhood_sums(x, neighbours) - mean * w
    denominator = s * np.sqrt((n * w - w * w) / (n - 1))
    return np.divide(numerator, denominator, out=np.zeros(n), where=denominator > 0)


def neighbourhood_sums(values: np.ndarray, neighbours: list[list[int]]) -> np.ndarray:
    """Each unit's value plus its neighbours'."""
    x = np.asarray(values, dtype=float)
    if not len(x):
        return x
    w = np.array([len(nbrs) + 1 for nbrs in neighbours], dtype=np.intp)
    members = np.fromiter((j for i, nbrs in enumerate(neighbours) for j in (i, *nbrs)),
                          dtype=np.intp, count=int(w.sum()))
    starts = np.concatenate(([0], np.cumsum(w[:-1]))).astype(np.intp)
    return np.add.reduceat(x[members], starts)


def p_values(z: np.ndarray) -> np.ndarray:
    """Two-sided p-values of standard normal z-scores."""
    return np.array([math.erfc(abs(float(v)) / math.sqrt(2)) for v in z])


def fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values: the smallest false discovery rate at which each test of
    the family ``p`` is significant."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.empty(m)
    q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q


def confidence(q: float) -> float | None:
    """The confidence a hot (or cold) spot reaches: 0.99, 0.95 or None (not significant)."""
    for bound, level in CONFIDENCE:
        if q <= bound:
            return level
    return None


@dataclass(frozen=True)
class Judged:
    """One family of units judged on one period's counts."""

    counts: np.ndarray
    around: np.ndarray  # the neighbourhood's counts (the unit's and its neighbours')
    z: np.ndarray       # Gi*
    q: np.ndarray       # Gi*'s q-values
    own_q: np.ndarray   # q-values of the unit's own count against the family's mean

    @property
    def hot(self) -> np.ndarray:
        return ((self.q <= ALPHA) & (self.z > 0) & (self.counts > 0)
                & (self.around >= MIN_CASES) & (self.own_q <= CORE_ALPHA)
                & (self.counts > self.counts.mean()))

    @property
    def cold(self) -> np.ndarray:
        return (self.q <= ALPHA) & (self.z < 0)


def judge(counts: np.ndarray, neighbours: list[list[int]]) -> Judged:
    """Gi* z-scores of ``counts``, their q-values over the whole family, and those of each
    unit's own count (its z-score against the family's mean and spread)."""
    counts = np.asarray(counts, dtype=float)
    z = getis_ord(counts, neighbours)
    spread = counts.std() if len(counts) else 0.0
    own = (counts - counts.mean()) / spread if spread > 0 else np.zeros(len(counts))
    return Judged(counts, neighbourhood_sums(counts, neighbours), z, _q(z), _q(own))


def _q(z: np.ndarray) -> np.ndarray:
    return fdr(p_values(z)) if len(z) else z


def trends(whole: np.ndarray, late: np.ndarray, hot: np.ndarray) -> list[str | None]:
    """The trend of each ``hot`` unit: the share of its cases in the later half against
    the rest of the family's, tested two-sided (binomial, normal approximation) and
    corrected over the hot units. Emerging or fading when it differs at ``ALPHA`` and its
    odds by ``TREND_ODDS`` times or more, else persistent; None for units not hot."""
    rest = ~hot if whole[~hot].sum() else np.ones(len(hot), dtype=bool)
    p0 = float(late[rest].sum() / whole[rest].sum()) if whole[rest].sum() else 0.5
    units = np.flatnonzero(hot)
    found: list[str | None] = [None] * len(whole)
    if not len(units) or not 0 < p0 < 1:
        return ["persistent" if h else None for h in hot]
    n, k = whole[units], late[units]
    z = (k - n * p0) / np.sqrt(n * p0 * (1 - p0))
    odds = ((k + 0.5) / (n - k + 0.5)) / (p0 / (1 - p0))
    changed = (_q(z) <= ALPHA) & (np.abs(np.log(odds)) >= math.log(TREND_ODDS))
    for i, unit in enumerate(units):
        found[unit] = ("persistent" if not changed[i] else
                       "emerging" if z[i] > 0 else "fading")
    return found


def when_hot(trend: list[str | None], whole: np.ndarray, early: np.ndarray,
             late: np.ndarray) -> list[str | None]:
    """Each unit's trend where it is hot when its trend says it is, else None: persistent
    over the whole period, emerging in the later half or the period, fading in the earlier
    half or the period (``whole``, ``early``, ``late``: the hot units of each). A unit hot
    in one half alone whose share did not change is no hotspot: it stands out there only
    because the family's spread is smaller while a bigger hotspot is quiet, and its period
    says so (a busy neighbourhood shown as 持续热点 at z 0.5)."""
    hot_when = {"persistent": whole, "emerging": whole | late, "fading": whole | early}
    return [kind if kind and hot_when[kind][i] else None for i, kind in enumerate(trend)]


@dataclass(frozen=True)
class Units:
    """One context of units to judge: ids, geometries, neighbour lists, and for grids the
    codes of the units above each (community, street)."""

    ids: list
    geometries: list[dict] | None   # None: read afterwards for the units that are shown
    neighbours: list[list[int]]
    parents: list[tuple[str | None, str | None]] | None = None


def hotspots(conn: Connection, scope: Scope, filters: Filters, unit: str = "grid",
             zoom: float = 12, zone: str = "Asia/Shanghai") -> dict:
    """Gi* hotspots of case counts on grids or hexes, with their trend: the grids of
    ``scope`` as judged within their whole district, or the hexes of ``scope``'s area."""
    if unit not in ("grid", "hex"):
        raise BadParameter("unit", unit, "must be grid or hex")
    resolution = resolution_for_zoom(zoom)
    if unit == "grid":
        judged = VERDICTS.get(conn, _district(scope), filters, zone)
        features = [{**f, "properties": dict(f["properties"])} for f in judged
                    if _holds(scope, f["properties"])]  # copies: the judged are shared
        if features:
            _name_and_shape(conn, features)
    else:
        features = _hex_features(conn, scope, filters, resolution, zone)
    features.sort(key=lambda f: -f["properties"]["z"])
    return {"type": "FeatureCollection", "features": features, "unit": unit,
            "resolution": resolution if unit == "hex" else None, "alpha": ALPHA}


def _holds(scope: Scope, props: dict) -> bool:
    """Whether ``scope`` holds the grid of ``props``."""
    key = {2: "street_code", 3: "community_code", 4: "id"}.get(scope.level)
    return key is None or props[key] == scope.code


def _features(units: Units, counts: dict[str, np.ndarray], unit: str) -> list[dict]:
    """The units of one context that are hot, cold or have a trend."""
    if len(units.ids) < MIN_UNITS:  # Gi* needs a neighbourhood to compare with
        return []
    whole, early, late = (judge(counts[name], units.neighbours)
                          for name in ("all", "early", "late"))
    hot, cold = whole.hot, whole.cold
    trend = when_hot(trends(whole.counts, late.counts, hot | early.hot | late.hot),
                     hot, early.hot, late.hot)
    features = []
    for i, uid in enumerate(units.ids):
        if not (hot[i] or cold[i] or trend[i]):
            continue
        key = str(uid) if unit == "grid" else h3.int_to_str(uid)
        # z keeps 6 digits: kept to 3, a z of 3.96549 became 3.965 and the list, showing
        # two, rounded it again to 3.96.
        props = {"id": key, "n": int(whole.counts[i]), "z": round(float(whole.z[i]), 6),
                 "q": round(float(whole.q[i]), 4),
                 "confidence": confidence(whole.q[i]) if hot[i] or cold[i] else None,
                 "hot": trend[i] is not None, "trend": trend[i],
                 "n_early": int(early.counts[i]), "n_late": int(late.counts[i])}
        if units.parents:
            props["community_code"], props["street_code"] = units.parents[i]
        features.append({"type": "Feature", "id": key, "properties": props,
                         "geometry": units.geometries[i] if units.geometries else None})
    return features


# -- grids: the district as context --------------------------------------------------------
GRID_CONTEXT = """
SELECT g.code, c.code AS community, s.code AS street, s.parent_code AS district,
       array_remove(array_agg(n.neighbour_code), NULL) AS near
FROM admin_unit g
LEFT JOIN admin_unit c ON c.code = g.parent_code
LEFT JOIN admin_unit s ON s.code = c.parent_code
LEFT JOIN grid_neighbour n ON n.grid_code = g.code
WHERE g.level = 4 AND {districts}
GROUP BY g.code, c.code, s.code, s.parent_code
ORDER BY s.parent_code, g.code
"""


class Verdicts:
    """The grids of a district and their neighbours, and the grids judged under some
    filters, kept in the process for ``seconds`` and until a load commits or a case is
    written (``layers.changes``), and shared by every viewer on purpose: they are
    the same for all (the point of one fixed context), so a street's official reads her
    grids' verdicts from the district's, judged once, instead of reading every grid of the
    district again. They hold no personal data."""

    def __init__(self, seconds: float = 60.0, size: int = 64):
        self.seconds, self.size = seconds, size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[float, list]] = OrderedDict()

    def get(self, conn: Connection, district: Scope, filters: Filters,
            zone: str) -> list[dict]:
        """The hot, cold and trending grids of ``district`` (features without shapes)."""
        version = changes.version(conn, ("cases", "loads"))  # what verdicts count
        contexts = self._kept(("grids", district.code, version),
                              lambda: _grid_contexts(conn, district))
        return self._kept(("judged", district.code, replace(filters, scope=None), zone, version),
                          lambda: _judge_grids(conn, district, contexts, filters, zone))

    def _kept(self, key: tuple, compute):
        """The fresh entry of ``key``, else what ``compute()`` gives, kept."""
        with self._lock:
            entry = self._entries.get(key)
            if entry and entry[0] > clock.monotonic():
                self._entries.move_to_end(key)
                return entry[1]
        value = compute()
        with self._lock:
            self._entries[key] = (clock.monotonic() + self.seconds, value)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _judge_grids(conn: Connection, district: Scope, contexts: list[Units], filters: Filters,
                 zone: str) -> list[dict]:
    """Every grid of ``district`` judged on the filters' counts, in its context (one per
    district at the root of several)."""
    if not any(len(units.ids) >= MIN_UNITS for units in contexts):
        return []
    _, late = _halves(conn, filters, zone)
    ids = [uid for units in contexts for uid in units.ids]
    # The district's cases, whatever the viewer's scope: it would cut the context. The
    # halves meet at a local midnight, so the aggregates answer them when they answer the
    # period.
    counts = CaseQuery(conn, district, filters, zone).grid_counts(ids, late.start)
    features, first = [], 0
    for units in contexts:
        part = {name: c[first:first + len(units.ids)] for name, c in counts.items()}
        features += _features(units, part, "grid")
        first += len(units.ids)
    return features


VERDICTS = Verdicts()


def _district(scope: Scope) -> Scope:
    """The district holding ``scope`` (the root when several are loaded), as a scope that
    selects its cases by their district code."""
    code = next((code for code, _, level in scope.breadcrumb if level == 1), None)
    return Scope(code, "", 1 if code else 0, None, 0.0, ())


def _grid_contexts(conn: Connection, district: Scope) -> list[Units]:
    """Every grid of ``district`` (of each district, at the root of several) with its
    neighbours in that district and its community and street: one context per district,
    in one statement."""
    where = "s.parent_code = :district" if district.code else "TRUE"
    rows = run(conn, GRID_CONTEXT.format(districts=where), {"district": district.code}).all()
    contexts = []
    for _, group in _runs(rows, key=lambda row: row.district):
        index = {row.code: i for i, row in enumerate(group)}
        contexts.append(Units([row.code for row in group], None,
                              [[index[b] for b in row.near if b in index] for row in group],
                              [(row.community, row.street) for row in group]))
    return contexts


def _runs(rows: list, key) -> Iterator[tuple[object, list]]:
    """Consecutive rows with the same ``key``, as (key, rows)."""
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or key(rows[i]) != key(rows[start]):
            yield key(rows[start]), rows[start:i]
            start = i


def _name_and_shape(conn: Connection, features: list[dict]) -> None:
    """Each kept grid's name (with its community, e.g. 六和社区第12网格) and shape."""
    rows = run(conn, "SELECT g.code, g.name, c.name AS community, "
                     "ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, 0.00002), 6) AS shape "
                     "FROM admin_unit g LEFT JOIN admin_unit c ON c.code = g.parent_code "
                     "WHERE g.code = ANY(:codes)", {"codes": [f["id"] for f in features]})
    found = {row.code: row for row in rows}
    for feature in features:
        row = found[feature["id"]]
        feature["properties"]["name"] = grid_label(row.name, row.community)
        feature["geometry"] = json.loads(row.shape)


def grid_label(name: str | None, community: str | None) -> str:
    """A grid as a person names it: its name with its community's, unless the name holds
    it already (the demo's 六和社区第12网格)."""
    if not community:
        return name or ""
    stem = community.removesuffix("居委会").removesuffix("社区")
    if not name:
        return community
    return name if stem and stem in name else f"{community} {name}"


# -- hexes: the scope's area as context ----------------------------------------------------
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


def _hex_features(conn: Connection, scope: Scope, filters: Filters, resolution: int,
                  zone: str) -> list[dict]:
    """The hot, cold and trending cells of the scope's area."""
    units = _hex_units(conn, scope, resolution)
    if len(units.ids) < MIN_UNITS:
        return []
    early, late = _halves(conn, filters, zone)
    counts = {name: _hex_counts(conn, scope, part, resolution, units.ids)
              for name, part in (("all", filters), ("early", early), ("late", late))}
    return _features(units, counts, "hex")


def _hex_counts(conn, scope: Scope, filters: Filters, resolution: int,
                ids: list) -> np.ndarray:
    found = hex_counts(conn, scope, filters, resolution)
    return np.array([found.get(uid, 0) for uid in ids], dtype=float)


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
