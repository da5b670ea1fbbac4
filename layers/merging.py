"""并案: cases that report one event, proposed as one, and a person's decision on them.

A pair of cases is proposed (``RULE``) when both have a point, lie within ``metres`` of each
other, were reported within ``hours`` of each other, share their category (levels 1–3), and
say alike where and what: the addresses' similarity (rapidfuzz's ``ratio``, 0–100) at least
``place_similarity`` — the descriptions' when either has no address — and the descriptions'
at least ``text_similarity``. The channels may differ or not: an event reported by app and
by phone is the common case. The pairs come from one set-based query in PostGIS
(``CANDIDATES``: the neighbours within the time window and the category, then ST_DWithin on
the points); the texts are compared on those candidates only. Proposed pairs join into
clusters (an event reported three times is one cluster of three); the cluster's event is its
first report. A period longer than ``LONGEST`` (or open) is looked in over its last
``LONGEST`` only, and the answer says so.

A person confirms a cluster (one event: counted once, as its first report) or rejects it
(not one event: its cases are not proposed together again). A decision is a row of
``case_merge`` with who, as what role, when and a note; nothing is changed or deleted, and
every decision and every refusal is written to the audit log. Only roles that act
(``Principal.can_act``) decide, on cases inside their own area, and a case is in at most
one confirmed merge. A case already in a confirmed merge is not proposed again (a later
report of a confirmed event is not added to it yet).

The case count with or without merged duplicates (``counts``): every case of the scope and
period, and the same leaving out the cases a confirmed merge counts in its first report's
stead.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from math import cos, radians

from rapidfuzz import fuzz
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from layers.access import scope_for
from layers.cases import raw_where
from layers.errors import BadParameter, Conflict, Forbidden
from layers.filters import Filters
from layers.scope import Scope
from layers.sql import run
from layers.times import iso
from onemap.accounts import audit
from onemap.principal import Principal

DECISIONS = ("confirmed", "rejected")
MAX_CASES = 50          # cases in one decision
# The longest period looked in at once: each case of it looks up its neighbours, so a
# longer one (the M city's 24 months) takes minutes; a longer or open period is cut to its
# last LONGEST (the answer says so). The counts cover the whole period.
LONGEST = timedelta(days=92)
LISTED = 50             # clusters and decisions listed, newest first
METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class Rule:
    """When two cases are proposed as one event (the module's docstring)."""

    metres: float = 100.0
    hours: float = 48.0
    place_similarity: float = 90.0
    text_similarity: float = 65.0


RULE = Rule()

# The candidates: each pair once (the earlier report first), both cases inside the filters,
# of the same category, within the time window, their boxes of ``:degrees`` overlapping —
# which the planner finds through the points' spatial index or through the category and
# time index, whichever it expects narrower (at S and M the second: a point has neighbours
# of every day, a day few of the same category) — then within ``:metres`` on the sphere
# (ST_DWithin); pairs decided together before, and cases in a confirmed merge, left out.
# (A case without a second-level category is never proposed: the index needs the equality.)
CANDIDATES = """
SELECT a.id AS a, b.id AS b,
       ST_Distance(a.geom::geography, b.geom::geography) AS metres,
       extract(epoch FROM b.reported_at - a.reported_at) / 3600 AS hours,
       a.address AS a_address, b.address AS b_address,
       coalesce(a.description, a.title, '') AS a_text,
       coalesce(b.description, b.title, '') AS b_text
FROM case_event a
JOIN case_event b
  ON b.category_1 = a.category_1
 AND b.category_2 = a.category_2
 AND b.reported_at >= a.reported_at
 AND b.reported_at <= a.reported_at + make_interval(secs => :hours * 3600)
 AND (b.reported_at, b.id) > (a.reported_at, a.id)
 AND b.category_3 IS NOT DISTINCT FROM a.category_3
 AND b.geom && ST_Expand(a.geom, :degrees)
WHERE a.geom IS NOT NULL AND {where_a} AND {where_b}
  AND ST_DWithin(a.geom::geography, b.geom::geography, :metres)
  AND NOT EXISTS (SELECT 1 FROM case_merge_member m
                  WHERE m.case_id IN (a.id, b.id) AND m.confirmed)
  AND NOT EXISTS (SELECT 1 FROM case_merge_member x JOIN case_merge_member y
                  ON y.merge_id = x.merge_id WHERE x.case_id = a.id AND y.case_id = b.id)
"""
CASE_COLUMNS = ("c.id, c.channel, c.reported_at, c.category_1, c.category_2, c.category_3, "
                "c.title, c.address, c.status, c.handling_unit, c.grid_code, c.street_code, "
                "ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat")
# A case a confirmed merge counts in its first report's stead.
DUPLICATE = ("EXISTS (SELECT 1 FROM case_merge_member m "
             "WHERE m.case_id = {a}id AND m.duplicate)")


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    metres: float
    hours: float
    place_similarity: float
    text_similarity: float


def similarity(a_address: str | None, b_address: str | None, a_text: str,
               b_text: str) -> tuple[float, float]:
    """How alike two cases say where (the addresses, else the descriptions) and what (the
    descriptions), each 0–100."""
    text = fuzz.ratio(a_text, b_text)
    place = fuzz.ratio(a_address, b_address) if a_address and b_address else text
    return round(place, 1), round(text, 1)


def pairs(conn: Connection, scope: Scope, filters: Filters, rule: Rule = RULE) -> list[Pair]:
    """Every pair of the scope's cases under ``filters`` that ``rule`` proposes as one."""
    where_a, where_b = raw_where(filters, scope, "a"), raw_where(filters, scope, "b")
    params = {**where_a.params, "metres": rule.metres, "hours": rule.hours,
              "degrees": _degrees(rule.metres, scope)}
    found = []
    for row in run(conn, CANDIDATES.format(where_a=where_a.sql, where_b=where_b.sql), params):
        place, text = similarity(row.a_address, row.b_address, row.a_text, row.b_text)
        if place >= rule.place_similarity and text >= rule.text_similarity:
            found.append(Pair(row.a, row.b, round(float(row.metres), 1),
                              round(float(row.hours), 2), place, text))
    return found


def _degrees(metres: float, scope: Scope) -> float:
    """A box half-width in degrees that holds every point within ``metres``: a degree of
    longitude is shortest at the scope's latitude farthest from the equator."""
    lat = max(abs(scope.bbox[1]), abs(scope.bbox[3])) if scope.bbox else 60.0
    return metres / (METRES_PER_DEGREE * cos(radians(min(lat, 85.0))))


def clusters(found: list[Pair]) -> list[set[str]]:
    """The pairs joined into clusters (connected components)."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in found:
        parent[root(p.b)] = root(p.a)
    groups: dict[str, set[str]] = defaultdict(set)
    for x in list(parent):
        groups[root(x)].add(x)
    return list(groups.values())


def suggestions(conn: Connection, scope: Scope, filters: Filters, zone: str,
                rule: Rule = RULE, limit: int = LISTED,
                longest: timedelta | None = LONGEST) -> dict:
    """The proposed clusters of the scope under ``filters``, newest last report first (the
    first ``limit``), each with its cases and pairs; how many there are; the rule; the
    period looked in: the filters', or its last ``longest`` when it is longer or open
    (``cut``; None: the whole period, however long)."""
    filters, cut = _recent(conn, filters, longest)
    found = pairs(conn, scope, filters, rule)
    groups = clusters(found)
    cases = {r["id"]: r for r in _cases(conn, sorted({i for g in groups for i in g}), zone)}
    group_of = {i: n for n, g in enumerate(groups) for i in g}
    by_group: dict[int, list[dict]] = defaultdict(list)
    for p in found:
        by_group[group_of[p.a]].append(asdict(p))
    listed = []
    for n, group in enumerate(groups):
        members = sorted((cases[i] for i in group), key=lambda c: (c["reported_at"], c["id"]))
        listed.append({"event_id": members[0]["id"], "cases": members,
                       "channels": sorted({c["channel"] for c in members}),
                       "pairs": by_group[n]})
    listed.sort(key=lambda c: (c["cases"][-1]["reported_at"], c["event_id"]), reverse=True)
    return {"rule": asdict(rule), "total": len(listed), "clusters": listed[:limit],
            "period": {"start": iso(filters.start, zone), "end": iso(filters.end, zone)},
            "cut": cut}


def _recent(conn: Connection, filters: Filters, longest: timedelta | None
            ) -> tuple[Filters, bool]:
    """``filters`` with at most the last ``longest`` of their period (to now when open),
    and whether it was cut."""
    if longest is None:
        return filters, False
    end = filters.end or run(conn, "SELECT now()").scalar()
    if filters.start is not None and end - filters.start <= longest:
        return filters, False
    return replace(filters, start=end - longest, end=end), True


def cluster_of(conn: Connection, scope: Scope, filters: Filters, zone: str, event_id: str,
               rule: Rule = RULE) -> dict | None:
    """The proposed cluster whose first report is ``event_id`` (None: none is)."""
    for cluster in suggestions(conn, scope, filters, zone, rule, limit=10**9)["clusters"]:
        if cluster["event_id"] == event_id:
            return cluster
    return None


def _cases(conn: Connection, ids: list[str], zone: str, scope: Scope | None = None
           ) -> list[dict]:
    """The cases ``ids`` (those inside ``scope`` when given), first report first."""
    inside = f" AND c.{scope.column} = :scope" if scope and scope.column else ""
    rows = run(conn, f"SELECT {CASE_COLUMNS} FROM case_event c WHERE c.id = ANY(:ids)"
                     f"{inside} ORDER BY c.reported_at, c.id",
               {"ids": ids, "scope": scope.code if scope else None}).mappings()
    return [{**r, "reported_at": iso(r["reported_at"], zone)} for r in rows]


def decided(conn: Connection, scope: Scope, event_id: str, zone: str) -> dict | None:
    """The newest decision on the event ``event_id`` that touches the scope, with its
    cases inside the scope (None: no decision)."""
    found = [d for d in decisions(conn, scope, zone, limit=LISTED)
             if d["event_id"] == event_id]
    if not found:
        return None
    return {**found[0], "cases": _cases(conn, found[0]["case_ids"], zone, scope)}


def outlines(conn: Connection, grid_codes: list[str]) -> dict:
    """The grids ``grid_codes`` as a GeoJSON FeatureCollection (simplified to ~1 m): where
    a cluster lies."""
    rows = run(conn, "SELECT code, name, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, 1e-5), "
                     "6) AS g FROM admin_unit WHERE level = 4 AND code = ANY(:codes)",
               {"codes": grid_codes})
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": r.code, "properties": {"code": r.code, "name": r.name},
         "geometry": json.loads(r.g)} for r in rows]}


def counts(conn: Connection, scope: Scope, filters: Filters) -> dict:
    """The scope's cases under ``filters``: all of them, and without merged duplicates."""
    where = raw_where(filters, scope)
    row = run(conn, f"SELECT count(*) AS cases, count(*) FILTER (WHERE {DUPLICATE.format(a='c.')})"
                    f" AS duplicates FROM case_event c WHERE {where.sql}",
              where.params).mappings().one()
    return {"cases": int(row["cases"]), "duplicates": int(row["duplicates"]),
            "events": int(row["cases"]) - int(row["duplicates"])}


def decisions(conn: Connection, scope: Scope, zone: str, limit: int = LISTED) -> list[dict]:
    """The newest decisions on cases of the scope."""
    inside = (f"AND EXISTS (SELECT 1 FROM case_event c WHERE c.id = ANY(d.case_ids) "
              f"AND c.{scope.column} = :scope)" if scope.column else "")
    rows = run(conn, f"SELECT d.id, d.decision, d.event_id, d.case_ids, d.decided_by, d.role, "
                     f"d.decided_at, d.note FROM case_merge d WHERE TRUE {inside} "
                     f"ORDER BY d.decided_at DESC, d.id DESC LIMIT :limit",
               {"scope": scope.code, "limit": limit}).mappings()
    return [{**r, "case_ids": list(r["case_ids"]), "decided_at": iso(r["decided_at"], zone)}
            for r in rows]


def decide(writer: Engine, who: Principal, case_ids: list[str], decision: str,
           note: str = "", zone: str = "UTC") -> dict:
    """Record ``who``'s ``decision`` on ``case_ids`` (on the primary database ``writer``) and
    audit it; a refusal (:class:`Forbidden`, :class:`Conflict`, :class:`BadParameter`) is
    audited too, then raised."""
    try:
        done = _decide(writer, who, case_ids, decision, note, zone)
    except (Forbidden, Conflict, BadParameter) as exc:
        named = ",".join(map(str, case_ids)) if isinstance(case_ids, list) else str(case_ids)
        audit(writer, who, "merge", False, named[:200], decision=decision, reason=str(exc))
        raise
    audit(writer, who, "merge", True, done["event_id"], decision=decision,
          cases=done["case_ids"], merge=done["id"])
    return done


def _decide(writer: Engine, who: Principal, case_ids, decision: str, note: str,
            zone: str) -> dict:
    ids = _checked(case_ids, decision, note)
    if not who.can_act:
        raise Forbidden(f"'{who.name}' ({who.role}) may not decide on merges", "merge",
                        ",".join(ids))
    with writer.begin() as conn:
        scope = scope_for(conn, who, None)
        inside = run(conn, "SELECT c.id FROM case_event c WHERE c.id = ANY(:ids)"
                           + (f" AND c.{scope.column} = :scope" if scope.column else "")
                           + " ORDER BY c.reported_at, c.id",
                     {"ids": ids, "scope": scope.code}).scalars().all()
        missing = sorted(set(ids) - set(inside))
        if missing:
            # Unknown and foreign look the same to someone with an area.
            raise Forbidden(f"case(s) {', '.join(missing[:5])} not found in your area",
                            "merge", ",".join(ids))
        confirmed = decision == "confirmed"
        try:
            row = run(conn, "INSERT INTO case_merge (decision, event_id, case_ids, decided_by, "
                            "role, scope_code, note) VALUES (:d, :e, :ids, :who, :role, "
                            ":scope, :note) RETURNING id, decided_at",
                      {"d": decision, "e": inside[0], "ids": sorted(ids), "who": who.name,
                       "role": who.role, "scope": who.scope, "note": note}).one()
            run(conn, "INSERT INTO case_merge_member (merge_id, case_id, confirmed, duplicate) "
                      "SELECT :m, i, :c, :c AND i <> :e FROM unnest(CAST(:ids AS text[])) i",
                {"m": row.id, "c": confirmed, "e": inside[0], "ids": ids})
        except IntegrityError as exc:
            raise Conflict("a case of these is in a confirmed merge already") from exc
    return {"id": row.id, "decision": decision, "event_id": inside[0], "case_ids": sorted(ids),
            "decided_by": who.name, "role": who.role, "decided_at": iso(row.decided_at, zone),
            "note": note}


def _checked(case_ids, decision: str, note: str) -> list[str]:
    if decision not in DECISIONS:
        raise BadParameter("decision", decision, f"must be one of {', '.join(DECISIONS)}")
    if not isinstance(case_ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 100
                                                 for i in case_ids):
        raise BadParameter("cases", str(case_ids)[:60], "must be a list of case ids")
    ids = sorted(set(case_ids))
    if not 2 <= len(ids) <= MAX_CASES:
        raise BadParameter("cases", len(ids), f"must name 2 to {MAX_CASES} different cases")
    if not isinstance(note, str) or len(note) > 500:
        raise BadParameter("note", str(note)[:40], "must be text of at most 500 characters")
    return ids
