"""The answer while the database cannot be reached: 503 with Retry-After, longer while a
load is being committed than while the server restarts. Declared once for the sign-in gate
and the API; the dashboard answers its pages and callbacks in its own words on top of it
(``dashboard.outage``)."""

from __future__ import annotations

import flask

from onemap.database import waited_for_a_load

RETRY_SECONDS = 5
LOAD_RETRY_SECONDS = 30  # a load being committed takes longer than a restart


def retry_seconds(exc: Exception) -> int:
    """How long a client should wait before asking again, given the database's error."""
    return LOAD_RETRY_SECONDS if waited_for_a_load(exc) else RETRY_SECONDS


def unavailable(exc: Exception) -> tuple[dict, int, dict]:
    """The JSON body, status and headers of the 503 for ``exc``."""
    seconds = retry_seconds(exc)
    what = ("a data load is being committed" if seconds == LOAD_RETRY_SECONDS
            else "database unavailable")
    return {"error": f"{what}; retry shortly"}, 503, {"Retry-After": str(seconds)}


def json_outage(exc: Exception) -> flask.Response:
    """:func:`unavailable` as a Flask answer (what an API client gets from the gate)."""
    body, status, headers = unavailable(exc)
    response = flask.jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


def wants_page() -> bool:
    """A browser navigating (it names text/html), not an API client or a page's XHR."""
    named = {mime for mime, _ in flask.request.accept_mimetypes}
    return flask.request.method == "GET" and "text/html" in named
