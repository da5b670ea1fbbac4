"""What the CLI prints: progress bars and tables (rich), kept apart from the commands.

Plumbing like the rest of ``onemap``: the bars count what a caller's work reports, and the
work itself (a load, an export, the demo city) is handed in by the CLI or by ``democity``.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from onemap.database import libpq_url


def console(stderr: bool = False) -> Console:
    """Where the CLI prints: data (file names, rejected values, reasons) is printed
    literally, never read as rich markup or emoji codes (``[/x]`` in a value would crash)."""
    return Console(stderr=stderr, markup=False, highlight=False, emoji=False)


def _text(template: str) -> TextColumn:
    """A progress column whose text (a file name, say) is printed literally."""
    return TextColumn(template, markup=False)


@contextmanager
def file_counter(kind: str, paths: list[Path], count_hint: Callable[[Path], int]):
    """A bar per file on standard error, sized by ``count_hint`` (a guess; none when it
    fails): yields ``advance(rows, path)``."""
    columns = [_text("{task.description}"), BarColumn(), _text("{task.completed:,} rows"),
               TimeElapsedColumn()]
    with _progress(columns) as bar:
        tasks = {str(p): bar.add_task(f"{kind} {p.name}", total=_safe_count(count_hint, p))
                 for p in paths}
        yield lambda n, p: bar.advance(tasks[str(p)], n)


def _progress(columns) -> Progress:
    """A transient progress display on standard error, silent when that is not a terminal
    (so an error message is the first thing a script reads)."""
    err = console(stderr=True)
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


@contextmanager
def step_counter(verb: str):
    """A row counter per named step on standard error: yields ``tick(step, rows)``."""
    columns = [_text("{task.description}"), _text("{task.completed:,} rows"),
               TimeElapsedColumn()]
    with _progress(columns) as bar:
        tasks: dict[str, int] = {}

        def tick(step: str, n: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(f"{verb} {step}", total=None)
            bar.advance(tasks[step], n)

        yield tick


def demo_users(url: str, settings) -> None:
    """A demo needs someone to sign in as: with no users yet, an admin with a random
    password and a kiosk for the big screen, written to HOME/demo-users.txt (mode 0600)."""
    import os
    import secrets

    from onemap.accounts import add_user, list_users
    from onemap.database import make_engine

    engine = make_engine(url)
    notes = Path(settings.home) / "demo-users.txt"
    if not list_users(engine):
        password = secrets.token_urlsafe(9)
        add_user(engine, "admin", "admin", password=password)
        token = add_user(engine, "wall", "kiosk")
        base = settings.base_url
        fd = os.open(notes, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, (f"sign in at {base}/login as admin, password {password}\n"
                      f"big screen (kiosk 'wall'): {base}/bigscreen?kiosk={token}\n").encode())
        os.close(fd)
    engine.dispose()
    if notes.exists():
        print(notes.read_text().strip())  # plain: a console would wrap the long kiosk link
    else:
        console().print("users exist already: `onemap user list`, `onemap user add`")


def _safe_count(count_hint, path: Path) -> int | None:
    try:
        return count_hint(path)
    except Exception:  # a count is only a nicety for the bar; the load reports real errors
        return None


def print_load_report(report) -> None:
    out = console()
    table = Table(title=f"{report.kind} batch {report.batch_id or '-'}: {report.status}")
    for name in ("read", "loaded", "inserted", "updated", "unchanged", "rejected"):
        table.add_column(name, justify="right")
    table.add_row(*(f"{getattr(report, n):,}" for n in
                    ("read", "loaded", "inserted", "updated", "unchanged", "rejected")))
    out.print(table)
    if report.by_reason:
        reasons = Table(title="rejected by reason")
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        for reason, n in report.by_reason.items():
            reasons.add_row(reason, f"{n:,}")
        out.print(reasons)
    if report.removed:
        out.print(f"removed {report.removed:,} rows that an earlier load of the same file "
                  "held and this one does not")
    if report.repaired:
        out.print(f"repaired invalid geometry (make_valid) in rows: {report.repaired[:20]}")
    for flaw, rows in (report.flaws or {}).items():
        if rows:
            total = sum(r["area_m2"] for r in rows)
            out.print(f"{flaw.replace('_', ' ')}: {len(rows)} ({total:,.0f} m²), "
                          f"largest: {json.dumps(rows[:3], ensure_ascii=False)}")
    out.print(f"{report.seconds:.1f} s")


def print_batches(url: str, limit: int, zone: str) -> None:
    """The newest batches, a killed load's as interrupted, start times in ``zone``."""
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT id, kind, state, read_count, loaded_count, updated_count, rejected_count, "
            "to_char(started_at AT TIME ZONE %s, 'YYYY-MM-DD HH24:MI'), "
            "round(extract(epoch FROM finished_at - started_at)::numeric, 1), source, message "
            "FROM load_batch_state ORDER BY id DESC LIMIT %s", (zone, limit)).fetchall()
    table = Table(title=f"load batches (times in {zone})")
    for name in ("id", "kind", "status", "read", "loaded", "updated", "rejected", "started",
                 "s"):
        table.add_column(name, no_wrap=True)
    table.add_column("source / message", overflow="fold")
    for row in rows:
        *head, source, message = ("" if v is None else str(v) for v in row)
        table.add_row(*head, f"{source}\n{message}" if message else source)
    console().print(table)


def print_rejects(url: str, batch: int, as_csv: bool) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT source_file, row_number, field, reason, raw FROM rejected_row "
            "WHERE batch_id = %s ORDER BY source_file, row_number", (batch,)).fetchall()
    header = ("file", "row", "field", "reason", "raw")
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        for row in rows:
            writer.writerow([*row[:4], json.dumps(row[4], ensure_ascii=False)])
        return
    table = Table(title=f"batch {batch}: {len(rows)} rejected rows")
    for name in header:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(str(v) for v in row[:4]), json.dumps(row[4], ensure_ascii=False)[:200])
    console().print(table)
