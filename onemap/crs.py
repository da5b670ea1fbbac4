"""Coordinate systems for the ETL: everything the loader stores is WGS84 longitude/latitude.

Sources arrive in three families:

* anything pyproj understands (``"EPSG:2263"``, ``"4326"``, a PROJ string ...), converted with a
  cached :class:`pyproj.Transformer`;
* WGS84 and CGCS2000 (EPSG:4490), treated as one system: they agree to a few centimetres, far
  below what a dashboard can show, and PROJ itself only offers a "ballpark" (null) transformation
  between them;
* the Chinese map systems GCJ-02 ("Mars" coordinates, Amap/Tencent) and BD-09 (Baidu), which are
  deliberate non-linear offsets with no EPSG code, implemented here with numpy.

All functions take and return arrays, longitude first (x, y), and work on any shape.
"""

import functools
import re
from types import MappingProxyType

import numpy as np
import pyproj
import shapely

from onemap.errors import OnemapError

WGS84 = "wgs84"
GCJ02 = "gcj02"
BD09 = "bd09"

# Names people write for the systems pyproj has no (or no useful) name for.  Read-only so the
# module keeps no mutable state besides the lru caches.
_ALIASES = MappingProxyType({
    "wgs84": WGS84, "wgs-84": WGS84, "wgs_84": WGS84, "wgs 84": WGS84,
    "epsg:4326": WGS84, "4326": WGS84,
    "cgcs2000": WGS84, "cgcs-2000": WGS84, "cgcs_2000": WGS84,
    "epsg:4490": WGS84, "4490": WGS84,
    "gcj02": GCJ02, "gcj-02": GCJ02, "gcj_02": GCJ02,
    "bd09": BD09, "bd-09": BD09, "bd_09": BD09,
})
# Geographic CRSs that are WGS84 for our purposes, however pyproj spells them.
_SAME_AS_WGS84 = (pyproj.CRS.from_epsg(4326), pyproj.CRS.from_epsg(4490))

# GCJ-02 is defined on the Krasovsky 1940 ellipsoid.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
# The rectangle the usual GCJ-02 implementations shift; outside it they return input unchanged.
_CHINA_BOX = (72.004, 0.8293, 137.8347, 55.8271)
# BD-09 scales angles by this before taking sin/cos.
_X_PI = np.pi * 3000.0 / 180.0
_BD_DLON, _BD_DLAT = 0.0065, 0.006

# Inverse iterations: 1e-9 degrees is ~0.1 mm; each step shrinks the error by ~1/50 or better,
# so a handful of steps reach it and the cap only guards against non-convergence (NaN, box edge).
_INVERSE_TOL_DEG = 1e-9
_INVERSE_MAX_ITER = 10


class CrsError(OnemapError, ValueError):
    """A coordinate system name that is neither a Chinese map system nor understood by pyproj."""


def _accepted_forms() -> str:
    return ("'wgs84', 'cgcs2000', 'gcj02'/'gcj-02', 'bd09'/'bd-09', an EPSG code such as "
            "'EPSG:4490' or '4326', or any other CRS string pyproj understands")


def normalize_crs(name: str | int) -> str:
    """Return the canonical name: 'wgs84', 'gcj02', 'bd09' or 'EPSG:nnnn'.

    CRSs from another authority keep it ('ESRI:102100'); one with no authority code at all is
    returned as pyproj's string for it.  Raises :class:`CrsError` for anything else.
    """
    if isinstance(name, bool) or not isinstance(name, str | int):
        raise CrsError(f"coordinate system must be a string, got {name!r}; "
                       f"accepted: {_accepted_forms()}")
    return _normalize(str(name).strip())


@functools.lru_cache(maxsize=64)
def _normalize(name: str) -> str:
    """Cached body of normalize_crs: pyproj's parser is slow enough to matter per batch."""
    alias = _ALIASES.get(re.sub(r"\s+", " ", name.lower()))
    if alias:
        return alias
    # pyproj does not take a bare number as an EPSG code.
    user_input = f"EPSG:{name}" if name.isdigit() else name
    try:
        crs = pyproj.CRS.from_user_input(user_input)
    except pyproj.exceptions.CRSError as exc:
        raise CrsError(f"unknown coordinate system {name!r}; accepted: {_accepted_forms()}") \
            from exc
    if any(crs.equals(same, ignore_axis_order=True) for same in _SAME_AS_WGS84):
        return WGS84
    authority = crs.to_authority()
    return f"{authority[0]}:{authority[1]}" if authority else crs.to_string()


@functools.lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> pyproj.Transformer:
    """Build (once per pair) a transformer; always_xy because our arrays are lon/lat, x/y."""
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def _floats(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def in_china(lon, lat) -> np.ndarray:
    """True where (lon, lat) lies in the box GCJ-02 implementations shift."""
    lon, lat = _floats(lon), _floats(lat)
    minx, miny, maxx, maxy = _CHINA_BOX
    return (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)


def _gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 shift (dlon, dlat) in degrees at a WGS84 point; zero outside China."""
    x, y = lon - 105.0, lat - 35.0
    # The published polynomial-plus-sines, in "metres" on the Krasovsky ellipsoid.
    common = 20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + 2.0 / 3.0 * (common
                           + 20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)
                           + 160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)))
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + 2.0 / 3.0 * (common
                           + 20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)
                           + 150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)))
    # Metres to degrees with the meridian and prime-vertical radii of curvature.
    rad = np.radians(lat)
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / (_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_KRASOVSKY_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _invert(forward, x, y, x0: np.ndarray, y0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve forward(u, v) == (x, y) by fixed-point iteration from (x0, y0).

    Both shifts are nearly constant over their own size (Jacobian = identity + at most ~2 %),
    so u <- u - (forward(u) - x) contracts fast.  Points that do not converge (NaN) are
    ignored by the stopping test: NaN >= tol is False.
    """
    u, v = x0, y0
    for _ in range(_INVERSE_MAX_ITER):
        fx, fy = forward(u, v)
        du, dv = fx - x, fy - y
        u, v = u - du, v - dv
        if not (np.any(np.abs(du) >= _INVERSE_TOL_DEG) or np.any(np.abs(dv) >= _INVERSE_TOL_DEG)):
            break
    return u, v


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 to GCJ-02 with the standard closed formula; points outside China are unchanged."""
    lon, lat = _floats(lon), _floats(lat)
    dlon, dlat = _gcj02_offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 to WGS84, the exact inverse of :func:`wgs84_to_gcj02` to ~1e-9 degrees.

    The common one-step formula (subtract the shift evaluated at the GCJ point) is off by up to
    a few metres; iterating removes that, so a round trip returns to within a millimetre.
    """
    lon, lat = _floats(lon), _floats(lat)
    dlon, dlat = _gcj02_offset(lon, lat)
    return _invert(wgs84_to_gcj02, lon, lat, lon - dlon, lat - dlat)


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 to BD-09 with Baidu's published formula (it has no China box: applied everywhere)."""
    lon, lat = _floats(lon), _floats(lat)
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def _bd09_to_gcj02_approx(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The published BD-09 to GCJ-02 formula: evaluates the sin/cos terms at the BD point
    instead of the GCJ one, which leaves errors of a few decimetres."""
    x, y = lon - _BD_DLON, lat - _BD_DLAT
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def bd09_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 to GCJ-02: the published formula, refined until it inverts :func:`gcj02_to_bd09`."""
    lon, lat = _floats(lon), _floats(lat)
    return _invert(gcj02_to_bd09, lon, lat, *_bd09_to_gcj02_approx(lon, lat))


def wgs84_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 to BD-09: BD-09 is defined on top of GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 to WGS84 through GCJ-02."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(x: np.ndarray, y: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinates in ``crs`` to WGS84 (lon, lat); WGS84/CGCS2000 come back unchanged."""
    name = normalize_crs(crs)
    x, y = _floats(x), _floats(y)
    if name == WGS84:
        return x, y
    if name == GCJ02:
        return gcj02_to_wgs84(x, y)
    if name == BD09:
        return bd09_to_wgs84(x, y)
    return _transformer(name, "EPSG:4326").transform(x, y)


def from_wgs84(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 (lon, lat) to ``crs``, e.g. for exports to GCJ-02, BD-09 or CGCS2000."""
    name = normalize_crs(crs)
    lon, lat = _floats(lon), _floats(lat)
    if name == WGS84:
        return lon, lat
    if name == GCJ02:
        return wgs84_to_gcj02(lon, lat)
    if name == BD09:
        return wgs84_to_bd09(lon, lat)
    return _transformer("EPSG:4326", name).transform(lon, lat)


def geometry_to_wgs84(geoms: np.ndarray, crs: str) -> np.ndarray:
    """Convert an array of shapely geometries in ``crs`` to WGS84; Z values are kept."""
    name = normalize_crs(crs)
    if name == WGS84:
        return geoms

    def convert(x, y, *z):
        return (*to_wgs84(x, y, name), *z)

    # include_z=None lets shapely pass z only for geometries that have it, so 2D stays 2D.
    return shapely.transform(geoms, convert, include_z=None, interleaved=False)


def _within(lon: np.ndarray, lat: np.ndarray, bounds, margin: float) -> np.ndarray:
    minx, miny, maxx, maxy = bounds
    return ((lon >= minx - margin) & (lon <= maxx + margin)
            & (lat >= miny - margin) & (lat <= maxy + margin))


def looks_swapped(lon, lat, bounds) -> np.ndarray:
    """True where (lon, lat) is outside ``bounds`` (minx, miny, maxx, maxy) but (lat, lon) is in.

    That is the signature of a source whose latitude and longitude columns were mapped the
    wrong way round, which the loader reports instead of silently storing points at sea.
    """
    lon, lat = _floats(lon), _floats(lat)
    return ~_within(lon, lat, bounds, 0.0) & _within(lat, lon, bounds, 0.0)


def outside(lon, lat, bounds, margin_deg: float = 0.0) -> np.ndarray:
    """True where (lon, lat) is outside ``bounds`` grown by ``margin_deg`` on every side.

    Missing (NaN) coordinates give False: they are not misplaced, and the loader reports them
    separately.
    """
    lon, lat = _floats(lon), _floats(lat)
    present = np.isfinite(lon) & np.isfinite(lat)
    return present & ~_within(lon, lat, bounds, margin_deg)
