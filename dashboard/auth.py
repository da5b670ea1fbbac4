"""Who is asking, on every request: a session cookie (after the sign-in page), a kiosk token
(``?kiosk=…`` once, then a cookie; or ``Authorization: Bearer …``) or HTTP Basic for API
clients such as QGIS. Requests from nobody get the sign-in page or a 401.

The principal is looked up again on every request, so disabling a user takes effect at
once; while the database is away the signed cookie's copy stands in (the data calls fail
and show their banner anyway).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from onemap.accounts import LoginRefused, authenticate, by_token, current
from onemap.principal import Principal
from onemap.settings import Settings

# Paths anyone may fetch: the sign-in page, health, static code and the API description.
OPEN_PATHS = ("/login", "/logout", "/healthz", "/openapi.json", "/ogc/openapi.json",
              "/_favicon.ico", "/favicon.ico")
OPEN_PREFIXES = ("/assets/", "/_dash-component-suites/")
KEY = "onemap_auth"


def install_auth(server: flask.Flask, settings: Settings, engine: Engine) -> None:
    """Session cookie settings and the gate in front of every route; ``engine`` is the
    primary database (sign-in writes failure counts)."""
    server.secret_key = secret_key(settings)
    server.config.update(
        SESSION_COOKIE_NAME="onemap_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours))
    server.extensions[KEY] = engine
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
    """Start a session for ``who`` (a fresh one: no fixation)."""
    flask.session.clear()
    flask.session.permanent = True
    flask.session["who"] = [who.name, who.role, who.scope, who.personal_grant]


def _engine() -> Engine:
    return flask.current_app.extensions[KEY]


def _gate():
    path = flask.request.path
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    token = flask.request.args.get("kiosk")
    if token is not None and flask.request.method == "GET":
        return _kiosk_sign_in(token)
    try:
        who = _from_header() or _from_session()
    except LoginRefused as exc:
        return _refused(str(exc), exc.retry_after)
    if who is None:
        return _ask_for_login()
    flask.g.principal = who
    return None


def _kiosk_sign_in(token: str):
    """A kiosk URL signs the screen in, then drops the token from the address bar."""
    who = by_token(_engine(), token)
    if who is None:
        return _refused("unknown or disabled kiosk token")
    sign_in(who)
    rest = [(k, v) for k, v in flask.request.args.items(multi=True) if k != "kiosk"]
    return flask.redirect(flask.request.path + ("?" + urlencode(rest) if rest else ""))


def _from_header() -> Principal | None:
    auth = flask.request.authorization
    if auth is None:
        return None
    if auth.type == "bearer" and auth.token:
        who = by_token(_engine(), auth.token)
        if who is None:
            raise LoginRefused("unknown or disabled token")
        return who
    if auth.type == "basic" and auth.username:
        return authenticate(_engine(), auth.username, auth.password or "")
    return None


def _from_session() -> Principal | None:
    saved = flask.session.get("who")
    if not saved:
        return None
    try:
        who = current(_engine(), saved[0])
    except SQLAlchemyError:
        return Principal(*saved)  # the database is away: the signed copy stands in
    if who is None:
        flask.session.clear()
    return who


def _ask_for_login():
    if _wants_page():
        nxt = flask.request.full_path.rstrip("?")
        return flask.redirect("/login?" + urlencode({"next": nxt}))
    return _refused("sign in first (session cookie, HTTP Basic or a bearer token)")


def _wants_page() -> bool:
    """A browser navigating (it names text/html), not an API client or a page's XHR."""
    named = {mime for mime, _ in flask.request.accept_mimetypes}
    return flask.request.method == "GET" and "text/html" in named


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
