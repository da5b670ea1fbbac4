"""``/report.pdf`` and ``/report.html``: the report of a scope and period as a download
(``scope``, ``period`` as ``onemap report`` takes it, ``lang``), made by
``dashboard.report_file`` as the command line makes it.

Behind the sign-in gate like every page; refused from another site like an export (both
are audited: ``web.csrf``); a report takes one of the server's export slots while it is
made, so a burst of reports cannot take every core. A refusal answers as an export's does
(``web.api.error_response``): JSON for a client, a page in both languages for a person who
followed a link.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import quote

import flask
from sqlalchemy.exc import SQLAlchemyError

from dashboard.report_file import FORMATS, make_report
from dashboard.services import services
from layers.errors import LayerError
from web.api import error_response
from web.auth import SIGN_IN_FIRST, current_principal, refused
from web.http import error_page, to_flask

PATH = "/report.{fmt}"


def register_report(server: flask.Flask) -> None:
    """Mount ``/report.pdf`` and ``/report.html`` on ``server`` (which has the gate)."""
    for fmt in FORMATS:
        server.add_url_rule(PATH.format(fmt=fmt), f"report_{fmt}", partial(_download, fmt))


def _download(fmt: str) -> flask.Response:
    who = current_principal()
    if who is None:
        return refused(SIGN_IN_FIRST)
    args, svc = flask.request.args, services()
    try:
        made = make_report(svc.read_engine, svc.engine, who, args.get("scope") or None,
                           args.get("period"), fmt, args.get("lang") or "zh", svc.settings,
                           slots=svc.settings.export_slots)
    except (LayerError, SQLAlchemyError) as exc:
        answer = error_response(exc)
        if flask.request.headers.get("Sec-Fetch-Mode") == "navigate":
            answer = error_page(answer)
        return to_flask(answer)
    return flask.Response(made.body, content_type=made.media, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(made.name)}",
        "Cache-Control": "no-store"})
