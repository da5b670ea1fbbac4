"""What a person does about an IoT alarm, declared once and written here: acknowledge it (who,
when, a note) or turn it into a case dispatched to the device's grid.

An alarm is a device's run of ``alarm`` status from its start (``layers.alarms`` says how the
start is found), so its record in ``alarm_action`` is keyed by the device and that start
(``UNKNOWN_START`` when the start is not known). A statement on the table moves the screens'
``iot`` version by trigger (migration 0006), in the writing transaction.

The case is a case event like any other (``onemap.case_feed``): :func:`case_event` builds it
and the caller hands it to the case feed's writer, so it is placed, checked, counted in the
aggregates and versioned exactly as a case posted by a 12345 system. Its id is the alarm's
(:func:`case_id`), so an alarm makes one case however often it is asked for; the case names
its alarm in ``properties.alarm`` and the alarm its case in ``case_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from onemap.principal import Principal

ACTIONS = ("acknowledge", "case")  # what may be done; audited as alarm.<action>
CHANNEL = "物联感知"
UNKNOWN_START = "-infinity"
MAX_NOTE = 500  # characters of a note
MAX_BODY_BYTES = 4096  # a request to act on an alarm: a note and a time
# What an alarm of each device kind is as a case: (一级分类, 二级分类, hours to deal with it).
# Every alarm is urgent: the 24 h of the catalogue's urgent matters.
CATEGORIES: dict[str, tuple[str, str, int]] = {
    "智能路灯": ("城市管理", "路灯照明", 24),
    "井盖传感器": ("城市管理", "井盖管理", 24),
    "烟感": ("消防安全", "烟感报警", 24),
    "水位传感器": ("水务管理", "内涝积水", 24),
    "视频监控": ("公共安全", "视频监控", 24),
}
OTHER_KIND = ("其他", "物联感知告警", 24)

# The alarm's record; taken in turn per alarm (two clicks at once make one case).
LOCK = text("SELECT pg_advisory_xact_lock(7302, hashtext(:device || '@' || "
            "CAST(:began AS text)))")
RECORD = text("""
    SELECT device_id, CASE WHEN isfinite(began_at) THEN began_at END AS began_at,
           acknowledged_by, acknowledged_at, note, case_id,
           dispatched_by, dispatched_at
    FROM alarm_action WHERE device_id = :device AND began_at = CAST(:began AS timestamptz)""")
ACKNOWLEDGE = text("""
    INSERT INTO alarm_action (device_id, began_at, acknowledged_by, note)
    VALUES (:device, CAST(:began AS timestamptz), :who, :note)
    ON CONFLICT (device_id, began_at) DO NOTHING""")
DISPATCHED = text("""
    INSERT INTO alarm_action (device_id, began_at, acknowledged_by, note, case_id,
                              dispatched_by, dispatched_at)
    VALUES (:device, CAST(:began AS timestamptz), :who, :note, :case, :who, now())
    ON CONFLICT (device_id, began_at) DO UPDATE
        SET case_id = EXCLUDED.case_id, dispatched_by = EXCLUDED.dispatched_by,
            dispatched_at = EXCLUDED.dispatched_at
        WHERE alarm_action.case_id IS NULL""")
CASE_NAMES_ALARM = text("""
    UPDATE case_event
    SET properties = properties || jsonb_build_object('alarm', CAST(:alarm AS jsonb))
    WHERE id = :case
      AND NOT properties @> jsonb_build_object('alarm', CAST(:alarm AS jsonb))""")
CASE_EXISTS = text("SELECT 1 FROM case_event WHERE id = :case")
AUDIT = text("INSERT INTO audit_log (user_name, role, action, allowed, target, detail) "
             "VALUES (:u, :r, :a, true, :t, CAST(:d AS jsonb))")


@dataclass(frozen=True)
class Alarm:
    """A device's alarm now: the device, where it is, and when the alarm began (None: not
    known)."""

    device_id: str
    kind: str
    name: str | None
    since: datetime | None
    lon: float
    lat: float
    grid_code: str | None
    grid_name: str | None

    @property
    def began(self) -> str:
        """The alarm's key beside its device, as ``alarm_action.began_at`` holds it."""
        return self.since.isoformat() if self.since else UNKNOWN_START


def record(conn: Connection, alarm: Alarm) -> dict | None:
    """What was done about ``alarm`` so far (None: nothing)."""
    row = conn.execute(RECORD, _key(alarm)).mappings().first()
    return None if row is None else dict(row)


def take_turn(conn: Connection, alarm: Alarm) -> None:
    """Hold ``alarm`` until ``conn``'s transaction ends: acts on one alarm take their turn."""
    conn.execute(LOCK, _key(alarm))


def acknowledge(conn: Connection, who: Principal, alarm: Alarm, note: str | None) -> bool:
    """Record that ``who`` acknowledged ``alarm`` now, with ``note``; False when it was
    acknowledged already (the first acknowledgement stands)."""
    done = conn.execute(ACKNOWLEDGE, {**_key(alarm), "who": who.name, "note": note})
    return done.rowcount == 1


def case_exists(conn: Connection, case: str) -> bool:
    return conn.execute(CASE_EXISTS, {"case": case}).first() is not None


def dispatched(conn: Connection, who: Principal, alarm: Alarm, case: str,
               note: str | None) -> None:
    """Record that ``who`` turned ``alarm`` into ``case`` (acknowledging it too, if nobody
    had), and name the alarm in the case."""
    conn.execute(DISPATCHED, {**_key(alarm), "who": who.name, "note": note, "case": case})
    conn.execute(CASE_NAMES_ALARM, {"case": case, "alarm": json.dumps(
        {"device_id": alarm.device_id, "began_at": alarm.since.isoformat() if alarm.since
         else None}, ensure_ascii=False)})


def audited(conn: Connection, who: Principal, action: str, target: str, **detail) -> None:
    """The audit row of what ``who`` did, in the same transaction as the deed."""
    conn.execute(AUDIT, {"u": who.name, "r": who.role, "a": action, "t": target,
                         "d": json.dumps(detail, ensure_ascii=False, default=str)})


def case_id(alarm: Alarm, now: datetime) -> str:
    """The case of ``alarm``: ``IOT-<device>-<start, in now's zone, to the second>`` (the
    moment it is made, for an alarm whose start is unknown)."""
    moment = alarm.since.astimezone(now.tzinfo) if alarm.since else now
    return f"IOT-{alarm.device_id}-{moment.strftime('%Y%m%d%H%M%S')}"


def case_event(alarm: Alarm, case: str, now: datetime, note: str | None) -> dict:
    """The case event (``onemap.case_feed``) of ``alarm`` dispatched now to its grid: received,
    accepted and dispatched at ``now`` (local, with its zone), placed at the device, the
    category of its kind, due within that category's hours, handled by the grid."""
    top, second, hours = CATEGORIES.get(alarm.kind, OTHER_KIND)
    device = f"{alarm.kind} {alarm.name or ''} ({alarm.device_id})".replace("  ", " ")
    began = (alarm.since.astimezone(now.tzinfo).strftime("%Y-%m-%d %H:%M") if alarm.since
             else "时间未知")
    words = f"{device} 告警于 {began}" + (f"。备注：{note}" if note else "")
    at = now.isoformat(timespec="seconds")
    return {"id": case, "channel": CHANNEL, "case_type": "物联告警", "category_1": top,
            "category_2": second, "title": f"{alarm.kind}告警", "description": words,
            "address": alarm.grid_name, "reported_at": at, "accepted_at": at,
            "dispatched_at": at, "deadline": (now + timedelta(hours=hours)).isoformat(
                timespec="seconds"),
            "handling_unit": alarm.grid_name, "status": "open",
            "lon": alarm.lon, "lat": alarm.lat}


def _key(alarm: Alarm) -> dict:
    return {"device": alarm.device_id, "began": alarm.began}

