"""Read side: the layer catalog, scoped queries, KPIs, hotspots, tiles, exports and the API.

Nothing here imports dash; queries take an SQLAlchemy engine and bind every value.
"""
