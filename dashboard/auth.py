"""Who is asking, on every request: a session (after the sign-in page, or a kiosk URL
``?kiosk=…`` once), ``Authorization: Bearer <kiosk token>`` or HTTP Basic for API clients
such as QGIS. Requests from nobody get the sign-in page or a 401; requests from another
site that would change something get a 403 (``dashboard.csrf``).

Sessions live in the database (``onemap.sessions``); the cookie holds only the session's
random id, signed. Every request asks the primary database who holds it, so signing out, a
new password or kiosk token, and disabling a user end sessions at once. When the database
cannot answer, nobody is signed in: the request gets 503 and Retry-After (fail closed,
``dashboard.outage``), never a role remembered from earlier.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from dashboard.csrf import cross_site_refusal
from dashboard.outage import outage, wants_page
from onemap.accounts import CredentialCache, LoginRefused, authenticate, by_token
from onemap.principal import Principal
from onemap.sessions import end_session, session_principal, start_session
from onemap.settings import Settings

# Paths anyone may fetch: the sign-in page, health, static code and the API description.
OPEN_PATHS = ("/login", "/logout", "/healthz", "/openapi.json", "/ogc/openapi.json",
              "/_favicon.ico", "/favicon.ico")
OPEN_PREFIXES = ("/assets/", "/_dash-component-suites/")
KEY = "onemap_auth"


@dataclass(frozen=True)
class Gate:
    """What the gate needs, kept on the app: the primary database (sessions, failure
    counts), how long a session lasts, and this process's cache of Basic credentials."""

    engine: Engine
    session_hours: float
    credentials: CredentialCache


def install_auth(server: flask.Flask, settings: Settings, engine: Engine) -> None:
    """Session cookie settings and the gate in front of every route; ``engine`` is the
    primary database."""
    server.secret_key = secret_key(settings)
    server.config.update(
        SESSION_COOKIE_NAME="onemap_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours))
    server.extensions[KEY] = Gate(engine, settings.session_hours, CredentialCache())
    server.before_request(_gate)


def secret_key(settings: Settings) -> str:
    """ONEMAP_SECRET_KEY, or a random key made once and kept (mode 0600) in the home folder,
    so every worker and every restart signs cookies alike."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.home) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a private name, then linked into place: a worker starting at
        # the same moment sees either no key or the complete one, never a half-written one.
        draft = path.with_name(f".secret_key.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, secrets.token_hex(32).encode())
        os.close(fd)
        with contextlib.suppress(FileExistsError):  # another worker linked its key first
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()


def current_principal() -> Principal | None:
    """Who sent the request being handled (set by the gate)."""
    return flask.g.get("principal")


def sign_in(who: Principal) -> None:
    """Start a server-side session for ``who`` (a fresh id: no fixation)."""
    gate = _gate_of_app()
    session_id = start_session(gate.engine, who.name, gate.session_hours)
    flask.session.clear()
    flask.session.permanent = True
    flask.session["sid"] = session_id


def sign_out() -> None:
    """End the current session on the server, then forget its cookie."""
    session_id = flask.session.get("sid")
    if isinstance(session_id, str):
        end_session(_gate_of_app().engine, session_id)
    flask.session.clear()


def _gate_of_app() -> Gate:
    return flask.current_app.extensions[KEY]


def _gate():
    refused = cross_site_refusal()
    if refused is not None:
        return refused
    path = flask.request.path
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    try:
        token = flask.request.args.get("kiosk")
        if token is not None and flask.request.method == "GET":
            return _kiosk_sign_in(token)
        who = _from_header() or _from_session()
    except LoginRefused as exc:
        return _refused(str(exc), exc.retry_after)
    except SQLAlchemyError as exc:  # nobody can be told apart: fail closed
        return outage(exc)
    if who is None:
        return _ask_for_login()
    flask.g.principal = who
    return None


def _kiosk_sign_in(token: str):
    """A kiosk URL signs the screen in, then drops the token from the address bar."""
    who = by_token(_gate_of_app().engine, token)
    if who is None:
        return _refused("unknown or disabled kiosk token")
    sign_in(who)
    rest = [(k, v) for k, v in flask.request.args.items(multi=True) if k != "kiosk"]
    return flask.redirect(flask.request.path + ("?" + urlencode(rest) if rest else ""))


def _from_header() -> Principal | None:
    auth = flask.request.authorization
    if auth is None:
        return None
    gate = _gate_of_app()
    if auth.type == "bearer" and auth.token:
        who = by_token(gate.engine, auth.token)
        if who is None:
            raise LoginRefused("unknown or disabled token")
        return who
    if auth.type == "basic" and auth.username:
        return authenticate(gate.engine, auth.username, auth.password or "",
                            gate.credentials)
    return None


def _from_session() -> Principal | None:
    session_id = flask.session.get("sid")
    if not isinstance(session_id, str):
        return None  # no session, or a cookie from before sessions were kept on the server
    gate = _gate_of_app()
    who = session_principal(gate.engine, session_id, gate.session_hours)
    if who is None:
        flask.session.clear()
    return who


def _ask_for_login():
    if wants_page():
        nxt = flask.request.full_path.rstrip("?")
        return flask.redirect("/login?" + urlencode({"next": nxt}))
    return _refused("sign in first (session cookie, HTTP Basic or a bearer token)")


def _refused(message: str, retry_after: int = 0):
    status = 429 if retry_after else 401
    response = flask.jsonify({"error": message})
    response.status_code = status
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    elif not flask.request.path.startswith("/_dash"):
        # API clients learn they may use Basic; a page's own requests must not make the
        # browser pop up its password dialog.
        response.headers["WWW-Authenticate"] = 'Basic realm="onemap"'
    return response
