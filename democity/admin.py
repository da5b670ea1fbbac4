"""The admin hierarchy of the demo city 坪山区: district, streets, communities and grids.

The district is the real outline (stored in GCJ-02, converted to WGS84 and snapped to a 1e-7
degree grid, about 1 cm).  Streets and communities carry their real codes and names, but their
shapes are synthetic; grids are synthetic throughout.  Streets sit roughly where the real ones
are (碧岭 west, 马峦 south, 坑梓 north-east ...), the 综合保税区 is one compact ~3 km² cell
inside the district.

Exact tiling
------------
Every level partitions its parent with no gap and no overlap, in floating point, not merely
up to a tolerance.  Overlaying a Voronoi cell with the parent (even with ``grid_size``) cannot
give that: where a cell edge crosses a parent edge, the crossing is rounded to the grid and the
parent edge bends through it, so the children's union differs from the parent by slivers.
Instead each split builds one planar subdivision whose every vertex is already on the grid:

1. seeds come from a few Lloyd (k-means) iterations on random points inside the parent, in a
   local frame where one unit is the same distance east and north;
2. the Voronoi edges of the seeds are clipped to the parent; where an edge meets the parent's
   boundary its end moves to the nearest parent *vertex* (never a new point on a parent edge),
   its other vertices are rounded to the grid, and on levels that are split again it is
   densified first (every ~25 m), so the next level finds a vertex nearby to end on;
3. the parent's rings, cut at those vertices, and the cut lines are polygonized into faces:
   faces share identical edges, and their outer boundary is the parent's own vertex list;
4. faces are labelled (nearest seed, or k-means on the faces to group them into streets and
   communities), labels are made contiguous by moving each detached part to the neighbour it
   shares most border with, and each unit is the coverage union of its faces.

A split that fails its own check (coverage valid, union identical to the parent) is redrawn
with the next random stream, so the output stays deterministic for a seed.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Geod
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from onemap.crs import GCJ02, geometry_to_wgs84

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "pingshan"
OUTLINE_FILE = DATA_DIR / "district_440310_gcj02.geojson"
STREETS_FILE = DATA_DIR / "streets.csv"
COMMUNITIES_FILE = DATA_DIR / "communities.csv"

DISTRICT_CODE, DISTRICT_NAME = "440310", "坪山区"
# Degrees; ~1.1 cm north-south, ~1.0 cm east-west at 22.7°N.
GRID_SIZE = 1e-7
LEVELS = {1: "district", 2: "street", 3: "community", 4: "grid"}
COLUMNS = ["code", "name", "level", "parent_code", "area_km2", "geometry"]

# Rough real positions (lon, lat) of the six 街道; the street k-means starts from them, so each
# street lands near where it really is.  The bonded zone takes the interior cell nearest to
# BONDED_AT, a synthetic but plausible spot in the industrial belt north-east of the centre.
STREET_ANCHORS = {
    "440310001": (114.352, 22.700),  # 坪山街道, centre
    "440310002": (114.330, 22.650),  # 马峦街道, south (马峦山)
    "440310003": (114.290, 22.665),  # 碧岭街道, west
    "440310004": (114.410, 22.685),  # 石井街道, east
    "440310005": (114.385, 22.755),  # 坑梓街道, north-east
    "440310006": (114.345, 22.745),  # 龙田街道, north
}
BONDED_CODE = "440310401"
BONDED_AT = (114.375, 22.718)
BONDED_KM2 = 3.0  # target size of one street-level cell, so the bonded zone is one cell
ATOMS_PER_COMMUNITY = 6  # cells a street is cut into per community before grouping
MIN_GRIDS = 4
# Accepted area / median-of-siblings ranges: a cut outside them is redrawn (the best of all
# attempts is kept if none fits).  Streets exclude the bonded zone.
REGION_RATIO = (0.5, 2.0)  # streets, communities
CELL_RATIO = (0.3, 3.0)  # grids

# Local frame for k-means and Voronoi: x scaled by cos(lat) so cells are compact on the ground.
_LON0, _LAT0 = 114.356, 22.70
_COS0 = math.cos(math.radians(_LAT0))
_KM_PER_DEG = 111.32
_DENSIFY_DEG = 2.5e-4  # ~25 m between vertices of boundaries that are split again
_ON_BOUNDARY_DEG = 1e-9
_SNAP_CANDIDATES = 6
_SAMPLES_PER_SEED, _MIN_SAMPLES = 120, 3000
_LLOYD_ITERATIONS = 15
_GROUP_ITERATIONS = 30
_BALANCE_STEP = 0.3
_MAX_ATTEMPTS = 30
_MAX_ROUNDS = 50
# The cut line must run through the parent's interior, touching its boundary at most at its
# ends: DE-9IM interior/interior 1, interior/boundary F, interior/exterior F, ends not outside.
_INSIDE_PATTERN = "1FF**F***"

_GEOD = Geod(ellps="WGS84")


class DemoAdminError(RuntimeError):
    """A split that kept failing its exactness check (should not happen for sane inputs)."""


# --------------------------------------------------------------------------- inputs


def load_outline() -> MultiPolygon:
    """The real outline of 坪山区 in WGS84, snapped to GRID_SIZE."""
    gcj = gpd.read_file(OUTLINE_FILE).geometry.to_numpy()
    (outline,) = shapely.set_precision(geometry_to_wgs84(gcj, GCJ02), GRID_SIZE)
    return outline if isinstance(outline, MultiPolygon) else MultiPolygon([outline])


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- geometry helpers


def _frame(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return np.column_stack(((xy[:, 0] - _LON0) * _COS0, xy[:, 1] - _LAT0))


def _unframe(xy: np.ndarray) -> np.ndarray:
    return np.column_stack((xy[:, 0] / _COS0 + _LON0, xy[:, 1] + _LAT0))


def _on_grid(coords: np.ndarray) -> np.ndarray:
    """Round coordinates to GRID_SIZE exactly as GEOS does it."""
    rounded = shapely.get_coordinates(
        shapely.set_precision(shapely.multipoints(coords), GRID_SIZE, mode="pointwise"))
    assert len(rounded) == len(coords)
    return rounded


def _rng(key: tuple[int, ...], attempt: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([*key, attempt]))


def _sq_dist(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared distances, points x centres (elementwise: no BLAS, so bit-for-bit repeatable)."""
    dx = points[:, 0, None] - centers[None, :, 0]
    dy = points[:, 1, None] - centers[None, :, 1]
    return dx * dx + dy * dy


def _nearest(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    return _sq_dist(points, centers).argmin(axis=1)


def _area_km2(geoms) -> np.ndarray:
    return np.array([abs(_GEOD.geometry_area_perimeter(g)[0]) / 1e6 for g in geoms])


def _approx_km2(poly) -> float:
    return poly.area * _KM_PER_DEG ** 2 * _COS0


# --------------------------------------------------------------------------- seeds


def _sample(poly: Polygon, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniform random points inside ``poly``, in the local frame."""
    minx, miny, maxx, maxy = poly.bounds
    share = poly.area / ((maxx - minx) * (maxy - miny))
    shapely.prepare(poly)
    chunks, got = [], 0
    while got < count:
        pts = rng.uniform((minx, miny), (maxx, maxy), size=(int(count / share * 1.2) + 16, 2))
        pts = pts[shapely.contains_xy(poly, pts[:, 0], pts[:, 1])]
        chunks.append(pts)
        got += len(pts)
    return _frame(np.concatenate(chunks)[:count])


def _plusplus(points: np.ndarray, k: int, rng: np.random.Generator,
              weights: np.ndarray | None = None) -> np.ndarray:
    """k-means++ initial centres."""
    w = np.ones(len(points)) if weights is None else weights
    first = rng.choice(len(points), p=w / w.sum())
    centers = [points[first]]
    d2 = ((points - points[first]) ** 2).sum(axis=1)
    for _ in range(1, k):
        p = w * d2
        i = rng.choice(len(points), p=p / p.sum())
        centers.append(points[i])
        d2 = np.minimum(d2, ((points - points[i]) ** 2).sum(axis=1))
    return np.array(centers)


def _lloyd(points: np.ndarray, centers: np.ndarray, iterations: int,
           weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lloyd iterations; returns the centres and the final labels."""
    w = np.ones(len(points)) if weights is None else weights
    centers = centers.copy()
    k = len(centers)
    for _ in range(iterations):
        labels = _nearest(points, centers)
        total = np.bincount(labels, weights=w, minlength=k)
        sx = np.bincount(labels, weights=w * points[:, 0], minlength=k)
        sy = np.bincount(labels, weights=w * points[:, 1], minlength=k)
        moved = total > 0
        centers[moved] = np.column_stack((sx, sy))[moved] / total[moved, None]
    return centers, _nearest(points, centers)


def _balanced(points: np.ndarray, weights: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Group weighted points around ``centers`` into groups of similar total weight.

    Lloyd iterations on a power diagram: each group's offset grows while it is short of an
    equal share and shrinks while it is over, so big groups give border points to small ones.
    """
    centers = centers.copy()
    k = len(centers)
    offsets = np.zeros(k)
    share = weights.sum() / k
    # A squared distance comparable to a group's size, to scale the offsets.
    scale = (np.ptp(points[:, 0]) * np.ptp(points[:, 1])) / k
    for step in np.linspace(_BALANCE_STEP, 0.0, _GROUP_ITERATIONS, endpoint=False):
        d2 = _sq_dist(points, centers) - offsets
        labels = d2.argmin(axis=1)
        total = np.bincount(labels, weights=weights, minlength=k)
        offsets += step * scale * (share - total) / share
        sx = np.bincount(labels, weights=weights * points[:, 0], minlength=k)
        sy = np.bincount(labels, weights=weights * points[:, 1], minlength=k)
        moved = total > 0
        centers[moved] = np.column_stack((sx, sy))[moved] / total[moved, None]
    d2 = _sq_dist(points, centers) - offsets
    return d2.argmin(axis=1)


def _seeds(poly: Polygon, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """n well-spread seeds inside ``poly`` (local frame), or None if two coincide."""
    pts = _sample(poly, max(_MIN_SAMPLES, _SAMPLES_PER_SEED * n), rng)
    centers, labels = _lloyd(pts, _plusplus(pts, n, rng), _LLOYD_ITERATIONS)
    # The centroid of a cluster in a non-convex parent may fall outside it: take the cluster's
    # sample nearest to the centroid instead.
    seeds = np.empty_like(centers)
    for j in range(n):
        members = pts[labels == j]
        if len(members) == 0:
            return None
        seeds[j] = members[((members - centers[j]) ** 2).sum(axis=1).argmin()]
    return None if len(np.unique(seeds, axis=0)) < n else seeds


# --------------------------------------------------------------------------- exact split


def _ring_vertex_candidates(point: np.ndarray, rings, ring_cum) -> list[tuple[int, int]]:
    """Parent vertices nearest, along the ring, to a crossing on the parent's boundary."""
    pt = Point(point)
    ri = int(np.argmin([ring.distance(pt) for ring in rings]))
    cum = ring_cum[ri]
    along = np.abs(cum[:-1] - rings[ri].project(pt))
    along = np.minimum(along, cum[-1] - along)
    order = np.argsort(along, kind="stable")[:_SNAP_CANDIDATES]
    return [(ri, int(v)) for v in order]


def _cut_line(piece: LineString, parent: Polygon, rings, ring_xy, ring_cum,
              densify: float | None):
    """The on-grid polyline for one clipped Voronoi edge, and the parent vertices it ends on.

    Returns None when no nearby choice of end vertices keeps the line inside the parent (the
    edge only clips a corner of it): the edge is then dropped.
    """
    coords = shapely.get_coordinates(shapely.segmentize(piece, densify) if densify else piece)
    ends = shapely.points(coords[[0, -1]])
    at_boundary = shapely.distance(ends, parent.boundary) < _ON_BOUNDARY_DEG
    keep = np.ones(len(coords), dtype=bool)
    if densify:
        # Leave room before the end moves to a parent vertex up to half a parent edge away.
        for end, on in zip((0, -1), at_boundary, strict=True):
            if on:
                near = np.hypot(*(coords[1:-1] - coords[end]).T) < densify / 2
                keep[1:-1] &= ~near
    coords = _on_grid(coords[keep])
    options = [_ring_vertex_candidates(coords[end], rings, ring_cum) if on else [None]
               for end, on in zip((0, -1), at_boundary, strict=True)]
    combos = sorted(((a, b) for a in range(len(options[0])) for b in range(len(options[1]))),
                    key=lambda ab: (ab[0] + ab[1], ab))
    for a, b in combos:
        start, stop = options[0][a], options[1][b]
        if start is not None and start == stop:
            continue
        line = coords.copy()
        if start is not None:
            line[0] = ring_xy[start[0]][start[1]]
        if stop is not None:
            line[-1] = ring_xy[stop[0]][stop[1]]
        line = line[np.r_[True, np.any(np.diff(line, axis=0) != 0, axis=1)]]
        if len(line) < 2:
            continue
        geom = LineString(line)
        if shapely.relate_pattern(geom, parent, _INSIDE_PATTERN):
            return geom, [v for v in (start, stop) if v is not None]
    return None


def _faces(parent: Polygon, seeds: np.ndarray, densify: float | None) -> np.ndarray | None:
    """Cut ``parent`` along the Voronoi edges of ``seeds`` into faces that tile it exactly."""
    minx, miny, maxx, maxy = parent.bounds
    (fx0, fy0), (fx1, fy1) = _frame(np.array([[minx, miny], [maxx, maxy]]))
    pad = 0.1 * max(fx1 - fx0, fy1 - fy0)
    edges = shapely.voronoi_polygons(shapely.multipoints(seeds), only_edges=True,
                                     extend_to=shapely.box(fx0 - pad, fy0 - pad,
                                                           fx1 + pad, fy1 + pad))
    edges = shapely.transform(edges, _unframe)
    shapely.prepare(parent)
    rings = [parent.exterior, *parent.interiors]
    ring_xy = [np.asarray(r.coords) for r in rings]
    ring_cum = [np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
                for xy in ring_xy]

    lines, used, seen = [], set(), set()
    for piece in shapely.get_parts(shapely.intersection(edges, parent)):
        if not isinstance(piece, LineString) or piece.is_empty:
            continue
        cut = _cut_line(piece, parent, rings, ring_xy, ring_cum, densify)
        if cut is None:
            continue
        wkb = shapely.normalize(cut[0]).wkb
        if wkb in seen:
            continue
        seen.add(wkb)
        lines.append(cut[0])
        used.update(cut[1])

    for ri, xy in enumerate(ring_xy):
        n = len(xy) - 1
        stops = sorted(v for r, v in used if r == ri)
        if not stops:
            lines.append(LineString(xy))
            continue
        for a, b in zip(stops, [*stops[1:], stops[0] + n], strict=True):
            lines.append(LineString(xy[np.arange(a, b + 1) % n]))

    polys, cuts, _dangles, invalid = shapely.polygonize_full(lines)
    if not cuts.is_empty or not invalid.is_empty:
        return None
    faces = [p for p in shapely.get_parts(polys) if parent.contains(p.point_on_surface())]
    faces = np.array(faces, dtype=object)
    return faces if _tiles(faces, parent) else None


def _tiles(children, parent) -> bool:
    """True if ``children`` partition ``parent`` exactly: no overlap, no gap, same outline."""
    if len(children) == 0 or not shapely.coverage_is_valid(children):
        return False
    union = shapely.coverage_union_all(children)
    return shapely.symmetric_difference(union, parent).area == 0.0


# --------------------------------------------------------------------------- labelling


def _neighbours(faces: np.ndarray) -> list[dict[int, float]]:
    """For each face, the faces it shares a border with and the border's length."""
    tree = shapely.STRtree(faces)
    i, j = tree.query(faces, predicate="intersects")
    mask = i < j
    i, j = i[mask], j[mask]
    rings = shapely.boundary(faces)
    shared = shapely.length(shapely.intersection(rings[i], rings[j]))
    out: list[dict[int, float]] = [{} for _ in faces]
    for a, b, length in zip(i.tolist(), j.tolist(), shared.tolist(), strict=True):
        if length > 0:
            out[a][b] = length
            out[b][a] = length
    return out


def _components(members: list[int], labels: np.ndarray, nbrs) -> list[list[int]]:
    label, left, comps = labels[members[0]], set(members), []
    while left:
        stack = [min(left)]
        left.discard(stack[0])
        comp = []
        while stack:
            f = stack.pop()
            comp.append(f)
            for g in nbrs[f]:
                if g in left and labels[g] == label:
                    left.discard(g)
                    stack.append(g)
        comps.append(sorted(comp))
    return comps


def _contiguous(areas: np.ndarray, labels: np.ndarray, nbrs,
                locked: frozenset[int] = frozenset()) -> np.ndarray | None:
    """Move every detached part of a label to the neighbour label it shares most border with."""
    labels = labels.copy()
    for _ in range(_MAX_ROUNDS):
        changed = False
        for label in np.unique(labels).tolist():
            members = np.flatnonzero(labels == label).tolist()
            if not members:
                continue
            comps = _components(members, labels, nbrs)
            if len(comps) < 2:
                continue
            comps.sort(key=lambda c: (-areas[c].sum(), c[0]))
            for comp in comps[1:]:
                border: dict[int, float] = defaultdict(float)
                for f in comp:
                    for g, length in nbrs[f].items():
                        if labels[g] != label:
                            border[int(labels[g])] += length
                choices = {k: v for k, v in border.items() if k not in locked} or border
                if not choices:
                    return None
                labels[comp] = max(sorted(choices), key=choices.__getitem__)
                changed = True
        if not changed:
            return labels
    return None


def _merge(parent: Polygon, faces: np.ndarray, labels: np.ndarray, n: int,
           locked: frozenset[int] = frozenset()) -> list[Polygon] | None:
    """Union the faces of each label into one contiguous polygon; None if that fails."""
    labels = _contiguous(shapely.area(faces), labels, _neighbours(faces), locked)
    if labels is None or set(labels.tolist()) != set(range(n)):
        return None
    units = []
    for j in range(n):
        parts = shapely.get_parts(shapely.coverage_union_all(faces[labels == j]))
        if len(parts) != 1:
            return None
        units.append(parts[0])
    return units if _tiles(np.array(units, dtype=object), parent) else None


def _cells(parent: Polygon, n: int, key: tuple[int, ...],
           densify: float | None = None) -> list[Polygon]:
    """n compact, contiguous polygons tiling ``parent`` exactly (Voronoi cells of k-means)."""
    if n == 1:
        return [parent]
    best = None
    for attempt in range(_MAX_ATTEMPTS):
        rng = _rng(key, attempt)
        seeds = _seeds(parent, n, rng)
        faces = None if seeds is None else _faces(parent, seeds, densify)
        if faces is None:
            continue
        points = shapely.get_coordinates(shapely.point_on_surface(faces))
        units = _merge(parent, faces, _nearest(_frame(points), seeds), n)
        if units is None:
            continue
        misfit = _misfit(units, CELL_RATIO)
        if misfit <= 1.0:
            return units
        if best is None or misfit < best[0]:
            best = (misfit, units)
    if best is None:
        raise DemoAdminError(f"could not cut {n} cells from unit {key}")
    return best[1]


def _regions(parent: Polygon, k: int, key: tuple[int, ...], atoms: int,
             anchors: np.ndarray | None = None,
             reserve_at: tuple[float, float] | None = None) -> list[Polygon]:
    """k contiguous regions of comparable size tiling ``parent``, each a group of cells.

    The parent is cut into ``atoms`` Voronoi cells; weighted k-means on the cells (from
    ``anchors``, lon/lat, or k-means++) groups them.  With ``reserve_at`` one more region is
    returned last: the single cell nearest that point not touching the parent's boundary.
    """
    if k == 1 and reserve_at is None:
        return [parent]
    best = None
    for attempt in range(_MAX_ATTEMPTS):
        rng = _rng(key, attempt)
        seeds = _seeds(parent, atoms, rng)
        faces = None if seeds is None else _faces(parent, seeds, _DENSIFY_DEG)
        if faces is None:
            continue
        centroids = _frame(shapely.get_coordinates(shapely.centroid(faces)))
        areas = shapely.area(faces)
        labels = np.full(len(faces), -1)
        free = np.ones(len(faces), dtype=bool)
        locked: frozenset[int] = frozenset()
        if reserve_at is not None:
            inner = ~shapely.intersects(faces, parent.boundary)
            if not inner.any():
                continue
            dist = np.hypot(*(centroids - _frame(np.array(reserve_at))).T)
            pick = int(np.argmin(np.where(inner, dist, np.inf)))
            labels[pick], free[pick], locked = k, False, frozenset({k})
        start = (_frame(anchors) if anchors is not None
                 else _plusplus(centroids[free], k, rng, areas[free]))
        labels[free] = _balanced(centroids[free], areas[free], start)
        n = k + (reserve_at is not None)
        units = _merge(parent, faces, labels, n, locked)
        if units is None:
            continue
        misfit = _misfit(units[:k], REGION_RATIO)
        if misfit <= 1.0:
            return units
        if best is None or misfit < best[0]:
            best = (misfit, units)
    if best is None:
        raise DemoAdminError(f"could not group unit {key} into {k} regions")
    return best[1]


def _misfit(units: list[Polygon], bounds: tuple[float, float]) -> float:
    """How far the units' areas stray from their median: at most 1 when within ``bounds``."""
    ratio = shapely.area(np.array(units, dtype=object))
    ratio = ratio / np.median(ratio)
    low, high = bounds
    return max(low / ratio.min(), ratio.max() / high)


def _reading_order(polys: list[Polygon]) -> list[int]:
    """Indices of ``polys`` in reading order: bands north to south, west to east in a band."""
    xy = _frame(shapely.get_coordinates(shapely.centroid(np.array(polys, dtype=object))))
    height = math.sqrt(np.mean(shapely.area(np.array(polys, dtype=object))))
    band = np.floor((xy[:, 1].max() - xy[:, 1]) / height)
    return sorted(range(len(polys)), key=lambda i: (band[i], xy[i, 0]))


def _allocate(areas: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """Split ``total`` in proportion to ``areas``, at least ``minimum`` each, summing to total."""
    quota = total * areas / areas.sum()
    counts = np.maximum(minimum, np.round(quota)).astype(int)
    while counts.sum() > total and (counts > minimum).any():
        over = np.where(counts > minimum, counts - quota, -np.inf)
        counts[int(np.argmax(over))] -= 1
    while counts.sum() < total:
        counts[int(np.argmax(quota - counts))] += 1
    return counts


def _grid_name(community_name: str, number: int) -> str:
    base = community_name.removesuffix("居委会").removesuffix("社区")
    return f"{base}社区第{number:02d}网格"


# --------------------------------------------------------------------------- public API


def build_admin(seed: int = 7, grids: int = 450) -> gpd.GeoDataFrame:
    """The four admin levels of 坪山区 in EPSG:4326, each level tiling its parent exactly.

    Columns: code, name, level (1 district, 2 street, 3 community, 4 grid), parent_code (None
    for the district), area_km2 (on the WGS84 ellipsoid) and geometry (a MultiPolygon, one part
    for every unit below the district).  The same seed gives the same output byte for byte.
    """
    district = load_outline()
    if len(district.geoms) != 1:
        raise DemoAdminError("the district outline is expected to be one polygon")
    outline = district.geoms[0]
    streets = _read_csv(STREETS_FILE)
    communities = _read_csv(COMMUNITIES_FILE)
    rows = [(DISTRICT_CODE, DISTRICT_NAME, 1, None, district)]

    # Streets: the six 街道 grow from their anchors, the bonded zone is one reserved cell.
    plain = [s for s in streets if s["street_code"] != BONDED_CODE]
    anchors = np.array([STREET_ANCHORS[s["street_code"]] for s in plain])
    atoms = max(len(streets) + 1, round(_approx_km2(outline) / BONDED_KM2))
    shapes = _regions(outline, len(plain), (seed, 2, 0), atoms, anchors, BONDED_AT)
    street_shape = {s["street_code"]: shape for s, shape in zip(plain, shapes[:-1], strict=True)}
    street_shape[BONDED_CODE] = shapes[-1]
    for s in streets:
        rows.append((s["street_code"], s["street_name"], 2, DISTRICT_CODE,
                     street_shape[s["street_code"]]))

    # Communities: each street's cells grouped into its communities, numbered north to south.
    community_shape = {}
    for index, s in enumerate(streets):
        members = [c for c in communities if c["street_code"] == s["street_code"]]
        shapes = _regions(street_shape[s["street_code"]], len(members), (seed, 3, index),
                          ATOMS_PER_COMMUNITY * len(members))
        for c, i in zip(members, _reading_order(shapes), strict=True):
            community_shape[c["community_code"]] = shapes[i]
            rows.append((c["community_code"], c["community_name"], 3, s["street_code"],
                         shapes[i]))

    # Grids: Voronoi cells of each community, as many as its share of the area.
    counts = _allocate(_area_km2([community_shape[c["community_code"]] for c in communities]),
                       grids, MIN_GRIDS)
    for index, (c, n) in enumerate(zip(communities, counts.tolist(), strict=True)):
        code = c["community_code"]
        cells = _cells(community_shape[code], n, (seed, 4, index))
        for number, i in enumerate(_reading_order(cells), start=1):
            rows.append((f"{code}{number:03d}", _grid_name(c["community_name"], number), 4,
                         code, cells[i]))

    geoms = [g if isinstance(g, MultiPolygon) else MultiPolygon([g]) for *_, g in rows]
    frame = gpd.GeoDataFrame(
        {"code": [r[0] for r in rows], "name": [r[1] for r in rows],
         "level": np.array([r[2] for r in rows], dtype=np.int64),
         "parent_code": pd.Series([r[3] for r in rows], dtype=object),
         "area_km2": _area_km2(geoms)},
        geometry=geoms, crs="EPSG:4326")
    return frame[COLUMNS]


def write_admin(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write a GeoPackage with one layer per level: district, street, community, grid."""
    path = Path(path)
    path.unlink(missing_ok=True)
    for level, layer in LEVELS.items():
        part = gdf[gdf["level"] == level][["code", "name", "parent_code", "area_km2",
                                           "geometry"]].copy()
        part["parent_code"] = part["parent_code"].astype("string")
        pyogrio.write_dataframe(part, path, layer=layer, driver="GPKG", promote_to_multi=True)
