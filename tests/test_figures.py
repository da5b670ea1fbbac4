"""Figure builders without a browser: offline styles, basemap, GCJ-02 alignment, metrics."""

from __future__ import annotations

import numpy as np
from conftest import drawn_view

from dashboard.figures import DARK_STYLE, OFFLINE_STYLE, map_figure
from onemap.crs import wgs84_to_gcj02

SQUARE = [[[114.30, 22.65], [114.32, 22.65], [114.32, 22.67], [114.30, 22.67], [114.30, 22.65]]]


def view(total: int = 5):
    feature = {"type": "Feature", "id": "A", "properties": {"name": "甲"},
               "geometry": {"type": "Polygon", "coordinates": SQUARE}}
    return drawn_view([feature], [{"code": "A", "name": "甲", "total": total, "overdue": 1}],
                      (114.30, 22.65, 114.32, 22.67))


def test_offline_by_default():
    fig = map_figure(view(), ("units",), "total")
    assert fig["layout"]["map"]["style"] == OFFLINE_STYLE  # no tiles, glyphs or sprites
    assert not fig["layout"]["map"].get("layers")
    assert list(fig["data"][0]["z"]) == [5]


def test_count_colours_start_at_zero():
    """One unit (a grid's own view) or several: the colour bar runs from 0 to the largest
    count, not over a meaningless sliver around a single value."""
    trace = map_figure(view(172), ("units",), "total")["data"][0]
    assert (trace["zmin"], trace["zmax"]) == (0, 172)
    assert map_figure(view(0), ("units",), "total")["data"][0]["zmax"] == 1  # all zero


def empties(value) -> list:
    """The empty objects (dicts) anywhere inside ``value``; empty lists survive."""
    if isinstance(value, dict):
        return [value] if not value else [e for v in value.values() for e in empties(v)]
    if isinstance(value, list):
        return [e for v in value for e in empties(v)]
    return []


def test_map_styles_hold_no_empty_object():
    """plotly drops an empty object of the style when it updates the map in place, then
    waits for a style load that never comes: the map would keep its old data, unclickable."""
    assert empties(OFFLINE_STYLE) == [] and empties(DARK_STYLE) == []


def test_gcj02_tiles_get_shifted_data():
    fig = map_figure(view(), ("units",), "total", tile_url="http://tiles.local/{z}/{x}/{y}.png",
                     tile_crs="gcj02")
    ring = np.array(fig["data"][0]["geojson"]["features"][0]["geometry"]["coordinates"][0])
    want_x, want_y = wgs84_to_gcj02(np.array(SQUARE[0])[:, 0], np.array(SQUARE[0])[:, 1])
    assert np.allclose(ring[:, 0], want_x) and np.allclose(ring[:, 1], want_y)
    assert abs(ring[0, 0] - SQUARE[0][0][0]) > 0.003  # a few hundred metres: really moved
    assert fig["layout"]["map"]["layers"][0]["source"] == ["http://tiles.local/{z}/{x}/{y}.png"]


def test_wgs84_tiles_leave_data_alone():
    fig = map_figure(view(), ("units",), "total", tile_url="http://tiles.local/{z}/{x}/{y}.png")
    ring = fig["data"][0]["geojson"]["features"][0]["geometry"]["coordinates"][0]
    assert [list(p) for p in ring] == SQUARE[0]


HOSTILE = '<a href="https://evil.example/">CLICK</a>'


def test_the_alarm_focus_and_hotspot_hover_carry_data_as_text():
    """A device or grid name holding markup reaches plotly escaped (plotly draws <a> in
    legends and hover texts as a live link): the alarm-focus legend and hover, and the
    hotspot grid's hover name."""
    from dashboard.figures import focus_traces, hotspot_trace

    device = {"geometry": {"coordinates": [114.3, 22.7]},
              "properties": {"id": "D1", "kind": HOSTILE, "name": HOSTILE, "status": "alarm"}}
    for trace in focus_traces(device, "zh"):
        assert "<a" not in trace.get("name", "") and "<a" not in trace["text"][0], trace
        assert "&lt;a href" in trace["text"][0]
    grid = {"type": "Feature", "id": "G1", "geometry": None,
            "properties": {"name": HOSTILE, "n": 3, "z": 3.1, "hot": True, "trend": None}}
    trace = hotspot_trace({"features": [grid]}, "zh")
    assert trace["customdata"][0][0].startswith("&lt;a href"), trace["customdata"]


def test_the_weekday_hour_grid_is_seven_rows_of_24_hours_monday_on_top():
    from dashboard.figures import weekday_hours_figure

    grid = [[day * 100 + hour for hour in range(24)] for day in range(7)]
    fig = weekday_hours_figure(grid, "zh")
    trace = fig["data"][0]
    assert trace["type"] == "heatmap" and trace["z"] == grid
    assert trace["y"][0] == "周一" and trace["y"][-1] == "周日" and trace["x"] == list(range(24))
    assert fig["layout"]["yaxis"]["autorange"] == "reversed"  # Monday on top
    assert trace["text"][6][23] == "周日 23时：623 件"
    english = weekday_hours_figure(grid, "en")["data"][0]
    assert english["text"][0][9] == "Mon 9:00–9:59: 9 cases"
