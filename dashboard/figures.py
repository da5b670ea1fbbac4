"""Figure builders: pure functions from data to plotly figures, tested without a browser."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from dashboard.messages import t

# Offline by default: MapLibre's empty style needs no tiles, glyphs or sprites.
OFFLINE_STYLE = "white-bg"


def fit_view(bbox: list[float], width_px: int = 1000, height_px: int = 700) -> dict:
    """Centre and zoom (Web Mercator) that fit ``bbox`` = [minx, miny, maxx, maxy]."""
    minx, miny, maxx, maxy = bbox
    center = {"lon": (minx + maxx) / 2, "lat": (miny + maxy) / 2}
    lon_span = max(maxx - minx, 1e-6)
    lat_span = max(_mercator_y(maxy) - _mercator_y(miny), 1e-9)
    zoom_x = math.log2(width_px * 360 / (512 * lon_span))
    zoom_y = math.log2(height_px * 2 * math.pi / (512 * lat_span))
    return {"center": center, "zoom": round(min(zoom_x, zoom_y) - 0.15, 2)}


def _mercator_y(lat: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def outline_figure(collection: dict, lang: str = "zh", tile_url: str | None = None) -> go.Figure:
    """The admin units of ``collection`` drawn as outlined areas on an offline map."""
    features = collection["features"]
    names = [f["properties"]["name"] for f in features]
    areas = [f["properties"]["area_km2"] for f in features]
    trace = go.Choroplethmap(
        geojson=collection,
        locations=[f["id"] for f in features],
        z=[1] * len(features),
        colorscale=[[0, "#cfe3f7"], [1, "#cfe3f7"]],
        showscale=False,
        marker={"line": {"color": "#1f5fa8", "width": 2}, "opacity": 0.55},
        text=names,
        customdata=areas,
        hovertemplate=f"%{{text}}<br>{t('unit.area', lang)} %{{customdata:.1f}} km²"
                      "<extra></extra>",
        name=t("map.outline", lang),
    )
    fig = go.Figure(trace)
    fig.update_layout(
        map={"style": OFFLINE_STYLE, **fit_view(collection["bbox"]), **_basemap(tile_url)},
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def _basemap(tile_url: str | None) -> dict:
    """An optional XYZ raster basemap below the data (only when one is configured)."""
    if not tile_url:
        return {}
    return {"layers": [{"sourcetype": "raster", "source": [tile_url], "below": "traces"}]}
