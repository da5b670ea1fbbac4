"""Coordinates for a basemap drawn in GCJ-02 or BD-09 (AMap- and Baidu-style tile
services): the data is stored in WGS84 and moved into the basemap's system so that it
lines up. One vectorised shift for every vertex of an export's batch or of a view."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import shapely

from onemap.crs import from_wgs84

if TYPE_CHECKING:  # the view imports far more than a shift needs
    from layers.view import View

SHIFTED = ("gcj02", "bd09")  # systems whose basemaps need the data moved


def shift_xy(xy: np.ndarray, crs: str) -> np.ndarray:
    """An (n, 2) array of WGS84 lon/lat moved into ``crs`` (gcj02 or bd09)."""
    x, y = from_wgs84(xy[:, 0], xy[:, 1], crs)
    return np.column_stack([x, y])


def shift_geometries(geometries: np.ndarray, crs: str) -> np.ndarray:
    """Shapely geometries moved into ``crs``, all in one call."""
    return shapely.transform(geometries, lambda xy: shift_xy(xy, crs))


def shifted_view(data: View, crs: str) -> View:
    """A view's geometries (its units, its layers' features and its bbox) moved from WGS84
    into ``crs``, every vertex in one vectorised shift; ``data`` itself is not changed (it
    may be a view kept for others)."""
    positions: list[list[float]] = []  # every new [lon, lat] list, in order

    def copy(coords):
        if coords and isinstance(coords[0], int | float):
            position = [coords[0], coords[1]]
            positions.append(position)
            return position
        return [copy(c) for c in coords]

    def copy_collection(collection: dict) -> dict:
        features = [{**f, "geometry": {**f["geometry"],
                                       "coordinates": copy(f["geometry"]["coordinates"])}}
                    if f.get("geometry") else f for f in collection.get("features", [])]
        return {**collection, "features": features}

    units = copy_collection(data.units)
    layers = {k: copy_collection(v) for k, v in data.layers.items()}
    corners = copy([list(data.bbox[:2]), list(data.bbox[2:])]) if data.bbox else None
    if positions:
        moved = shift_xy(np.array(positions, dtype=float), crs).tolist()
        for position, (x, y) in zip(positions, moved, strict=True):
            position[0], position[1] = x, y
    bbox = data.bbox
    if corners:
        (minx, miny), (maxx, maxy) = corners
        bbox = (minx, miny, maxx, maxy)
    return replace(data, units=units, layers=layers, bbox=bbox)
