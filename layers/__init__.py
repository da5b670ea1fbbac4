"""Read side: the layer catalog, scoped queries, KPIs, hotspots, tiles, exports, the view
the dashboard draws, and the shift of coordinates for GCJ-02/BD-09 basemaps.

Nothing here imports dash or anything HTTP (``web`` serves it); queries take an SQLAlchemy
connection and bind every value.
"""
