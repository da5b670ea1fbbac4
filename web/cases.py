"""``POST /api/cases``: the case feed. A 12345 / 民生诉求 system posts case events — new cases
and their lifecycle (受理 分拨 处置 反馈 评价 办结) — one event (a JSON object) or a batch (a
JSON array), in the format ``onemap.case_feed`` declares (docs/case-event.schema.json).

Only a ``feed`` user's bearer token may post (``onemap user add NAME --role feed``): no session
cookie, no password, so no other site can make a browser post in its name (``web.csrf``
refuses a cross-site POST before that). A body beyond ``MAX_BODY_BYTES`` or ``MAX_EVENTS``
events is refused whole (413); otherwise every event is answered, in the body's order:
inserted, updated, unchanged (the same event again) or rejected with its field and reason —
200 when none was rejected, 207 when some were; one bad event never costs the others. The
writing is the write side's (``etl.feed``, handed in by the composition root); each request
that writes is one committed load batch, which moves the dashboard's caches on, and one row
of the audit log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

import flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from onemap.accounts import audit
from onemap.case_feed import MAX_BODY_BYTES, MAX_EVENTS, FeedAnswer
from onemap.errors import OnemapError
from onemap.principal import Principal
from web.auth import FEED_PATH, SIGN_IN_FIRST, current_principal, refused

LOG = logging.getLogger(__name__)
CaseWriter = Callable[[Sequence, Principal], FeedAnswer]
ANSWERED = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
ALLOW = {"Allow": "POST, OPTIONS"}


def register_cases(server: flask.Flask, writer: CaseWriter, engine: Engine) -> None:
    """Mount ``POST /api/cases`` on ``server``: events written by ``writer``, audited on
    ``engine`` (the primary database)."""
    # Every method is answered here (POST; OPTIONS; the others 405): else the API's
    # catch-all for unknown paths below /api (a JSON 404) would take GET.
    server.add_url_rule(FEED_PATH, "api_cases", lambda: _post(writer, engine),
                        methods=ANSWERED, provide_automatic_options=False)


def _error(status: int, message: str, **headers: str) -> flask.Response:
    response = flask.jsonify({"error": message})
    response.status_code = status
    response.headers.update(headers)
    return response


def _post(writer: CaseWriter, engine: Engine) -> flask.Response:
    if flask.request.method == "OPTIONS":
        return flask.Response(status=200, headers=ALLOW)
    if flask.request.method != "POST":
        return _error(405, f"{FEED_PATH} takes POST only", **ALLOW)
    who = current_principal()
    if who is None:
        return refused(SIGN_IN_FIRST)
    auth = flask.request.authorization
    if who.role != "feed" or auth is None or auth.type != "bearer":
        _audit(engine, who, False, reason="not a feed's bearer token")
        return _error(403, "only a feed's bearer token may post case events "
                           "(onemap user add NAME --role feed)")
    events = _events()
    if isinstance(events, flask.Response):
        return events
    try:
        answer = writer(events, who)
    except (OnemapError, SQLAlchemyError, OSError) as exc:
        LOG.warning("case events from %s not written: %s", who.name, exc)
        return _error(503, f"nothing was written: {exc}", **{"Retry-After": "5"})
    counts = {result: answer.count(result)
              for result in ("inserted", "updated", "unchanged", "rejected")}
    _audit(engine, who, True, f"batch {answer.batch_id}", events=len(events), **counts)
    response = flask.jsonify({"batch": answer.batch_id, **counts,
                              "results": [row.as_json() for row in answer.rows]})
    response.status_code = 207 if counts["rejected"] else 200
    return response


def _events() -> list | flask.Response:
    """The request's events, or the answer refusing the body whole."""
    request = flask.request
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _too_large()
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return _too_large()
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        return _error(400, f"the body is not UTF-8 ({exc.reason} at byte {exc.start})")
    except ValueError as exc:
        return _error(400, f"the body is not JSON: {exc}")
    events = [data] if isinstance(data, dict) else data
    if not isinstance(events, list):
        return _error(400, "the body is one case event (a JSON object) or a batch of them "
                           "(a JSON array)")
    if not events:
        return _error(400, "the batch is empty")
    if len(events) > MAX_EVENTS:
        return _error(413, f"{len(events)} events: at most {MAX_EVENTS} in one request")
    return events


def _too_large() -> flask.Response:
    return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes: send fewer events "
                       f"in each request (at most {MAX_EVENTS})")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _audit(engine: Engine, who: Principal, allowed: bool, target: str | None = None,
           **detail) -> None:
    try:
        audit(engine, who, "cases", allowed, target, **detail)
    except SQLAlchemyError as error:  # the write stands; the server log keeps it
        LOG.warning("audit log unavailable; %s posted cases (%s): %s", who.name, detail,
                    error)
