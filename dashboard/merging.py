"""The workbench's 并案 panel: cases proposed as one event, the chosen cluster on a map with
its cases, the buttons that confirm or reject it, the decisions made, and the case count
with or without merged duplicates (the card says which; a link turns it over).

The panel reads its data itself (``layers.merging``), after the page is shown, so neither
its time nor a failure holds the rest of the workbench; the decision buttons call
:func:`decide_clicked`, which records the decision through
``layers.merging.decide`` (the role and the area checked there, every outcome audited)
as the person signed in, and draws the panel again with what happened.
"""

from __future__ import annotations

from datetime import datetime
from math import cos, pi, radians, sin

import dash
from dash import ALL, Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from dashboard import glossary, ids
from dashboard import workbench as wb
from dashboard.components import database_banner
from dashboard.figures import OFFLINE_STYLE, _font, as_text
from dashboard.messages import t, user_message
from dashboard.services import services
from layers import merging
from layers.access import scope_for
from layers.cases import local_zone
from layers.errors import Conflict, LayerError
from layers.times import shown
from web.auth import current_principal

PANEL = "merge-panel"
ASK = "merge-ask"                # the view whose panel to draw (its URL query)
DECIDE = "merge-decide"          # the buttons' pattern id type
LISTED = 20                      # clusters listed
CHANNEL_COLOURS = ("#1f5fa8", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#a6761d")
CLUSTER_ZOOM = 16.5


def section(state: wb.BenchState) -> html.Section:
    """The section, its panel drawn by :func:`panel_asked` once the page is shown (the
    suggestions of a long period at M take seconds: the rest of the workbench does not wait
    for them)."""
    return html.Section([
        html.H2(t("wb.merge", state.lang), title=_rule_words(state.lang)),
        dcc.Store(id=ASK, data=state.query()),
        html.Div(html.P(t("wb.merge.reading", state.lang), className="hint"), id=PANEL)],
        id="merging", className="wb-panel")


@callback(Output(PANEL, "children"), Input(ASK, "data"))
def panel_asked(query):
    """The panel of the view ``query`` (the workbench's URL query), each time the section
    is drawn."""
    return panel(wb.parse_bench(query), services().settings.timezone)


def panel(state: wb.BenchState, zone: str, outcome: html.P | None = None) -> list:
    """The count, the proposed clusters, the chosen one on the map, the decisions."""
    svc = services()
    lang = state.lang
    try:
        if state.view.problem:
            raise state.view.problem
        with svc.read_engine.connect() as conn:
            filters = state.view.filters.resolved(local_zone(conn, zone))
            scope = scope_for(conn, current_principal(), filters.scope)
            found = merging.suggestions(conn, scope, filters, zone, limit=10**9)
            counted = merging.counts(conn, scope, filters)
            made = merging.decisions(conn, scope, zone, limit=10)
            chosen = _chosen(conn, scope, found, state.merge, zone)
            grids = merging.outlines(conn, sorted({c["grid_code"] for c in chosen["cases"]
                                                   if c["grid_code"]})) if chosen else None
    except LayerError as exc:
        return [html.P(user_message(exc, lang), className="banner warn", id="merge-problem")]
    except SQLAlchemyError as exc:
        return [database_banner(exc, lang)]
    return [
        count_card(counted, state),
        outcome or html.P(id="merge-outcome", className="hint"),
        html.Div([cluster_list(found, state),
                  chosen_view(chosen, grids, state, zone) if chosen else
                  html.P(t("wb.merge.pick", lang), className="hint merge-side")],
                 className="merge-body"),
        decision_list(made, state, zone)]


def _chosen(conn, scope, found: dict, event_id: str | None, zone: str) -> dict | None:
    """The cluster of ``event_id``: proposed now, else as its newest decision left it."""
    if event_id is None:
        return None
    for cluster in found["clusters"]:
        if cluster["event_id"] == event_id:
            return {**cluster, "decision": None}
    done = merging.decided(conn, scope, event_id, zone)
    return None if done is None or not done["cases"] else {
        "event_id": event_id, "cases": done["cases"], "pairs": [],
        "channels": sorted({c["channel"] for c in done["cases"]}), "decision": done}


def count_card(counted: dict, state: wb.BenchState) -> html.Div:
    """The case count as chosen (with merged duplicates, or without: each confirmed event
    once), saying which, and the link that turns it over."""
    lang, svc = state.lang, services()
    key = "events" if state.events else "cases"
    return html.Div([
        html.Div(t(f"kpi.merge_{key}", lang), className="label", id="merge-count-label"),
        html.Div(f"{counted[key]:,}", className="value", id="merge-count"),
        html.Div(t("wb.merge.duplicates", lang).format(n=f"{counted['duplicates']:,}"),
                 className="extra"),
        dcc.Link(t(f"wb.merge.toggle.{key}", lang), id="merge-count-toggle",
                 href=state.href(events=not state.events, case=None))],
        className="card merge-count", title=glossary.tooltip(
            f"merge_{key}", lang, svc.settings.due_soon_hours, t("period.chosen", lang)))


def cluster_list(found: dict, state: wb.BenchState) -> html.Div:
    """The newest proposed clusters: first report, cases, channels, category, place, span;
    each links to itself on the map."""
    lang = state.lang
    head = html.Tr([html.Th(t(f"wb.merge.col.{c}", lang)) for c in
                    ("event", "cases", "channels", "category", "address", "span")])
    rows = []
    for n, c in enumerate(found["clusters"][:LISTED]):
        first, last = c["cases"][0], c["cases"][-1]
        rows.append(html.Tr([
            html.Td(dcc.Link(c["event_id"], href=state.href(merge=c["event_id"], case=None),
                             id=f"merge-pick-{n}", className="case-link")),
            html.Td(str(len(c["cases"])), className="n"),
            html.Td(" / ".join(c["channels"])),
            html.Td(first["category_3"] or first["category_2"] or first["category_1"]),
            html.Td(first["address"] or "—", className="address"),
            html.Td(_span(first["reported_at"], last["reported_at"], lang))],
            className="chosen" if c["event_id"] == state.merge else None))
    note = (t("list.all", lang).format(total=found["total"]) if found["total"] <= LISTED else
            t("list.shown", lang).format(shown=LISTED, total=found["total"]))
    if found["cut"]:
        note += t("wb.merge.cut", lang).format(days=merging.LONGEST.days)
    return html.Div([html.P(note, className="list-note", id="merge-list-count"),
                     html.Div(html.Table([html.Thead(head), html.Tbody(rows)],
                                         className="table"), className="wb-scroll")],
                    id="merge-list", className="merge-list")


def _span(first: str, last: str, lang: str) -> str:
    hours = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds() / 3600
    return t("wb.merge.within", lang).format(hours=f"{hours:.1f}")


def chosen_view(cluster: dict, grids: dict | None, state: wb.BenchState,
                zone: str) -> html.Div:
    """The chosen cluster: its map, its cases, and the buttons (or the decision made)."""
    lang = state.lang
    decision = cluster["decision"]
    cases = html.Ul([html.Li([
        dcc.Link(c["id"], href=state.href(case=c["id"]), className="case-link"),
        html.Span(c["channel"], className="channel"),
        html.Span(shown(c["reported_at"], zone), className="when"),
        html.Span(c["address"] or "—", className="address"),
        html.Span(c["title"] or "", className="title")]) for c in cluster["cases"]],
        id="merge-cases", className="merge-cases")
    if decision is None:
        act = html.Div([
            html.Button(t("wb.merge.confirm", lang), id={"type": DECIDE, "decision": "confirmed"},
                        className="button confirm", n_clicks=0),
            html.Button(t("wb.merge.reject", lang), id={"type": DECIDE, "decision": "rejected"},
                        className="button reject", n_clicks=0)], className="merge-actions")
    else:
        act = html.P(_decision_words(decision, lang, zone), id="merge-decided",
                     className=f"merge-decided {decision['decision']}")
    return html.Div([
        dcc.Graph(id="merge-map", figure=cluster_figure(cluster, grids, lang),
                  config={"displayModeBar": False}, style={"height": "300px"}),
        cases, act], className="merge-side")


def cluster_figure(cluster: dict, grids: dict | None, lang: str) -> dict:
    """The cluster's cases on a map without tiles: one colour per channel, each line from
    the first report to a later one, the rule's reach round the first report, the grids
    they lie in outlined."""
    cases = [c for c in cluster["cases"] if c["lon"] is not None]
    first = cases[0] if cases else None
    traces = []
    for grid in (grids or {}).get("features", []):
        rings = grid["geometry"]["coordinates"]
        rings = rings if grid["geometry"]["type"] == "Polygon" else [r for p in rings for r in p]
        for ring in rings:
            traces.append({"type": "scattermap", "mode": "lines", "showlegend": False,
                           "lon": [p[0] for p in ring], "lat": [p[1] for p in ring],
                           "line": {"color": "#8a94a3", "width": 1}, "hoverinfo": "skip"})
    if first:  # the rule's reach around the first report: the map's scale
        traces.append({"type": "scattermap", "mode": "lines", "showlegend": False,
                       **_circle(first["lon"], first["lat"], merging.RULE.metres),
                       "line": {"color": "#1f5fa8", "width": 1}, "hoverinfo": "skip"})
    for c in cases[1:]:
        traces.append({"type": "scattermap", "mode": "lines", "showlegend": False,
                       "lon": [first["lon"], c["lon"]], "lat": [first["lat"], c["lat"]],
                       "line": {"color": "#c62828", "width": 2}, "hoverinfo": "skip"})
    channels = sorted({c["channel"] for c in cases})
    for k, channel in enumerate(channels):
        mine = [c for c in cases if c["channel"] == channel]
        traces.append({
            "type": "scattermap", "mode": "markers", "name": as_text(channel),
            "lon": [c["lon"] for c in mine], "lat": [c["lat"] for c in mine],
            "ids": [c["id"] for c in mine], "customdata": [c["id"] for c in mine],
            "marker": {"size": 14, "color": CHANNEL_COLOURS[k % len(CHANNEL_COLOURS)]},
            "text": [as_text(f"{c['id']} · {c['address'] or ''}") for c in mine],
            "hovertemplate": "%{text}<extra>" + as_text(channel) + "</extra>"})
    centre = ({"lon": sum(c["lon"] for c in cases) / len(cases),
               "lat": sum(c["lat"] for c in cases) / len(cases)} if cases else
              {"lon": 0, "lat": 0})
    return {"data": traces, "layout": {
        "map": {"style": OFFLINE_STYLE, "center": centre, "zoom": CLUSTER_ZOOM},
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "font": _font(False),
        "legend": {"x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.8)"},
        "uirevision": cluster["event_id"], "paper_bgcolor": "rgba(0,0,0,0)"}}


def _circle(lon: float, lat: float, metres: float, points: int = 48) -> dict:
    """A ring of ``metres`` round (lon, lat), as lon and lat lists."""
    north = metres / merging.METRES_PER_DEGREE
    east = north / cos(radians(lat))
    steps = [2 * pi * k / points for k in range(points + 1)]
    return {"lon": [lon + east * cos(a) for a in steps],
            "lat": [lat + north * sin(a) for a in steps]}


def _decision_words(decision: dict, lang: str, zone: str) -> str:
    return t(f"wb.merge.decided.{decision['decision']}", lang).format(
        who=decision["decided_by"], when=shown(decision["decided_at"], zone),
        n=len(decision["case_ids"]))


def decision_list(made: list[dict], state: wb.BenchState, zone: str) -> html.Div:
    """The newest decisions on the scope's cases: when, who, what, on which event."""
    lang = state.lang
    rows = [html.Li([
        html.Span(shown(d["decided_at"], zone), className="when"),
        html.Span(f"{d['decided_by']} ({d['role']})", className="who"),
        html.Span(t(f"wb.merge.{d['decision']}", lang), className=d["decision"]),
        dcc.Link(d["event_id"], href=state.href(merge=d["event_id"], case=None),
                 className="case-link"),
        html.Span(t("wb.merge.n_cases", lang).format(n=len(d["case_ids"])))])
        for d in made]
    return html.Div([html.H3(t("wb.merge.decisions", lang)),
                     html.Ul(rows, className="merge-decisions") if rows else
                     html.P(t("wb.merge.none_decided", lang), className="hint")],
                    id="merge-decisions")


def _rule_words(lang: str) -> str:
    rule = merging.RULE
    return t("wb.merge.rule", lang).format(metres=f"{rule.metres:g}", hours=f"{rule.hours:g}",
                                           place=f"{rule.place_similarity:g}",
                                           text=f"{rule.text_similarity:g}")


@callback(Output(PANEL, "children", allow_duplicate=True),
          Input({"type": DECIDE, "decision": ALL}, "n_clicks"),
          State(ids.WB_URL, "search"), prevent_initial_call=True)
def decide_clicked(clicks, search):
    """A decision on the chosen cluster, recorded as the person signed in; the panel again
    with what happened (or why it was refused)."""
    trigger = dash.ctx.triggered_id
    if not isinstance(trigger, dict) or not any(clicks or []):
        raise dash.exceptions.PreventUpdate  # the buttons were drawn, not clicked
    svc = services()
    zone = svc.settings.timezone
    state = wb.parse_bench(search)
    lang = state.lang
    who = current_principal()
    try:
        if state.view.problem:
            raise state.view.problem
        with svc.read_engine.connect() as conn:
            filters = state.view.filters.resolved(local_zone(conn, zone))
            scope = scope_for(conn, who, filters.scope)
            cluster = merging.cluster_of(conn, scope, filters, zone, state.merge or "")
        if cluster is None:
            words, kind = t("wb.merge.gone", lang), "warn"
        else:
            done = merging.decide(svc.engine, who, [c["id"] for c in cluster["cases"]],
                                  trigger["decision"], zone=zone)
            words, kind = _decision_words(done, lang, zone), "ok"
    except Conflict:
        words, kind = t("merge.conflict", lang), "warn"
    except LayerError as exc:
        words, kind = user_message(exc, lang), "warn"
    except SQLAlchemyError as exc:
        return [database_banner(exc, lang)]
    outcome = html.P(words, id="merge-outcome", className=f"banner {kind}")
    return panel(state, zone, outcome)
