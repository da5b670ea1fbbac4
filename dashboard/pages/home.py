"""The main page: the one map with drill-down, filters, KPIs, charts and lists.

Callbacks parse the URL (the single source of the view's state), call ``layers.view`` and
draw what it returns; failures become a banner and the page retries by itself.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

import dash
from dash import (
    ALL,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    ctx,
    dcc,
    html,
    no_update,
)
from sqlalchemy.exc import SQLAlchemyError

from dashboard import components as ui
from dashboard import ids, push, workers
from dashboard import workbench as wb
from dashboard.figures import (
    bars_figure,
    map_figure,
    share_figure,
    trend_figure,
    weekday_hours_figure,
)
from dashboard.messages import t, user_message
from dashboard.services import services
from dashboard.state import ViewState, parse, with_filters, with_range
from layers.access import scope_for
from layers.admin import loaded_levels
from layers.alarms import device as alarm_device
from layers.changes import current
from layers.errors import LayerError
from layers.roster import grid_panel
from layers.view import View, case_detail, subcategories, vocabularies
from onemap.alarm_actions import MAX_NOTE
from onemap.errors import OnemapError
from web.alarms import alarm_desk
from web.auth import current_principal

dash.register_page(__name__, path="/", title="一张图 · onemap")

RETRY_MS = 5_000
PUSH = "desk-"  # the ids of the page's watch of the data
GRAPH_CONFIG = ui.graph_config(displaylogo=False, scrollZoom=True, toImageButtonOptions={
    "format": "png", "filename": "onemap-map", "scale": 2})


def layout(**query) -> html.Div:
    """Built per request from the URL's query; a database that is down shows the banner."""
    state = parse("?" + urlencode(query))
    svc = services()
    try:
        with svc.read_engine.connect() as conn:
            levels = loaded_levels(conn)
        words = (vocabularies(svc.read_engine, current_principal()) if levels
                 else {"categories": [], "channels": []})
    except SQLAlchemyError as exc:
        return _shell(state, ui.database_banner(exc, state.lang))
    except LayerError as exc:  # the principal's own unit is not loaded
        return _shell(state, html.Div(user_message(exc, state.lang), className="banner warn"))
    if not levels:
        return _shell(state, ui.empty_state(state.lang))
    return _shell(state, _body(state, words))


def _shell(state: ViewState, body) -> html.Div:
    who = current_principal()
    return html.Div([dcc.Location(id=ids.URL, refresh=False),
                     ui.header(state, who=who.name if who else None),
                     html.Div(id=ids.BANNER), html.Main(body)], className="page")


def _body(state: ViewState, words: dict) -> html.Div:
    chart = {"config": ui.graph_config(displayModeBar=False), "className": "chart"}
    tabs = dcc.Tabs([
        dcc.Tab([ui.case_order(state), html.Div(id=ids.CASES)],
                label=t("table.cases", state.lang)),
        dcc.Tab(html.Div(id=ids.HOTSPOTS), label=t("table.hotspots", state.lang)),
        dcc.Tab([_alarm_panel(state.lang), html.Div(id=ids.ALARMS)],
                label=t("table.alarms", state.lang)),
    ])
    return html.Div([
        html.Aside(ui.filter_panel(state, words["categories"], words["channels"]),
                   className="left"),
        # One map for the page's life: each view updates it in place, which is much quicker
        # than a new MapLibre map (and WebGL context) per view.
        html.Section(dcc.Graph(id=ids.MAP_BOX, className="map", config=GRAPH_CONFIG,
                               style={"height": "100%"}), className="center"),
        html.Aside([html.Div(id=ids.WORKERS, className="workers"),
                    html.Div(id=ids.KPIS, className="cards"),
                    dcc.Graph(id=ids.TREND, **chart),
                    dcc.Graph(id=ids.WEEKDAY_HOURS, **chart),
                    dcc.Graph(id=ids.CATEGORIES, **chart),
                    dcc.Graph(id=ids.CHANNELS, **chart), dcc.Graph(id=ids.RESOLUTION, **chart)],
                   className="right"),
        html.Section([tabs, html.Div(id=ids.DETAIL, className="detail")], className="bottom"),
        dcc.Interval(id=ids.REFRESH, interval=services().settings.refresh_seconds * 1000),
        *push.watchers(PUSH),
    ], className="grid")


def _alarm_panel(lang: str) -> html.Div:
    """The clicked alarm (hidden until one is): its state, a note and the two actions, each
    asked to be confirmed. Drawn once: a redraw of the view keeps what is being typed."""
    return html.Div([
        html.Div(id=ids.ALARM_STATE),
        dcc.Textarea(id=ids.ALARM_NOTE, maxLength=MAX_NOTE, placeholder=t("alarm.note", lang),
                     className="alarm-note"),
        html.Div([html.Button(t("alarm.ack", lang), id=ids.ALARM_ACK, n_clicks=0,
                              className="action"),
                  html.Button(t("alarm.to_case", lang), id=ids.ALARM_CASE, n_clicks=0,
                              className="action primary")], className="actions"),
        html.Div(id=ids.ALARM_RESULT, className="alarm-result"),
        dcc.ConfirmDialog(id=ids.ALARM_CONFIRM),
        dcc.Store(id=ids.ALARM_PENDING), dcc.Store(id=ids.ALARM_SINCE),
    ], id=ids.ALARM_PANEL, className="alarm-panel", hidden=True)


@callback(
    output=Output(ids.URL, "search"),
    inputs={"range_": Input(ids.RANGE, "value"), "category": Input(ids.CATEGORY, "value"),
            "subcategory": Input(ids.SUBCATEGORY, "value"),
            "channel": Input(ids.CHANNEL, "value"), "status": Input(ids.STATUS, "value"),
            "layers": Input(ids.LAYER_TOGGLES, "value"), "metric": Input(ids.METRIC, "value"),
            "order": Input(ids.CASE_ORDER, "value")},
    state={"search": State(ids.URL, "search")},
    prevent_initial_call=True,
)
def controls_to_url(range_, category, subcategory, channel, status, layers, metric, order,
                    search):
    """Filters, layers, metric and the case table's order become the URL (the shareable
    state)."""
    # A link's own period stays until another range is chosen.
    state = with_range(parse(search), range_)
    # A subcategory narrows its top-level category: the finer choice is the filter.
    chosen = tuple(subcategory or ()) or tuple(category or ())
    state = with_filters(state, categories=chosen, channels=tuple(channel or ()),
                         statuses=tuple(status or ()))
    return replace(state, layers=tuple(layers or ()), metric=metric or "total",
                   cases=order or "latest").query()


# A click on a unit drills down: the scope changes in the URL right in the browser (no
# round trip before the view's own request). A hotspot's location is its grid: a click on
# it zooms there. Points of other layers carry no location. The device shown belongs to
# the old scope.
clientside_callback(
    """function(click, search) {
        const code = click && click.points && click.points[0] && click.points[0].location;
        if (!code) { return window.dash_clientside.no_update; }
        const params = new URLSearchParams(search || '');
        params.set('scope', code);
        params.delete('device');
        return '?' + params.toString();
    }""",
    Output(ids.URL, "search", allow_duplicate=True),
    Input(ids.MAP_BOX, "clickData"), State(ids.URL, "search"),
    prevent_initial_call=True,
)


# A click on an alarm shows its device on the map: the device goes into the URL, which
# centres the map on it (a new list of rows has no clicks yet and changes nothing).
clientside_callback(
    """function(clicks, search) {
        const ctx = window.dash_clientside.callback_context;
        const ids = ctx.triggered.filter(t => t.prop_id.startsWith('{')).map(
            t => JSON.parse(t.prop_id.substring(0, t.prop_id.lastIndexOf('}') + 1)).id);
        const hit = (ctx.inputs_list[0] || []).find(i => i.value && ids.includes(i.id.id));
        if (!hit) { return window.dash_clientside.no_update; }
        const params = new URLSearchParams(search || '');
        params.set('device', hit.id.id);
        return '?' + params.toString();
    }""",
    Output(ids.URL, "search", allow_duplicate=True),
    Input({"type": "alarm", "id": ALL}, "n_clicks"), State(ids.URL, "search"),
    prevent_initial_call=True,
)


# What one view draws, each output by name: ``draw`` fills the first twelve, ``render`` the
# banner, the data's time, the next refresh and the data's version it drew at.
VIEW = {
    "map": Output(ids.MAP_BOX, "figure"), "kpis": Output(ids.KPIS, "children"),
    "breadcrumb": Output(ids.BREADCRUMB, "children"),
    "trend": Output(ids.TREND, "figure"),
    "weekday_hours": Output(ids.WEEKDAY_HOURS, "figure"),
    "categories": Output(ids.CATEGORIES, "figure"),
    "channels": Output(ids.CHANNELS, "figure"), "resolution": Output(ids.RESOLUTION, "figure"),
    "cases": Output(ids.CASES, "children"), "hotspots": Output(ids.HOTSPOTS, "children"),
    "alarms": Output(ids.ALARMS, "children"), "exports": Output(ids.EXPORT, "children"),
    "banner": Output(ids.BANNER, "children"), "asof": Output(ids.ASOF, "children"),
    "interval": Output(ids.REFRESH, "interval"), "drawn": Output(push.drawn(PUSH), "data"),
}
push.watch(PUSH)  # a change in the data redraws the view within about two seconds


@callback(
    output=VIEW,
    inputs={"search": Input(ids.URL, "search"), "tick": Input(ids.REFRESH, "n_intervals"),
            "_changed": Input(push.changed(PUSH), "data")},
    state={"drawn_at": State(push.drawn(PUSH), "data")},
)
def render(search, tick, _changed=None, drawn_at=None):
    """Everything the view shows, from the URL alone (again when the data changed: only
    the parts showing devices when only they changed)."""
    state = parse(search)
    svc = services()
    refresh_ms = svc.settings.refresh_seconds * 1000
    except_ms = min(RETRY_MS, refresh_ms)
    zone = svc.settings.timezone
    try:
        if state.problem:  # a link whose filters cannot be read: say so, show nothing
            raise state.problem
        version = current(svc.read_engine)  # before the data: never newer than it
        data = svc.views.view(svc.read_engine, state.filters, zone, set(state.layers),
                              current_principal(), version,
                              svc.settings.due_soon_hours, device=state.device,
                              order=state.cases, since=drawn_at)
    except LayerError as exc:
        return ui.only(VIEW, banner=html.Div(user_message(exc, state.lang),
                                             className="banner warn"), interval=refresh_ms)
    except SQLAlchemyError as exc:
        return ui.only(VIEW, banner=ui.database_banner(exc, state.lang), interval=except_ms)
    notices = (ui.stale_warnings(data.feeds, state.lang, zone)
               + ui.elsewhere_notice(data.elsewhere, state, zone))
    only = (device_parts(state) if push.devices_only(PUSH, drawn_at, version) else None)
    drawn = draw(data, state, svc.settings.tile_url, svc.settings.tile_crs,
                 current_principal().can_export, zone=zone, only=only)
    return {**(drawn if only is None else ui.only(VIEW, **drawn)),
            "banner": notices or None, "asof": ui.feed_times(data.feeds, state.lang, zone),
            "interval": refresh_ms, "drawn": version}


def device_parts(state: ViewState) -> set[str]:
    """What of :func:`draw` shows devices: the cards, the alarm list, and the map when it
    draws the devices or one of them."""
    return {"kpis", "alarms"} | ({"map"} if "iot" in state.layers or state.device else set())


def draw(data: View, state: ViewState, tile_url: str | None = None,
         tile_crs: str = "wgs84", can_export: bool = True, *, zone: str,
         only: set[str] | None = None) -> dict:
    """The components and figures of one view by output name (a pure function of the
    data); ``only``: those named, the others not made."""
    lang = state.lang
    hotspots = data.layers.get("hotspots")
    labels = {k: t(f"resolution.{k}", lang) for k in data.cases["resolution"]}
    makers = {
        "map": lambda: map_figure(data, state.layers, state.metric, lang, tile_url,
                                  tile_crs=tile_crs, zone=zone),
        "kpis": lambda: ui.kpi_cards(data, lang, state.range),
        "breadcrumb": lambda: ui.breadcrumb(data.breadcrumb, state),
        "trend": lambda: trend_figure(data.trend, lang),
        "weekday_hours": lambda: weekday_hours_figure(data.weekday_hours, lang),
        "categories": lambda: bars_figure(data.categories, t("chart.categories", lang)),
        "channels": lambda: share_figure({c["key"]: c["n"] for c in data.channels},
                                         t("chart.channels", lang), {}),
        "resolution": lambda: share_figure(data.cases["resolution"],
                                           t("chart.resolution", lang), labels),
        # The backlog order lists the open cases now; the newest, the period's cases.
        "cases": lambda: html.Div([
            ui.list_note(min(len(data.latest), ui.CASE_ROWS),
                         data.cases["open" if state.cases == "overdue" else "total"],
                         lang, "case"),
            ui.case_rows(data.latest, lang, zone)]) if data.latest else
        html.P(t("empty.view", lang)),
        "hotspots": lambda: ui.hotspot_rows(hotspots, state),
        "alarms": lambda: ui.alarm_rows(data.alarms, data.alarms_total, lang, zone,
                                        state.device),
        "exports": lambda: [*ui.export_links(state, can_export),
                            html.Span(ui.report_links(data.scope, data.period, lang,
                                                      can_export),
                                      id="desk-report", className="wb-report")],
    }
    return {name: make() for name, make in makers.items() if only is None or name in only}


@callback(
    output=Output(ids.WORKERS, "children"),
    inputs={"search": Input(ids.URL, "search"), "tick": Input(ids.REFRESH, "n_intervals"),
            "_changed": Input(push.changed(PUSH), "data")},
)
def grid_workers(search, tick, _changed=None):
    """At the grid level, the grid's workers with their figures over the view's period
    (nothing at other levels; the view's banner tells of a failed read)."""
    state = parse(search)
    if state.problem:
        return []
    svc = services()
    try:
        data = grid_panel(svc.read_engine, state.filters, current_principal(),
                          svc.settings.timezone)
    except (SQLAlchemyError, LayerError):
        return []
    return workers.panel(data, state.lang)


@callback(
    output=Output(ids.SUBCATEGORY, "options"),
    inputs={"tops": Input(ids.CATEGORY, "value")},
    state={"chosen": State(ids.SUBCATEGORY, "value")},
)
def subcategory_options(tops, chosen):
    """The category tree: second-level choices under the chosen top-level categories (and
    whatever a shared link already chose)."""
    try:
        found = subcategories(services().read_engine, list(tops or ()), current_principal())
    except (SQLAlchemyError, LayerError):
        return no_update
    return list(dict.fromkeys([*found, *(chosen or ())]))


@callback(
    output=Output(ids.DETAIL, "children"),
    inputs={"clicks": Input({"type": "case", "id": ALL}, "n_clicks"),
            "_alarm_cases": Input({"type": "alarm-case", "id": ALL}, "n_clicks"),
            "_alarm_case": Input({"type": "alarm-case-detail", "id": ALL}, "n_clicks")},
    state={"search": State(ids.URL, "search")},
    prevent_initial_call=True,
)
def show_case(clicks, search, _alarm_cases=(), _alarm_case=()):
    """The detail drawer: the clicked case's lifecycle as a timeline, its 督办 and 提醒,
    and a link to it on the workbench (where it is urged); a case of the case table, or an
    alarm's case."""
    if not ctx.triggered_id or not any(t["value"] for t in ctx.triggered):
        return no_update
    state = parse(search)
    svc = services()
    try:
        case = case_detail(svc.read_engine, ctx.triggered_id["id"], current_principal(),
                           svc.settings.timezone, svc.settings.due_soon_hours)
    except (SQLAlchemyError, LayerError) as exc:
        return html.Div(user_message(exc, state.lang), className="banner error")
    zone = svc.settings.timezone
    return html.Div([
        ui.timeline(case, state.lang, zone),
        html.H4(t("urge.title", state.lang)),
        wb.urged(case.get("supervisions", []), state.lang, zone, "case-urged"),
        dcc.Link(t("urge.on_workbench", state.lang), id="case-on-workbench",
                 href=wb.BenchState(view=state, case=case["id"]).href())])


# -- acting on the clicked alarm -----------------------------------------------------------
@callback(
    output={"hidden": Output(ids.ALARM_PANEL, "hidden"),
            "state": Output(ids.ALARM_STATE, "children"),
            "ack": Output(ids.ALARM_ACK, "disabled"), "case": Output(ids.ALARM_CASE, "disabled"),
            "since": Output(ids.ALARM_SINCE, "data")},
    inputs={"search": Input(ids.URL, "search"),
            "_changed": Input(push.changed(PUSH), "data")},
)
def alarm_panel(search, _changed=None):
    """The clicked alarm's panel, again whenever the data changed (so it shows what any
    screen did about the alarm), without waiting for the view: its state, and the actions
    this person may take on it now."""
    state = parse(search)
    if not state.device:
        return {"hidden": True, "state": [], "ack": True, "case": True, "since": None}
    svc = services()
    try:
        device = _clicked(svc, state.device)
    except (SQLAlchemyError, LayerError) as exc:
        return {"hidden": False, "state": html.Div(user_message(exc, state.lang),
                                                   className="banner warn"),
                "ack": True, "case": True, "since": None}
    alarm = device["properties"] if device and device["properties"]["status"] == "alarm" \
        else None
    who = current_principal()
    acting = bool(alarm) and who.can_act
    since = alarm and alarm["alarm_since"]
    return {"hidden": device is None,
            "state": ui.alarm_panel_state(device, state.lang, svc.settings.timezone) + (
                [] if who.can_act else [html.P(t("alarm.read_only", state.lang),
                                               className="note")]),
            "ack": not acting or bool(alarm.get("acknowledged_by")),
            "case": not acting or bool(alarm.get("case_id")),
            "since": since.isoformat() if since else None}


def _clicked(svc, device_id: str) -> dict | None:
    with svc.read_engine.connect() as conn:
        return alarm_device(conn, scope_for(conn, current_principal(), None), device_id)


@callback(
    output={"message": Output(ids.ALARM_CONFIRM, "message"),
            "displayed": Output(ids.ALARM_CONFIRM, "displayed"),
            "pending": Output(ids.ALARM_PENDING, "data")},
    inputs={"_ack": Input(ids.ALARM_ACK, "n_clicks"), "_case": Input(ids.ALARM_CASE, "n_clicks")},
    state={"search": State(ids.URL, "search")},
    prevent_initial_call=True,
)
def confirm_alarm_action(_ack, _case, search):
    """A click on an action asks first: acknowledge this device's alarm, or dispatch it as a
    case to its grid?"""
    if not ctx.triggered or not ctx.triggered[0]["value"]:
        return {"message": no_update, "displayed": False, "pending": no_update}
    state = parse(search)
    action = "acknowledge" if ctx.triggered_id == ids.ALARM_ACK else "case"
    try:
        device = _clicked(services(), state.device or "")
    except (SQLAlchemyError, LayerError):
        device = None
    props = device["properties"] if device else {"name": state.device, "kind": "",
                                                 "grid_name": ""}
    name = f"{props['kind']} {props['name'] or ''}".strip()
    return {"message": t(f"alarm.confirm.{action}", state.lang).format(
                device=name, grid=props.get("grid_name") or ""),
            "displayed": True, "pending": action}


@callback(
    output={"result": Output(ids.ALARM_RESULT, "children"),
            "note": Output(ids.ALARM_NOTE, "value"),
            "changed": Output(push.changed(PUSH), "data", allow_duplicate=True)},
    inputs={"_confirmed": Input(ids.ALARM_CONFIRM, "submit_n_clicks")},
    state={"action": State(ids.ALARM_PENDING, "data"), "note": State(ids.ALARM_NOTE, "value"),
           "since": State(ids.ALARM_SINCE, "data"), "search": State(ids.URL, "search")},
    prevent_initial_call=True,
)
def act_on_alarm(_confirmed, action, note, since, search):
    """Do the confirmed action through the same desk as the API (``web.alarms``: the same
    role, area and alarm checks, the same audit), then redraw the view at once."""
    state = parse(search)
    if not state.device or action not in ("acknowledge", "case"):
        return {"result": no_update, "note": no_update, "changed": no_update}
    svc = services()
    try:
        done = alarm_desk().act(current_principal(), state.device, action, note or None,
                                since)
        version = current(svc.engine)
    except (OnemapError, SQLAlchemyError) as exc:
        return {"result": html.Div(user_message(exc, state.lang), className="banner warn"),
                "note": no_update, "changed": no_update}
    words = t(f"alarm.done.{done['result']}", state.lang).format(
        case=done["alarm"].get("case_id") or "")
    return {"result": html.Div(words, className="banner ok", id="alarm-done"), "note": "",
            "changed": version}
