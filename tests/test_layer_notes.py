"""What the map and the lists say about what they leave out, without a browser: the notes
of cut, binned and empty layers, the focus on a device, list notes and durations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from conftest import drawn_view

from dashboard.components import alarm_rows, duration, list_note
from dashboard.figures import FOCUS_ZOOM, layer_notes, map_figure
from dashboard.state import ViewState, parse, with_scope


def points(n: int, status: str = "online") -> list[dict]:
    return [{"type": "Feature", "id": f"D{i}", "properties": {"kind": "烟感", "name": f"d{i}",
                                                              "status": status},
             "geometry": {"type": "Point", "coordinates": [114.3 + i / 1e4, 22.7]}}
            for i in range(n)]


def layer(features: list[dict], matched: int, unlocated: int = 0, **extra) -> dict:
    return {"type": "FeatureCollection", "features": features, "numberReturned": len(features),
            "numberMatched": matched, "numberUnlocated": unlocated, **extra}


def test_a_layer_drawing_everything_says_nothing():
    assert layer_notes({"iot": layer(points(3), 3)}, "zh") == []


def test_a_cut_layer_says_how_many_it_shows():
    notes = layer_notes({"iot": layer(points(3), 10)}, "zh")
    assert [n["text"] for n in notes] == ["物联设备：显示 3 / 共 10"]
    notes = layer_notes({"facilities": layer(points(3), 12_345)}, "en")
    assert notes[0]["text"] == "Facilities: showing 3 of 12,345"


def test_points_without_a_location_are_counted():
    text = layer_notes({"cases": layer(points(3), 5, unlocated=2)}, "zh")[0]["text"]
    assert text == "诉求点位：显示 3 / 共 5；另有 2 条无坐标，未上图"


def test_binned_and_empty_layers_say_so():
    bins = [{"type": "Feature", "id": "c", "properties": {"n": 7},
             "geometry": {"type": "Point", "coordinates": [114.3, 22.7]}}]
    text = layer_notes({"cases": layer(bins, 9, unlocated=2, binned=True)}, "zh")[0]["text"]
    assert text.startswith("诉求点位：7 件按 1 个六边形汇总")
    empty = layer_notes({"cases": layer([], 0, binned=True)}, "zh")[0]["text"]
    assert empty == "诉求点位：当前筛选下没有数据"


def test_a_focused_device_centres_the_map_and_moves_it():
    square = [[[114.30, 22.65], [114.32, 22.65], [114.32, 22.67], [114.30, 22.65]]]
    data = drawn_view([{"type": "Feature", "id": "A", "properties": {"name": "甲"},
                        "geometry": {"type": "Polygon", "coordinates": square}}],
                      [{"code": "A", "name": "甲", "total": 1, "overdue": 0}],
                      (114.30, 22.65, 114.32, 22.67))
    plain = map_figure(data, ("units",), "total")
    device = {**points(1, "alarm")[0], "properties": {**points(1, "alarm")[0]["properties"],
                                                       "id": "D0"}}
    focused = map_figure(replace(data, focus=device), ("units",), "total")
    assert focused["layout"]["map"]["center"] == {"lon": 114.3, "lat": 22.7}
    assert focused["layout"]["map"]["zoom"] == FOCUS_ZOOM
    assert focused["layout"]["uirevision"] != plain["layout"]["uirevision"]
    assert [t.get("ids") for t in focused["data"][1:]] == [["D0"], ["D0"]]


def test_list_notes_and_durations():
    assert list_note(20, 20, "zh", "x").children == "共 20 条"
    assert list_note(20, 1234, "zh", "x").children == "显示 20 / 共 1,234"
    assert duration(timedelta(minutes=59, seconds=59), "zh") == "59分钟"
    assert duration(timedelta(hours=5, minutes=7), "zh") == "5小时7分"
    assert duration(timedelta(days=12, hours=16, minutes=59), "zh") == "12天16小时"
    assert duration(timedelta(days=1), "en") == "1 d 0 h"


def test_an_alarm_with_no_known_start_is_listed_unknown():
    since = datetime(2026, 11, 20, 15, 45, tzinfo=UTC)
    alarms = [{"properties": {"id": i, "kind": "烟感", "name": "n", "grid_name": "g",
                              "alarm_since": s}} for i, s in (("A", since), ("B", None))]
    table = alarm_rows(alarms, 2, "zh", "Asia/Shanghai", selected="B",
                       now=since + timedelta(hours=2))
    rows = table.children[1].children[1].children
    cells = [[td.children for td in row.children][:5] for row in rows]
    assert cells == [["烟感 n", "g", "2026-11-20 23:45", "2小时0分", "—"],
                     ["烟感 n", "g", "—", "—", "—"]]  # no last report known either
    assert rows[1].className == "alarm-row selected unacknowledged"


def test_the_device_is_in_the_url_and_a_new_scope_drops_it():
    state = parse("?scope=440310001&device=YG000946&layers=units,iot")
    assert state.device == "YG000946"
    assert parse(state.query()) == state
    assert "device" not in with_scope(state, "440310002").query()
    assert "device" not in ViewState(device="X").params()  # not a filter of exports
