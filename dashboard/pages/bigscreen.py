"""The big screen (/bigscreen): dark, 1920×1080 to 3840×2160 without scrollbars, refreshing
itself when the data changes and on a timer, touring the streets (paused while someone
interacts), with a clock, the data's time and a ticker of the IoT alarms (newest first, with
their time and what was done about them) and the backlog's overdue and due-soon cases. Read-only: no
exports here."""

from __future__ import annotations

from urllib.parse import urlencode

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from dashboard import ids, push
from dashboard.components import (
    alarm_handled_text,
    database_banner,
    due_text,
    feed_times,
    graph_config,
    kpi_cards,
    only,
    period_words,
    seen,
    stale_warnings,
    status_words,
)
from dashboard.figures import bars_figure, map_figure, trend_figure
from dashboard.messages import t
from dashboard.services import services
from dashboard.state import parse
from layers.changes import current
from layers.errors import LayerError
from layers.filters import RANGES, Filters, Period
from layers.times import shown
from layers.view import View, tour_codes
from web.auth import current_principal

dash.register_page(__name__, path="/bigscreen", title="一张图 · 指挥中心")

# The big screen's own ids: pages share one app, so its ids differ from the main page's.
BS = {name: f"bs-{name}" for name in (ids.MAP, ids.KPIS, ids.BREADCRUMB, ids.TREND,
                                      ids.CATEGORIES, ids.TICKER, ids.ASOF, ids.BANNER,
                                      ids.REFRESH, ids.TOUR, ids.TOUR_STATE, ids.CLOCK)}
BS_PERIOD = "bs-period"
PUSH = "bs-"  # the ids of the page's watch of the data
TOUR_S = 20
BIG_LAYERS = ("units", "hotspots", "iot")
WALL_RANGE = "30d"  # the flows' period unless the address names one (?range=today…)
TICKER_CASES = {"overdue": 10, "due_soon": 5}  # the backlog's newest of each on the ticker
TICKER_ALARMS = 10
# What a change of devices' statuses alone redraws (and the map, by devices_map).
DEVICE_PARTS = ("kpis", "ticker", "asof", "banner", "drawn")


def layout(refresh: str | None = None, tour: str | None = None, **query) -> html.Div:
    state = parse("?" + urlencode(query))
    range_ = query.get("range") if query.get("range") in RANGES else WALL_RANGE
    seconds = _seconds(refresh, services().settings.refresh_seconds)
    chart = {"config": graph_config(displayModeBar=False, staticPlot=True, responsive=True),
             "className": "chart", "style": {"height": "100%"}}
    return html.Div([
        html.Header([html.H1(t("bigscreen.title", state.lang)),
                     html.Div(id=BS[ids.BREADCRUMB], className="where"),
                     html.Div(id=BS_PERIOD, className="period"),
                     html.Div(id=BS[ids.ASOF], className="asof"),
                     html.Div(id=BS[ids.CLOCK], className="clock")], className="bs-header"),
        html.Div(id=BS[ids.BANNER]),
        html.Div([
            html.Div(id=BS[ids.KPIS], className="bs-cards"),
            dcc.Graph(id=BS[ids.MAP], className="bs-map", style={"height": "100%"},
                      config=graph_config(displayModeBar=False, scrollZoom=True)),
            html.Div([dcc.Graph(id=BS[ids.TREND], **chart),
                      dcc.Graph(id=BS[ids.CATEGORIES], **chart)], className="bs-charts"),
        ], className="bs-grid"),
        html.Div(html.Div(id=BS[ids.TICKER], className="ticker-track"), className="ticker"),
        dcc.Store(id="bs-lang", data=state.lang),
        dcc.Store(id="bs-zone", data=services().settings.timezone),
        dcc.Store(id="bs-range", data=range_),
        dcc.Store(id="bs-screen"),
        dcc.Store(id=BS[ids.TOUR_STATE], data={"index": -1, "on": tour != "off"}),
        dcc.Interval(id=BS[ids.REFRESH], interval=seconds * 1000),
        dcc.Interval(id=BS[ids.TOUR], interval=_seconds(tour, TOUR_S) * 1000),
        dcc.Interval(id="bs-clock-tick", interval=1000),
        *push.watchers(PUSH),
    ], className="bigscreen")


def _seconds(value: str | None, default: int) -> int:
    try:
        return max(5, int(value)) if value not in (None, "", "off") else default
    except ValueError:
        return default


# The tour advances on its own timer unless someone touched the screen in the last minute
# (assets/bigscreen.js records the last interaction).
clientside_callback(
    """function(n, tour) {
        const idle = Date.now() - (window.onemapLastInteraction || 0) > 60000;
        if (!tour.on || !idle) { return window.dash_clientside.no_update; }
        return {index: tour.index + 1, on: true};
    }""",
    Output(BS[ids.TOUR_STATE], "data"), Input(BS[ids.TOUR], "n_intervals"),
    State(BS[ids.TOUR_STATE], "data"),
    prevent_initial_call=True,
)

# The screen's size, so the map fits it and the type on figures scales with it.
clientside_callback(
    """function(lang) { return {w: window.innerWidth, h: window.innerHeight}; }""",
    Output("bs-screen", "data"), Input("bs-lang", "data"),
)

# The wall's clock tells the deployment's time, whatever zone the browser is set to.
clientside_callback(
    """function(n, zone) {
        return new Date().toLocaleString('zh-CN', {hour12: false, timeZone: zone});
    }""",
    Output(BS[ids.CLOCK], "children"), Input("bs-clock-tick", "n_intervals"),
    State("bs-zone", "data"),
)


# A new head of the ticker (a new alarm) enters at once: its scroll starts again from the
# right edge instead of waiting for the loop to come round.
clientside_callback(
    """function(items) {
        setTimeout(function () {  // once the new items are in the page
            const track = document.getElementById('bs-ticker');
            const first = track && track.firstElementChild;
            const head = first ? first.textContent : '';
            if (track && head !== track.dataset.head) {
                track.dataset.head = head;
                track.style.animation = 'none';
                void track.offsetWidth;
                track.style.animation = '';
            }
        }, 0);
        return window.dash_clientside.no_update;
    }""",
    Output(BS[ids.TICKER], "title"), Input(BS[ids.TICKER], "children"),
    prevent_initial_call=True,
)


# What one stop of the tour draws, each output by name.
WALL = {
    "map": Output(BS[ids.MAP], "figure"), "kpis": Output(BS[ids.KPIS], "children"),
    "breadcrumb": Output(BS[ids.BREADCRUMB], "children"),
    "trend": Output(BS[ids.TREND], "figure"), "categories": Output(BS[ids.CATEGORIES], "figure"),
    "ticker": Output(BS[ids.TICKER], "children"), "asof": Output(BS[ids.ASOF], "children"),
    "banner": Output(BS[ids.BANNER], "children"), "period": Output(BS_PERIOD, "children"),
    "drawn": Output(push.drawn(PUSH), "data"),
}
push.watch(PUSH)  # a change in the data redraws the stop within about two seconds


STOP = {"tour": State(BS[ids.TOUR_STATE], "data"), "screen": State("bs-screen", "data"),
        "lang": State("bs-lang", "data"), "range_": State("bs-range", "data"),
        "drawn_at": State(push.drawn(PUSH), "data")}


@callback(
    output=WALL,
    inputs={"_tick": Input(BS[ids.REFRESH], "n_intervals"),
            "tour": Input(BS[ids.TOUR_STATE], "data"), "screen": Input("bs-screen", "data"),
            "_changed": Input(push.changed(PUSH), "data")},
    state={name: STOP[name] for name in ("lang", "range_", "drawn_at")},
)
def refresh(_tick, tour, screen, lang, range_, _changed=None, drawn_at=None):
    """Redraw the current stop of the tour (the district first, then each street), on its
    timer and when the data changed (when only devices changed, only what shows them, the
    map apart: :func:`devices_map`): the backlog now, the flows of the wall's period (said
    in the header)."""
    try:
        version = current(services().read_engine)  # before the data: never newer than it
        data = _read(tour, range_, drawn_at, version)
    except (SQLAlchemyError, LayerError) as exc:
        # The wall keeps its last picture and says why it is not updating.
        return only(WALL, banner=database_banner(exc, lang))
    zone = services().settings.timezone
    makers = {
        "map": lambda: _map(data, screen, lang),
        "kpis": lambda: kpi_cards(data, lang, range_),
        "breadcrumb": lambda: " › ".join(c["name"] for c in data.breadcrumb),
        "trend": lambda: scaled(trend_figure(data.trend, lang, dark=True), _scale(screen)),
        "categories": lambda: scaled(bars_figure(data.categories,
                                                 t("chart.categories", lang), dark=True),
                                     _scale(screen)),
        "ticker": lambda: _ticker(data, lang, zone),
        "asof": lambda: feed_times(data.feeds, lang, zone),
        "banner": lambda: stale_warnings(data.feeds, lang, zone) or None,
        "period": lambda: t("bigscreen.period", lang).format(
            period=period_words(data.period, range_, lang)),
        "drawn": lambda: version,
    }
    if push.devices_only(PUSH, drawn_at, version):
        return only(WALL, **{name: makers[name]() for name in DEVICE_PARTS})
    return {name: make() for name, make in makers.items()}


@callback(
    output=Output(BS[ids.MAP], "figure", allow_duplicate=True),
    inputs={"_changed": Input(push.changed(PUSH), "data")},
    state=STOP,
    prevent_initial_call=True,
)
def devices_map(_changed, tour, screen, lang, range_, drawn_at):
    """The map when only devices changed, apart from the rest of the stop: its thousands
    of device points are most of the bytes a change sends, and the ticker need not wait
    for them (the view is read once for both: the view cache)."""
    try:
        version = current(services().read_engine)
        data = _read(tour, range_, drawn_at, version)
    except (SQLAlchemyError, LayerError):
        return no_update  # refresh says why
    return _map(data, screen, lang) if push.devices_only(PUSH, drawn_at, version) \
        else no_update


def _read(tour: dict, range_: str, drawn_at: str | None, version: str) -> View:
    """The view of the tour's stop (``version``: the data's, read before it)."""
    svc = services()
    filters = Filters(scope=_tour_stop(svc, tour["index"]), period=Period(range=range_))
    return svc.views.view(svc.read_engine, filters, svc.settings.timezone, set(BIG_LAYERS),
                          current_principal(), version, svc.settings.due_soon_hours,
                          ticker=TICKER_CASES,
                          hours=False,  # the wall shows no weekday × hour grid
                          since=drawn_at)


def _scale(screen: dict | None) -> float:
    return (screen or {}).get("w", 1920) / 1920


def _map(data: View, screen: dict | None, lang: str) -> dict:
    """The wall's map, sized to the screen."""
    width, height = (screen or {}).get("w", 1920), (screen or {}).get("h", 1080)
    settings = services().settings
    return scaled(map_figure(data, BIG_LAYERS, "total", lang, settings.tile_url, dark=True,
                             size=(width * 0.5, height * 0.8), tile_crs=settings.tile_crs,
                             zone=settings.timezone),
                  _scale(screen))


def scaled(fig: dict, scale: float) -> dict:
    """Type and margins in proportion to the screen (12 px at 1920 wide)."""
    layout = fig["layout"]
    layout["font"] = {**layout.get("font", {}), "size": round(12 * scale)}
    if "title" in layout:
        layout["title"] = {**layout["title"], "font": {"size": round(15 * scale)}}
    if "legend" in layout:
        layout["legend"] = {**layout["legend"], "font": {"size": round(12 * scale)}}
    if layout.get("margin", {}).get("t"):
        layout["margin"] = {**layout["margin"], "t": round(40 * scale), "l": round(48 * scale),
                            "b": round(30 * scale)}
    for trace in fig["data"]:
        if trace["type"] == "scattermap" and trace.get("marker", {}).get("size"):
            trace["marker"] = {**trace["marker"], "size": trace["marker"]["size"] * scale}
    return fig


def _tour_stop(svc, index: int) -> str | None:
    """-1: the district; then its streets in turn."""
    if index < 0:
        return None
    codes = tour_codes(svc.read_engine, current_principal())
    return None if not codes else (None if index % (len(codes) + 1) == 0
                                   else codes[index % (len(codes) + 1) - 1])


def _ticker(data: View, lang: str, zone: str) -> list:
    """The newest alarms first, each with when it began (local time; its last report when
    its start is unknown), then the backlog's newest overdue cases and those due soon (now,
    whatever the period: the cases the overdue and due-soon cards count), each with how
    long over or left (marked against the database's clock by the read side)."""
    items = [(f"● {a['properties']['kind']} {a['properties'].get('grid_name') or ''} "
              f"{_alarm_time(a['properties'], lang, zone)}{_handled(a['properties'], lang, zone)}",
              "tick alarm" + (" acknowledged" if a["properties"].get("acknowledged_by") else ""))
             for a in data.alarms[:TICKER_ALARMS]]
    items += [(f"{'⚠' if c['due']['due'] == 'overdue' else '△'} {status_words(c, lang)} "
               f"{c['id']} {c['category_1']}/{c['category_2'] or ''} · "
               f"{due_text(c['due'], lang)}", f"tick case {c['due']['due']}")
              for c in data.ticker]
    return [html.Span(text, className=kind) for text, kind in items] or [
        html.Span(t("bigscreen.ticker", lang), className="tick")]


def _handled(alarm: dict, lang: str, zone: str) -> str:
    """`` · 已确认 · 张三 · 2026-12-03 16:07 · 已转工单 IOT-…``: what was done about the alarm
    (nothing said of one nobody has acknowledged: the wall's alarms are new until they are)."""
    if not alarm.get("acknowledged_by"):
        return ""
    return f" · {alarm_handled_text(alarm, lang, zone)}"


def _alarm_time(alarm: dict, lang: str, zone: str) -> str:
    """``告警 2026-12-03 16:05``: when the alarm began, else the device's last report."""
    if alarm.get("alarm_since"):
        return f"{t('bigscreen.alarm_since', lang)} {shown(alarm['alarm_since'], zone)}"
    return seen(alarm.get("last_seen"), lang, zone)
