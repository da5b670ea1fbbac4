"""Figure builders: pure functions from read-side data to plotly figures, tested without a
browser. Maps use MapLibre's empty style, so they need no tiles, glyphs or internet.

Figures are plain dicts in plotly's JSON form (``{"data": [...], "layout": {...}}``), which
dcc.Graph takes as they are: plotly's figure objects validate and deep-copy every property,
several times over, and cost more than the queries behind a view.
"""

from __future__ import annotations

import html
import math

import numpy as np
from plotly.colors import get_colorscale

from dashboard.components import alarm_handled_text, due_text, status_words
from dashboard.messages import t
from layers.basemap import SHIFTED, shifted_view
from layers.view import View

# An empty source, not ``"sources": {}``: plotly's update in place drops the empty object,
# takes the style for a new one and waits for MapLibre to load it, which never happens for
# an identical style; the map would then keep its old data and report no hover or click.
NO_SOURCES = {"none": {"type": "geojson",
                       "data": {"type": "FeatureCollection", "features": []}}}


def _empty_style(colour: str) -> dict:
    """A MapLibre style with only a background: no tiles, glyphs or sprites to fetch."""
    return {"version": 8, "sources": NO_SOURCES, "layers": [
        {"id": "background", "type": "background", "paint": {"background-color": colour}}]}


OFFLINE_STYLE = _empty_style("#f7f9fc")
DARK_STYLE = _empty_style("#0b1a2b")
# Colour scales spelled out: plotly.js's own scales of the same names run the other way.
# Blues without its near-white end: a unit with few cases still reads as filled, not a hole.
_BLUES = [colour for _, colour in get_colorscale("Blues")[2:]]
SEQUENTIAL = [[i / (len(_BLUES) - 1), colour] for i, colour in enumerate(_BLUES)]
RATE_SCALE = get_colorscale("RdYlGn")
HEAT_SCALE = get_colorscale("YlOrRd")
FACILITY_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                    "#a6761d", "#1f78b4", "#666666", "#b15928")
# A colour per device status (onemap.vocabulary), in drawing order: alarms last, on top.
DEVICE_COLOURS = {"offline": "#9e9e9e", "online": "#2e7d32", "alarm": "#e53935"}
DARK = {"paper_bgcolor": "#0b1a2b", "plot_bgcolor": "#0b1a2b", "font": {"color": "#dbe8f5"}}
# The app's own web font first (assets/style.css declares it), as in the pages' CSS, so
# titles, legends and hover labels match the page and need no system CJK font.
FOCUS_ZOOM = 16  # a device clicked in the alarm list: its street corner
FONT_FAMILY = ('"Onemap Sans SC", "Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", '
               '"PingFang SC", sans-serif')


def as_text(value) -> str:
    """A value from the data as plotly text. Plotly reads a subset of HTML in labels, names
    and hover text (a category holding ``<a href>`` would become a link in a chart); with
    ``&``, ``<`` and ``>`` as entities it shows exactly the characters of the data."""
    return html.escape("" if value is None else str(value), quote=False)


def _font(dark: bool) -> dict:
    return {"family": FONT_FAMILY, **(DARK["font"] if dark else {})}


def fit_view(bbox, width_px: int = 800, height_px: int = 560) -> dict:
    """Centre and zoom (Web Mercator, 512-px tiles) that fit ``bbox``."""
    minx, miny, maxx, maxy = bbox
    center = {"lon": (minx + maxx) / 2, "lat": (miny + maxy) / 2}
    lon_span = max(maxx - minx, 1e-6)
    lat_span = max(_mercator_y(maxy) - _mercator_y(miny), 1e-9)
    zoom_x = math.log2(width_px * 360 / (512 * lon_span))
    zoom_y = math.log2(height_px * 2 * math.pi / (512 * lat_span))
    return {"center": center, "zoom": round(min(zoom_x, zoom_y) - 0.15, 2)}


def _mercator_y(lat: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def map_figure(data: View, layers: tuple[str, ...], metric: str, lang: str = "zh",
               tile_url: str | None = None, dark: bool = False,
               size: tuple[float, float] = (800, 560), tile_crs: str = "wgs84",
               zone: str | None = None) -> dict:
    """The one map: units coloured by ``metric`` and the switched-on layers above them; a
    device in alarm says in its hover what was done about it (times local in ``zone``; no
    such words without one)."""
    if tile_url and tile_crs in SHIFTED:
        data = shifted_view(data, tile_crs)
    traces = []
    if "units" in layers or not data.children:
        traces.append(units_trace(data, metric, lang, dark))
    extra = data.layers
    if extra.get("hexbins", {}).get("features"):
        traces.append(hex_trace(extra["hexbins"], lang))
    if any(f["properties"]["hot"] for f in extra.get("hotspots", {}).get("features", [])):
        traces.append(hotspot_trace(extra["hotspots"], lang))
    cases = extra.get("cases", {})
    if cases.get("binned") and cases["features"]:
        traces.append(bin_trace(cases, lang))
    else:
        traces += case_traces(cases, lang)
    handled = ({a["id"]: alarm_handled_text(a["properties"], lang, zone) for a in data.alarms}
               if zone else {})
    focus = data.focus
    if focus:  # under the devices: the ring is round the device's own dot
        traces += focus_traces(focus, lang, handled)
    traces += facility_traces(extra.get("facilities"), lang)
    traces += device_traces(extra.get("iot"), lang, handled)
    view = fit_view(data.bbox, *size) if data.bbox else {"center": {"lon": 0, "lat": 0},
                                                          "zoom": 1}
    if focus:
        lon, lat = focus["geometry"]["coordinates"]
        view = {"center": {"lon": lon, "lat": lat}, "zoom": FOCUS_ZOOM}
    layout = {
        "map": {"style": DARK_STYLE if dark else OFFLINE_STYLE, **view, **_basemap(tile_url)},
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "legend": {"x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.8)" if not dark
                   else "rgba(11,26,43,0.8)", "font": {"size": 12}},
        # A new scope or device moves the map; other updates keep where the user panned.
        "uirevision": f"{data.scope['code']}|{focus['id'] if focus else ''}",
        "paper_bgcolor": "rgba(0,0,0,0)",
        **(DARK if dark else {}),
        "font": _font(dark),
        "annotations": layer_notes(extra, lang, dark),
    }
    return {"data": traces, "layout": layout}


def layer_notes(extra: dict, lang: str, dark: bool = False) -> list[dict]:
    """What the map does not draw point by point, said on the map, bottom left: a layer
    drawing fewer points than its view holds (显示 N / 共 M), points with no location,
    binned cases, a layer with nothing to draw."""
    lines = []
    for key in ("cases", "facilities", "iot"):
        layer = extra.get(key)
        if not layer or "numberMatched" not in layer:
            continue
        name, total = t(f"layer.{key}", lang), layer["numberMatched"]
        unlocated = layer.get("numberUnlocated", 0)
        if not total:
            line = t("map.none", lang).format(layer=name)
        elif layer.get("binned"):
            line = t("map.binned", lang).format(layer=name, total=total - unlocated,
                                                bins=layer["numberReturned"])
        elif layer["numberReturned"] < total:
            line = t("map.shown", lang).format(layer=name, shown=layer["numberReturned"],
                                               total=total)
        else:
            continue
        if unlocated:
            line += t("map.unlocated", lang).format(n=unlocated)
        lines.append(line)
    if not lines:
        return []
    return [{"text": "<br>".join(lines), "name": "layer-notes", "showarrow": False,
             "xref": "paper", "yref": "paper", "x": 0.01, "y": 0.01, "xanchor": "left",
             "yanchor": "bottom", "align": "left", "font": {"size": 12},
             "bgcolor": "rgba(11,26,43,0.8)" if dark else "rgba(255,255,255,0.9)",
             "bordercolor": "#e53935", "borderwidth": 1, "borderpad": 4}]


def units_trace(data: View, metric: str, lang: str, dark: bool = False) -> dict:
    """Child units coloured by ``metric`` (the colour bar is the legend); click drills down."""
    rows = {row["code"]: row for row in data.children}
    features = data.units["features"]
    if not rows:  # a grid has no children: it shows itself with its own figures
        rows = {f["id"]: {**data.cases, "per_km2": None} for f in features}
    codes = [f["id"] for f in features]
    values = [_value(rows.get(code), metric) for code in codes]
    names = [as_text(f["properties"]["name"]) for f in features]
    totals = [(rows.get(c) or {}).get("total", 0) for c in codes]
    rate = metric == "on_time_rate"
    trace = {
        "type": "choroplethmap", "geojson": data.units, "locations": codes, "z": values,
        "text": names,
        "customdata": [[n, (rows.get(c) or {}).get("overdue", 0)]
                       for c, n in zip(codes, totals, strict=True)],
        "colorscale": RATE_SCALE if rate else SEQUENTIAL,
        "marker": {"opacity": 0.72, "line": {"color": "#ffffff" if not dark else "#7fb3e6",
                                             "width": 1.2}},
        "colorbar": {"title": {"text": t(f"metric.{metric}", lang)}, "thickness": 12,
                     "len": 0.5, "x": 0.99, "xanchor": "right"},
        "hovertemplate": (f"<b>%{{text}}</b><br>{t(f'metric.{metric}', lang)}: %{{z}}<br>"
                          f"{t('kpi.total', lang)}: %{{customdata[0]}} · "
                          f"{t('kpi.overdue', lang)}: %{{customdata[1]}}<extra></extra>"),
        "name": t("layer.units", lang), "showlegend": False,
    }
    if not rate:  # counts start at 0; plotly honours zmin only with zmax beside it
        trace["zmin"] = 0
        trace["zmax"] = max((v for v in values if v is not None), default=0) or 1
    return trace


def _value(row: dict | None, metric: str):
    if row is None:
        return None
    value = row.get(metric)
    return round(value * 100, 1) if metric == "on_time_rate" and value is not None else value


def hex_trace(collection: dict, lang: str) -> dict:
    features = collection["features"]
    return {
        "type": "choroplethmap", "geojson": collection,
        "locations": [f["id"] for f in features],
        "z": [f["properties"]["n"] for f in features], "colorscale": HEAT_SCALE,
        "showscale": False, "marker": {"opacity": 0.55, "line": {"width": 0}},
        "hovertemplate": f"{t('kpi.total', lang)}: %{{z}}<extra></extra>",
        "name": t("layer.hexbins", lang), "showlegend": True,
    }


def hotspot_trace(collection: dict, lang: str) -> dict:
    """Hot grids outlined in red; cold spots are not drawn."""
    hot = {"type": "FeatureCollection",
           "features": [f for f in collection["features"] if f["properties"]["hot"]]}
    labels = [t(f"trend.{f['properties']['trend']}", lang) if f["properties"]["trend"] else ""
              for f in hot["features"]]
    return {
        "type": "choroplethmap", "geojson": hot,
        "locations": [f["id"] for f in hot["features"]],
        "z": [f["properties"]["z"] for f in hot["features"]],
        "colorscale": [[0, "rgba(229,57,53,0.05)"], [1, "rgba(229,57,53,0.25)"]],
        "showscale": False, "marker": {"line": {"color": "#e53935", "width": 2.5}},
        "text": labels,
        "customdata": [[as_text(f["properties"].get("name") or f["id"]), f["properties"]["n"]]
                       for f in hot["features"]],
        "hovertemplate": (f"<b>%{{customdata[0]}}</b><br>{t('kpi.total', lang)}: "
                          f"%{{customdata[1]}}<br>Gi* z = %{{z:.2f}}<br>%{{text}}<extra></extra>"),
        "name": t("layer.hotspots", lang), "showlegend": True,
    }


def point_trace(collection: dict, name: str, colour: str, size: int,
                leave_out: tuple[str, ...] = ()) -> dict:
    """Points whose hover text is their properties (the layer's ``hover`` fields, in order),
    but for ``leave_out`` (what the trace's name already says)."""
    features = collection["features"]
    # NumPy coordinates go to the browser as typed arrays (base64), not as long lists.
    lon, lat = np.array([f["geometry"]["coordinates"] for f in features], dtype=float).reshape(
        -1, 2).T
    text = [" · ".join(as_text(v or "") for k, v in f["properties"].items()
                       if k not in leave_out) for f in features]
    return {"type": "scattermap", "lon": lon, "lat": lat, "mode": "markers", "text": text,
            "name": as_text(name), "marker": {"size": size, "color": colour, "opacity": 0.85},
            "hovertemplate": "%{text}<extra></extra>"}


def bin_trace(collection: dict, lang: str) -> dict:
    """Binned points: one circle per cell, its area in proportion to the count, which the
    hover names (``customdata``: the counts)."""
    features = collection["features"]
    lon, lat = np.array([f["geometry"]["coordinates"] for f in features], dtype=float).reshape(
        -1, 2).T
    counts = np.array([f["properties"]["n"] for f in features], dtype=np.int32)
    sizes = 6 + 22 * np.sqrt(counts / max(int(counts.max()), 1))
    return {"type": "scattermap", "lon": lon, "lat": lat, "mode": "markers",
            "customdata": counts, "name": t("layer.cases_binned", lang),
            "marker": {"size": np.round(sizes, 1), "color": "#f57c00", "opacity": 0.7},
            "hovertemplate": f"%{{customdata:,}} {t('unit.cases', lang)}<extra></extra>"}


def focus_traces(device: dict, lang: str, handled: dict[str, str] | None = None) -> list[dict]:
    """The device a click on an alarm shows: a wide yellow disc with the device's dot on
    it (drawn here too, for a map with the device layer off); its hover says what was done
    about its alarm (``handled``: by device id)."""
    lon, lat = device["geometry"]["coordinates"]
    props = device["properties"]
    said = (handled or {}).get(props["id"])
    common = {"type": "scattermap", "lon": [lon], "lat": [lat], "mode": "markers",
              "ids": [props["id"]],
              "text": [as_text(f"{props['kind']} {props['name'] or ''}"
                               + (f" · {said}" if said else ""))],
              "hovertemplate": "%{text}<extra></extra>"}
    return [{**common,
             "name": f"{t('map.focus', lang)} · {as_text(props['name'] or props['id'])}",
             "marker": {"size": 36, "color": "#fdd835", "opacity": 0.6}},
            {**common, "showlegend": False,
             "marker": {"size": 11, "color": DEVICE_COLOURS[props["status"]]}}]


def case_traces(collection: dict | None, lang: str) -> list[dict]:
    """Case points: overdue ones red and due-soon ones orange, larger and on top, each named
    in the legend; a point's hover says how long over or left."""
    if not collection or not collection["features"]:
        return []
    traces = []
    for due, colour, size in ((None, "#5c6bc0", 5), ("due_soon", "#fb8c00", 8),
                              ("overdue", "#e53935", 8)):
        feats = [f for f in collection["features"]
                 if (f["properties"].get("due") or {}).get("due") == due]
        if not feats:
            continue
        marked = [{**f, "properties": {"category_1": f["properties"]["category_1"],
                                       "status": status_words(f["properties"], lang),
                                       "due": due_text(f["properties"].get("due"), lang)}}
                  for f in feats]
        name = t("layer.cases", lang) + (f" · {t(f'kpi.{due}', lang)}" if due else "")
        traces.append(point_trace({"features": marked}, name, colour, size))
    return traces


def facility_traces(collection: dict | None, lang: str) -> list[dict]:
    """One trace (colour) per facility kind, so the legend names the kinds."""
    if not collection:
        return []
    kinds: dict[str, list] = {}
    for feature in collection["features"]:
        kinds.setdefault(feature["properties"]["kind"], []).append(feature)
    return [point_trace({"features": feats}, kind, FACILITY_COLOURS[i % len(FACILITY_COLOURS)],
                        7, leave_out=("kind",))
            for i, (kind, feats) in enumerate(sorted(kinds.items()))]


def device_traces(collection: dict | None, lang: str,
                  handled: dict[str, str] | None = None) -> list[dict]:
    """Devices by status: alarms last (on top) and larger; an alarm's hover says what was
    done about it (``handled``: by device id, the alarm list's)."""
    if not collection:
        return []
    handled = handled or {}
    traces = []
    for status, colour in DEVICE_COLOURS.items():
        # The hover names the device only (its name says its kind; the trace, its status):
        # thousands of devices' hover texts are most of the bytes of a view.
        feats = [{**f, "properties": {"name": f["properties"]["name"] or f["properties"]["kind"],
                                      **({"handled": handled[f["id"]]}
                                         if status == "alarm" and f["id"] in handled else {})}}
                 for f in collection["features"] if f["properties"]["status"] == status]
        if feats:
            size = 11 if status == "alarm" else 5
            name = f"{t('layer.iot', lang)} · {t(f'device.{status}', lang)}"
            traces.append(point_trace({"features": feats}, name, colour, size))
    return traces


def _basemap(tile_url: str | None) -> dict:
    if not tile_url:
        return {}
    return {"layers": [{"sourcetype": "raster", "source": [tile_url], "below": "traces"}]}


# -- charts ----------------------------------------------------------------------------------
def _chart(trace: dict, title: str, dark: bool) -> dict:
    """Desk charts are 220 px high; on the big screen they fill their box (autosize).
    Axes make room for their labels and keep their grid faint on either background."""
    grid = "rgba(219,232,245,0.14)" if dark else "#e3e8ef"
    axis = {"automargin": True, "gridcolor": grid, "zerolinecolor": grid, "linecolor": grid}
    layout = {"title": {"text": title, "font": {"size": 14}},
              "margin": {"l": 40, "r": 10, "t": 36, "b": 30}, "showlegend": False,
              "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
              "xaxis": axis, "yaxis": axis, "font": _font(dark)}
    if not dark:
        layout["height"] = 220
    return {"data": [trace], "layout": layout}


def trend_figure(trend: dict, lang: str, dark: bool = False) -> dict:
    """Cases per day or week, zeros included. A week only partly inside the range is an
    open marker (its hover says how many days it holds); the axis ticks whole days or weeks,
    so a single week reads as seven dates, not as hours."""
    points = trend["points"]
    partial = [bool(p.get("partial")) for p in points]
    hover = [t("trend.partial_week", lang).format(days=p["days"]) if p.get("partial") else ""
             for p in points]
    trace = {"type": "scatter", "x": [p["period"] for p in points],
             "y": [p["n"] for p in points], "mode": "lines+markers", "customdata": hover,
             "line": {"color": "#1f77b4", "width": 2}, "fill": "tozeroy",
             "marker": {"size": [8 if p else 4 for p in partial],
                        "symbol": ["circle-open" if p else "circle" for p in partial]},
             "hovertemplate": "%{x}: %{y} %{customdata}<extra></extra>"}
    title = t(f"chart.trend.{trend['unit']}", lang)
    if any(partial):
        title += t("chart.trend.partial", lang)
    fig = _chart(trace, title, dark)
    week = trend["unit"] == "week"
    fig["layout"]["xaxis"] = {**fig["layout"]["xaxis"], "type": "date",
                              "tickformat": "%m-%d", "hoverformat": "%Y-%m-%d"}
    if 0 < len(points) <= 14:
        # A tick per period, and half a period beyond the first and last, so every label
        # shows (a lone point would otherwise span an hour).
        fig["layout"]["xaxis"]["dtick"] = (7 if week else 1) * 86_400_000
        fig["layout"]["xaxis"]["range"] = _padded(points[0]["period"], points[-1]["period"],
                                                  3.5 if week else 0.5)
    fig["layout"]["yaxis"] = {**fig["layout"]["yaxis"], "rangemode": "tozero"}
    return fig


def _padded(first: str, last: str, days: float) -> list[str]:
    """An axis range from ``days`` before the date ``first`` to ``days`` after ``last``."""
    pad = np.timedelta64(int(days * 86_400), "s")
    return [str(np.datetime64(first, "s") - pad).replace("T", " "),
            str(np.datetime64(last, "s") + pad).replace("T", " ")]


def bars_figure(rows: list[dict], title: str, dark: bool = False, top: int = 8) -> dict:
    rows = rows[:top][::-1]
    return _chart({"type": "bar", "x": [r["n"] for r in rows],
                   "y": [as_text(r["key"]) for r in rows], "orientation": "h",
                   "marker": {"color": "#4e79a7"}}, title, dark)


def share_figure(shares: dict, title: str, labels: dict[str, str],
                 dark: bool = False) -> dict:
    keys = [k for k, v in shares.items() if v]
    return _chart({"type": "pie", "labels": [as_text(labels.get(k, k)) for k in keys],
                   "values": [shares[k] for k in keys], "hole": 0.5, "sort": False,
                   "textinfo": "label+percent"}, title, dark)


def weekday_hours_figure(grid: list[list[int]], lang: str, dark: bool = False) -> dict:
    """Reports by local weekday (rows, Monday on top) and hour (columns 0–23) as a heat
    grid; each cell's hover names its weekday, hour and count (as text: the labels are
    escaped like the data's)."""
    days = [as_text(t(f"weekday.{i}", lang)) for i in range(7)]
    hover = [[as_text(t("chart.weekday_hours.hover", lang).format(day=day, hour=hour, n=n))
              for hour, n in enumerate(row)] for day, row in zip(days, grid, strict=True)]
    trace = {"type": "heatmap", "z": grid, "x": list(range(24)), "y": days,
             "colorscale": HEAT_SCALE, "showscale": False, "xgap": 1, "ygap": 1,
             "zmin": 0, "text": hover, "hovertemplate": "%{text}<extra></extra>"}
    fig = _chart(trace, t("chart.weekday_hours", lang), dark)
    layout = fig["layout"]
    layout["xaxis"] = {**layout["xaxis"], "dtick": 3, "ticksuffix": "时" if lang == "zh" else "h",
                       "showgrid": False, "fixedrange": True}
    layout["yaxis"] = {**layout["yaxis"], "autorange": "reversed", "showgrid": False,
                       "fixedrange": True}
    return fig


def search_figure(collection: dict, bbox, lang: str, tile_url: str | None = None,
                  outline: dict | None = None) -> dict:
    """The hits of a case search on a map: each located case a point named by its id (the
    hover adds its address), over the ``outline`` of units (GeoJSON) when given; the view
    fitted to the hits (to ``bbox``, the scope's, when none has a point)."""
    located = [f for f in collection["features"] if f.get("geometry")]
    lon, lat = np.array([f["geometry"]["coordinates"] for f in located],
                        dtype=float).reshape(-1, 2).T
    # Drawn even when empty: a figure without a map trace shows plotly's empty axes.
    traces = [{
        "type": "scattermap", "lon": lon, "lat": lat, "mode": "markers+text",
        "text": [as_text(f["properties"]["id"]) for f in located],
        "customdata": [as_text(f["properties"].get("address") or "") for f in located],
        "textposition": "top right", "name": t("search.hits", lang),
        "marker": {"size": 11, "color": "#e53935"},
        "hovertemplate": "%{text}<br>%{customdata}<extra></extra>"}]
    if located:
        pad = 0.004
        bbox = (float(lon.min()) - pad, float(lat.min()) - pad, float(lon.max()) + pad,
                float(lat.max()) + pad)
    view = fit_view(bbox, 420, 300) if bbox else {"center": {"lon": 0, "lat": 0}, "zoom": 1}
    lines = ([{"sourcetype": "geojson", "source": outline, "type": "line",
               "color": "#7a8ca3", "line": {"width": 1}, "below": "traces"}]
             if outline and outline.get("features") else [])
    base = _basemap(tile_url).get("layers", [])
    return {"data": traces, "layout": {
        "map": {"style": OFFLINE_STYLE, **view, "layers": base + lines},
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "showlegend": False,
        "paper_bgcolor": "rgba(0,0,0,0)", "font": _font(False)}}
