-- Grids cut into small pieces (ST_Subdivide): point-in-grid lookups on GiST touch a few
-- dozen vertices instead of whole polygons. Refreshed by every admin load.
CREATE TABLE grid_piece (
    grid_code text NOT NULL REFERENCES admin_unit(code) ON DELETE CASCADE,
    geom      geometry(Polygon, 4326) NOT NULL
);
CREATE INDEX grid_piece_geom_idx ON grid_piece USING gist (geom);
