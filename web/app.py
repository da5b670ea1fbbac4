"""The HTTP app without Dash: a Flask server with the sign-in gate, the read API and a
liveness check (``/healthz``: the process answers; it reads no database). The dashboard puts its
pages on such a server (``dashboard.app``); :func:`create_api_app` serves the API alone."""

from __future__ import annotations

import os

import flask
from sqlalchemy import Engine

from layers.catalog import default_catalog
from layers.freshness import Thresholds
from onemap.database import make_engine
from onemap.settings import Settings
from web.alarms import AlarmDesk, register_alarms
from web.api import Api
from web.auth import Pages, current_principal, install_auth
from web.cases import CaseWriter, register_cases
from web.headers import install_headers
from web.http import register


def engines(settings: Settings, db_url: str, read_url: str | None = None) -> tuple[Engine,
                                                                                  Engine]:
    """(primary, reads): the primary for writes, ``read_url`` (a read-only replica) for
    every read when given, else the primary again; nothing connects until asked."""
    wait = settings.read_lock_timeout_seconds
    engine = make_engine(db_url, lock_timeout=wait)
    reads = (make_engine(read_url, lock_timeout=wait) if read_url and read_url != db_url
             else engine)
    return engine, reads


def serve_api(server: flask.Flask, settings: Settings, engine: Engine, read_engine: Engine,
              pages: Pages | None = None, cases: CaseWriter | None = None) -> None:
    """Put the sign-in gate in front of every route of ``server`` (``pages``: what a UI on
    it adds), the read API reading ``read_engine`` and auditing on ``engine``, the case
    feed when ``cases`` writes its events (``web.cases``), the alarm actions
    (``web.alarms``, writing on ``engine``; cases through ``cases``), and a health check. A
    UI installs its own request hooks first (Dash sets itself up in one)."""
    install_auth(server, settings, engine, pages)
    register(server, Api(read_engine, default_catalog(), settings.timezone, writer=engine,
                         thresholds=Thresholds.of(settings),
                         soon_hours=settings.due_soon_hours,
                         export_slots=settings.export_slots,
                         push_held=settings.push_held),
             current_principal, settings.base_url)
    if cases is not None:
        register_cases(server, cases, engine)
    # Acting on alarms: acknowledging always; a case only where cases are written.
    register_alarms(server, AlarmDesk(engine, cases, settings.timezone))
    # The pid tells which worker answered when several serve the app (onemap serve --prod).
    server.add_url_rule("/healthz", "healthz", lambda: {"status": "ok", "pid": os.getpid()})


def create_api_app(settings: Settings, db_url: str, read_url: str | None = None,
                   cases: CaseWriter | None = None) -> flask.Flask:
    """The read API alone (OGC API – Features, data API, tiles, exports; the case feed when
    ``cases`` is given), with its headers: no page, no Dash."""
    server = flask.Flask("onemap", static_folder=None)
    serve_api(server, settings, *engines(settings, db_url, read_url), cases=cases)
    install_headers(server, settings)
    return server
