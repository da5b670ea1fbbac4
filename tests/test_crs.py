"""Coordinate systems (onemap.crs): round trips, known points, the 坪山 outline, swapped lat/lon."""

import numpy as np
import pyproj
import pytest
import shapely

from onemap import crs

GEOD = pyproj.Geod(ellps="WGS84")
PINGSHAN_BOX = (114.30, 22.62, 114.45, 22.78)  # minx, miny, maxx, maxy
CHINA_BOX = (73.5, 18.0, 135.0, 53.5)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in metres on WGS84, element-wise."""
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(lon1, lat1, lon2, lat2)
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def grid(box, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    minx, miny, maxx, maxy = box
    lon, lat = np.meshgrid(np.linspace(minx, maxx, n), np.linspace(miny, maxy, n))
    return lon.ravel(), lat.ravel()


# --- round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize("box", [PINGSHAN_BOX, CHINA_BOX], ids=["pingshan", "china"])
@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_round_trip_is_below_a_centimetre(box, system):
    lon, lat = grid(box)
    back = crs.to_wgs84(*crs.from_wgs84(lon, lat, system), system)
    assert metres(lon, lat, *back).max() < 0.01


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_inverse_then_forward_returns_the_input(system):
    # The other direction: a GCJ/BD point read from a map, to WGS84 and back.
    lon, lat = grid(PINGSHAN_BOX, 40)
    back = crs.from_wgs84(*crs.to_wgs84(lon, lat, system), system)
    assert metres(lon, lat, *back).max() < 0.01


def test_gcj02_shift_at_pingshan_is_a_few_hundred_metres():
    lon, lat = grid(PINGSHAN_BOX, 20)
    shift = metres(lon, lat, *crs.wgs84_to_gcj02(lon, lat))
    assert shift.min() > 200 and shift.max() < 700


def test_points_outside_china_are_not_shifted_by_gcj02():
    lon = np.array([-73.9986, -0.1276, 151.2093, 140.0])  # New York, London, Sydney, Japan
    lat = np.array([40.6608, 51.5072, -33.8688, 36.0])
    for convert in (crs.to_wgs84, crs.from_wgs84):
        got_lon, got_lat = convert(lon, lat, "gcj02")
        np.testing.assert_array_equal(got_lon, lon)
        np.testing.assert_array_equal(got_lat, lat)


def test_missing_coordinates_stay_missing_and_do_not_stall_the_others():
    lon, lat = np.array([114.35, np.nan]), np.array([22.70, 22.70])
    wl, wt = crs.to_wgs84(lon, lat, "gcj02")
    assert np.isnan(wl[1]) and np.isfinite(wl[0]) and np.isfinite(wt[0])
    back = crs.from_wgs84(wl[:1], wt[:1], "gcj02")
    assert metres(lon[0], lat[0], *back)[0] < 0.01


def test_scalars_and_2d_arrays_keep_their_shape():
    lon, lat = crs.to_wgs84(114.35, 22.70, "bd09")
    assert np.shape(lon) == () and np.shape(lat) == ()
    lon2, lat2 = grid(PINGSHAN_BOX, 4)
    out = crs.to_wgs84(lon2.reshape(4, 4), lat2.reshape(4, 4), "gcj02")
    assert out[0].shape == (4, 4)


# --- independent implementations ---------------------------------------------------------------

# wgs84 -> (gcj02, bd09) recorded from eviltransform 0.1.1 (googollee), so this check runs even
# where the package is not installed.  eviltransform scales the shift with a = 6378137 m instead
# of Krasovsky's 6378245 m: 17 ppm of a ~600 m shift, i.e. its values differ by ~1 cm.
EVILTRANSFORM_POINTS = [
    # wgs84 lon, lat; gcj02 lon, lat; bd09 lon, lat
    ((116.3975, 39.9087), (116.40374367837322, 39.91010352310999),
     (116.41011669230353, 39.91644277301285)),  # 天安门
    ((114.3514, 22.7088), (114.35632433338655, 22.706100670862217),
     (114.36277668183085, 22.712441219940093)),  # 坪山
    ((121.4737, 31.2304), (121.47822313586518, 31.228457704689244),
     (121.48478154542994, 31.234310559473126)),  # 上海 人民广场
]


@pytest.mark.parametrize("wgs, gcj, bd", EVILTRANSFORM_POINTS)
def test_recorded_eviltransform_values(wgs, gcj, bd):
    assert metres(*wgs, *crs.to_wgs84(*gcj, "gcj02")) < 0.02
    assert metres(*gcj, *crs.from_wgs84(*wgs, "gcj02")) < 0.02
    assert metres(*bd, *crs.from_wgs84(*wgs, "bd09")) < 0.02
    assert metres(*wgs, *crs.to_wgs84(*bd, "bd09")) < 0.02


def test_matches_eviltransform_package():
    et = pytest.importorskip("eviltransform")  # latitude first in its API
    lon, lat = grid(CHINA_BOX, 25)
    for lo, la in zip(lon, lat, strict=True):
        gcj_lat, gcj_lon = et.wgs2gcj(la, lo)
        assert metres(gcj_lon, gcj_lat, *crs.wgs84_to_gcj02(lo, la)) < 0.02
        bd_lat, bd_lon = et.wgs2bd(la, lo)
        assert metres(bd_lon, bd_lat, *crs.wgs84_to_bd09(lo, la)) < 0.02
        # Its exact inverse is a bisection stopped at 1e-6 degrees (~0.1 m).
        exact_lat, exact_lon = et.gcj2wgs_exact(la, lo)
        assert metres(exact_lon, exact_lat, *crs.gcj02_to_wgs84(lo, la)) < 0.25
        # Our inverses, pushed through its forward formulas, land back on the input.
        wl, wt = crs.gcj02_to_wgs84(lo, la)
        assert metres(lo, la, *et.wgs2gcj(wt, wl)[::-1]) < 0.02
        gl, gt = crs.bd09_to_gcj02(lo, la)
        assert metres(lo, la, *et.gcj2bd(gt, gl)[::-1]) < 0.01


# --- the real 坪山 outline ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pingshan_gcj02(shared_data) -> shapely.MultiPolygon:
    path = shared_data / "pingshan" / "district_440310_gcj02.geojson"
    return shapely.from_geojson(path.read_text(encoding="utf-8"))


def test_outline_moves_a_few_hundred_metres_and_keeps_its_area(pingshan_gcj02):
    (wgs,) = crs.geometry_to_wgs84(np.array([pingshan_gcj02]), "gcj02")
    src, dst = shapely.get_coordinates(pingshan_gcj02), shapely.get_coordinates(wgs)
    assert wgs.geom_type == "MultiPolygon" and wgs.is_valid and len(dst) == len(src)
    moved = metres(src[:, 0], src[:, 1], dst[:, 0], dst[:, 1])
    assert moved.min() > 200 and moved.max() < 700
    # GCJ-02 is not an isometry (its Jacobian differs from 1 by ~1e-3), hence 0.1 %, not 0.
    area_src = abs(GEOD.geometry_area_perimeter(pingshan_gcj02)[0])
    area_dst = abs(GEOD.geometry_area_perimeter(wgs)[0])
    assert abs(area_dst / area_src - 1) < 0.001


def cnmaps_gcj02_to_wgs84(lon, lat):
    """cnmaps 2.1.0 ``cnmaps.geo.gcj02_to_wgs84`` (MIT), vectorised: one step, no iteration.

    Transcribed because the package pulls in cartopy, matplotlib, fiona, netCDF4, scipy and a
    77 MB data wheel; it subtracts the shift evaluated at the GCJ point instead of the WGS one.
    """
    dlon, dlat = crs._gcj02_offset(np.asarray(lon), np.asarray(lat))
    return lon - dlon, lat - dlat


def test_outline_against_cnmaps_one_step_formula(pingshan_gcj02):
    (wgs,) = crs.geometry_to_wgs84(np.array([pingshan_gcj02]), "gcj02")
    src, dst = shapely.get_coordinates(pingshan_gcj02), shapely.get_coordinates(wgs)
    ref = cnmaps_gcj02_to_wgs84(src[:, 0], src[:, 1])
    # The one-step formula is ~1.6 m off at 坪山 (measured 1.57 m), so "within a metre of
    # cnmaps" cannot hold for an exact inverse; ours is the one that maps back onto the input.
    assert metres(*ref, dst[:, 0], dst[:, 1]).max() < 2.0
    ours_back = metres(src[:, 0], src[:, 1], *crs.wgs84_to_gcj02(dst[:, 0], dst[:, 1]))
    ref_back = metres(src[:, 0], src[:, 1], *crs.wgs84_to_gcj02(*ref))
    assert ours_back.max() < 0.01 < ref_back.max()


def test_geometry_conversion_keeps_z_and_dimensions():
    geoms = np.array([shapely.Point(114.35, 22.70, 42.0), shapely.Point(114.36, 22.71)])
    out = crs.geometry_to_wgs84(geoms, "GCJ-02")
    assert out[0].has_z and out[0].z == 42.0 and not out[1].has_z
    assert metres(114.35, 22.70, out[0].x, out[0].y) > 200


# --- pyproj systems ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["EPSG:4490", "epsg:4490", "4490", 4490, "cgcs2000", "CGCS2000",
                                  "EPSG:4326", "4326", "wgs84", "WGS84", "WGS 84", "OGC:CRS84"])
def test_wgs84_and_cgcs2000_pass_through_unchanged(name):
    lon, lat = grid(PINGSHAN_BOX, 5)
    out = crs.to_wgs84(lon, lat, name)
    np.testing.assert_array_equal(out[0], lon)
    np.testing.assert_array_equal(out[1], lat)
    np.testing.assert_array_equal(crs.from_wgs84(lon, lat, name)[1], lat)
    geoms = shapely.points(lon, lat)
    assert all(shapely.equals_exact(crs.geometry_to_wgs84(geoms, name), geoms, tolerance=0))


# Rows of nyc311_2011_sample.csv (Unique Key, X/Y State Plane in US feet, Latitude, Longitude).
NYC311_ROWS = [
    (19937901, 984640, 180028, 40.660811976282695, -73.99859430999363),  # Brooklyn
    (19937902, 1037621, 217498, 40.763497105049986, -73.80733639290203),  # Queens
    (19937979, 947385, 171465, 40.63723169018674, -74.13282684705241),  # Staten Island
]


def test_ny_state_plane_feet_to_wgs84():
    _, x, y, lat, lon = (np.array(col, dtype=float) for col in zip(*NYC311_ROWS, strict=True))
    got_lon, got_lat = crs.to_wgs84(x, y, "EPSG:2263")
    # The sample rounds state-plane feet to integers; 5 m leaves room for that.
    assert metres(lon, lat, got_lon, got_lat).max() < 5
    back_x, back_y = crs.from_wgs84(got_lon, got_lat, "2263")
    np.testing.assert_allclose(back_x, x, atol=1e-3)
    np.testing.assert_allclose(back_y, y, atol=1e-3)


# --- names and errors -------------------------------------------------------------------------

@pytest.mark.parametrize("given, canonical", [
    ("gcj02", "gcj02"), ("GCJ-02", "gcj02"), (" gcj_02 ", "gcj02"),
    ("bd09", "bd09"), ("BD-09", "bd09"),
    ("wgs84", "wgs84"), ("cgcs2000", "wgs84"), ("EPSG:4490", "wgs84"), (4326, "wgs84"),
    ("EPSG:2263", "EPSG:2263"), ("epsg:2263", "EPSG:2263"), ("2263", "EPSG:2263"),
    ("EPSG:4547", "EPSG:4547"),  # CGCS2000 / 3-degree Gauss-Kruger CM 114E, used in Shenzhen
])
def test_normalize_crs(given, canonical):
    assert crs.normalize_crs(given) == canonical


@pytest.mark.parametrize("bad", ["gcj03", "mars", "EPSG:999999", "", None, 3.5])
def test_unknown_crs_is_a_clear_error(bad):
    with pytest.raises(crs.CrsError) as info:
        crs.to_wgs84(np.array([114.35]), np.array([22.70]), bad)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert repr(bad) in message and "gcj02" in message and "EPSG:4490" in message


def test_gauss_kruger_cgcs2000_lands_in_pingshan():
    # A projected CGCS2000 source, as 深圳 survey data often is: there and back again.
    lon, lat = grid(PINGSHAN_BOX, 5)
    x, y = crs.from_wgs84(lon, lat, "EPSG:4547")
    assert np.all((x > 500_000) & (x < 560_000))  # CM 114E, false easting 500 km
    assert metres(lon, lat, *crs.to_wgs84(x, y, "EPSG:4547")).max() < 0.001


# --- swapped and far-away points --------------------------------------------------------------

def test_looks_swapped():
    lon = np.array([114.35, 22.70, 0.0, 114.35, np.nan])
    lat = np.array([22.70, 114.35, 0.0, 30.0, 22.70])
    np.testing.assert_array_equal(crs.looks_swapped(lon, lat, PINGSHAN_BOX),
                                  [False, True, False, False, False])


def test_outside_with_margin():
    lon = np.array([114.35, 114.46, 114.60, 22.70, np.nan])
    lat = np.array([22.70, 22.70, 22.70, 114.35, 22.70])
    np.testing.assert_array_equal(crs.outside(lon, lat, PINGSHAN_BOX, 0.05),
                                  [False, False, True, True, False])
    np.testing.assert_array_equal(crs.outside(lon, lat, PINGSHAN_BOX, 0.0),
                                  [False, True, True, True, False])
