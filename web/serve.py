"""Serving many: the app under gunicorn with several worker processes.

Each worker calls the app factory itself after the fork (the app is not preloaded), so no
engine, connection pool or other mutable object is shared between processes; the workers
share only what they are built from: the same settings, hence the same session secret.
This module knows nothing of the dashboard: the CLI hands it the factory (the dashboard's
``create_app``, or any WSGI app).

Secrets that travel in addresses (a kiosk's ``?kiosk=<token>``) are never written to a log:
the access log of gunicorn and the request log of the development server blank them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from onemap.cluster import port_is_free
from onemap.errors import OnemapError

WSGIApp = Callable
# gthread: each worker's main thread keeps telling the arbiter it is alive while its
# threads serve requests, so a long export is not taken for a hung worker.
WORKER_CLASS = "gthread"
# A query parameter holding a secret, plain or percent-encoded inside another parameter.
SECRET_PARAMETER = re.compile(r"(kiosk(?:=|%3D))[^&\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the value of every secret query parameter blanked."""
    return SECRET_PARAMETER.sub(r"\1[redacted]", text)


class RedactingFilter(logging.Filter):
    """Blanks secrets in the records of a logger (the development server's ``werkzeug``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if SECRET_PARAMETER.search(message):
            record.msg, record.args = redact(message), ()
        return True


class RedactingLogger(Logger):
    """gunicorn's logger whose access log blanks secrets in every field it can print
    (request line, query string, referrer, environment)."""

    def atoms(self, resp, req, environ, request_time):
        return {key: redact(value) if isinstance(value, str) else value
                for key, value in super().atoms(resp, req, environ, request_time).items()}


@dataclass(frozen=True)
class ServeOptions:
    """How ``onemap serve --prod`` runs: where it listens and with how many processes."""

    host: str = "127.0.0.1"
    port: int = 8050
    workers: int = 4
    threads: int = 4
    timeout: int = 120          # a worker silent this long is killed and replaced
    graceful_timeout: int = 30  # on SIGTERM/SIGHUP, time to finish requests in flight
    access_log: bool = False

    @property
    def bind(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def gunicorn_config(self) -> dict:
        """The gunicorn settings these options stand for."""
        return {
            "bind": [self.bind],
            "workers": self.workers,
            "worker_class": WORKER_CLASS,
            "threads": self.threads,
            "timeout": self.timeout,
            "graceful_timeout": self.graceful_timeout,
            "keepalive": 5,
            "preload_app": False,  # the factory runs in each worker, after the fork
            "accesslog": "-" if self.access_log else None,
            "logger_class": f"{RedactingLogger.__module__}.{RedactingLogger.__name__}",
            "errorlog": "-",
            "proc_name": "onemap",
            # The default (/tmp) may sit on a disk-backed folder; heartbeats belong in memory.
            "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
            # gunicorn 24+ opens a control socket at one fixed path per user: two servers
            # on one machine would take it from each other, and nothing here uses it.
            "control_socket_disable": True,
        }


class OnemapServer(BaseApplication):
    """A gunicorn application whose workers each build their app with ``factory()``."""

    def __init__(self, factory: Callable[[], WSGIApp], options: ServeOptions):
        self.factory, self.options = factory, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.gunicorn_config().items():
            # Settings an older gunicorn lacks are left out rather than refused.
            if value is not None and key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        return self.factory()


def serve_prod(factory: Callable[[], WSGIApp], options: ServeOptions) -> None:
    """Run ``factory``'s app under gunicorn until SIGINT/SIGTERM (SIGHUP reloads workers)."""
    if options.workers < 1:
        raise OnemapError("--workers must be at least 1")
    # Said here in one line rather than by gunicorn's retries and a stack of log lines.
    if ":" not in options.host and not port_is_free(options.port, options.host):
        raise OnemapError(f"{options.bind} is taken: choose another port with --port")
    OnemapServer(factory, options).run()
