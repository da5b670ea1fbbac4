"""The sign-in page (plain Flask: it must work before any Dash code runs) and sign-out, in
the page's language; signing in and out themselves are ``web.auth``'s."""

from __future__ import annotations

import re
from html import escape
from urllib.parse import urlsplit

import flask
from sqlalchemy.exc import SQLAlchemyError

from dashboard.messages import LANGUAGES, t
from dashboard.outage import outage
from onemap.accounts import LoginRefused
from web.auth import sign_in_with_password, sign_out
from web.outage import RETRY_SECONDS

PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-page"><form method="post" action="/login" class="login">
<h1>{title}</h1><p class="sub">{subtitle}</p>{error}
<label for="name">{name_label}</label>
<input id="name" name="name" autocomplete="username" required autofocus value="{name}">
<label for="password">{password_label}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}"><input type="hidden" name="lang" value="{lang}">
<button type="submit">{submit}</button>
<a class="lang" href="/login?lang={other}&amp;next={next_q}">{switch}</a>
</form></body></html>"""


def register_login(server: flask.Flask) -> None:
    """``/login`` (GET form, POST sign-in) and ``/logout`` on a server with the sign-in
    gate of ``web.auth``."""

    def login():
        lang = _lang()
        if flask.request.method == "GET":
            return _page(lang)
        form = flask.request.form
        name = form.get("name", "").strip()
        try:
            sign_in_with_password(name, form.get("password", ""))
        except LoginRefused as exc:
            return _page(lang, _refusal(exc, lang), name), 429 if exc.retry_after else 401
        except SQLAlchemyError:
            return _page(lang, t("db.down", lang), name), 503, {"Retry-After": str(RETRY_SECONDS)}
        return flask.redirect(_safe_next(form.get("next")))

    def logout():
        try:
            sign_out()
        except SQLAlchemyError as exc:  # the session still stands: say so, keep the cookie
            return outage(exc)
        return flask.redirect("/login")

    server.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "logout", logout, methods=["GET", "POST"])


def _page(lang: str, error: str | None = None, name: str = "") -> str:
    nxt = _safe_next(flask.request.values.get("next"))
    return PAGE.format(
        lang=lang, title=t("app.title", lang), subtitle=t("login.title", lang),
        error=f'<p class="banner error" id="login-error">{escape(error)}</p>' if error else "",
        name_label=t("login.name", lang), password_label=t("login.password", lang),
        submit=t("login.submit", lang), name=escape(name), next=escape(nxt),
        next_q=escape(flask.request.values.get("next") and nxt or "/"),
        other="en" if lang == "zh" else "zh", switch=t("lang.switch", lang))


def _refusal(exc: LoginRefused, lang: str) -> str:
    if exc.retry_after:
        return t("login.locked", lang).format(seconds=exc.retry_after)
    return t("login.wrong", lang)


def _lang() -> str:
    asked = flask.request.values.get("lang")
    if asked in LANGUAGES:
        return asked
    best = flask.request.accept_languages.best_match(["zh", "en"])
    return best or "zh"


# A path on this site, and nothing a browser would read otherwise: no second slash or
# backslash at the start (another host), no control character or space anywhere (browsers
# drop tabs and newlines from addresses, so "/\t/evil.example" is "//evil.example").
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\x00-\x20\x7f\\]*")


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if not target or not _LOCAL_PATH.fullmatch(target):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target
