-- Grids that touch (queen contiguity), for Gi* hotspots; rebuilt by every admin load.
CREATE TABLE grid_neighbour (
    grid_code      text NOT NULL REFERENCES admin_unit(code) ON DELETE CASCADE,
    neighbour_code text NOT NULL REFERENCES admin_unit(code) ON DELETE CASCADE,
    PRIMARY KEY (grid_code, neighbour_code)
);
