"""督办 and 提醒 written: a person urges a handling unit, on one case or on the unit as a
whole, with a note. One row of ``case_supervision`` and its row of ``audit_log``, in one
transaction. Who may urge what (their role, their unit) is the read side's to check
(``layers.supervision``) before it calls :func:`record`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from onemap.accounts import audit_in
from onemap.principal import Principal

KINDS = ("supervise", "remind")  # 督办, 提醒
NOTE_CHARS = 500  # the longest note (the table's check says the same)
CODES = ("district_code", "street_code", "community_code", "grid_code")


@dataclass(frozen=True)
class Target:
    """What is urged: a case (``case_id``, and the unit handling it then) or a unit alone;
    ``codes``: the admin codes of where (district, street, community, grid; None above)."""

    case_id: str | None
    handling_unit: str | None
    codes: tuple[str | None, str | None, str | None, str | None]


def record(conn: Connection, who: Principal, kind: str, target: Target, note: str) -> dict:
    """Write one 督办 / 提醒 of ``who`` and its audit row in ``conn``'s transaction; the
    row as written (``id``, ``at``)."""
    row = conn.execute(text(
        f"INSERT INTO case_supervision (user_name, role, kind, case_id, handling_unit, note, "
        f"{', '.join(CODES)}) VALUES (:user, :role, :kind, :case, :unit, :note, "
        f":district_code, :street_code, :community_code, :grid_code) RETURNING id, at"),
        {"user": who.name, "role": who.role, "kind": kind, "case": target.case_id,
         "unit": target.handling_unit, "note": note,
         **dict(zip(CODES, target.codes, strict=True))}).mappings().one()
    audit_in(conn, who, kind, True, target.case_id or target.handling_unit,
             supervision=row["id"], case=target.case_id, unit=target.handling_unit,
             note=note)
    return dict(row)
