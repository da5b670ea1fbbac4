"""The app shell: Dash pages with their services, the sign-in page and the callback check,
on a server that ``web`` gives its sign-in gate, read API and health check. Nothing else."""

from __future__ import annotations

from pathlib import Path

import dash
from dash import Dash, html

from dashboard.login import register_login
from dashboard.outage import outage
from dashboard.payloads import install_payload_check
from dashboard.push import CHANGES_PATH
from dashboard.report_download import register_report
from dashboard.services import Services, install
from layers.freshness import Thresholds
from layers.view import ReadLimits, ViewCache
from onemap.settings import Settings
from web.app import engines, serve_api
from web.auth import Pages
from web.cases import CaseWriter
from web.headers import install_headers

HERE = Path(__file__).parent
# What the pages add to the gate: their static code is open, their own requests (and their
# watch of the data's version) are never challenged for Basic, and a database outage is told
# in the page's words.
PAGES = Pages(login="/login", open_paths=("/_favicon.ico",),
              open_prefixes=("/assets/", "/_dash-component-suites/"),
              own_prefixes=("/_dash", CHANGES_PATH), outage=outage)


def create_app(settings: Settings, db_url: str, read_url: str | None = None,
               cases: CaseWriter | None = None) -> Dash:
    """A ready-to-run app on the primary ``db_url``, reading from ``read_url`` (a read-only
    replica) when given, taking case events (POST /api/cases) when ``cases`` writes them;
    nothing is queried until a page asks."""
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        serve_locally=True,
        title="一张图 · onemap",
        suppress_callback_exceptions=True,
    )
    server = app.server
    engine, read_engine = engines(settings, db_url, read_url)
    install(server, Services(settings=settings, engine=engine, read_engine=read_engine,
                             views=ViewCache(settings.view_cache_seconds,
                                             int(settings.view_cache_mb * 2**20),
                                             reads=ReadLimits(settings.map_point_limit,
                                                              settings.alarm_list_limit),
                                             thresholds=Thresholds.of(settings))))
    serve_api(server, settings, engine, read_engine, PAGES, cases)
    install_headers(server, settings, app.csp_hashes)
    register_login(server)
    register_report(server)
    install_payload_check(app)  # after the gate: nobody unsigned learns more than 401
    app.layout = html.Div([dash.page_container], className="shell")
    return app
