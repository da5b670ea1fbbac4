"""The case feed: events a 12345 / 民生诉求 system posts to ``POST /api/cases``, written as
cases by the loader itself.

A request is one load batch (``load_batch``, source ``api:<feed user>``), written through
:func:`etl.load.run_load` like ``onemap load cases``: the same transform checks and types
each event (:func:`etl.transform.transform`), the same SQL places it and rejects what cannot
be placed (:func:`etl.places.place`), the same upsert writes it and the same step keeps
the aggregates true (``etl.rollup``: by delta for a request of up to 5,000 events, by
recounting the touched days for a larger one); rejected events are kept in
``rejected_row`` under the batch with their field and reason. What is the feed's own:

- the envelope (:func:`envelope`): a JSON object of the fields ``onemap.case_feed.FIELDS``
  declares, each of its JSON type, with an id and at least one stage time;
- the merge (:data:`MERGE`): an event of a case that exists is merged into it before it is
  placed — a field the event does not carry keeps the case's value, and an event older than
  the case's newest stage only fills what the case lacks (``onemap.case_feed`` says why);
- the feed user's area: a feed limited to a unit (``--scope``) may write only cases placed
  within it; any other is rejected (field ``place``).

``python -m etl.feed`` writes the published schema (docs/case-event.schema.json) again.
"""

from __future__ import annotations

import json
import math
import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg

from etl import staging
from etl.grids import GridCache
from etl.load import LoadReport, LoadRequest, run_load
from etl.mapping import Mapping
from etl.readers import Chunk
from etl.targets import TARGETS
from etl.transform import Context, transform
from onemap.case_feed import (
    EVENT_SCHEMA,
    EVENT_TIMES,
    FIELDS,
    FeedAnswer,
    RowResult,
)
from onemap.database import libpq_url
from onemap.principal import Principal

TARGET = TARGETS["cases"]
SOURCE = "api"        # what stands for the file in a staged row
PLACE_FIELDS = ("lon", "lat", "admin_code")
# The case's fields an event sets (the rest are derived, or not the feed's to give).
MERGED = [f.name for f in TARGET.fields if f.name not in ("id", "on_time", "properties")]
REQUIRED = [f.name for f in TARGET.fields if f.required and f.name != "id"]


def mapping(timezone: str) -> Mapping:
    """The cases mapping an event's row is read with: each field from the column of its own
    name, the point from lon/lat (WGS84), else the unit of admin_code; times without an
    offset in ``timezone``. ``on_time`` is derived from closed_at and the deadline."""
    names = [name for name in FIELDS if name not in PLACE_FIELDS]
    return Mapping(kind="cases", timezone=timezone, crs="wgs84",
                   fields={name: {"column": name} for name in names},
                   geometry={"x": "lon", "y": "lat"}, place=[{"code": "admin_code"}])


# -- the envelope ------------------------------------------------------------------------------
def envelope(event) -> tuple[dict | None, str | None, str | None]:
    """``event`` as a source row of text values (with ``given``: the fields it carries), or
    (None, field, reason)."""
    if not isinstance(event, dict):
        return None, None, f"is not a JSON object but {_json_type(event)}"
    for name, value in event.items():
        if name not in FIELDS:
            return None, name, "is not a field of a case event (docs/case-event.schema.json)"
        wanted = FIELDS[name][0]
        if value is not None and not _is(value, wanted):
            return None, name, f"{_shown(value)} is {_json_type(value)}, not {wanted}"
    if not event.get("id"):
        return None, "id", "is missing: every event names its case"
    told = {name for name, value in event.items() if value is not None}
    if not told & set(EVENT_TIMES):
        return None, None, ("carries no stage time: an event says when it happened "
                            f"({', '.join(EVENT_TIMES)})")
    if "lon" in told and "lat" not in told or "lat" in told and "lon" not in told:
        return None, "lon" if "lat" in told else "lat", "only one of lon and lat is given"
    row = {name: None for name in FIELDS}
    for name in told:
        value = event[name]
        row[name] = repr(value) if isinstance(value, float) else str(value)
    if "closed_at" in told and "status" not in told:
        row["status"], told = "closed", told | {"status"}   # 办结 closes the case
    given = told - set(PLACE_FIELDS)
    if told & set(PLACE_FIELDS):
        given.add("place")
    row["given"] = "{" + ",".join(sorted(given)) + "}"
    return row, None, None


def _is(value, wanted: str) -> bool:
    if wanted == "string":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return wanted == "number" or math.isfinite(value)  # an integer's fraction: the loader's


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", dict: "object", list: "array", type(None): "null"}.get(
        type(value), type(value).__name__)


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


# -- the merge ---------------------------------------------------------------------------------
def _told(name: str) -> str:
    return f"'{name}' = ANY (s.given)"


def _newest(row: str, told_only: bool) -> str:
    """The newest stage time of the staged event ``s`` (only the times it carries) or of
    the case ``c``."""
    return "greatest(" + ", ".join(f"CASE WHEN {_told(t)} THEN s.{t} END" if told_only
                                   else f"{row}.{t}" for t in EVENT_TIMES) + ")"


def _merge_sql() -> str:
    late = f"({_newest('s', True)} < {_newest('c', False)})"
    sets = [f"{f} = CASE WHEN {_told(f)} AND (NOT {late} OR c.{f} IS NULL) "
            f"THEN s.{f} ELSE c.{f} END" for f in MERGED]
    here = f"{_told('place')} AND NOT {late}"
    sets += [f"{c} = CASE WHEN {here} THEN s.{c} ELSE c.{c} END"
             for c in ("geom", "h3", "grid_code")]
    sets.append(f"place_1 = CASE WHEN {here} THEN s.place_1 ELSE COALESCE(c.grid_code, "
                f"c.community_code, c.street_code, c.district_code) END")
    sets.append("properties = c.properties")
    return f"UPDATE stage s SET {', '.join(sets)} FROM case_event c WHERE c.id = s.id"


# An event of a case that exists, merged into it: a field it does not carry keeps the case's
# value; an event older than the case's newest stage time fills only what the case lacks
# (its place too: a case keeps where it is). ``given`` holds the fields the event carries.
MERGE = _merge_sql()
EXISTING = "SELECT id, {} FROM case_event WHERE id = ANY(%s)".format(
    ", ".join(REQUIRED))


@dataclass
class _Staged:
    """What the stager learnt that the answer needs."""

    events: Sequence
    rows: dict[int, str] = field(default_factory=dict)      # row number → case id
    refused: dict[int, tuple[str | None, str]] = field(default_factory=dict)
    existed: set[str] = field(default_factory=set)


def _stager(staged: _Staged):
    def stage(conn: psycopg.Connection, ctx: Context, report: LoadReport) -> None:
        rows, numbers = [], []
        rejects = []
        for number, event in enumerate(staged.events, start=1):
            row, name, reason = envelope(event)
            if isinstance(event, dict) and isinstance(event.get("id"), str):
                staged.rows[number] = event["id"]
            if row is None:
                staged.refused[number] = (name, reason)
                rejects.append((number, name, reason, _raw(event)))
            else:
                rows.append(row)
                numbers.append(number)
        report.read = len(staged.events)
        _fill_required(conn, rows, staged)
        conn.execute("ALTER TABLE stage ADD COLUMN given text[] NOT NULL DEFAULT '{}'")
        if rows:
            frame = pd.DataFrame(rows, dtype=object)
            given = frame.pop("given")
            result = transform(Chunk(Path(SOURCE), 1, frame, None, None), ctx)
            at = pd.Series(numbers)
            out = result.rows
            out["given"] = given.iloc[out["row_number"] - 1].to_numpy()
            out["row_number"] = at.iloc[out["row_number"] - 1].to_numpy()
            out.insert(1, "source_file", SOURCE)
            out.insert(2, "file_no", 0)
            staging.copy_frame(conn, "stage", out)
            for row_number, name, reason in zip(result.rejects["row_number"],
                                                result.rejects["field"],
                                                result.rejects["reason"], strict=True):
                number = int(at.iloc[row_number - 1])
                rejects.append((number, name, reason, _raw(staged.events[number - 1])))
        if rejects:
            staging.copy_frame(conn, "stage_reject", pd.DataFrame(
                [(n, SOURCE, f, r, raw) for n, f, r, raw in rejects],
                columns=["row_number", "source_file", "field", "reason", "raw"]))
        conn.execute(MERGE)
    return stage


def _fill_required(conn: psycopg.Connection, rows: list[dict], staged: _Staged) -> None:
    """An event of a case that exists need not repeat what a new case must carry: its
    required fields are the case's (for the checks; the merge decides what is written)."""
    ids = list({row["id"] for row in rows})
    if not ids:
        return
    with conn.cursor() as cur:
        found = {r[0]: r[1:] for r in cur.execute(EXISTING, (ids,))}
    staged.existed = set(found)
    for row in rows:
        case = found.get(row["id"])
        if case is None:
            continue
        for name, value in zip(REQUIRED, case, strict=True):
            if row[name] is None:
                row[name] = value.isoformat() if hasattr(value, "isoformat") else str(value)


def _raw(event) -> str:
    return json.dumps(event, ensure_ascii=False, default=str).replace("\\u0000", "\\\\x00")


def _scope_check(scope: str) -> tuple[str, str, str]:
    """A reject rule: the case is placed outside ``scope`` (an admin code)."""
    code = "'" + scope.replace("'", "''").replace("%", "%%").replace("{", "{{").replace(
        "}", "}}") + "'"
    return ("place",
            f"'placed in ' || COALESCE(p.grid_code, p.community_code, p.street_code, "
            f"p.district_code) || ', outside this feed''s area ' || {code}",
            f"p.district_code IS NOT NULL AND NOT COALESCE({code} IN (p.grid_code, "
            f"p.community_code, p.street_code, p.district_code), false)")


# -- writing -----------------------------------------------------------------------------------
KEPT_CONNECTIONS = 4


@dataclass
class Connections:
    """Connections to ``url`` kept open between requests. A new one costs a backend, its
    authentication and PostGIS loaded into it, and cold catalog caches for every statement:
    more, on this machine, than a 100-event batch's own writes. Safe to share between
    threads: each request has a connection of its own while it runs."""

    url: str
    idle: queue.LifoQueue = field(
        default_factory=lambda: queue.LifoQueue(maxsize=KEPT_CONNECTIONS))

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """An open connection, not in a transaction; kept for the next request when the
        block ends normally, closed when it raised."""
        conn = self._idle() or psycopg.connect(libpq_url(self.url))
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        self._keep(conn)

    def _keep(self, conn: psycopg.Connection) -> None:
        """``conn`` back among the idle ones, its batch's hold let go (``etl.load``:
        load_batch_hold; over once the batch committed); closed when that fails (the
        request has its answer already) or enough are kept."""
        try:
            conn.execute("SELECT pg_advisory_unlock_all()")
            conn.commit()
            self.idle.put_nowait(conn)
        except (psycopg.Error, queue.Full):
            conn.close()

    def _idle(self) -> psycopg.Connection | None:
        """A kept connection that still answers (the server may have restarted), or None."""
        while True:
            try:
                conn = self.idle.get_nowait()
            except queue.Empty:
                return None
            try:
                conn.execute("SELECT 1")
                conn.rollback()
                return conn
            except psycopg.Error:
                conn.close()


@dataclass
class CaseFeed:
    """Writes the events of one request as one batch on the primary database ``db_url``;
    times without an offset are in ``timezone``, the aggregates' days in ``local_zone``."""

    db_url: str
    timezone: str = "Asia/Shanghai"
    local_zone: str = "Asia/Shanghai"
    grids: GridCache = field(default_factory=GridCache)  # read again when they change
    connections: Connections | None = None  # of db_url (made with the feed)

    def __post_init__(self) -> None:
        self.connections = self.connections or Connections(self.db_url)

    def __call__(self, events: Sequence, who: Principal) -> FeedAnswer:
        staged = _Staged(events)
        request = LoadRequest(
            "cases", [], mapping(self.timezone), "wgs84", None, self.timezone,
            self.local_zone, stager=_stager(staged), origin=f"api:{who.name}",
            records=lambda numbers: [_raw(events[n - 1]) for n in numbers],
            checks=(_scope_check(who.scope),) if who.scope else (), grids=self.grids)
        with self.connections.connection() as conn:  # the load's and the answer's
            report = run_load(conn, request)
            return _answer(conn, report, staged)


def _answer(conn: psycopg.Connection, report: LoadReport, staged: _Staged) -> FeedAnswer:
    """Each event's result, from what the batch wrote and rejected."""
    refused = {n: (f, r) for n, f, r in conn.execute(
        "SELECT row_number, field, reason FROM rejected_row WHERE batch_id = %s",
        (report.batch_id,))}
    ids = [i for n, i in staged.rows.items() if n not in refused]
    changed = {r[0] for r in conn.execute(
        "SELECT id FROM case_event WHERE batch_id = %s AND id = ANY(%s)",
        (report.batch_id, ids))}
    answer = FeedAnswer(report.batch_id)
    for number in range(1, len(staged.events) + 1):
        case = staged.rows.get(number)
        if number in refused:
            name, reason = refused[number]
            answer.rows.append(RowResult(number - 1, case, "rejected", name, reason))
        elif case in changed:
            result = "updated" if case in staged.existed else "inserted"
            answer.rows.append(RowResult(number - 1, case, result))
        else:
            answer.rows.append(RowResult(number - 1, case, "unchanged"))
    return answer


SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "case-event.schema.json"


def schema_text() -> str:
    """:data:`onemap.case_feed.EVENT_SCHEMA` as docs/case-event.schema.json holds it."""
    return json.dumps(EVENT_SCHEMA, ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":  # python -m etl.feed: write the published schema again
    SCHEMA_DOC.write_text(schema_text(), encoding="utf-8")
    print(SCHEMA_DOC)
