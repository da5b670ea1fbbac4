"""Per-app services (engine, settings) kept on the Flask app, not in module globals."""

from __future__ import annotations

from dataclasses import dataclass

import flask
from sqlalchemy import Engine

from layers.view import ViewCache
from onemap.settings import Settings

KEY = "onemap"


@dataclass(frozen=True)
class Services:
    """``engine`` is the primary (migrations, writes); every read goes to ``read_engine``,
    a read-only replica when ``DATABASE_READ_URL`` is set, else the same engine; ``views``
    keeps recently read views for a few seconds (this process only)."""

    settings: Settings
    engine: Engine
    read_engine: Engine
    views: ViewCache


def install(server: flask.Flask, services: Services) -> None:
    server.extensions[KEY] = services


def services() -> Services:
    """The services of the app handling the current request."""
    return flask.current_app.extensions[KEY]
