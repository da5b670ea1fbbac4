"""Binned points: a point layer too dense to draw point by point (the cases of a district
or a street) drawn as one point per H3 cell, at the cell's centre, with the count of the
points in it. The counts are exact and add up to the view's located points; the rows with
no point are counted apart, so the map can say they are not on it.
"""

from __future__ import annotations

import h3
from sqlalchemy import Connection

from layers.cases import raw_where
from layers.filters import Filters
from layers.hotspots import parent_sql
from layers.scope import Scope
from layers.sql import run

# Cells of ~0.7 km² (resolution 8) for a district, ~0.1 km² (9) for a street: a few hundred
# points either way, each still a place one can name.
RESOLUTION_FOR_LEVEL = {0: 8, 1: 8, 2: 9, 3: 10, 4: 10}


def case_bins(conn: Connection, scope: Scope, filters: Filters) -> dict:
    """The view's cases per cell as a FeatureCollection of points with their count ``n``;
    ``numberMatched``: every case of the view, ``numberUnlocated``: those with no point."""
    resolution = RESOLUTION_FOR_LEVEL[scope.level]
    where = raw_where(filters, scope)
    # A case with no point has no cell: its NULL group is the unlocated count.
    counts = dict(run(conn, f"SELECT {parent_sql(resolution)} AS cell, count(*) "
                            f"FROM case_event c WHERE {where.sql} GROUP BY 1",
                      where.params).all())
    unlocated = int(counts.pop(None, 0))
    features = [_bin(int(cell), int(n)) for cell, n in sorted(counts.items())]
    return {"type": "FeatureCollection", "features": features, "binned": True,
            "resolution": resolution, "numberReturned": len(features),
            "numberMatched": sum(f["properties"]["n"] for f in features) + unlocated,
            "numberUnlocated": unlocated}


def _bin(cell: int, n: int) -> dict:
    lat, lon = h3.cell_to_latlng(h3.int_to_str(cell))
    return {"type": "Feature", "id": h3.int_to_str(cell), "properties": {"n": n},
            "geometry": {"type": "Point", "coordinates": [lon, lat]}}
