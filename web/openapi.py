"""The OpenAPI 3.0 description of the read API (served at ``/openapi.json``).

It states what the handlers do: every parameter they read, every status they answer with
(401 unsigned, 403 outside the caller's area, 404 unknown, 409 an alarm not as named or a
case merged already, 429
after failed sign-ins or while exports are busy, 503 database away, 507 no room for an
export), the media type of
each answer and the shape of the JSON ones. Fuzzed against the live server in
``tests/test_fuzz.py``.
"""

from __future__ import annotations

from layers.catalog import Catalog
from layers.changes import HOLD_S
from layers.comparison import CHANGES, FLOWS, KINDS, REASONS
from layers.exports import EXPORT_CRS, FORMATS
from layers.features import MAX_LIMIT
from layers.filters import DEVICE_STATUSES, MAX_LIST_ITEMS, RANGES, STATUS_FILTERS
from layers.merging import DECISIONS, MAX_CASES
from layers.merging import LONGEST as LONGEST_LOOKED_IN
from layers.search import LONGEST, MOST
from layers.workbench import RANKED_BY
from onemap.alarm_actions import MAX_BODY_BYTES as ALARM_BODY
from onemap.alarm_actions import MAX_NOTE
from onemap.case_feed import EVENT_SCHEMA, MAX_BODY_BYTES, MAX_EVENTS
from onemap.supervision import KINDS as URGED
from onemap.supervision import NOTE_CHARS
from onemap.vocabulary import WORKER_ROLES

GEOJSON = "application/geo+json"
JSON = "application/json"


def _param(name: str, description: str, schema: dict | None = None, where: str = "query",
           required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required or where == "path",
            "description": description, "schema": schema or {"type": "string"}}


def _comma_list(values: tuple[str, ...]) -> dict:
    one = "(" + "|".join(values) + ")"
    return {"type": "string", "pattern": f"^{one}(,{one})*$"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


FILTERS = [
    _param("scope", "admin code: the unit and its whole subtree (a street official: within "
           "their own unit, else 403)", {"type": "string", "pattern": r"^[\w\- ]{1,40}$"}),
    _param("range", "time range preset", {"type": "string", "enum": list(RANGES)}),
    _param("start", "ISO date or date-time (inclusive)"),
    _param("end", "ISO date or date-time (exclusive; a date includes that day)"),
    _param("datetime", "OGC interval: instant, start/end, ../end or start/.."),
    _param("category", f"comma-separated categories of any level (at most {MAX_LIST_ITEMS})"),
    _param("channel", f"comma-separated channels (at most {MAX_LIST_ITEMS})"),
    _param("status", "comma-separated case statuses", _comma_list(STATUS_FILTERS)),
    _param("kind", f"comma-separated facility or device kinds (at most {MAX_LIST_ITEMS})"),
    _param("device_status", "comma-separated device statuses", _comma_list(DEVICE_STATUSES)),
    _param("bbox", "minx,miny,maxx,maxy in WGS84 (min < max)"),
]
SORT = _param("sort", "the handling units' order, descending (ascending with .asc)",
              {"type": "string", "pattern": "^(" + "|".join(RANKED_BY) + r")(\.asc)?$"})
PERSONAL = _param("personal", "include the reporter's name and phone (masked unless the "
                  "caller holds the grant)", {"type": "boolean"})


def _error(description: str, **headers: str) -> dict:
    answer = {"description": description, "content": {JSON: {"schema": _ref("Error")}}}
    if headers:
        answer["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                             for name, text in headers.items()}
    return answer


ERRORS = {
    "400": _error("a parameter is malformed; the message names it"),
    "401": _error("nobody signed in", **{"WWW-Authenticate": "the schemes accepted"}),
    "403": _error("outside the caller's area, or not theirs to do (logged)"),
    "404": _error("unknown layer, scope or feature"),
    "429": _error("too many failed sign-ins: wait", **{"Retry-After": "seconds"}),
    "503": _error("database unavailable", **{"Retry-After": "seconds"}),
}
LINK = {"type": "object", "required": ["href", "rel"], "properties": {
    "href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
    "title": {"type": "string"}}}
SCHEMAS = {
    "Error": {"type": "object", "properties": {"error": {"type": "string"}},
              "required": ["error"]},
    "Link": LINK,
    "Links": {"type": "array", "items": _ref("Link")},
    "Landing": {"type": "object", "required": ["title", "links"], "properties": {
        "title": {"type": "string"}, "description": {"type": "string"},
        "links": _ref("Links")}},
    "Conformance": {"type": "object", "required": ["conformsTo"], "properties": {
        "conformsTo": {"type": "array", "items": {"type": "string"}}}},
    "Collection": {"type": "object", "required": ["id", "links", "extent"], "properties": {
        "id": {"type": "string"}, "title": {"type": "string"},
        "description": {"type": "string"}, "links": _ref("Links"),
        "extent": {"type": "object", "required": ["spatial"], "properties": {
            "spatial": {"type": "object", "required": ["bbox"], "properties": {"bbox": {
                "type": "array", "minItems": 1, "items": {
                    "type": "array", "minItems": 4, "maxItems": 4,
                    "items": {"type": "number"}}}}}}}}},
    "Collections": {"type": "object", "required": ["collections", "links"], "properties": {
        "collections": {"type": "array", "items": _ref("Collection")},
        "links": _ref("Links")}},
    "Feature": {"type": "object", "required": ["type", "geometry", "properties"],
                "properties": {"type": {"type": "string", "enum": ["Feature"]},
                               "properties": {"type": "object", "nullable": True},
                               "geometry": {"type": "object", "nullable": True}}},
    "FeatureCollection": {"type": "object", "required": ["type", "features"], "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": _ref("Feature")},
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0}, "links": _ref("Links")}},
    "Unit": {"type": "object", "required": ["code", "name", "level"], "properties": {
        "code": {"type": "string", "nullable": True}, "name": {"type": "string"},
        "level": {"type": "integer", "minimum": 0, "maximum": 4}}},
    "Workers": {"type": "object", "required": ["scope", "workers", "total", "unlisted"],
                "properties": {
        "scope": _ref("Unit"),
        "workers": {"type": "array", "description": "the scope's grid workers (网格员), each "
                    "once with the scope's grids they cover, and their figures over the "
                    "period's cases naming them as handler", "items": {
                        "type": "object", "required": [
                            "id", "name", "role", "phone", "grids", "received", "closed",
                            "on_time", "on_time_rate", "median_hours"],
                        "properties": {
                            "id": {"type": "string"}, "name": {"type": "string"},
                            "role": {"type": "string", "enum": list(WORKER_ROLES)},
                            "phone": {"type": "string", "nullable": True, "description":
                                      "masked unless the caller may see personal fields; "
                                      "null for kiosks"},
                            "grids": {"type": "array", "items": {"type": "string"}},
                            "received": {"type": "integer", "minimum": 0},
                            "closed": {"type": "integer", "minimum": 0},
                            "on_time": {"type": "integer", "minimum": 0},
                            "on_time_rate": {"type": "number", "nullable": True},
                            "median_hours": {"type": "number", "nullable": True}}}},
        "total": {"type": "integer", "minimum": 0,
                  "description": "workers of the scope (the list holds at most 2,000)"},
        "unlisted": {"type": "integer", "minimum": 0, "description": "the scope's cases "
                     "naming a handler the roster does not hold"}}},
    "Changes": {"type": "object", "required": ["version", "held"], "properties": {
        "version": {"type": "string",
                    "description": "the data's version: it moves with every load, case "
                                   "written and device status changed"},
        "held": {"type": "boolean",
                 "description": "the ask was held until the version moved or its wait "
                                "ended (false: answered at once)"}}},
    "Kpi": {"type": "object", "required": ["scope", "cases", "compare", "weekday_hours",
                                           "children", "breadcrumb"],
            "properties": {"scope": _ref("Unit"), "cases": {"type": "object"},
                           "compare": {"type": "object", "description": "the flows' 环比 "
                                       "and 同比 (docs/glossary.md)", "required": list(KINDS),
                                       "properties": {kind: _ref("Compared")
                                                      for kind in KINDS}},
                           "weekday_hours": {
                               "type": "array", "minItems": 7, "maxItems": 7,
                               "description": "cases by local weekday (Monday first) and "
                                              "hour of report",
                               "items": {"type": "array", "minItems": 24, "maxItems": 24,
                                         "items": {"type": "integer", "minimum": 0}}},
                           "children": {"type": "array", "items": {"type": "object"}},
                           "breadcrumb": {"type": "array", "items": _ref("Unit")}}},
    "Workbench": {"type": "object", "required": ["scope", "breadcrumb", "period", "now",
                                                 "funnel"], "properties": {
        "scope": _ref("Unit"), "breadcrumb": {"type": "array", "items": _ref("Unit")},
        "period": {"type": "object", "properties": {
            "start": {"type": "string", "nullable": True},
            "end": {"type": "string", "nullable": True}}},
        "now": {"type": "string", "description": "the backlog's instant (local ISO)"},
        "funnel": {"type": "array", "description": "受理 分拨 处置 反馈 评价: open now, the "
                   "period's dwell (median, p90, hours) and the longest waiting cases",
                   "items": {"type": "object", "required": [
                       "stage", "open", "measured", "median_hours", "p90_hours", "oldest"],
                       "properties": {
                           "stage": {"type": "string"}, "open": {"type": "integer"},
                           "measured": {"type": "integer"},
                           "median_hours": {"type": "number", "nullable": True},
                           "p90_hours": {"type": "number", "nullable": True},
                           "oldest": {"type": "array", "items": {"type": "object"}}}}},
        "indicators": {"type": "array", "description": "办结率 按期办结率 当日/三日办结率 满意率 "
                       "受理告知率 办理告知率 即时答复率 重复件率: value null and available false "
                       "when the source lacks the fields in needs", "items": {
                           "type": "object", "required": ["key", "available", "value", "needs"],
                           "properties": {
                               "key": {"type": "string"}, "available": {"type": "boolean"},
                               "value": {"type": "number", "nullable": True},
                               "part": {"type": "integer", "nullable": True},
                               "whole": {"type": "integer", "nullable": True},
                               "needs": {"type": "array", "items": {"type": "string"}}}}},
        "satisfaction": {"type": "object"},
        "unsatisfied": {"type": "array", "items": {"type": "object"}},
        "unsatisfied_total": {"type": "integer"},
        "units": {"type": "array", "description": "handling units: received, closed, "
                  "on_time_rate, median_hours, satisfaction, satisfied_rate, overdue (now), "
                  "supervised (督办 and 提醒 in the scope, at any time)",
                  "items": {"type": "object", "required": ["unit", "received", "overdue"]}},
        "sort": {"type": "string"},
        "unit": {"type": "string", "nullable": True},
        "unit_cases": {"type": "array", "items": {"type": "object"}},
        "unit_cases_total": {"type": "integer"},
        "unit_supervised": {"type": "array", "items": _ref("Supervision")},
        **{name: {"type": "array", "description": words, "items": {
            "type": "object", "required": ["id", "deadline", "due", "supervised"]}}
           for name, words in (("due_soon", "即将超期 now, least time left first"),
                               ("overdue", "超期未办结 now, longest over first"))},
        "due_soon_total": {"type": "integer"}, "overdue_total": {"type": "integer"}}},
    "Supervision": {
        "type": "object", "description": "a 督办 (supervise) or 提醒 (remind): who, when, "
        "what, the note", "required": ["id", "at", "user_name", "role", "kind", "note"],
        "properties": {
            "id": {"type": "integer"}, "at": {"type": "string", "description": "local ISO"},
            "user_name": {"type": "string"}, "role": {"type": "string"},
            "kind": {"type": "string", "enum": list(URGED)},
            "case_id": {"type": "string", "nullable": True},
            "handling_unit": {"type": "string", "nullable": True},
            "note": {"type": "string", "maxLength": NOTE_CHARS}}},
    "Supervisions": {"type": "object", "required": ["supervisions"], "properties": {
        "case": {"type": "string"}, "unit": {"type": "string"},
        "scope": {"type": "string", "nullable": True},
        "supervisions": {"type": "array", "items": _ref("Supervision")}}},
    "Compared": {
        "type": "object", "required": ["period", "reason", "figures", "changes"],
        "description": "the compared period (local midnights, end exclusive, and its last "
                       "day) with its flows and each flow's change; or none and why",
        "properties": {
            "period": {"type": "object", "nullable": True, "properties": {
                "start": {"type": "string"}, "end": {"type": "string"},
                "last": {"type": "string", "format": "date"}}},
            "reason": {"type": "string", "nullable": True, "enum": [*REASONS, None]},
            "data_from": {"type": "string", "format": "date", "nullable": True,
                          "description": "the data's first day (reason before_data)"},
            "figures": {"type": "object", "nullable": True, "properties": {
                name: {"type": "number", "nullable": True} for name in FLOWS}},
            "changes": {"type": "object", "nullable": True, "properties": {
                name: _ref("Change") for name in FLOWS}}}},
    "Change": {
        "type": "object", "required": ["by", "unit", "verdict"],
        "properties": {
            "by": {"type": "number", "nullable": True,
                   "description": "the change in its unit; null: nothing to compare (a "
                                  "count from 0, or a rate with nothing to divide by)"},
            "unit": {"type": "string", "enum": sorted({c.unit for c in CHANGES.values()})},
            "verdict": {"type": "string", "nullable": True, "enum": ["better", "worse", None]}}},
}


def _get(summary: str, params: list[dict], schema: str | None = None, media: str = JSON,
         **extra: dict) -> dict:
    body = {"schema": _ref(schema)} if schema else {"schema": {"type": "string",
                                                              "format": "binary"}}
    return {"get": {"summary": summary, "parameters": params, "responses": {
        "200": {"description": "OK", "content": {media: body}}, **ERRORS, **extra}}}


def _export_answers() -> dict:
    """Each format has its own media type; GeoJSON is a FeatureCollection."""
    content = {}
    for media in {media.split(";")[0] for _, media in FORMATS.values()}:
        content[media] = {"schema": _ref("FeatureCollection") if media == GEOJSON else
                          {"type": "string", "format": "binary"}}
    return {"description": "the file, as an attachment", "content": content,
            "headers": {"Content-Disposition": {
                "description": "attachment; the file name names the layer and scope",
                "schema": {"type": "string"}}}}


def _openapi_schema(schema: dict) -> dict:
    """A JSON Schema of draft 2020-12 as OpenAPI 3.0 says it: ``nullable`` for a type list
    with null, references into ``components``."""
    if isinstance(schema, list):
        return [_openapi_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ("$schema", "$defs", "examples"):
            continue
        if key == "$ref":
            out[key] = "#/components/schemas/CaseEvent"
        elif key == "type" and isinstance(value, list):
            out["type"] = next(t for t in value if t != "null")
            out["nullable"] = "null" in value
        elif key == "enum":
            out[key] = [v for v in value if v is not None]
        else:
            out[key] = _openapi_schema(value)
    return out


CASE_EVENT = _openapi_schema(EVENT_SCHEMA["$defs"]["event"])
CASES_BODY = _openapi_schema({k: v for k, v in EVENT_SCHEMA.items() if k != "$defs"})
SCHEMAS["CaseEvent"] = CASE_EVENT
SCHEMAS["CaseResults"] = {
    "type": "object", "required": ["batch", "inserted", "updated", "unchanged", "rejected",
                                   "results"],
    "properties": {
        "batch": {"type": "integer", "description": "the load batch the request was written as"},
        **{name: {"type": "integer", "minimum": 0}
           for name in ("inserted", "updated", "unchanged", "rejected")},
        "results": {"type": "array", "description": "one per event, in the body's order",
                    "items": {"type": "object", "required": ["index", "id", "result"],
                              "properties": {
                                  "index": {"type": "integer", "minimum": 0},
                                  "id": {"type": "string", "nullable": True},
                                  "result": {"type": "string", "enum": [
                                      "inserted", "updated", "unchanged", "rejected"]},
                                  "field": {"type": "string", "nullable": True},
                                  "reason": {"type": "string"}}}}}}


MERGE_DECISION = {
    "type": "object", "required": ["id", "decision", "event_id", "case_ids", "decided_by",
                                   "role", "decided_at", "note"],
    "properties": {
        "id": {"type": "integer"}, "decision": {"type": "string", "enum": list(DECISIONS)},
        "event_id": {"type": "string", "description": "the event's first report"},
        "case_ids": {"type": "array", "items": {"type": "string"}},
        "decided_by": {"type": "string"}, "role": {"type": "string"},
        "decided_at": {"type": "string", "description": "local ISO"},
        "note": {"type": "string"}}}
SCHEMAS["MergeDecision"] = MERGE_DECISION
SCHEMAS["Merges"] = {
    "type": "object", "required": ["rule", "total", "clusters", "counts", "decisions"],
    "properties": {
        "rule": {"type": "object", "description": "when two cases are proposed as one: "
                 "metres, hours, place_similarity and text_similarity (0-100)"},
        "total": {"type": "integer", "description": "clusters proposed (the newest listed)"},
        "period": {"type": "object", "description": "the period looked in (local ISO)",
                   "properties": {"start": {"type": "string", "nullable": True},
                                  "end": {"type": "string", "nullable": True}}},
        "cut": {"type": "boolean", "description": "the filters' period was longer than "
                f"{LONGEST_LOOKED_IN.days} days, or open: only its last "
                f"{LONGEST_LOOKED_IN.days} were looked in"},
        "clusters": {"type": "array", "items": {
            "type": "object", "required": ["event_id", "cases", "channels", "pairs"],
            "properties": {"event_id": {"type": "string"},
                           "cases": {"type": "array", "items": {"type": "object"}},
                           "channels": {"type": "array", "items": {"type": "string"}},
                           "pairs": {"type": "array", "items": {"type": "object"}}}}},
        "counts": {"type": "object", "required": ["cases", "events", "duplicates"],
                   "description": "the cases, and without merged duplicates (events)",
                   "properties": {n: {"type": "integer", "minimum": 0}
                                  for n in ("cases", "events", "duplicates")}},
        "decisions": {"type": "array", "items": _ref("MergeDecision")}}}


def _merges() -> dict:
    """GET: the suggestions; POST: a decision (roles that act, within their area)."""
    doc = _get("并案: the scope's cases proposed as one event (close in space and time, the "
               "same category, alike texts), the case count with and without merged "
               "duplicates, and the newest decisions", FILTERS, "Merges")
    doc["post"] = {
        "summary": "record a decision on cases proposed as one event: confirmed (counted "
                   "once) or rejected (not proposed together again); audited",
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["cases", "decision"], "properties": {
                "cases": {"type": "array", "minItems": 2, "maxItems": MAX_CASES,
                          "items": {"type": "string"}},
                "decision": {"type": "string", "enum": list(DECISIONS)},
                "note": {"type": "string", "maxLength": 500}}}}}},
        "responses": {
            "201": {"description": "recorded", "content": {
                JSON: {"schema": _ref("MergeDecision")}}},
            "400": _error("the body is not such an object; the message names the field"),
            "401": ERRORS["401"],
            "403": _error("a role that only reads, a case outside the caller's area, or sent "
                          "from another site (logged)"),
            "409": _error("a case of these is in a confirmed merge already"),
            "503": ERRORS["503"]}}
    return doc


def _post_cases() -> dict:
    answer = {JSON: {"schema": _ref("CaseResults")}}
    return {"post": {
        "summary": "case events from a 12345 system: new cases and their lifecycle (a feed "
                   "user's bearer token only; docs/feed.md)",
        "requestBody": {"required": True, "content": {JSON: {"schema": CASES_BODY}}},
        "responses": {
            "200": {"description": "every event written or unchanged", "content": answer},
            "207": {"description": "some events rejected (each with field and reason); the "
                                   "others written", "content": answer},
            "400": _error("the body is not JSON, not an event or an array of them, or empty"),
            "401": ERRORS["401"],
            "403": _error("not a feed's bearer token, or sent from another site"),
            "413": _error(f"more than {MAX_EVENTS} events or {MAX_BODY_BYTES} bytes"),
            "503": ERRORS["503"]}}}


def _supervision() -> dict:
    """GET a case's or a unit's 督办; POST one (the one write a person makes here)."""
    case = _param("case", "a case id (of the caller's area)")
    unit = _param("unit", "a handling unit's name (of the scope)")
    scope = FILTERS[0]
    listed = _get("the 督办 and 提醒 of a case (case) or of a handling unit in a scope "
                  "(unit, scope): newest first", [case, unit, scope], "Supervisions")
    listed["get"]["responses"]["400"] = _error("neither or both of case and unit")
    body = {"type": "object", "required": ["kind"], "properties": {
        "kind": {"type": "string", "enum": list(URGED),
                 "description": "supervise: 督办; remind: 提醒"},
        "note": {"type": "string", "maxLength": NOTE_CHARS},
        "case": {"type": "string", "description": "the case urged (or unit)"},
        "unit": {"type": "string", "description": "the handling unit urged (or case)"},
        "scope": {"type": "string", "description": "the admin code a unit is urged in "
                  "(the caller's own unit when left out)"}}}
    return {**listed, "post": {
        "summary": "督办 or 提醒 a case or a handling unit, inside the caller's unit; written "
                   "with a row of the audit log (admin, command_center, street_official "
                   "only; not from another site)",
        "requestBody": {"required": True, "content": {JSON: {"schema": body}}},
        "responses": {
            "201": {"description": "written", "content": {JSON: {
                "schema": _ref("Supervision")}}},
            "400": _error("not a JSON object, an unknown kind, a note too long, neither or "
                          "both of case and unit"),
            "401": ERRORS["401"],
            "403": _error("a role that only reads, a scope outside the caller's unit, or "
                          "sent from another site (logged)"),
            "404": _error("no such case or handling unit in the caller's area"),
            "503": ERRORS["503"]}}}
SCHEMAS["AlarmActionBody"] = {
    "type": "object", "additionalProperties": False, "properties": {
        "note": {"type": "string", "nullable": True, "maxLength": MAX_NOTE,
                 "description": "what the person says about it (kept as text, never markup)"},
        "since": {"type": "string", "nullable": True, "format": "date-time",
                  "description": "the start of the alarm as the screen showed it: when the "
                                 "device's alarm now began at another time, 409"}}}
_WHEN = {"type": "string", "nullable": True, "format": "date-time"}
SCHEMAS["AlarmAction"] = {
    "type": "object", "required": ["result", "alarm"], "properties": {
        "result": {"type": "string", "enum": ["acknowledged", "dispatched", "unchanged"],
                   "description": "unchanged: acknowledged (or dispatched) before; the first "
                                  "stands"},
        "alarm": {"type": "object", "required": ["device_id", "acknowledged_by"],
                  "properties": {
                      "device_id": {"type": "string"},
                      "began_at": {**_WHEN, "description": "the alarm's start (null: unknown)"},
                      "acknowledged_by": {"type": "string"}, "acknowledged_at": _WHEN,
                      "note": {"type": "string", "nullable": True},
                      "case_id": {"type": "string", "nullable": True,
                                  "description": "the case it was dispatched as"},
                      "dispatched_by": {"type": "string", "nullable": True},
                      "dispatched_at": _WHEN}}}}


def _post_alarm(summary: str) -> dict:
    return {"post": {
        "summary": summary, "parameters": [_param(
            "device_id", "the id of the device in alarm", {"type": "string", "minLength": 1},
            "path")],
        "requestBody": {"required": False, "content": {JSON: {
            "schema": _ref("AlarmActionBody")}}},
        "responses": {
            "200": {"description": "done, or done before (result)",
                    "content": {JSON: {"schema": _ref("AlarmAction")}}},
            "400": _error("the body is not a JSON object of note and since, or a field is "
                          "malformed; the message names it"),
            "401": ERRORS["401"],
            "403": _error("a read-only role (analyst, kiosk), a device outside the caller's "
                          "area (or unknown, to a street official), or sent from another "
                          "site (logged)"),
            "404": _error("no such device"),
            "409": _error("the device is not in alarm, its alarm is not the one named by "
                          "since, or the case was refused (the message says why)"),
            "413": _error(f"a body over {ALARM_BODY} bytes"),
            "503": _error("database unavailable, or this server writes no cases",
                          **{"Retry-After": "seconds"})}}}


def openapi_document(base: str, catalog: Catalog) -> dict:
    layer = _param("layer_id", "layer id", {"type": "string",
                                              "enum": [spec.id for spec in catalog]}, "path")
    tile = [layer, _param("z", "zoom", {"type": "integer", "minimum": 0, "maximum": 22}, "path"),
            *(_param(n, f"{n} (below 2^z)", {"type": "integer", "minimum": 0}, "path")
              for n in ("x", "y")),
            _param("If-None-Match", "the ETag of a tile held already", where="header")]
    paging = [_param("limit", "page size",
                     {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
              _param("offset", "first row", {"type": "integer", "minimum": 0,
                                              "maximum": 10**9})]
    zoom = _param("zoom", "map zoom", {"type": "number", "minimum": 0, "maximum": 22})
    unit = _param("unit", "grid or hex", {"type": "string", "enum": ["grid", "hex"]})
    fmt = _param("fmt", "file format", {"type": "string", "enum": list(FORMATS)}, "path")
    crs = _param("crs", "output CRS", {"type": "string", "enum": list(EXPORT_CRS)})
    export = _get("the layer as a file (not for kiosks: 403)", [layer, fmt, crs, PERSONAL,
                                                               *FILTERS])
    export["get"]["responses"]["200"] = _export_answers()
    export["get"]["responses"]["429"] = _error(
        "an export of the caller's is being written, or the server's export slots are all "
        "taken: try again after Retry-After", **{"Retry-After": "seconds"})
    export["get"]["responses"]["507"] = _error("no room to write the export")
    return {
        "openapi": "3.0.3",
        "info": {"title": "onemap 一张图", "version": "1.0",
                 "description": "OGC API – Features and the dashboard's data. Every answer "
                                "is cut to the caller's area."},
        "servers": [{"url": base}],
        "security": [{"basic": []}, {"bearer": []}, {"session": []}],
        "paths": {
            "/ogc/": _get("landing page", [], "Landing"),
            "/conformance": _get("conformance classes", [], "Conformance"),
            "/collections": _get("the layers", [], "Collections"),
            "/collections/{layer_id}": _get("one layer", [layer], "Collection"),
            "/collections/{layer_id}/items": _get(
                "features of a layer", [layer, *paging, PERSONAL, *FILTERS],
                "FeatureCollection", GEOJSON),
            "/collections/{layer_id}/items/{feature_id}": _get(
                "one feature", [layer, _param("feature_id", "feature id", where="path"),
                                PERSONAL], "Feature", GEOJSON),
            "/api/kpi": _get("KPIs of a scope and of its children", FILTERS, "Kpi"),
            "/api/workbench": _get(
                "the command centre's workbench of a scope: lifecycle funnel, indicators, "
                "handling-unit ranking", [*FILTERS, SORT, _param(
                    "unit", "a handling unit whose cases to list")], "Workbench"),
            "/api/workers": _get("the grid workers of a scope with their figures "
                                 "(received, closed, on time, median handling time)",
                                 FILTERS, "Workers"),
            "/api/hotspots": _get("Gi* hotspots: the scope's grids as judged within their "
                                  "whole district (false discovery rate in `alpha`), "
                                  "named, with q-values and trend", [*FILTERS, unit, zoom],
                                  "FeatureCollection", GEOJSON),
            "/api/search": _get(
                f"cases of the scope by id (whole or its start), address text or phone "
                f"(the whole number; not for kiosks), at any time: at most {MOST}, the exact "
                f"id first, then the newest; personal fields masked unless granted",
                [_param("q", "a case id, address text or phone number",
                        {"type": "string", "minLength": 1, "maxLength": LONGEST},
                        required=True), *FILTERS[:1]], "FeatureCollection", GEOJSON),
            "/api/supervision": _supervision(),
            "/api/merges": _merges(),
            "/api/changes": _get(
                "the data's version, for screens that redraw when it moves: with `since` "
                "and `wait`, answered as soon as it is not `since` any more (ask again at "
                "once when `held`, else a second later)",
                [_param("since", "the version the screen knows"),
                 _param("wait", "seconds to hold the ask while the version is `since`",
                        {"type": "number", "minimum": 0, "maximum": HOLD_S})], "Changes"),
            "/api/hexbins": _get("H3 hex bins", [*FILTERS, zoom], "FeatureCollection",
                                 GEOJSON),
            "/tiles/{layer_id}/{z}/{x}/{y}.pbf": _get(
                "a vector tile", [*tile, *FILTERS], None,
                "application/vnd.mapbox-vector-tile",
                **{"304": {"description": "the tile named by If-None-Match is current"}}),
            "/export/{layer_id}.{fmt}": export,
            "/api/cases": _post_cases(),
            "/api/alarms/{device_id}/acknowledge": _post_alarm(
                "acknowledge a device's alarm (who and when are the caller and now; a note); "
                "the first acknowledgement stands"),
            "/api/alarms/{device_id}/case": _post_alarm(
                "dispatch a device's alarm as a case to its grid (channel 物联感知), "
                "acknowledging it too; one case per alarm however often asked"),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a kiosk's token, or a feed's (POST /api/cases)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "onemap_session",
                            "description": "after the sign-in page"}},
        },
    }
