"""The command centre's workbench (/workbench): where the scope's cases are stuck, how the
seeds' indicators stand, and how the handling units rank.

Drawn from the URL alone (``dashboard.workbench.parse_bench``): every control is a link to
another URL, so a view of the workbench is shareable like the desk's, and the page's router
draws it again when the link is followed. The figures refresh by themselves every
``ONEMAP_REFRESH_SECONDS`` (the ranking is live).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple
from urllib.parse import urlencode

import dash
from dash import Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from dashboard import components as ui
from dashboard import ids
from dashboard import workbench as wb
from dashboard.messages import user_message
from dashboard.services import services
from layers.errors import LayerError
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
    return Drawn(wb.crumbs(data.breadcrumb, state), [
        html.Div([wb.range_links(state, data.period),
                  html.Span(wb.as_of(data.now, state.lang, zone), className="asof",
                            id="wb-now")], className="wb-bar-top"),
        html.Div([html.Div([
            wb.indicator_cards(data.indicators, data.satisfaction, state.lang, soon),
            wb.funnel(data.funnel, state, zone, soon),
            wb.ranking(data.units, state, zone, soon, data.unit_cases, data.unit_cases_total),
            wb.unsatisfied(data.unsatisfied, data.unsatisfied_total, state, zone, soon)],
            className="wb-main"),
            wb.case_drawer(case, state, zone, ui.timeline)], className="wb-body")])


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
