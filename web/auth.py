"""Who is asking, on every request: a session (after the sign-in page, or a kiosk URL
``?kiosk=…`` once), ``Authorization: Bearer <token>`` (a kiosk's, or a feed's, which opens
``POST /api/cases`` and nothing else) or HTTP Basic for API clients such as QGIS.
Requests from nobody get the sign-in page (when a UI provides one, see
:class:`Pages`) or a 401; requests from another site that would change something get a 403
(``web.csrf``).

Sessions live in the database (``onemap.sessions``); the cookie holds only the session's
random id, signed. Every request asks the primary database who holds it, so signing out, a
new password or kiosk token, and disabling a user end sessions at once. When the database
cannot answer, nobody is signed in: the request gets 503 and Retry-After (fail closed,
``web.outage``, or the UI's own words for it), never a role remembered from earlier.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from onemap.accounts import CredentialCache, LoginRefused, audit, authenticate, by_token
from onemap.principal import Principal
from onemap.sessions import end_session, session_principal, start_session
from onemap.settings import Settings
from web.csrf import cross_site_refusal
from web.outage import json_outage, wants_page

LOG = logging.getLogger(__name__)
# Paths anyone may fetch: health, the API description, sign-out.
OPEN_PATHS = ("/logout", "/healthz", "/openapi.json", "/ogc/openapi.json", "/favicon.ico")
KEY = "onemap_auth"
# The one path a feed's token opens (``web.cases``): a feed posts cases and reads nothing.
FEED_PATH = "/api/cases"
# The one 401: what it says and how it tells an API client it may use Basic.
SIGN_IN_FIRST = "sign in first (session cookie, HTTP Basic or a bearer token)"
CHALLENGE = 'Basic realm="onemap"'


@dataclass(frozen=True)
class Pages:
    """What a UI served on the same app adds to the gate: its sign-in page (a browser
    that is not signed in is sent there), paths anyone may fetch (its static code), the
    prefixes of its pages' own requests (never challenged for Basic: the browser would pop
    up its password dialog), and its answer while the database is away."""

    login: str = "/login"
    open_paths: tuple[str, ...] = ()
    open_prefixes: tuple[str, ...] = ()
    own_prefixes: tuple[str, ...] = ()
    outage: Callable[[Exception], flask.Response] = json_outage


@dataclass(frozen=True)
class Gate:
    """What the gate needs, kept on the app: the primary database (sessions, failure
    counts), how long a session lasts, this process's cache of Basic credentials, and the
    UI's pages if any."""

    engine: Engine
    session_hours: float
    credentials: CredentialCache
    pages: Pages | None = None
    open_paths: tuple[str, ...] = field(default=OPEN_PATHS)


def install_auth(server: flask.Flask, settings: Settings, engine: Engine,
                 pages: Pages | None = None) -> None:
    """Session cookie settings and the gate in front of every route; ``engine`` is the
    primary database, ``pages`` what a UI on the same app adds (None: the API alone)."""
    server.secret_key = secret_key(settings)
    server.config.update(
        SESSION_COOKIE_NAME="onemap_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours))
    opened = OPEN_PATHS + ((pages.login, *pages.open_paths) if pages else ())
    server.extensions[KEY] = Gate(engine, settings.session_hours, CredentialCache(), pages,
                                  opened)
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


def sign_in_with_password(name: str, password: str) -> Principal:
    """A name and password typed into a sign-in form: checked (:class:`LoginRefused` when
    wrong or while the name must wait), a session started, and the sign-in logged (a log
    that cannot be written does not stop it)."""
    engine = _gate_of_app().engine
    who = authenticate(engine, name, password)
    sign_in(who)
    try:
        audit(engine, who, "login", True)
    except SQLAlchemyError as error:  # signing in does not depend on the log
        LOG.warning("audit log unavailable; %s signed in (%s)", who.name, error)
    return who


def sign_out() -> None:
    """End the current session on the server, then forget its cookie."""
    session_id = flask.session.get("sid")
    if isinstance(session_id, str):
        end_session(_gate_of_app().engine, session_id)
    flask.session.clear()


def _gate_of_app() -> Gate:
    return flask.current_app.extensions[KEY]


def _gate():
    forbidden = cross_site_refusal()
    if forbidden is not None:
        return forbidden
    gate = _gate_of_app()
    path = flask.request.path
    if path in gate.open_paths or (gate.pages and path.startswith(gate.pages.open_prefixes)):
        return None
    try:
        token = flask.request.args.get("kiosk")
        if token is not None and flask.request.method == "GET":
            return _kiosk_sign_in(token)
        who = _from_header() or _from_session()
    except LoginRefused as exc:
        return refused(str(exc), exc.retry_after)
    except SQLAlchemyError as exc:  # nobody can be told apart: fail closed
        return (gate.pages.outage if gate.pages else json_outage)(exc)
    if who is None:
        return _ask_for_login()
    if who.role == "feed" and path != FEED_PATH:
        response = flask.jsonify({"error": f"a feed's token may only post cases "
                                           f"(POST {FEED_PATH})"})
        response.status_code = 403
        return response
    flask.g.principal = who
    return None


def _kiosk_sign_in(token: str):
    """A kiosk URL signs the screen in, then drops the token from the address bar."""
    who = by_token(_gate_of_app().engine, token)
    if who is None or who.role != "kiosk":  # a feed's token never becomes a session
        return refused("unknown or disabled kiosk token")
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
    pages = _gate_of_app().pages
    if pages and wants_page():
        nxt = flask.request.full_path.rstrip("?")
        return flask.redirect(pages.login + "?" + urlencode({"next": nxt}))
    return refused(SIGN_IN_FIRST)


def refused(message: str, retry_after: int = 0) -> flask.Response:
    """401 (429 while the name must wait ``retry_after`` seconds) with ``message``."""
    status = 429 if retry_after else 401
    response = flask.jsonify({"error": message})
    response.status_code = status
    gate = flask.current_app.extensions.get(KEY)
    pages = gate.pages if gate else None
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    elif not (pages and flask.request.path.startswith(pages.own_prefixes)):
        # API clients learn they may use Basic; a page's own requests must not make the
        # browser pop up its password dialog.
        response.headers["WWW-Authenticate"] = CHALLENGE
    return response
