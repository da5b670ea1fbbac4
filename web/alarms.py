"""Acting on an IoT alarm, the first write a person makes from the screens:
``POST /api/alarms/{device_id}/acknowledge`` records who acknowledged the device's alarm,
when, with a note; ``POST /api/alarms/{device_id}/case`` turns it into a case dispatched to
the device's grid (and acknowledges it, if nobody had). The desk's buttons call the same
:class:`AlarmDesk` (``dashboard.pages.home``), so both paths check alike:

- who: only the acting roles (``onemap.principal.ACTING_ROLES``); analysts and kiosks read;
- where: a street official acts only on alarms within their own unit (a device elsewhere or
  unknown is refused alike, as scopes are: 403);
- what: the device must be in alarm now, and, when the request names the alarm's start
  (``since``, as the screen showed it), still the same alarm (else 409);
- from where: a request another site makes a browser send is refused before (``web.csrf``).

An alarm is acknowledged once: the first acknowledgement stands and asking again changes
nothing (``unchanged``). It becomes one case however often it is asked (two clicks at once
take their turn). The case is written by the case feed's writer (``etl.feed``, handed in by
the composition root): placed, checked, counted in the aggregates by delta and versioned as
every case posted to ``POST /api/cases`` is. Every act and every refusal is in the audit log;
every act moves the data's version, so every screen shows it at its next look.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

import flask
import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from layers.access import scope_for
from layers.alarms import device as device_in_scope
from layers.errors import BadParameter, Conflict, Forbidden, LayerError, NotFound
from onemap import alarm_actions as record
from onemap.alarm_actions import ACTIONS, MAX_BODY_BYTES, MAX_NOTE, Alarm
from onemap.errors import OnemapError
from onemap.principal import Principal
from web.api import error_response, json_response, log_denial
from web.auth import SIGN_IN_FIRST, current_principal, refused
from web.cases import CaseWriter
from web.http import to_flask

KEY = "onemap_alarms"
PATH = "/api/alarms/<path:device_id>/{action}"
BODY_FIELDS = {"note": "string", "since": "string"}
ALLOW = {"Allow": "POST, OPTIONS"}
ANSWERED = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


class CasesUnavailable(LayerError):
    """No case can be written now (this server writes none, or the writing failed): the
    alarm stays as it was."""

    status = 503


class AlarmDesk:
    """Acts on alarms on the primary database ``engine``; cases are written by ``writer``
    (None: this server writes no cases); local times are in ``zone``."""

    def __init__(self, engine: Engine, writer: CaseWriter | None, zone: str):
        self.engine, self.writer, self.zone = engine, writer, zone

    def act(self, who: Principal, device_id: str, action: str, note: str | None = None,
            since: str | None = None) -> dict:
        """Do ``action`` (acknowledge or case) on the alarm of ``device_id`` as ``who``:
        ``{"result": acknowledged|dispatched|unchanged, "alarm": its record}``. Refusals
        raise (:class:`Forbidden`, logged; :class:`NotFound`, :class:`Conflict`,
        :class:`BadParameter`)."""
        try:
            return self._act(who, device_id, action, note, since)
        except Forbidden as exc:
            log_denial(self.engine, who, exc)
            raise

    def _act(self, who: Principal, device_id: str, action: str, note, since) -> dict:
        if action not in ACTIONS:
            raise NotFound(f"no such action on an alarm: {action!r}")
        if not who.can_act:
            raise Forbidden(f"'{who.name}' ({who.role}) may read alarms but not act on them",
                            f"alarm.{action}", device_id)
        note, since = _note(note), _since(since)
        if action == "case" and self.writer is None:
            raise CasesUnavailable("this server writes no cases: nothing was done")
        with self.engine.begin() as conn:
            alarm = _alarm(conn, who, device_id, since)
            record.take_turn(conn, alarm)
            if action == "acknowledge":
                result = self._acknowledge(conn, who, alarm, note)
            else:
                result = self._dispatch(conn, who, alarm, note)
            done = record.record(conn, alarm)
        zone = ZoneInfo(self.zone)
        return {"result": result, "alarm": {
            k: v.astimezone(zone).isoformat() if isinstance(v, datetime) else v
            for k, v in done.items()}}

    def _acknowledge(self, conn: Connection, who: Principal, alarm: Alarm,
                     note: str | None) -> str:
        if not record.acknowledge(conn, who, alarm, note):
            return "unchanged"
        record.audited(conn, who, "alarm.acknowledge", alarm.device_id,
                       began_at=alarm.since, note=note)
        return "acknowledged"

    def _dispatch(self, conn: Connection, who: Principal, alarm: Alarm,
                  note: str | None) -> str:
        done = record.record(conn, alarm)
        if done and done["case_id"]:
            return "unchanged"
        now = datetime.now(ZoneInfo(self.zone)).replace(microsecond=0)
        case = record.case_id(alarm, now)
        if not record.case_exists(conn, case):  # else written by an attempt cut short
            try:
                answer = self.writer([record.case_event(alarm, case, now, note)], who)
            except (OnemapError, OSError, psycopg.Error) as exc:
                raise CasesUnavailable(f"the case could not be written, nothing was done: "
                                       f"{exc}") from exc
            row = answer.rows[0]
            if row.result == "rejected":
                raise Conflict(f"the case was not written: {row.field or 'event'}: "
                               f"{row.reason}")
        record.dispatched(conn, who, alarm, case, note)
        record.audited(conn, who, "alarm.case", alarm.device_id, began_at=alarm.since,
                       case=case, note=note)
        return "dispatched"


def _alarm(conn: Connection, who: Principal, device_id: str,
           since: datetime | None) -> Alarm:
    """The alarm of ``device_id`` now, as ``who`` may act on it."""
    scope = scope_for(conn, who, None)
    found = device_in_scope(conn, scope, device_id)
    if found is None:
        if who.scope is not None:  # unknown and foreign look the same
            raise Forbidden(f"device '{device_id}' is not in your area ({who.scope})",
                            "alarm", device_id)
        raise NotFound(f"no device '{device_id}'")
    props = found["properties"]
    if props["status"] != "alarm":
        raise Conflict(f"device '{device_id}' is not in alarm (it is {props['status']})")
    began = props["alarm_since"]
    if since is not None and (began is None or began != since):
        now = began.isoformat() if began else "an unknown time"
        raise Conflict(f"the alarm of '{device_id}' that began at {since.isoformat()} is over; "
                       f"its alarm now began at {now}: look again")
    lon, lat = found["geometry"]["coordinates"]
    return Alarm(props["id"], props["kind"], props["name"], began, lon, lat,
                 props["grid_code"], props["grid_name"])


def _note(note) -> str | None:
    if note is None:
        return None
    if not isinstance(note, str):
        raise BadParameter("note", note, "must be text")
    if "\x00" in note:
        raise BadParameter("note", note[:40], "holds a NUL character")
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise BadParameter("note", note[:40] + "…", f"longer than {MAX_NOTE} characters")
    return note or None


def _since(since) -> datetime | None:
    if since is None:
        return None
    try:
        moment = datetime.fromisoformat(since) if isinstance(since, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadParameter("since", since, "must be an ISO 8601 date-time with its offset "
                                           "(the alarm's start as shown)")
    return moment


# -- HTTP ----------------------------------------------------------------------------------
def register_alarms(server: flask.Flask, desk: AlarmDesk) -> None:
    """Mount the alarm actions on ``server`` and keep ``desk`` for the pages
    (:func:`alarm_desk`)."""
    server.extensions[KEY] = desk
    for action in ACTIONS:
        server.add_url_rule(PATH.format(action=action), f"api_alarm_{action}",
                            _view(desk, action), methods=ANSWERED,
                            provide_automatic_options=False)


def alarm_desk() -> AlarmDesk:
    """The desk of the app handling the current request."""
    return flask.current_app.extensions[KEY]


def _view(desk: AlarmDesk, action: str) -> Callable[..., flask.Response]:
    def view(device_id: str) -> flask.Response:
        request = flask.request
        if request.method == "OPTIONS":
            return flask.Response(status=200, headers=ALLOW)
        if request.method != "POST":
            return to_flask(json_response({"error": f"{request.path} takes POST only"}, 405,
                                          **ALLOW))
        who = current_principal()
        if who is None:
            return refused(SIGN_IN_FIRST)
        try:
            body = _body()
            return to_flask(json_response(desk.act(who, device_id, action, **body)))
        except (OnemapError, SQLAlchemyError) as exc:
            return to_flask(error_response(exc))
    return view


def _body() -> Mapping:
    """The request's fields (an empty body: none)."""
    request = flask.request
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _TooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise _TooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadParameter("body", raw[:40].decode("utf-8", "replace"),
                           f"is not UTF-8 JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadParameter("body", data, "must be a JSON object (note, since)")
    for name, value in data.items():
        if name not in BODY_FIELDS:
            raise BadParameter(name, value, "is not a field of an alarm action (note, since)")
        if value is not None and not isinstance(value, str):
            raise BadParameter(name, value, "must be a string or null")
    return data


class _TooLarge(LayerError):
    status = 413
