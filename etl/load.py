"""A load: one batch, one transaction. Read in chunks, check, stage with COPY, place and
upsert with set-based SQL, keep every rejected row with its reason; commit whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from etl import admin, places, rollup, staging
from etl.errors import LoadError
from etl.grids import GridCache, GridIndex
from etl.mapping import Mapping, check_against_columns, load_mapping
from etl.readers import Chunk, read_chunks, sniff_columns
from etl.replace import remove_absent
from etl.transform import Context, Result, raw_records, transform
from onemap.database import libpq_url
from onemap.errors import OnemapError

Progress = Callable[[int, Path], None]
# Fills the staging tables of a load whose rows come from no file (see LoadRequest.stager).
Stager = Callable[[psycopg.Connection, Context, "LoadReport"], None]
# Case writes take their turn (a transaction-level lock in a key space of its own, taken
# once the batch is open): the aggregates of a day are rewritten by one batch at a time,
# and an event merged into its case (``etl.feed``) reads the case no other batch is writing.
CASE_WRITES = "SELECT pg_advisory_xact_lock(7302, 0)"


@dataclass
class LoadReport:
    """What a load did: the summary table of the CLI and the row of ``load_batch``."""

    kind: str
    sources: list[str]
    batch_id: int | None = None
    status: str = "running"
    read: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    removed: int = 0      # rows an earlier load of the same source held and this one does not
    by_reason: dict[str, int] = field(default_factory=dict)
    repaired: list[int] = field(default_factory=list)
    flaws: dict = field(default_factory=dict)
    seconds: float = 0.0
    # Seconds each step took: stage (read, check, COPY), place, write, aggregates, rejects.
    steps: dict[str, float] = field(default_factory=dict)
    message: str | None = None

    @contextmanager
    def step(self, name: str):
        """Time the block as step ``name`` (added to what the step took before)."""
        started = time.monotonic()
        try:
            yield
        finally:
            spent = self.steps.get(name, 0.0) + time.monotonic() - started
            self.steps[name] = round(spent, 3)

    @property
    def loaded(self) -> int:
        return self.read - self.rejected

    @property
    def unchanged(self) -> int:
        return self.loaded - self.inserted - self.updated


# Sorts and temp tables of a million rows stay in memory instead of spilling to disk.
SESSION = "SET TimeZone = 'UTC'; SET temp_buffers = '512MB'; SET work_mem = '256MB'"


@dataclass
class LoadRequest:
    kind: str
    paths: list[Path]
    mapping: Mapping
    crs: str | None = None
    level: int | None = None
    timezone: str = "Asia/Shanghai"      # of source timestamps written without one
    local_zone: str = "Asia/Shanghai"    # whose days the aggregates count in (settings)
    dry_run: bool = False
    chunk_rows: int = 100_000
    replace: bool = False                # rows earlier loads of these files held go
    # Rows that come from no file (the case feed, ``etl.feed``): ``stager`` fills the
    # staging tables in place of reading ``paths``, ``origin`` is what the batch's source
    # says, ``checks`` are reject rules of its own (``etl.places.place``), ``grids`` the
    # grids kept between its batches.
    stager: Stager | None = None
    records: Callable[[list[int]], list[str]] | None = None  # rows' source records (JSON)
    origin: str | None = None
    checks: tuple[tuple[str, str, str], ...] = ()
    grids: GridCache | None = None

    @property
    def source(self) -> str:
        """The files read, as ``load_batch.source`` records them."""
        return self.origin or ", ".join(str(p) for p in self.paths)


def load(url: str, kind: str, paths: list[str | Path], mapping_path: str | Path, *,
         crs: str | None = None, level: int | None = None, timezone: str = "Asia/Shanghai",
         dry_run: bool = False, progress: Progress | None = None,
         chunk_rows: int = 100_000, replace: bool = False) -> LoadReport:
    """Load ``paths`` as one batch; raise :class:`LoadError` (batch recorded) on failure.
    ``replace``: the rows earlier loads of the same files held and this one does not are
    deleted (point kinds; :mod:`etl.replace`)."""
    mapping = load_mapping(mapping_path, kind)
    request = LoadRequest(kind, [Path(p) for p in paths], mapping, crs, level or mapping.level,
                          mapping.timezone or timezone, timezone, dry_run, chunk_rows, replace)
    return run_load(url, request, progress)


def run_load(url: str | psycopg.Connection, request: LoadRequest,
             progress: Progress | None = None) -> LoadReport:
    """Load as ``request`` says, one batch; raise :class:`LoadError` (batch recorded) on
    failure. ``url`` may be an open connection (not in autocommit, no transaction begun):
    the load runs on it and leaves it open, so a caller that reads what the batch did
    afterwards needs no connection of its own (the case feed answers each request so)."""
    report = LoadReport(request.kind, [str(p) for p in request.paths] or [request.source])
    started = time.monotonic()
    with _connected(url) as conn:
        try:
            _check_request(request)
            _run(conn, request, report, progress or (lambda n, p: None))
        except Exception as exc:  # whatever went wrong, the batch is recorded as failed
            conn.rollback()
            report.status, report.message = "failed", _reason(exc)
            if not request.dry_run:
                _record_failure(conn, request, report)
            raise LoadError(f"{request.kind} load failed, nothing was changed: "
                            f"{report.message}") from exc
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def _connected(url: str | psycopg.Connection) -> Iterator[psycopg.Connection]:
    if isinstance(url, psycopg.Connection):
        yield url
        return
    with psycopg.connect(libpq_url(url)) as conn:
        yield conn


def _check_request(request: LoadRequest) -> None:
    if request.kind == "admin" and request.level not in (1, 2, 3, 4):
        raise LoadError("an admin load needs --level 1-4 (district, street, community, grid)")
    for path in request.paths:
        if not path.exists():
            raise LoadError(f"{path} does not exist")
        columns = sniff_columns(path, layer=request.mapping.layer,
                                encoding=request.mapping.encoding)
        check_against_columns(request.mapping, columns, path)


def _run(conn, request: LoadRequest, report: LoadReport, progress: Progress) -> None:
    conn.execute(SESSION)
    report.batch_id = _open_batch(conn, request)
    target = request.mapping.target
    if target.kind == "cases":
        conn.execute(CASE_WRITES)
    with report.step("stage"):
        staging.create(conn, target, len(request.mapping.place))
        points = target.geometry in ("required", "optional")
        grids = None if not points else (request.grids.read(conn) if request.grids is not None
                                          else GridIndex.read(conn))
        ctx = Context(request.mapping, _crs(request), request.timezone,
                      _bounds(conn, request), grids)
        if request.stager is not None:
            request.stager(conn, ctx, report)
        for file_no, path in enumerate(request.paths):
            _stage_file(conn, request, file_no, path, ctx, report, progress)
        # Temp tables have no statistics until analysed: without them, a million staged
        # rows are planned as a few hundred thousand and joined by sorts that spill to disk.
        conn.execute("ANALYZE stage")
    if target.kind == "admin":
        with report.step("write"):
            admin.place(conn, request.level)
            report.inserted, report.updated = admin.upsert(conn, request.level,
                                                           report.batch_id)
            report.flaws = admin.flaws(conn, request.level, report.batch_id)
    else:
        with report.step("place"):
            places.place(conn, target, request.mapping.place, request.checks)
        with report.step("aggregates"):
            by_delta = target.kind == "cases" and rollup.mark_touched(conn, request.local_zone)
        with report.step("write"):
            report.inserted, report.updated = places.upsert(conn, target, report.batch_id,
                                                            set(request.mapping.fields))
            if request.replace:
                report.removed = remove_absent(conn, target, report.batch_id, request.source,
                                               request.local_zone, places.staged_key(target),
                                               rollup.BEFORE_TABLE if by_delta else None)
        if target.kind == "cases":
            with report.step("aggregates"):
                rollup.update(conn, request.local_zone, report.batch_id,
                              report.inserted + report.updated + report.removed, by_delta)
    with report.step("rejects"):
        _keep_rejects(conn, request, report)
    _close_batch(conn, report, "dry-run" if request.dry_run else "committed")
    conn.rollback() if request.dry_run else conn.commit()


def _crs(request: LoadRequest) -> str | None:
    """The CRS given on the command line or in the mapping; else the file's own, else WGS84."""
    return request.crs or request.mapping.crs


def _bounds(conn, request: LoadRequest):
    """The district's extent, to catch swapped and far-away points (None before any load)."""
    if request.mapping.bounds or request.kind == "admin":
        return request.mapping.bounds
    row = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                       "(SELECT ST_Extent(geom) AS e FROM admin_unit WHERE level = 1) x").fetchone()
    return None if row[0] is None else tuple(row)


def _stage_file(conn, request, file_no: int, path: Path, ctx: Context, report: LoadReport,
                progress) -> None:
    for chunk, result in _transformed(_chunks(request, path), ctx):
        result.rows.insert(1, "source_file", str(path))
        result.rows.insert(2, "file_no", file_no)
        result.rejects.insert(1, "source_file", str(path))
        staging.copy_frame(conn, "stage", result.rows)
        staging.copy_frame(conn, "stage_reject", result.rejects)
        report.read += len(chunk.frame)
        report.repaired += result.repaired
        progress(len(chunk.frame), path)


def _transformed(chunks: Iterator[Chunk], ctx: Context) -> Iterator[tuple[Chunk, Result]]:
    """Each chunk with its transform, the next one read and transformed in a thread while
    the caller stages this one: the server's COPY and the client's parsing overlap."""
    def step():
        chunk = next(chunks, None)
        return None if chunk is None else (chunk, transform(chunk, ctx))

    with ThreadPoolExecutor(1, thread_name_prefix="transform") as pool:
        pending = pool.submit(step)
        while (ready := pending.result()) is not None:
            pending = pool.submit(step)
            yield ready


def _chunks(request: LoadRequest, path: Path):
    return read_chunks(path, request.chunk_rows, layer=request.mapping.layer,
                       encoding=request.mapping.encoding)


def _fill_raw(conn, request: LoadRequest) -> None:
    """Rows rejected by the set-based SQL get their source record: read those rows again
    (a second pass over a file only when the database rejected some of its rows)."""
    wanted = dict(conn.execute("SELECT source_file, array_agg(row_number) FROM stage_reject "
                               "WHERE raw IS NULL GROUP BY 1").fetchall())
    if request.records is not None:  # rows from no file: their records are the stager's
        for source, numbers in wanted.items():
            with conn.cursor() as cur:
                cur.executemany("UPDATE stage_reject SET raw = %s::jsonb WHERE source_file = "
                                "%s AND row_number = %s",
                                [(raw, source, n) for raw, n in
                                 zip(request.records(numbers), numbers, strict=True)])
        return
    for path in request.paths:
        rows = set(wanted.get(str(path), ()))
        for chunk in _chunks(request, path) if rows else ():
            numbers = np.arange(chunk.first_row, chunk.first_row + len(chunk.frame))
            mask = np.isin(numbers, list(rows))
            if mask.any():
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE stage_reject SET raw = %s::jsonb WHERE source_file = %s AND "
                        "row_number = %s", [(raw, str(path), int(n)) for raw, n in
                                            zip(raw_records(chunk, mask), numbers[mask],
                                                strict=True)])


def _open_batch(conn, request: LoadRequest) -> int:
    """The batch's row, committed at once as 'running' (a dry run's stays in its
    transaction): the load's session holds the row's lock until it ends, so a load that is
    killed shows as interrupted rather than vanishing. Earlier loads that ended so are
    recorded as interrupted here."""
    mapping = request.mapping.model_dump(mode="json", exclude={"path"})
    conn.execute("UPDATE load_batch SET status = 'interrupted', message = %s "
                 "WHERE status = 'running' AND NOT load_batch_alive(id)", (INTERRUPTED,))
    batch = conn.execute(
        "INSERT INTO load_batch (kind, source, file_hash, mapping) VALUES (%s, %s, %s, %s) "
        "RETURNING id",
        (request.kind, request.source, file_hash(request.paths),
         json.dumps(mapping, ensure_ascii=False)),
    ).fetchone()[0]
    if not request.dry_run:
        conn.execute("SELECT load_batch_hold(%s)", (batch,))
        conn.commit()
    return batch


INTERRUPTED = "the load ended before it finished (process killed or connection lost)"


def file_hash(paths: list[Path]) -> str:
    """sha256 over the bytes of the files (folders: every file in them, sorted)."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            with file.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
    return digest.hexdigest()


def _keep_rejects(conn, request: LoadRequest, report: LoadReport) -> None:
    _fill_raw(conn, request)
    conn.execute(
        "INSERT INTO rejected_row (batch_id, source_file, row_number, field, reason, raw) "
        "SELECT %s, source_file, row_number, field, reason, raw FROM stage_reject "
        "ORDER BY source_file, row_number", (report.batch_id,))
    rows = conn.execute("SELECT field, reason FROM stage_reject").fetchall()
    report.rejected = len(rows)
    report.by_reason = dict(Counter(_reason_kind(f, r) for f, r in rows).most_common())


def _reason_kind(field: str | None, reason: str) -> str:
    """Group reasons for the summary: drop the quoted values and coordinates that vary."""
    general = re.sub(r"'[^']*'|\([-\d., ]+\)|\d+", "…", reason)
    return f"{field}: {general}" if field else general


def _close_batch(conn, report: LoadReport, status: str) -> None:
    # The clock, not the transaction's start: case batches commit in the order they took
    # their turn (CASE_WRITES), so the newest committed batch's time (what the dashboard's
    # view cache is keyed by) moves on with every one of them.
    report.status = status
    conn.execute(
        "UPDATE load_batch SET finished_at = clock_timestamp(), read_count = %s, "
        "loaded_count = %s, updated_count = %s, rejected_count = %s, status = %s, report = %s "
        "WHERE id = %s",
        (report.read, report.loaded, report.updated, report.rejected, status,
         json.dumps(_report_json(report), ensure_ascii=False), report.batch_id),
    )


def _report_json(report: LoadReport) -> dict:
    return {"inserted": report.inserted, "updated": report.updated,
            "unchanged": report.unchanged, "removed": report.removed,
            "by_reason": report.by_reason,
            "repaired_rows": report.repaired, "flaws": report.flaws, "steps": report.steps}


def _record_failure(conn, request: LoadRequest, report: LoadReport) -> None:
    """The failed batch itself is remembered, in a transaction of its own: its row when it
    was opened already, else a new one."""
    with conn.transaction():
        if report.batch_id is not None:
            conn.execute("UPDATE load_batch SET status = 'failed', finished_at = now(), "
                         "read_count = %s, message = %s WHERE id = %s",
                         (report.read, report.message, report.batch_id))
            return
        conn.execute(
            "INSERT INTO load_batch (kind, source, file_hash, finished_at, read_count, status, "
            "message) VALUES (%s, %s, %s, now(), %s, 'failed', %s)",
            (request.kind, request.source, None, report.read, report.message),
        )


def _reason(exc: Exception) -> str:
    if isinstance(exc, psycopg.Error):
        diag = exc.diag.message_primary or str(exc)
        return f"database error: {diag}"
    if isinstance(exc, OnemapError):
        return str(exc)
    return f"unexpected error ({type(exc).__name__}): {exc}"
