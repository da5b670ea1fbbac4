"""The command centre's workbench (/workbench): where the scope's cases are stuck.

Drawn per request from the URL alone (``dashboard.workbench.parse_bench``): every control is
a link to another URL, so a view of the workbench is shareable like the desk's, and the
page's router draws it again when the link is followed.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

import dash
from dash import dcc, html
from sqlalchemy.exc import SQLAlchemyError

from dashboard import components as ui
from dashboard import workbench as wb
from dashboard.messages import user_message
from dashboard.services import services
from layers.errors import LayerError
from layers.view import case_detail
from layers.workbench import workbench
from web.auth import current_principal

dash.register_page(__name__, path=wb.PATH, title="一张图 · 工作台")


def layout(**query) -> html.Div:
    """The workbench of the URL's scope and filters; a failure is a banner, never a
    traceback."""
    state = wb.parse_bench("?" + urlencode(query))
    svc = services()
    zone, soon = svc.settings.timezone, svc.settings.due_soon_hours
    who = current_principal()
    crumbs: list = []
    try:
        if state.view.problem:
            raise state.view.problem
        data = workbench(svc.read_engine, state.view.filters, zone, who, soon,
                         sort=state.sort, unit=state.unit)
        case = (case_detail(svc.read_engine, state.case, who, zone, soon)
                if state.case else None)
        crumbs = wb.crumbs(data.breadcrumb, state)
        body = [html.Div([wb.range_links(state, data.period),
                          html.Span(wb.as_of(data.now, state.lang, zone), className="asof",
                                    id="wb-now")], className="wb-bar-top"),
                html.Div([html.Div([
                    wb.indicator_cards(data.indicators, data.satisfaction, state.lang, soon),
                    wb.funnel(data.funnel, state, zone, soon),
                    wb.ranking(data.units, state, zone, soon, data.unit_cases,
                               data.unit_cases_total),
                    wb.unsatisfied(data.unsatisfied, data.unsatisfied_total, state, zone,
                                   soon)], className="wb-main"),
                          wb.case_drawer(case, state, zone, ui.timeline)],
                         className="wb-body")]
    except LayerError as exc:
        body = [html.Div(user_message(exc, state.lang), className="banner warn",
                         id="wb-problem")]
    except SQLAlchemyError as exc:
        body = [ui.database_banner(exc, state.lang)]
    other = replace(state.view, lang="en" if state.lang == "zh" else "zh")
    return html.Div([
        dcc.Location(id="wb-url", refresh=False),
        ui.header(state.view, wb.PATH, who.name if who else None, crumbs=crumbs,
                  query=replace(state, view=other).query()),
        html.Main(body, className="workbench", lang=state.lang)], className="page")
