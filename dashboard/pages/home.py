"""The main page: the district on one map (an empty state until data is loaded)."""

from __future__ import annotations

import dash
from dash import dcc, html
from sqlalchemy.exc import SQLAlchemyError

from dashboard import ids
from dashboard.figures import outline_figure
from dashboard.messages import t, user_message
from dashboard.services import services
from layers.admin import units

dash.register_page(__name__, path="/", title="一张图 · onemap")


def layout(lang: str = "zh", **_query) -> html.Div:
    """Built per request: reads the district outline through ``layers``."""
    svc = services()
    try:
        district = units(svc.engine, level=1)
    except SQLAlchemyError as exc:
        return _page(lang, html.Div(user_message(exc, lang), className="banner error"))
    if not district["features"]:
        return _page(lang, _empty_state(lang))
    figure = outline_figure(district, lang, svc.settings.tile_url)
    graph = dcc.Graph(
        id=ids.MAP, figure=figure, className="map",
        config={"displaylogo": False, "scrollZoom": True},
    )
    return _page(lang, graph)


def _page(lang: str, body) -> html.Div:
    header = html.Header(
        [html.H1(t("app.title", lang)), html.Span(t("app.subtitle", lang), className="sub")],
        id=ids.HEADER,
    )
    return html.Div([header, html.Main(body)], className="page")


def _empty_state(lang: str) -> html.Div:
    return html.Div(
        [html.H2(t("empty.title", lang)), html.P(t("empty.body", lang))],
        id=ids.EMPTY, className="empty",
    )
