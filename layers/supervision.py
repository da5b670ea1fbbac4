"""督办 and 提醒: who may urge what, and what was urged.

:func:`supervise` checks a request to urge and hands it to ``onemap.supervision`` to write:
only a role that acts (``Principal.can_act``: not an analyst, a kiosk or a feed), only a
case of the person's own unit (a case elsewhere and an unknown one look the same: not
found) or a handling unit that handles cases in a scope of their unit. Refusals raise the
read side's errors (:class:`Forbidden` is logged by the adapter).

The reads: a case's 督办 (:func:`of_case`, for its detail), a unit's latest
(:func:`of_unit`), and the count per handling unit in a scope (:func:`counts`, for the
ranking): the rows done in that scope — on its cases (by the case's unit then) and on its
units as a whole in it or below it — at any time.
"""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import Connection, Engine

from layers.access import scope_for
from layers.errors import BadParameter, Forbidden, NotFound
from layers.scope import Scope, resolve_scope
from layers.sql import run
from layers.times import iso
from onemap.principal import Principal
from onemap.schema import LEVEL_COLUMN
from onemap.supervision import CODES, KINDS, NOTE_CHARS, Target, record

LATEST = 5  # a unit's latest rows shown beside its cases
CASE_CODES = ", ".join(f"c.{c}" for c in CODES)


class Supervision(TypedDict):
    id: int
    at: str                 # local ISO
    user_name: str
    role: str
    kind: str               # KINDS
    case_id: str | None
    handling_unit: str | None
    note: str


def checked(kind: str, note: str, case: str | None, unit: str | None) -> None:
    """The request's own fields, before any database: a known kind, a note of text within
    ``NOTE_CHARS``, and a case or a unit (one of them)."""
    if kind not in KINDS:
        raise BadParameter("kind", kind, f"must be one of {', '.join(KINDS)}")
    if not isinstance(note, str) or len(note) > NOTE_CHARS or "\x00" in note:
        raise BadParameter("note", str(note)[:40], f"text of at most {NOTE_CHARS} characters")
    if (case is None) == (unit is None):
        raise BadParameter("case", case, "name a case or a handling unit (one of them)")
    for name, value in (("case", case), ("unit", unit)):
        if value is not None and (not isinstance(value, str) or not value.strip()
                                  or len(value) > 200 or "\x00" in value):
            raise BadParameter(name, str(value)[:40], "not a case id or a unit's name")


def supervise(engine: Engine, who: Principal, kind: str, note: str = "", *,
              case: str | None = None, unit: str | None = None,
              scope: str | None = None, zone: str = "UTC") -> Supervision:
    """Urge a case (``case``) or a handling unit (``unit``, in the scope ``scope``) as
    ``who``; written on ``engine`` (the primary) with its audit row; the row as written."""
    checked(kind, note, case, unit)
    if not who.can_act:
        raise Forbidden(f"'{who.name}' ({who.role}) may only read: no 督办 or 提醒",
                        kind, case or unit)
    with engine.begin() as conn:
        if case is not None:
            target = _case_target(conn, who, case)
        else:
            target = _unit_target(conn, scope_for(conn, who, scope), unit)
        row = record(conn, who, kind, target, note.strip())
    return {"id": row["id"], "at": iso(row["at"], zone), "user_name": who.name,
            "role": who.role, "kind": kind, "case_id": target.case_id,
            "handling_unit": target.handling_unit, "note": note.strip()}


def _case_target(conn: Connection, who: Principal, case_id: str) -> Target:
    own = scope_for(conn, who, None)
    inside = f" AND c.{own.column} = :scope" if own.column else ""
    row = run(conn, f"SELECT c.id, c.handling_unit, {CASE_CODES} FROM case_event c "
                    f"WHERE c.id = :id{inside}", {"id": case_id, "scope": own.code}).first()
    if row is None:  # unknown and foreign look the same
        raise NotFound(f"case '{case_id}' not found (or outside your area)")
    return Target(row[0], row[1], tuple(row[2:]))


def _unit_target(conn: Connection, scope: Scope, unit: str) -> Target:
    inside = f" AND c.{scope.column} = :scope" if scope.column else ""
    found = run(conn, f"SELECT EXISTS (SELECT 1 FROM case_event c WHERE "
                      f"c.handling_unit = :unit{inside})",
                {"unit": unit, "scope": scope.code}).scalar()
    if not found:
        raise NotFound(f"no handling unit '{unit}' handles cases in this area")
    # The whole path: a scope as seen by a person starts at their own unit.
    whole = resolve_scope(conn, scope.code).breadcrumb if scope.code else ()
    path = {level: code for code, _, level in whole}
    return Target(None, unit, tuple(path.get(level) for level in sorted(LEVEL_COLUMN)))


COLUMNS = "s.id, s.at, s.user_name, s.role, s.kind, s.case_id, s.handling_unit, s.note"


def _rows(conn: Connection, where: str, params: dict, zone: str,
          limit: int | None = None) -> list[Supervision]:
    rows = run(conn, f"SELECT {COLUMNS} FROM case_supervision s WHERE {where} "
                     f"ORDER BY s.at DESC, s.id DESC" + (" LIMIT :limit" if limit else ""),
               {**params, "limit": limit}).mappings()
    return [{**r, "at": iso(r["at"], zone)} for r in rows]


def of_case(conn: Connection, case_id: str, zone: str) -> list[Supervision]:
    """The 督办 and 提醒 of one case (the caller has checked it may see it), newest first."""
    return _rows(conn, "s.case_id = :case", {"case": case_id}, zone)


def of_unit(conn: Connection, scope: Scope, unit: str, zone: str,
            limit: int = LATEST) -> list[Supervision]:
    """The latest ``limit`` rows of a handling unit done in ``scope`` (its cases' and its
    own)."""
    inside = f" AND s.{scope.column} = :scope" if scope.column else ""
    return _rows(conn, f"s.handling_unit = :unit{inside}",
                 {"unit": unit, "scope": scope.code}, zone, limit)


def counts(conn: Connection, scope: Scope) -> dict[str, int]:
    """The 督办 and 提醒 per handling unit done in ``scope``, at any time."""
    inside = f" AND s.{scope.column} = :scope" if scope.column else ""
    return dict(run(conn, f"SELECT s.handling_unit, count(*) FROM case_supervision s "
                          f"WHERE s.handling_unit IS NOT NULL{inside} GROUP BY 1",
                    {"scope": scope.code}).all())


def listed(conn: Connection, who: Principal, zone: str, *, case: str | None = None,
           unit: str | None = None, scope: str | None = None) -> dict:
    """The 督办 and 提醒 of a case of ``who``'s area (all), or of a handling unit done in
    the scope ``scope`` (the latest 100)."""
    checked(KINDS[0], "", case, unit)
    if case is not None:
        target = _case_target(conn, who, case)
        return {"case": target.case_id, "supervisions": of_case(conn, target.case_id, zone)}
    area = scope_for(conn, who, scope)
    _unit_target(conn, area, unit)
    return {"unit": unit, "scope": area.code,
            "supervisions": of_unit(conn, area, unit, zone, limit=100)}
