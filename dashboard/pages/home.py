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
from dashboard import ids
from dashboard.figures import bars_figure, map_figure, share_figure, trend_figure
from dashboard.messages import t, user_message
from dashboard.services import services
from dashboard.state import ViewState, parse, with_range
from layers.admin import loaded_levels
from layers.errors import LayerError
from layers.view import case_detail, last_load, subcategories, vocabularies
from web.auth import current_principal

dash.register_page(__name__, path="/", title="一张图 · onemap")

RETRY_MS = 5_000
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
        dcc.Tab(html.Div(id=ids.ALARMS), label=t("table.alarms", state.lang)),
    ])
    return html.Div([
        html.Aside(ui.filter_panel(state, words["categories"], words["channels"]),
                   className="left"),
        # One map for the page's life: each view updates it in place, which is much quicker
        # than a new MapLibre map (and WebGL context) per view.
        html.Section(dcc.Graph(id=ids.MAP_BOX, className="map", config=GRAPH_CONFIG,
                               style={"height": "100%"}), className="center"),
        html.Aside([html.Div(id=ids.KPIS, className="cards"),
                    dcc.Graph(id=ids.TREND, **chart), dcc.Graph(id=ids.CATEGORIES, **chart),
                    dcc.Graph(id=ids.CHANNELS, **chart), dcc.Graph(id=ids.RESOLUTION, **chart)],
                   className="right"),
        html.Section([tabs, html.Div(id=ids.DETAIL, className="detail")], className="bottom"),
        dcc.Interval(id=ids.REFRESH, interval=services().settings.refresh_seconds * 1000),
    ], className="grid")


@callback(
    Output(ids.URL, "search"),
    Input(ids.RANGE, "value"), Input(ids.CATEGORY, "value"), Input(ids.SUBCATEGORY, "value"),
    Input(ids.CHANNEL, "value"), Input(ids.STATUS, "value"), Input(ids.LAYERS, "value"),
    Input(ids.METRIC, "value"), Input(ids.CASE_ORDER, "value"),
    State(ids.URL, "search"),
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
    return replace(
        state, category=chosen,
        channel=tuple(channel or ()), status=tuple(status or ()), layers=tuple(layers or ()),
        metric=metric or "total", cases=order or "latest").query()


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


@callback(
    Output(ids.MAP_BOX, "figure"), Output(ids.KPIS, "children"),
    Output(ids.BREADCRUMB, "children"),
    Output(ids.TREND, "figure"), Output(ids.CATEGORIES, "figure"),
    Output(ids.CHANNELS, "figure"), Output(ids.RESOLUTION, "figure"),
    Output(ids.CASES, "children"), Output(ids.HOTSPOTS, "children"),
    Output(ids.ALARMS, "children"), Output(ids.EXPORT, "children"),
    Output(ids.BANNER, "children"), Output(ids.ASOF, "children"),
    Output(ids.REFRESH, "interval"),
    Input(ids.URL, "search"), Input(ids.REFRESH, "n_intervals"),
)
def render(search, tick):
    """Everything the view shows, from the URL alone."""
    state = parse(search)
    svc = services()
    refresh_ms = svc.settings.refresh_seconds * 1000
    except_ms = min(RETRY_MS, refresh_ms)
    zone = svc.settings.timezone
    try:
        data = svc.views.view(svc.read_engine, {**state.view_params(), "cases": state.cases},
                              zone, set(state.layers), current_principal(),
                              last_load(svc.read_engine), svc.settings.due_soon_hours)
    except LayerError as exc:
        return (*[no_update] * 11, html.Div(user_message(exc, state.lang),
                                             className="banner warn"), no_update,
                refresh_ms)
    except SQLAlchemyError as exc:
        return (*[no_update] * 11, ui.database_banner(exc, state.lang), no_update, except_ms)
    figure, *rest = draw(data, state, svc.settings.tile_url, svc.settings.tile_crs,
                         current_principal().can_export, zone=zone)
    notices = (ui.stale_warnings(data["feeds"], state.lang, zone)
               + ui.elsewhere_notice(data["elsewhere"], state, zone))
    return (figure, *rest, notices or None, ui.feed_times(data["feeds"], state.lang, zone),
            refresh_ms)


def draw(data: dict, state: ViewState, tile_url: str | None = None,
         tile_crs: str = "wgs84", can_export: bool = True, *, zone: str) -> tuple:
    """The components and figures of one view (a pure function of the data)."""
    lang = state.lang
    hotspots = data["layers"].get("hotspots")
    labels = {k: t(f"resolution.{k}", lang) for k in data["cases"]["resolution"]}
    return (
        map_figure(data, state.layers, state.metric, lang, tile_url, tile_crs=tile_crs),
        ui.kpi_cards(data, lang, None if state.start or state.end else state.range),
        ui.breadcrumb(data["breadcrumb"], state),
        trend_figure(data["trend"], lang),
        bars_figure(data["categories"], t("chart.categories", lang)),
        share_figure({c["key"]: c["n"] for c in data["channels"]}, t("chart.channels", lang), {}),
        share_figure(data["cases"]["resolution"], t("chart.resolution", lang), labels),
        # The backlog order lists the open cases now; the newest, the period's cases.
        html.Div([ui.list_note(min(len(data["latest"]), ui.CASE_ROWS),
                               data["cases"]["open" if state.cases == "overdue" else "total"],
                               lang, "case"),
                  ui.case_rows(data["latest"], lang, zone)]) if data["latest"] else
        html.P(t("empty.view", lang)),
        ui.hotspot_rows(hotspots, state),
        ui.alarm_rows(data["alarms"], data["alarms_total"], lang, zone, state.device),
        ui.export_links(state, can_export),
    )


@callback(
    Output(ids.SUBCATEGORY, "options"),
    Input(ids.CATEGORY, "value"), State(ids.SUBCATEGORY, "value"),
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
    Output(ids.DETAIL, "children"),
    Input({"type": "case", "id": ALL}, "n_clicks"),
    State(ids.URL, "search"),
    prevent_initial_call=True,
)
def show_case(clicks, search):
    """The detail drawer: the clicked case's lifecycle as a timeline."""
    if not ctx.triggered_id or not any(clicks):
        return no_update
    state = parse(search)
    svc = services()
    try:
        case = case_detail(svc.read_engine, ctx.triggered_id["id"], current_principal(),
                           svc.settings.timezone, svc.settings.due_soon_hours)
    except (SQLAlchemyError, LayerError) as exc:
        return html.Div(user_message(exc, state.lang), className="banner error")
    return ui.timeline(case, state.lang, svc.settings.timezone)
