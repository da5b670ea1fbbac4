"""The case feed's wire format: what a 12345 / 民生诉求 system posts to ``POST /api/cases``.

A body is one case event (a JSON object) or a batch of them (a JSON array of at most
``MAX_EVENTS``, ``MAX_BODY_BYTES`` in all). Each event names its case by ``id`` and carries
onemap's own field names — those of a loaded case (``onemap load cases``) — plus ``lon``/``lat``
(WGS84) or ``admin_code`` to place a new case. Declared here once: the write side checks bodies
against it (``etl.feed``), the API documents it (``web.openapi``), and it is published as
docs/case-event.schema.json (``python -m etl.feed`` writes it again).

How an event is merged into its case (``etl.feed`` does it, docs/feed.md says it in full):

- a field absent or null is not told: the case keeps what it had (nothing is cleared);
- an event's time is the newest of the stage times it carries (``EVENT_TIMES``); an event
  at least as new as the case's newest stage time sets every field it carries, an older one
  (a 受理 arriving after 办结) only fills fields the case does not have yet, so a case never
  moves backwards;
- ``closed_at`` without a ``status`` closes the case;
- the same event sent again changes nothing and is answered ``unchanged``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from onemap.vocabulary import CASE_STATUSES

MAX_EVENTS = 1000            # events in one request; more: 413
MAX_BODY_BYTES = 2 * 2**20   # bytes in one request; more: 413

# The stage times, in the lifecycle's order: an event's time is the newest it carries.
EVENT_TIMES = ("reported_at", "accepted_at", "dispatched_at", "handled_at", "feedback_at",
               "closed_at", "evaluated_at")
# What a new case must carry (those of a loaded case); an update carries only its id and
# at least one stage time.
NEW_CASE = ("id", "channel", "category_1", "reported_at", "status")

_TIME = ("ISO 8601 date-time; without an offset it is local time (ONEMAP_TIMEZONE); kept "
         "to the second")
# Each field of an event: its JSON type and what it is. All but lon, lat and admin_code are
# fields of a loaded case of the same name (docs/mapping.md).
FIELDS: dict[str, tuple[str, str]] = {
    "id": ("string", "the case's number in the source system (工单编号): its identity"),
    "channel": ("string", "渠道: where the case came in (12345 热线, 网站, APP …)"),
    "case_type": ("string", "诉求类型: 投诉, 咨询, 建议, 求助 …"),
    "category_1": ("string", "一级分类"),
    "category_2": ("string", "二级分类"),
    "category_3": ("string", "三级分类"),
    "category_4": ("string", "四级分类"),
    "title": ("string", "标题"),
    "description": ("string", "诉求内容"),
    "address": ("string", "事发地址"),
    "reported_at": ("string", f"登记: when the case was received; {_TIME}"),
    "accepted_at": ("string", f"受理; {_TIME}"),
    "dispatched_at": ("string", f"分拨 (派单); {_TIME}"),
    "handled_at": ("string", f"处置; {_TIME}"),
    "feedback_at": ("string", f"反馈 (回复市民); {_TIME}"),
    "closed_at": ("string", f"办结; without a status the event closes the case; {_TIME}"),
    "evaluated_at": ("string", f"评价; {_TIME}"),
    "deadline": ("string", f"办理时限; {_TIME}"),
    "handling_unit": ("string", "承办单位"),
    "handler": ("string", "处置人: the id (工号) of the grid worker handling it, as the roster "
                          "names them"),
    "status": ("string", "open or closed"),
    "satisfaction": ("integer", "满意度, 1 (very unsatisfied) to 5 (very satisfied)"),
    "resolved_level": ("integer", "the admin level that resolved it, 1 (district) to 4 (grid)"),
    "reporter_name": ("string", "the reporter's name (personal: shown only to the entitled)"),
    "reporter_phone": ("string", "the reporter's phone (personal)"),
    "lon": ("number", "longitude, WGS84 (with lat): places the case in its grid"),
    "lat": ("number", "latitude, WGS84 (with lon)"),
    "admin_code": ("string", "the code of the unit the case belongs to (any level), for a "
                             "case without coordinates"),
}
BOUNDS = {"satisfaction": (1, 5), "resolved_level": (1, 4)}


def _event_schema() -> dict:
    properties = {}
    for name, (kind, text) in FIELDS.items():
        prop = {"type": [kind, "null"] if name != "id" else kind, "description": text}
        if name in BOUNDS:
            prop["minimum"], prop["maximum"] = BOUNDS[name]
        if name == "status":
            prop["enum"] = [*CASE_STATUSES, None]
        if name == "id":
            prop["minLength"] = 1
        properties[name] = prop
    return {
        "type": "object", "properties": properties, "required": ["id"],
        "additionalProperties": False,
        "anyOf": [{"required": [name]} for name in EVENT_TIMES],
        "examples": [
            {"id": "A20261203001", "channel": "12345热线", "category_1": "市容环境",
             "category_2": "占道经营", "reported_at": "2026-12-03T09:12:00+08:00",
             "status": "open", "lon": 114.33, "lat": 22.70},
            {"id": "A20261203001", "dispatched_at": "2026-12-03T09:40:00+08:00",
             "handling_unit": "坪山街道城管办"},
            {"id": "A20261203001", "closed_at": "2026-12-03T15:02:00+08:00"},
            {"id": "A20261203001", "evaluated_at": "2026-12-03T18:30:00+08:00",
             "satisfaction": 5},
        ],
    }


EVENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "onemap case event",
    "description": (
        "The body of POST /api/cases: one case event, or an array of at most "
        f"{MAX_EVENTS} (and {MAX_BODY_BYTES // 2**20} MiB in all). A new case carries "
        f"{', '.join(NEW_CASE)} and a place (lon and lat, or admin_code); a later event "
        "carries its case's id and what happened (at least one stage time). Absent or null "
        "fields are not told: the case keeps them. An event older than the case's newest "
        "stage only fills what the case lacks. One event per case per request."),
    "oneOf": [{"$ref": "#/$defs/event"},
              {"type": "array", "items": {"$ref": "#/$defs/event"}, "minItems": 1,
               "maxItems": MAX_EVENTS}],
    "$defs": {"event": _event_schema()},
}


@dataclass
class RowResult:
    """What became of one event of a request: ``index`` is its place in the body (0 for a
    single object); ``result`` is inserted, updated, unchanged or rejected."""

    index: int
    id: str | None
    result: str
    field: str | None = None
    reason: str | None = None

    def as_json(self) -> dict:
        data = {"index": self.index, "id": self.id, "result": self.result}
        if self.result == "rejected":
            data.update(field=self.field, reason=self.reason)
        return data


@dataclass
class FeedAnswer:
    """What a request did: the load batch it was written as and each event's result."""

    batch_id: int | None
    rows: list[RowResult] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(r.result == result for r in self.rows)
