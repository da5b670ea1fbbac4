"""Case search: by case id (the whole id or its beginning), address text (a part of it,
any case) or the reporter's phone number (the whole number), within a scope, at any time.

A phone number is searched only by those who may see phones at all (``Principal.personal``
is not None: not kiosks), and only whole: a masked role may find a case by the number a
caller gave, and still sees the number masked (in SQL, ``layers.masking``), as everywhere,
also in the answer's ``query``.
Each hit says what it matched (``matched``: id, phone or address). The hits come as GeoJSON
features (a case without a point has no geometry), the exact id first, then the newest.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import Connection

from layers import backlog as stock
from layers.errors import BadParameter
from layers.masking import MASK_SQL, personal_columns
from layers.scope import Scope
from layers.sql import run
from layers.times import iso
from onemap.settings import DUE_SOON_HOURS

MOST = 50  # hits returned (numberMatched says how many there are)
LONGEST = 100  # characters of a query
PHONE = re.compile(r"^\+?[\d\s-]{7,20}$")
PERSONAL = (("reporter_name", "name"), ("reporter_phone", "phone"))


def _like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (``\\`` escapes)."""
    return re.sub(r"([\\%_])", r"\\\1", text)


def checked(query: str | None) -> str:
    """The query as searched: stripped, 1–``LONGEST`` characters, no NUL."""
    q = (query or "").strip()
    if not q or len(q) > LONGEST or "\x00" in q:
        raise BadParameter("q", (query or "")[:40],
                           f"a case id, address text or phone number of 1-{LONGEST} characters")
    return q


def search(conn: Connection, scope: Scope, query: str, personal: str | None, zone: str,
           soon_hours: float = DUE_SOON_HOURS, most: int = MOST) -> dict:
    """The cases of ``scope`` whose id, address or phone matches ``query`` (phones only
    when ``personal`` is not None), as a FeatureCollection; personal fields as
    ``personal`` says (None: left out)."""
    q = checked(query)
    phone = re.sub(r"[\s-]", "", q) if personal is not None and PHONE.match(q) else None
    matches = ["c.id = :q", "c.id LIKE :prefix ESCAPE '\\'"]
    if len(q) >= 2:
        matches.append("c.address ILIKE :part ESCAPE '\\'")
    if phone:
        matches.append("c.reporter_phone = :phone")
    inside = f"c.{scope.column} = :scope AND " if scope.column else ""
    matched = ("CASE WHEN c.id = :q OR c.id LIKE :prefix ESCAPE '\\' THEN 'id' "
               + ("WHEN c.reporter_phone = :phone THEN 'phone' " if phone else "")
               + "ELSE 'address' END")
    shown = ", ".join(["", *personal_columns(PERSONAL, personal, "c")])
    rows = run(conn, f"SELECT c.id, c.reported_at, c.category_1, c.category_2, c.status, "
                     f"c.handling_unit, c.address, c.deadline, c.street_code{shown}, "
                     f"{matched} AS matched, ST_AsGeoJSON(c.geom, 6) AS geometry, "
                     f"count(*) OVER () AS total, now() AS now FROM case_event c "
                     f"WHERE {inside}({' OR '.join(matches)}) "
                     f"ORDER BY (c.id = :q) DESC, c.reported_at DESC, c.id LIMIT :most",
               {"q": q, "prefix": _like(q) + "%", "part": f"%{_like(q)}%", "phone": phone,
                "scope": scope.code, "most": most}).mappings().all()
    features = [_feature(r, zone, soon_hours) for r in rows]
    if phone and personal == "masked":  # the number searched, as its hits show it
        q = run(conn, f"SELECT {MASK_SQL['phone'].format(c='CAST(:q AS text)')}",
                {"q": q}).scalar()
    return {"type": "FeatureCollection", "query": q, "features": features,
            "numberMatched": int(rows[0]["total"]) if rows else 0,
            "numberReturned": len(features)}


def _feature(row, zone: str, soon_hours: float) -> dict:
    props = {k: v for k, v in row.items() if k not in ("geometry", "total", "now")}
    props.update(reported_at=iso(row["reported_at"], zone), deadline=iso(row["deadline"], zone),
                 due=stock.mark(row["status"], row["deadline"], row["now"], soon_hours))
    return {"type": "Feature", "id": row["id"], "properties": props,
            "geometry": json.loads(row["geometry"]) if row["geometry"] else None}
