"""The dashboard's answer to a request while the database cannot say who is asking (the
gate of ``web.auth`` calls it; everything else gets ``web.outage``'s JSON 503): a page says
so in its language and reloads itself when the time is up; a dashboard callback gets only
its page's banner (no callback runs, no data is read), so a screen keeps its last picture
and says why it is not updating, then recovers by itself."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs

import flask
from plotly.io.json import to_json_plotly

from dashboard import ids
from dashboard.components import database_banner
from dashboard.messages import LANGUAGES, t, user_message
from web.outage import json_outage, retry_seconds, wants_page

CALLBACK_PATH = "/_dash-update-component"
PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{seconds}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-page"><main class="login"><h1>{title}</h1>
<p class="banner error" id="db-down">{message}</p></main></body></html>"""


def outage(exc: Exception) -> flask.Response:
    """503 + Retry-After for the request being handled; ``exc`` is the database's error."""
    seconds = retry_seconds(exc)
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
        return json_outage(exc)
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

