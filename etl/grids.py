"""The loaded grids in memory, so that a chunk's points are placed while it is transformed.

A spatial index of the grid pieces (``grid_piece``: the grids cut small) is queried for a
whole chunk at once with GEOS's intersects, the predicate PostGIS's ST_Intersects uses; a
point on a border shared by several grids takes the lowest code, so the answer never depends
on the order of rows or pieces. One vectorised query a chunk instead of a spatial join per
point in the database.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import psycopg
import shapely


@dataclass(frozen=True)
class GridIndex:
    codes: np.ndarray    # the grid code of each piece
    ranks: np.ndarray    # each piece's code's position in code order (for "lowest code")
    tree: shapely.STRtree

    @classmethod
    def read(cls, conn: psycopg.Connection) -> GridIndex | None:
        """The grids loaded so far (None when there are none yet)."""
        rows = conn.execute("SELECT grid_code, ST_AsBinary(geom) FROM grid_piece").fetchall()
        if not rows:
            return None
        return cls.of([r[0] for r in rows], shapely.from_wkb([r[1] for r in rows]))

    @classmethod
    def of(cls, codes: list[str], pieces) -> GridIndex:
        """An index of ``pieces`` (polygons), the i-th belonging to grid ``codes[i]``."""
        codes = np.array(codes, dtype=object)
        _, ranks = np.unique(codes.astype(str), return_inverse=True)
        return cls(codes, ranks, shapely.STRtree(pieces))

    def place(self, points: np.ndarray) -> np.ndarray:
        """The grid code of each point (None for missing points and points in no grid)."""
        found = np.full(len(points), None, dtype=object)
        present = np.flatnonzero(~shapely.is_missing(points))
        if not len(present):
            return found
        point, piece = self.tree.query(points[present], predicate="intersects")
        if not len(point):
            return found
        order = np.lexsort((self.ranks[piece], point))  # by point, then lowest code first
        point, piece = point[order], piece[order]
        first = np.flatnonzero(np.r_[True, point[1:] != point[:-1]])
        found[present[point[first]]] = self.codes[piece[first]]
        return found


# What the grid pieces are made of: the grids (level 4), by the newest batch that wrote one,
# that batch's start (another database's batch of the same number is another batch) and
# their number. An admin load that changes, adds or removes a grid moves it.
GRIDS_VERSION = """
SELECT b.id, b.started_at, g.n
FROM (SELECT max(batch_id) AS batch, count(*) AS n FROM admin_unit WHERE level = 4) g
LEFT JOIN load_batch b ON b.id = g.batch
"""


@dataclass
class GridCache:
    """The grids read once and kept while they stay the same: a process that writes many
    small batches (the case feed: a request each) does not read and index every grid piece
    for each of them. Safe to share between threads."""

    _version: tuple | None = None
    _index: GridIndex | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, conn: psycopg.Connection) -> GridIndex | None:
        """The grids as ``conn`` sees them (None when there are none yet)."""
        version = tuple(conn.execute(GRIDS_VERSION).fetchone())
        with self._lock:
            if version != self._version:
                self._index, self._version = GridIndex.read(conn), version
            return self._index
