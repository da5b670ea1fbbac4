"""The demo city's admin hierarchy: exact tiling, sizes, codes, determinism and the GeoPackage.

No database: everything here is shapely/geopandas on the generated frame.
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from democity.admin import (
    BONDED_CODE,
    COLUMNS,
    COMMUNITIES_FILE,
    GRID_SIZE,
    LEVELS,
    MIN_GRIDS,
    OUTLINE_FILE,
    STREETS_FILE,
    build_admin,
    write_admin,
)
from onemap.crs import geometry_to_wgs84

ARTIFACTS = Path(__file__).parent / "artifacts"
GRIDS = 450
# Each unit's area against the median of its siblings (same parent); the generator redraws a
# cut outside these ranges.  Measured, seed 7: 街道 0.95-1.10, communities 0.71-1.29, grids
# 0.49-1.65; seeds 0-19: 街道 0.73-1.47, communities 0.55-1.90, grids 0.43-2.23.  Real units
# vary too, but a sliver or a unit swallowing its neighbours would fall outside.
RATIO_BOUNDS = {2: (0.5, 2.0), 3: (0.5, 2.0), 4: (0.3, 3.0)}
BUILD_SECONDS = 20.0


@pytest.fixture(scope="module")
def timed():
    start = time.perf_counter()
    gdf = build_admin(seed=7, grids=GRIDS)
    return gdf, time.perf_counter() - start


@pytest.fixture(scope="module")
def admin(timed):
    return timed[0]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _level(gdf, level):
    return gdf[gdf["level"] == level]


def test_build_is_fast(timed):
    assert timed[1] < BUILD_SECONDS


def test_levels_and_columns(admin):
    assert list(admin.columns) == COLUMNS
    assert admin.crs.to_epsg() == 4326
    counts = admin["level"].value_counts().to_dict()
    assert counts[1] == 1 and counts[2] == 7 and counts[3] == 25
    assert abs(counts[4] - GRIDS) <= 0.05 * GRIDS
    assert admin["code"].is_unique
    assert set(shapely.get_type_id(admin.geometry.values).tolist()) == {6}  # MultiPolygon
    assert shapely.is_valid(admin.geometry.values).all()
    district = _level(admin, 1).iloc[0]
    assert (district["code"], district["name"], district["parent_code"]) == \
        ("440310", "坪山区", None)
    assert admin["area_km2"].gt(0).all()
    assert admin["area_km2"].iloc[0] == pytest.approx(admin["area_km2"][admin.level == 4].sum())


def test_district_is_the_converted_outline(admin):
    gcj = gpd.read_file(OUTLINE_FILE).geometry.to_numpy()
    expected = shapely.set_precision(geometry_to_wgs84(gcj, "gcj02"), grid_size=1e-7)[0]
    district = _level(admin, 1).geometry.iloc[0]
    assert district.equals_exact(expected, tolerance=0)
    assert 150 < _level(admin, 1)["area_km2"].iloc[0] < 180  # 坪山区 is ~166 km²


@pytest.mark.parametrize("level", [2, 3, 4])
def test_tiling_is_exact(admin, level):
    parents = admin.set_index("code").geometry
    units = _level(admin, level)
    for parent_code, siblings in units.groupby("parent_code"):
        parent = parents[parent_code]
        children = siblings.geometry.to_numpy()
        assert shapely.coverage_is_valid(children), parent_code
        union = shapely.unary_union(children, grid_size=GRID_SIZE)
        assert shapely.symmetric_difference(union, parent).area == 0.0, parent_code
        assert union.equals(parent), parent_code
    # The whole level is one coverage too: neighbours across parents share identical edges.
    assert shapely.coverage_is_valid(units.geometry.to_numpy())
    union = shapely.unary_union(units.geometry.to_numpy(), grid_size=GRID_SIZE)
    assert shapely.symmetric_difference(union, _level(admin, 1).geometry.iloc[0]).area == 0.0


def test_every_unit_is_one_polygon(admin):
    below = admin[admin["level"] > 1].geometry.to_numpy()
    assert (shapely.get_num_geometries(below) == 1).all()


@pytest.mark.parametrize("level", [2, 3, 4])
def test_sizes_are_comparable(admin, level):
    units = _level(admin, level)
    if level == 2:  # the bonded zone is deliberately small
        units = units[units["code"] != BONDED_CODE]
    ratio = units["area_km2"] / units.groupby("parent_code")["area_km2"].transform("median")
    low, high = RATIO_BOUNDS[level]
    assert low <= ratio.min() and ratio.max() <= high, (ratio.min(), ratio.max())


def test_bonded_zone_is_the_smallest_street(admin):
    streets = _level(admin, 2).set_index("code")["area_km2"]
    assert streets.idxmin() == BONDED_CODE
    assert 1.5 < streets[BONDED_CODE] < 5.0
    bonded = admin.set_index("code").geometry[BONDED_CODE]
    district = _level(admin, 1).geometry.iloc[0]
    assert district.boundary.distance(bonded) > 0  # a cell inside the district, not on its rim


def test_grids_follow_community_area(admin):
    communities = _level(admin, 3).set_index("code")["area_km2"]
    counts = _level(admin, 4).groupby("parent_code").size().reindex(communities.index)
    assert counts.min() >= MIN_GRIDS
    quota = counts.sum() * communities / communities.sum()
    assert (((counts - quota).abs() <= 1) | (counts == MIN_GRIDS)).all()


def test_codes_and_names(admin):
    streets = _level(admin, 2)
    assert streets[["code", "name", "parent_code"]].values.tolist() == [
        [r["street_code"], r["street_name"], r["district_code"]] for r in _csv(STREETS_FILE)]
    communities = _level(admin, 3).sort_values("code")
    expected = sorted([r["community_code"], r["community_name"], r["street_code"]]
                      for r in _csv(COMMUNITIES_FILE))
    assert communities[["code", "name", "parent_code"]].values.tolist() == expected
    names = dict(zip(communities["code"], communities["name"], strict=True))
    for parent, grids in _level(admin, 4).groupby("parent_code"):
        n = len(grids)
        assert sorted(grids["code"]) == [f"{parent}{i:03d}" for i in range(1, n + 1)]
        base = names[parent].removesuffix("居委会").removesuffix("社区")
        for code, name in zip(grids["code"], grids["name"], strict=True):
            assert name == f"{base}社区第{int(code[-3:]):02d}网格"
            assert re.fullmatch(r".+社区第\d{2}网格", name)
    assert "六联社区第01网格" in set(admin["name"])
    for level in (2, 3, 4):
        units = _level(admin, level)
        assert all(c.startswith(p) and len(c) == len(p) + 3
                   for c, p in zip(units["code"], units["parent_code"], strict=True))


def test_same_seed_same_bytes(admin):
    again = build_admin(seed=7, grids=GRIDS)
    assert again.drop(columns="geometry").equals(admin.drop(columns="geometry"))
    assert shapely.to_wkb(again.geometry.values).tolist() == \
        shapely.to_wkb(admin.geometry.values).tolist()


def test_other_seed_other_shapes(admin):
    other = build_admin(seed=8, grids=200)
    assert len(_level(other, 4)) == 200
    assert _level(other, 1).geometry.iloc[0].equals_exact(_level(admin, 1).geometry.iloc[0], 0)
    assert not _level(other, 2).geometry.iloc[0].equals(_level(admin, 2).geometry.iloc[0])


def test_geopackage_round_trip(admin, tmp_path):
    path = tmp_path / "pingshan.gpkg"
    write_admin(admin, path)
    layers = pyogrio.list_layers(path)
    assert sorted(layers[:, 0].tolist()) == sorted(LEVELS.values())
    for level, layer in LEVELS.items():
        back = pyogrio.read_dataframe(path, layer=layer)
        units = _level(admin, level)
        assert list(back.columns) == ["code", "name", "parent_code", "area_km2", "geometry"]
        assert back["code"].tolist() == units["code"].tolist()
        assert back["name"].tolist() == units["name"].tolist()
        assert back["parent_code"].isna().tolist() == units["parent_code"].isna().tolist()
        assert back["area_km2"].to_numpy() == pytest.approx(units["area_km2"].to_numpy())
        assert back.crs.to_epsg() == 4326
        assert shapely.equals(back.geometry.values, units.geometry.values).all()


def _palette(n: int) -> list[tuple[int, int, int]]:
    base = [(141, 211, 199), (255, 255, 179), (190, 186, 218), (251, 128, 114),
            (128, 177, 211), (253, 180, 98), (179, 222, 105), (252, 205, 229)]
    return [base[i % len(base)] for i in range(n)]


def test_render_picture(admin):
    """Grids coloured by street, community and street borders on top: tests/artifacts."""
    image_module = pytest.importorskip("PIL.Image")
    draw_module = pytest.importorskip("PIL.ImageDraw")
    minx, miny, maxx, maxy = _level(admin, 1).total_bounds
    cos = np.cos(np.radians((miny + maxy) / 2))
    width, margin = 1200, 20
    scale = width / ((maxx - minx) * cos)
    height = int((maxy - miny) * scale)
    image = image_module.new("RGB", (width + 2 * margin, height + 2 * margin), "white")
    draw = draw_module.Draw(image)

    def pixels(ring):
        xy = np.asarray(ring.coords)
        return list(zip(margin + (xy[:, 0] - minx) * cos * scale,
                        margin + (maxy - xy[:, 1]) * scale, strict=True))

    streets = _level(admin, 2)["code"].tolist()
    colour = dict(zip(streets, _palette(len(streets)), strict=True))
    street_of = dict(zip(_level(admin, 3)["code"], _level(admin, 3)["parent_code"], strict=True))
    for grid in _level(admin, 4).itertuples():
        for poly in grid.geometry.geoms:
            draw.polygon(pixels(poly.exterior), fill=colour[street_of[grid.parent_code]],
                         outline=(130, 130, 130))
    for level, line_width in ((3, 2), (2, 4)):
        for geom in _level(admin, level).geometry:
            for poly in geom.geoms:
                for ring in (poly.exterior, *poly.interiors):
                    draw.line(pixels(ring), fill=(40, 40, 40), width=line_width)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "demo-admin.png"
    image.save(path)
    assert path.stat().st_size > 10_000
