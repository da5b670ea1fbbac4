"""The baselines of bench_load, each run as its own process so its wall time and peak memory
are its own: ``python -m bench.load_workers {geopandas,copy} CSV URL TABLE``.

* geopandas: pandas.read_csv → GeoDataFrame of points → ``to_postgis`` → one SQL UPDATE that
  joins admin_unit level 4 with ST_Contains to set the four codes (the usual hand-rolled way).
* copy: the file's bytes streamed into ``COPY … FROM STDIN (FORMAT csv, HEADER)`` of an
  UNLOGGED, all-text, index-free table: what the server can ingest at best.
* checks: not a contender; the loader's own reading, typing, checks and placement in grids
  (``etl.readers``, ``etl.transform``) over the file with the NYC preset, writing nothing:
  what the load's work on the client costs by itself.
"""

from __future__ import annotations

import csv
import json
import sys
import time

import psycopg
from psycopg import sql

TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
TIME_COLUMNS = ("Created Date", "Closed Date", "Due Date")
TIMEZONE = "America/New_York"

CODES_UPDATE = """
UPDATE {table} t
SET grid_code = a.grid_code, community_code = a.community_code,
    street_code = a.street_code, district_code = a.district_code
FROM admin_unit a
WHERE a.level = 4 AND ST_Contains(a.geom, t.geometry)
"""


def geopandas_load(path: str, url: str, table: str) -> dict:
    import geopandas as gpd
    import pandas as pd

    from onemap.database import make_engine

    steps = {}
    started = time.perf_counter()
    frame = pd.read_csv(path)
    steps["read_csv"] = time.perf_counter() - started
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], format=TIME_FORMAT).dt.tz_localize(
            TIMEZONE, ambiguous="NaT", nonexistent="shift_forward")
    located = frame["Longitude"].notna() & frame["Latitude"].notna()
    points = gpd.GeoSeries(gpd.points_from_xy(frame["Longitude"], frame["Latitude"]),
                           index=frame.index, crs="EPSG:4326")
    points[~located] = None
    gdf = gpd.GeoDataFrame(frame, geometry=points)
    steps["transform"] = time.perf_counter() - started - steps["read_csv"]
    engine = make_engine(url)
    mark = time.perf_counter()
    gdf.to_postgis(table, engine, if_exists="replace", index=False)
    steps["to_postgis"] = time.perf_counter() - mark
    del gdf, frame
    mark = time.perf_counter()
    with psycopg.connect(url) as conn:
        ident = sql.Identifier(table)
        conn.execute(sql.SQL(
            "ALTER TABLE {} ADD COLUMN grid_code text, ADD COLUMN community_code text, "
            "ADD COLUMN street_code text, ADD COLUMN district_code text").format(ident))
        conn.execute(sql.SQL(CODES_UPDATE).format(table=ident))
        conn.commit()
    steps["sql_join"] = time.perf_counter() - mark
    engine.dispose()
    return steps


def copy_load(path: str, url: str, table: str) -> dict:
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    ident = sql.Identifier(table)
    columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in header)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(ident, columns))
        statement = sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER)").format(ident)
        with conn.cursor().copy(statement) as copy, open(path, "rb") as source:
            while block := source.read(1 << 20):
                copy.write(block)
        conn.commit()
    return {"copy": time.perf_counter() - started}


def checks_only(path: str, url: str, table: str) -> dict:
    from pathlib import Path

    from bench.bench_load import CASES_MAPPING
    from etl.grids import GridIndex
    from etl.mapping import load_mapping
    from etl.readers import read_chunks
    from etl.transform import Context, transform

    mapping = load_mapping(CASES_MAPPING, "cases")
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        bounds = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                              "(SELECT ST_Extent(geom) AS e FROM admin_unit WHERE level = 1) x"
                              ).fetchone()
        ctx = Context(mapping, mapping.crs, mapping.timezone, tuple(bounds),
                      GridIndex.read(conn))
    steps = {"grids": time.perf_counter() - started, "read": 0.0, "transform": 0.0}
    rows = rejected = 0
    mark = time.perf_counter()
    for chunk in read_chunks(Path(path), 100_000):
        steps["read"] += time.perf_counter() - mark
        mark = time.perf_counter()
        result = transform(chunk, ctx)
        steps["transform"] += time.perf_counter() - mark
        rows, rejected = rows + len(chunk.frame), rejected + len(result.rejects)
        mark = time.perf_counter()
    steps["read"] += time.perf_counter() - mark
    return {**steps, "rows": rows, "rejected": rejected}


WORKERS = {"geopandas": geopandas_load, "copy": copy_load, "checks": checks_only}

if __name__ == "__main__":
    kind, csv_path, db_url, table_name = sys.argv[1:5]
    print(json.dumps(WORKERS[kind](csv_path, db_url, table_name)))
