"""The answer to a request while the database cannot say who is asking: 503 with
Retry-After on every path, whatever the way of signing in (fail closed). A page says so
and reloads itself when the time is up; a dashboard callback gets only its page's banner
(no callback runs, no data is read), so a screen keeps its last picture and says why it
is not updating, then recovers by itself."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs

import flask
from plotly.io.json import to_json_plotly

from dashboard import ids
from dashboard.components import database_banner
from dashboard.messages import LANGUAGES, t, user_message
from onemap.database import waited_for_a_load

RETRY_SECONDS = 5
LOAD_RETRY_SECONDS = 30  # a load being committed takes longer than a restart
CALLBACK_PATH = "/_dash-update-component"
PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{seconds}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-page"><main class="login"><h1>{title}</h1>
<p class="banner error" id="db-down">{message}</p></main></body></html>"""


def wants_page() -> bool:
    """A browser navigating (it names text/html), not an API client or a page's XHR."""
    named = {mime for mime, _ in flask.request.accept_mimetypes}
    return flask.request.method == "GET" and "text/html" in named


def outage(exc: Exception) -> flask.Response:
    """503 + Retry-After for the request being handled; ``exc`` is the database's error."""
    seconds = LOAD_RETRY_SECONDS if waited_for_a_load(exc) else RETRY_SECONDS
    banner = _banner_output() if flask.request.path == CALLBACK_PATH else None
    if banner is not None:
        # The renderer applies only a 200: the banner is all this answer holds.
        response = flask.Response(to_json_plotly({"multi": True, "response": {
            banner: {"children": database_banner(exc, _lang())}}}),
            content_type="application/json")
    elif wants_page():
        lang = _lang()
        response = flask.Response(PAGE.format(
            lang=lang, seconds=seconds, title=escape(t("app.title", lang)),
            message=escape(user_message(exc, lang))), status=503)
    else:
        message = "a data load is being committed" if seconds == LOAD_RETRY_SECONDS \
            else "database unavailable"
        response = flask.jsonify({"error": f"{message}; retry shortly"})
        response.status_code = 503
    response.headers["Retry-After"] = str(seconds)
    return response


def _callback() -> dict:
    body = flask.request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _banner_output() -> str | None:
    """The id of the page banner among the callback's outputs, if it is one of them."""
    outputs = _callback().get("outputs")
    for output in outputs if isinstance(outputs, list) else [outputs]:
        if not isinstance(output, dict) or output.get("property") != "children":
            continue
        name = output.get("id")
        if isinstance(name, str) and (name == ids.BANNER or name.endswith("-" + ids.BANNER)):
            return name
    return None


def _lang() -> str:
    """The page's language: ``lang`` in the address (or the big screen's own), else the
    browser's preference."""
    body = _callback()
    for item in [*_items(body.get("inputs")), *_items(body.get("state"))]:
        value = item.get("value")
        if item.get("property") == "search" and isinstance(value, str):
            value = parse_qs(value.lstrip("?")).get("lang", [None])[0]
        elif not str(item.get("id", "")).endswith("lang"):
            continue
        if value in LANGUAGES:
            return value
    asked = flask.request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    return flask.request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def _items(values) -> list[dict]:
    """A callback's inputs or states, flattened (pattern-matching ones come as lists)."""
    found = []
    for value in values if isinstance(values, list) else []:
        found.extend(_items(value) if isinstance(value, list) else
                     [value] if isinstance(value, dict) else [])
    return found

