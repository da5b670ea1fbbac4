"""Shared helpers of the demo generators: the district as arrays, random streams, points in
polygons, weighted choices, made-up place names and addresses, and a streaming CSV writer.

Everything random takes a :class:`numpy.random.Generator` made by :func:`rng` from the seed
and a stream label, so each generator is deterministic and independent of the others.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely

from democity import catalog

KM_PER_DEG_LAT = 110.57
COORD_DECIMALS = 6           # ~0.1 m; points are tested for containment after rounding
UTM_50N = "EPSG:32650"       # metric CRS for areas (坪山 lies at 114.3°E)
# A grid holds hundreds of doors: with a few dozen, unrelated cases of a hotspot kept naming
# the same one, indistinguishable from a report made twice.
ADDRESSES_PER_GRID = 128


def rng(seed: int, *stream: str | int) -> np.random.Generator:
    """A generator for ``seed`` and a stream label (e.g. ``"cases", 3``), stable across runs."""
    words = [int(seed)] + [zlib.crc32(s.encode()) if isinstance(s, str) else int(s)
                           for s in stream]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


def choice(p: np.ndarray, n: int, gen: np.random.Generator) -> np.ndarray:
    """``n`` indices drawn with probabilities ``p`` (need not be normalised); vectorised."""
    cum = np.cumsum(np.asarray(p, dtype=float))
    idx = np.searchsorted(cum, gen.random(n) * cum[-1], side="right")
    return np.minimum(idx, len(cum) - 1)


def split_admin(admin: gpd.GeoDataFrame):
    """(grids, communities, streets) of an admin GeoDataFrame with a ``level`` column."""
    parts = [admin[admin["level"] == lv].reset_index(drop=True) for lv in (4, 3, 2)]
    return tuple(parts)


def community_label(name: str, street_label: str) -> str:
    """'六联社区居委会' -> '六联社区'; a virtual community is called by its street."""
    if "虚拟" in name:
        return street_label
    for suffix in ("居民委员会", "居委会", "村委会", "村民委员会"):
        name = name.removesuffix(suffix)
    return name if name.endswith(("社区", "村")) else f"{name}社区"


def street_label(name: str) -> str:
    """'深圳坪山综合保税区' -> '综合保税区'; street names stay as they are."""
    return name.removeprefix("深圳").removeprefix("坪山") if "保税" in name else name


@dataclass(frozen=True)
class District:
    """The admin units as arrays. Grids index communities, communities index streets."""

    grid_code: np.ndarray
    grid_geom: np.ndarray          # prepared shapely (multi)polygons, EPSG:4326
    grid_bounds: np.ndarray        # (n, 4) minx, miny, maxx, maxy
    grid_x: np.ndarray             # a point on each grid's surface
    grid_y: np.ndarray
    grid_area_km2: np.ndarray
    grid_comm: np.ndarray          # community index of each grid
    weight: np.ndarray             # population-like density weight per grid, sums to 1
    comm_code: np.ndarray
    comm_label: np.ndarray         # '六联社区'
    comm_street: np.ndarray        # street index of each community
    street_code: np.ndarray
    street_label: np.ndarray       # '坪山街道'
    km_per_deg_lon: float

    @property
    def grid_street(self) -> np.ndarray:
        return self.comm_street[self.grid_comm]

    @property
    def area_km2(self) -> float:
        return float(self.grid_area_km2.sum())

    def km(self, dx_deg, dy_deg):
        """Planar distance in km of degree offsets (equirectangular; fine at district scale)."""
        return np.hypot(np.asarray(dx_deg) * self.km_per_deg_lon,
                        np.asarray(dy_deg) * KM_PER_DEG_LAT)

    def nearest_grids(self, i: int, k: int) -> np.ndarray:
        """Grid ``i`` and its ``k - 1`` nearest grids (by surface point)."""
        d = self.km(self.grid_x - self.grid_x[i], self.grid_y - self.grid_y[i])
        return np.argsort(d, kind="stable")[:k]


def district(grids: gpd.GeoDataFrame, communities: pd.DataFrame, streets: pd.DataFrame,
             seed: int) -> District:
    """Arrays of the admin units, plus the density weights of the grids for ``seed``."""
    comm_codes = communities["code"].astype(str).to_numpy()
    street_codes = streets["code"].astype(str).to_numpy()
    comm_index = {c: i for i, c in enumerate(comm_codes)}
    street_index = {c: i for i, c in enumerate(street_codes)}
    parents = (communities["parent_code"].astype(str) if "parent_code" in communities
               else communities["code"].astype(str).str[:9])
    try:
        grid_comm = np.array([comm_index[str(c)] for c in grids["parent_code"]])
        comm_street = np.array([street_index[str(c)] for c in parents])
    except KeyError as exc:
        raise ValueError(f"admin unit {exc.args[0]} has no parent among the units given") from exc
    geoms = np.asarray(grids.geometry.values, dtype=object)
    shapely.prepare(geoms)
    surface = shapely.point_on_surface(geoms)
    sx, sy = shapely.get_x(surface), shapely.get_y(surface)
    area = gpd.GeoSeries(geoms, crs=grids.crs or "EPSG:4326").to_crs(UTM_50N).area.to_numpy()
    st_labels = np.array([street_label(n) for n in streets["name"]], dtype=object)
    comm_labels = np.array([community_label(n, st_labels[s]) for n, s in
                            zip(communities["name"], comm_street, strict=True)], dtype=object)
    km_lon = 111.32 * np.cos(np.radians(float(np.mean(sy))))
    base = District(
        grids["code"].astype(str).to_numpy(dtype=object), geoms, shapely.bounds(geoms), sx, sy,
        area / 1e6, grid_comm, np.zeros(len(geoms)), comm_codes.astype(object), comm_labels,
        comm_street, street_codes.astype(object), st_labels, km_lon)
    return _with_weights(base, rng(seed, "density"), streets["name"].astype(str).to_numpy())


def _with_weights(d: District, gen: np.random.Generator, street_names) -> District:
    """Lognormal density per grid, higher near its street's centre, low in the bonded zone.

    A street's centre is the grid nearest the area-weighted mean of its grids; the weight
    falls off over ~2 km from it and scales with the square root of the grid's area (big
    grids are hills and parks, not dense housing).
    """
    streets = d.grid_street
    dist = np.zeros(len(d.grid_code))
    for s in range(len(d.street_code)):
        mine = np.flatnonzero(streets == s)
        if not len(mine):
            continue
        a = d.grid_area_km2[mine]
        cx, cy = np.average(d.grid_x[mine], weights=a), np.average(d.grid_y[mine], weights=a)
        centre = mine[np.argmin(d.km(d.grid_x[mine] - cx, d.grid_y[mine] - cy))]
        dist[mine] = d.km(d.grid_x[mine] - d.grid_x[centre], d.grid_y[mine] - d.grid_y[centre])
    w = gen.lognormal(0.0, 0.6, len(dist)) * (0.12 + np.exp(-dist / 1.8))
    w *= np.sqrt(np.maximum(d.grid_area_km2, 1e-3))
    bonded = np.array(["保税" in n for n in street_names])[streets]
    w[bonded] *= 0.1
    return District(**{**d.__dict__, "weight": w / w.sum()})


def points_in_grids(d: District, which: np.ndarray, gen: np.random.Generator,
                    max_rounds: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random point inside grid ``which[i]`` for each i (rounded to 6 decimals).

    Rejection sampling in each grid's bounding box, all grids at once: draw for every row
    still unplaced, keep the draws ``shapely.contains_xy`` accepts, repeat for the rest.
    """
    which = np.asarray(which, dtype=np.int64)
    x = np.full(len(which), np.nan)
    y = np.full(len(which), np.nan)
    todo = np.arange(len(which))
    for _ in range(max_rounds):
        if not len(todo):
            break
        b = d.grid_bounds[which[todo]]
        cx = np.round(b[:, 0] + gen.random(len(todo)) * (b[:, 2] - b[:, 0]), COORD_DECIMALS)
        cy = np.round(b[:, 1] + gen.random(len(todo)) * (b[:, 3] - b[:, 1]), COORD_DECIMALS)
        ok = shapely.contains_xy(d.grid_geom[which[todo]], cx, cy)
        x[todo[ok]], y[todo[ok]] = cx[ok], cy[ok]
        todo = todo[~ok]
    if len(todo):  # slivers: fall back to a point on the surface
        x[todo], y[todo] = d.grid_x[which[todo]], d.grid_y[which[todo]]
    return x, y


def locate(d: District, x: np.ndarray, y: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Index of the candidate grid holding each point, -1 where none does."""
    found = np.full(len(x), -1, dtype=np.int64)
    for g in candidates:
        todo = found < 0
        if not todo.any():
            break
        hit = shapely.contains_xy(d.grid_geom[g], x[todo], y[todo])
        found[np.flatnonzero(todo)[hit]] = g
    return found


def grids_near(d: District, x: float, y: float, radius_km: float) -> np.ndarray:
    """Grids whose bounding box comes within ``radius_km`` of (x, y)."""
    rx, ry = radius_km / d.km_per_deg_lon, radius_km / KM_PER_DEG_LAT
    b = d.grid_bounds
    near = (b[:, 0] <= x + rx) & (b[:, 2] >= x - rx) & (b[:, 1] <= y + ry) & (b[:, 3] >= y - ry)
    return np.flatnonzero(near)


# -- made-up place names -----------------------------------------------------------------------
@dataclass(frozen=True)
class Gazetteer:
    """Made-up roads, estates, villages and parks of each community."""

    roads: list[list[str]]
    estates: list[list[str]]
    villages: list[list[str]]
    parks: list[list[str]]


def gazetteer(d: District, seed: int) -> Gazetteer:
    """Names for every community, unique across the district, fixed by ``seed``."""
    gen = rng(seed, "gazetteer")
    stems = np.array(catalog.PLACE_STEMS, dtype=object)
    suffixes, p = zip(*catalog.ROAD_SUFFIXES, strict=True)
    road_pool = [s + t for s in stems for t in suffixes]
    road_p = np.tile(np.array(p) / sum(p), len(stems))
    n = len(d.comm_code)
    roads = gen.choice(len(road_pool), size=min(8 * n, len(road_pool)), replace=False,
                       p=road_p / road_p.sum())

    def names(pool_suffixes, k, salt):
        pool = [s + t for s in stems for t in pool_suffixes]
        pick = rng(seed, "gazetteer", salt).permutation(len(pool))
        return [[pool[pick[(i * k + j) % len(pool)]] for j in range(k)] for i in range(n)]

    return Gazetteer(
        [[road_pool[r] for r in roads[i * 8:(i + 1) * 8]] or [road_pool[0]] for i in range(n)],
        names(catalog.ESTATE_SUFFIXES, 6, "estates"),
        names(catalog.VILLAGE_SUFFIXES, 4, "villages"),
        names(("公园",), 3, "parks"),
    )


def place_prefix(d: District, comm: int) -> str:
    """'坪山区坪山街道六联社区' (the street only, for a virtual community)."""
    street = d.street_label[d.comm_street[comm]]
    label = d.comm_label[comm]
    return f"{catalog.DISTRICT}{street}" + ("" if label == street else label)


def addresses(d: District, gaz: Gazetteer, comm: int, k: int, gen: np.random.Generator):
    """``k`` plausible addresses in community ``comm``."""
    prefix = place_prefix(d, comm)
    roads, estates, villages = gaz.roads[comm], gaz.estates[comm], gaz.villages[comm]
    out = []
    for form in gen.choice(4, size=k, p=[0.45, 0.25, 0.2, 0.1]):
        r = roads[gen.integers(len(roads))]
        if form == 0:
            out.append(f"{prefix}{r}{gen.integers(1, 300)}号")
        elif form == 1:
            out.append(f"{prefix}{estates[gen.integers(len(estates))]}{gen.integers(1, 30)}栋")
        elif form == 2:
            v = villages[gen.integers(len(villages))]
            out.append(f"{prefix}{v}{gen.integers(1, 20)}巷{gen.integers(1, 60)}号")
        else:
            other = roads[(roads.index(r) + 1) % len(roads)]
            out.append(f"{prefix}{r}与{other}交汇处")
    return out


def address_pool(d: District, gaz: Gazetteer, seed: int) -> pa.Array:
    """``ADDRESSES_PER_GRID`` addresses for each grid, grid i's at i*K ... i*K+K-1."""
    gen = rng(seed, "addresses")
    pool = []
    for g in range(len(d.grid_code)):
        pool += addresses(d, gaz, int(d.grid_comm[g]), ADDRESSES_PER_GRID, gen)
    return pa.array(pool, type=pa.string())


# -- output -----------------------------------------------------------------------------------
class CsvSink:
    """A UTF-8 (with BOM, as Excel-friendly exports have) CSV written one Arrow table at a time.

    Values are quoted only when needed; timestamps must arrive as strings.
    """

    def __init__(self, path: str | Path, schema: pa.Schema):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self._file = self.path.open("wb")
        self._file.write(b"\xef\xbb\xbf" + ",".join(schema.names).encode("utf-8") + b"\n")
        self._writer = pacsv.CSVWriter(self._file, schema, write_options=pacsv.WriteOptions(
            include_header=False, quoting_style="needed"))
        self.rows = 0

    def write(self, columns: dict) -> None:
        table = pa.table({n: columns[n] for n in self.schema.names}, schema=self.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        self._file.close()

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def text_schema(names: list[str], types: dict[str, pa.DataType] | None = None) -> pa.Schema:
    """A schema of strings, except the columns ``types`` names."""
    types = types or {}
    return pa.schema([(n, types.get(n, pa.string())) for n in names])


def time_text(seconds: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Local epoch seconds as 'YYYY-MM-DD HH:MM:SS' strings (null where ``missing``)."""
    values = np.asarray(seconds, dtype="int64").astype("datetime64[s]")
    mask = None if missing is None else np.asarray(missing, dtype=bool)
    return pa.array(values, type=pa.timestamp("s"), mask=mask).cast(pa.string())


def epoch(t: np.datetime64) -> int:
    """Seconds since 1970 of a (naive, local) datetime64."""
    return int(np.datetime64(t, "s").astype("int64"))
