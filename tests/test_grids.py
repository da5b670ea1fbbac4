"""Placing points in grids while a chunk is transformed (no database needed)."""

from __future__ import annotations

import numpy as np
import shapely

from etl.grids import GridIndex

# Two grids side by side sharing the edge x = 1; grid "B" is listed first and cut in two
# pieces, as ST_Subdivide would.
PIECES = [("B", shapely.box(1, 0, 2, 0.5)), ("B", shapely.box(1, 0.5, 2, 1)),
          ("A", shapely.box(0, 0, 1, 1))]


def index(pieces=PIECES) -> GridIndex:
    return GridIndex.of([c for c, _ in pieces], [g for _, g in pieces])


def test_points_take_the_grid_they_are_in():
    points = np.array([shapely.Point(0.5, 0.5), shapely.Point(1.5, 0.25),
                       shapely.Point(1.5, 0.75), shapely.Point(5, 5), None], dtype=object)
    assert index().place(points).tolist() == ["A", "B", "B", None, None]


def test_a_point_on_a_shared_border_takes_the_lowest_code_whatever_the_order():
    border = np.array([shapely.Point(1, 0.3), shapely.Point(1.5, 0.5)], dtype=object)
    assert index().place(border).tolist() == ["A", "B"]
    assert index(PIECES[::-1]).place(border).tolist() == ["A", "B"]


def test_no_points_or_no_hits():
    assert index().place(np.array([], dtype=object)).tolist() == []
    assert index().place(np.array([shapely.Point(9, 9)], dtype=object)).tolist() == [None]
