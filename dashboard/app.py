"""The app shell: a Dash app with pages, its services, and a health check. Nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import dash
from dash import Dash, html

from dashboard.auth import current_principal, install_auth
from dashboard.headers import install_headers
from dashboard.login import register_login
from dashboard.payloads import install_payload_check
from dashboard.services import Services, install
from layers.api import Api
from layers.catalog import default_catalog
from layers.freshness import Thresholds
from layers.http import register
from layers.view import ReadLimits, ViewCache
from onemap.database import make_engine
from onemap.settings import Settings

HERE = Path(__file__).parent


def create_app(settings: Settings, db_url: str, read_url: str | None = None) -> Dash:
    """A ready-to-run app on the primary ``db_url``, reading from ``read_url`` (a read-only
    replica) when given; nothing is queried until a page asks."""
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        serve_locally=True,
        title="一张图 · onemap",
        suppress_callback_exceptions=True,
    )
    wait = settings.read_lock_timeout_seconds
    engine = make_engine(db_url, lock_timeout=wait)
    read_engine = (make_engine(read_url, lock_timeout=wait) if read_url and read_url != db_url
                   else engine)
    install(app.server, Services(settings=settings, engine=engine, read_engine=read_engine,
                                 views=ViewCache(settings.view_cache_seconds,
                                                 int(settings.view_cache_mb * 2**20),
                                                 reads=ReadLimits(settings.map_point_limit,
                                                                  settings.alarm_list_limit),
                                                 thresholds=Thresholds.of(settings))))
    install_auth(app.server, settings, engine)
    install_headers(app, settings)
    register_login(app.server, engine)
    install_payload_check(app)
    register(app.server, Api(read_engine, default_catalog(), settings.timezone, writer=engine,
                             thresholds=Thresholds.of(settings),
                             soon_hours=settings.due_soon_hours,
                             export_slots=settings.export_slots),
             current_principal, settings.base_url)
    app.layout = html.Div([dash.page_container], className="shell")
    # The pid tells which worker answered when several serve the app (onemap serve --prod).
    app.server.add_url_rule("/healthz", "healthz", lambda: {"status": "ok", "pid": os.getpid()})
    return app
