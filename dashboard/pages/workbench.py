"""The command centre's workbench (/workbench): a case search, the early warning (即将超期
and overdue cases, most urgent first), where the scope's cases are stuck, how the seeds'
indicators stand, and how the handling units rank.

Drawn from the URL alone (``dashboard.workbench.parse_bench``): every control is a link to
another URL (the search a GET form), so a view of the workbench is shareable like the
desk's, and the page's router draws it again when the link is followed. The figures refresh
by themselves every ``ONEMAP_REFRESH_SECONDS`` (the ranking is live).

The one write: 督办 / 提醒 the open case or the listed unit (:func:`urge_case`,
:func:`urge_unit`), as ``layers.supervision.supervise`` allows the signed-in person, on the
primary database; a callback's request is a POST, which the gate refuses from another site
(``web.csrf``) as every write.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple
from urllib.parse import urlencode

import dash
from dash import Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from dashboard import components as ui
from dashboard import ids, merging
from dashboard import workbench as wb
from dashboard.figures import search_figure
from dashboard.messages import t, user_message
from dashboard.services import services
from layers.access import scope_for
from layers.admin import units
from layers.errors import LayerError
from layers.search import search
from layers.supervision import of_case, of_unit, supervise
from layers.times import shown
from layers.view import case_detail
from layers.workbench import workbench
from web.auth import current_principal

dash.register_page(__name__, path=wb.PATH, title="一张图 · 工作台")


def layout(**query) -> html.Div:
    """The workbench of the URL's scope and filters."""
    state = wb.parse_bench("?" + urlencode(query))
    svc = services()
    who = current_principal()
    drawn = _drawn(state)
    other = replace(state.view, lang="en" if state.lang == "zh" else "zh")
    return html.Div([
        dcc.Location(id=ids.WB_URL, refresh=False),
        ui.header(state.view, wb.PATH, who.name if who else None, crumbs=drawn.crumbs,
                  query=replace(state, view=other).query()),
        html.Main(drawn.body, id=ids.WB_BODY, className="workbench", lang=state.lang),
        dcc.Interval(id=ids.WB_REFRESH, interval=svc.settings.refresh_seconds * 1000),
    ], className="page")


@callback(output=Output(ids.WB_BODY, "children"),
          inputs={"tick": Input(ids.WB_REFRESH, "n_intervals")},
          state={"search": State(ids.WB_URL, "search")}, prevent_initial_call=True)
def refresh(tick, search):
    """The same view read again (the backlog and the ranking move while it is open)."""
    return _drawn(wb.parse_bench(search)).body


class Drawn(NamedTuple):
    """One view drawn: its breadcrumb and its body."""

    crumbs: list
    body: list


def _drawn(state: wb.BenchState) -> Drawn:
    """The breadcrumb and the body of one view; a failure is a banner, never a
    traceback."""
    svc = services()
    zone, soon = svc.settings.timezone, svc.settings.due_soon_hours
    who = current_principal()
    try:
        if state.view.problem:
            raise state.view.problem
        data = workbench(svc.read_engine, state.view.filters, zone, who, soon,
                         sort=state.sort, unit=state.unit)
        case = _case(state, zone, soon)
    except LayerError as exc:
        return Drawn([], [html.Div(user_message(exc, state.lang), className="banner warn",
                                   id="wb-problem")])
    except SQLAlchemyError as exc:
        return Drawn([], [ui.database_banner(exc, state.lang)])
    acts = bool(who and who.can_act)
    return Drawn(wb.crumbs(data.breadcrumb, state), [
        html.Div([wb.range_links(state, data.period), wb.search_box(state),
                  wb.report_links(data.scope, data.period, state,
                                  who is not None and who.can_export),
                  html.Span(wb.as_of(data.now, state.lang, zone), className="asof",
                            id="wb-now")], className="wb-bar-top"),
        html.Div([html.Div([
            *_found(state, zone, soon),
            wb.warnings(data, state, zone, soon),
            wb.indicator_cards(data.indicators, data.satisfaction, state.lang, soon),
            wb.funnel(data.funnel, state, zone, soon),
            wb.ranking(data.units, state, zone, soon, data.unit_cases, data.unit_cases_total,
                       data.unit_supervised, acts),
            wb.unsatisfied(data.unsatisfied, data.unsatisfied_total, state, zone, soon),
            merging.section(state)],
            className="wb-main"),
            wb.case_drawer(case, state, zone, ui.timeline, acts)], className="wb-body")])


def _found(state: wb.BenchState, zone: str, soon: float) -> list:
    """The search's hits (table, and map over the outlines of the scope's units) when the
    URL asks for one; its problem in words."""
    if state.q is None:
        return []
    svc = services()
    who = current_principal()
    try:
        with svc.read_engine.connect() as conn:
            scope = scope_for(conn, who, state.view.filters.scope)
            found = search(conn, scope, state.q, who.personal, zone, soon)
            outline = (units(conn, scope.child_level, scope.code) if scope.child_level
                       else units(conn, scope.level, code=scope.code))
    except LayerError as exc:
        return [html.Div(user_message(exc, state.lang), className="banner warn",
                         id="search-problem")]
    return [wb.search_results(found, state, zone, search_figure(
        found, scope.bbox, state.lang, svc.settings.tile_url, outline))]


def _case(state: wb.BenchState, zone: str, soon: float) -> dict | str | None:
    """The open case's detail; the reason in words when it cannot be shown (unknown, or
    outside the viewer's area): the rest of the view stands."""
    if state.case is None:
        return None
    svc = services()
    try:
        return case_detail(svc.read_engine, state.case, current_principal(), zone, soon)
    except LayerError as exc:
        return user_message(exc, state.lang)


# -- 督办 / 提醒 ---------------------------------------------------------------------------------
def _urge(target: str, kind: str | None, note: str | None, search: str | None) -> dict:
    """Urge the URL's open case or listed unit as the signed-in person: the line saying
    what was recorded (or why not) and the target's 督办 read again."""
    state = wb.parse_bench(search)
    svc = services()
    zone, lang = svc.settings.timezone, state.lang
    who = current_principal()
    try:
        if target == "case":
            row = supervise(svc.engine, who, kind or "", note or "", case=state.case, zone=zone)
        else:
            row = supervise(svc.engine, who, kind or "", note or "", unit=state.unit,
                            scope=state.view.filters.scope, zone=zone)
    except LayerError as exc:
        return {"said": html.Span(user_message(exc, lang), className="refused"),
                "listed": dash.no_update, "note": dash.no_update}
    except SQLAlchemyError as exc:
        return {"said": ui.database_banner(exc, lang), "listed": dash.no_update,
                "note": dash.no_update}
    with svc.engine.connect() as conn:  # the primary: what was just written
        rows = (of_case(conn, row["case_id"], zone) if target == "case" else
                of_unit(conn, scope_for(conn, who, state.view.filters.scope), state.unit, zone))
    said = t("urge.sent", lang).format(kind=t(f"urge.kind.{row['kind']}", lang),
                                       at=shown(row["at"], zone))
    listed = wb.urged(rows, lang, zone, "", state if target == "unit" else None)
    return {"said": said, "listed": listed.children, "note": ""}


def _urge_outputs(target: str) -> dict:
    prefix = f"wb-urge-{target}"
    return {"said": Output(f"{prefix}-said", "children"),
            "listed": Output(f"{prefix}-list", "children"),
            "note": Output(f"{prefix}-note", "value")}


def _urge_state(target: str) -> dict:
    prefix = f"wb-urge-{target}"
    return {"kind": State(f"{prefix}-kind", "value"), "note": State(f"{prefix}-note", "value"),
            "search": State(ids.WB_URL, "search")}


@callback(output=_urge_outputs("case"),
          inputs={"clicks": Input("wb-urge-case-send", "n_clicks")},
          state=_urge_state("case"), prevent_initial_call=True)
def urge_case(clicks, kind, note, search):
    """督办 / 提醒 the open case."""
    return _urge("case", kind, note, search)


@callback(output=_urge_outputs("unit"),
          inputs={"clicks": Input("wb-urge-unit-send", "n_clicks")},
          state=_urge_state("unit"), prevent_initial_call=True)
def urge_unit(clicks, kind, note, search):
    """督办 / 提醒 the listed handling unit."""
    return _urge("unit", kind, note, search)
