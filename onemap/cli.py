"""The ``onemap`` command line. Commands parse options and call the packages' functions.

This is the composition root: the one module that may import every package (``etl``,
``democity``, ``layers``, ``web``, ``dashboard``), and it does so inside the command that
needs them. The import contract in ``pyproject.toml`` exempts it and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
from datetime import datetime
from pathlib import Path

import click

from onemap.cluster import LocalCluster
from onemap.database import database_url, read_url
from onemap.errors import OnemapError
from onemap.migrate import migrate
from onemap.principal import ROLE_HELP, ROLES, TOKEN_ROLES
from onemap.settings import Settings, get_settings


def friendly(func):
    """Turn domain errors into one clear line and exit status 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except OnemapError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)

    return wrapper


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """onemap (一张图): load a district into PostGIS and show it on one map."""
    ctx.obj = get_settings()


@main.group()
def db() -> None:
    """The database: the embedded local cluster, or the server named by DATABASE_URL."""


@db.command("up")
@click.pass_obj
@friendly
def db_up(settings: Settings) -> None:
    """Create (first time) and start the local cluster, then migrate the schema. A cluster
    made before its roles (every local connection trusted) is secured in place."""
    cluster = LocalCluster(settings)
    trusting = not settings.database_url and cluster.initialized and not cluster.secured
    if trusting:
        cluster.up()
    url = database_url(settings, start=True)
    applied = migrate(url)
    where = "DATABASE_URL" if settings.database_url else f"local cluster ({settings.cluster_dir})"
    if trusting:
        click.echo(f"local cluster secured: passwords in {cluster.credentials.path}; the app "
                   f"is role {settings.pg_user}, reads {settings.pg_read_user}, the superuser "
                   f"{settings.pg_admin_user}")
    if not settings.database_url:
        for name in cluster.hand_over_leftovers():
            click.secho(f"database {name} is busy and stays the superuser's (the app cannot "
                        "change it): run `onemap db up` again later", fg="yellow", err=True)
    click.echo(f"database ready: {where}; {len(applied)} migration(s) applied")
    click.echo(url)


@db.command("down")
@click.pass_obj
@friendly
def db_down(settings: Settings) -> None:
    """Stop the local cluster (data is kept)."""
    if settings.database_url:
        click.echo("DATABASE_URL is set: that server is not ours to stop")
        return
    LocalCluster(settings).down()
    click.echo("local cluster stopped")


@db.command("status")
@click.pass_obj
@friendly
def db_status(settings: Settings) -> None:
    """Say whether the database is up, and where."""
    if settings.database_url:
        click.echo(f"external server (DATABASE_URL): {settings.database_url}")
        return
    status = LocalCluster(settings).status()
    state = "running" if status.running else ("stopped" if status.initialized else "not created")
    click.echo(f"local cluster {state}: {status.data_dir}")
    if status.running:
        click.echo(f"pid {status.pid}, port {status.port}: {status.url}")
    sys.exit(0 if status.running else 3)


@db.command("url")
@click.pass_obj
@friendly
def db_url(settings: Settings) -> None:
    """Print the URL to connect with psql."""
    click.echo(database_url(settings, start=False))


@db.command("migrate")
@click.pass_obj
@friendly
def db_migrate(settings: Settings) -> None:
    """Apply pending schema migrations."""
    applied = migrate(database_url(settings, start=True))
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none pending"
    click.echo(f"migrations applied: {names}")


@main.group()
def mqtt() -> None:
    """The MQTT broker: the embedded local Mosquitto, or the one named by ONEMAP_MQTT_URL."""


@mqtt.command("up")
@click.pass_obj
@friendly
def mqtt_up(settings: Settings) -> None:
    """Configure (first time) and start the local broker: 127.0.0.1 only, password auth,
    persistence on."""
    from onemap.mqtt import broker

    address = broker(settings, start=True)
    where = "ONEMAP_MQTT_URL" if settings.mqtt_url else f"local broker ({settings.mqtt_dir})"
    click.echo(f"broker ready: {where}")
    click.echo(address.url())


@mqtt.command("down")
@click.pass_obj
@friendly
def mqtt_down(settings: Settings) -> None:
    """Stop the local broker (its queued messages are kept)."""
    from onemap.mqtt import LocalBroker

    if settings.mqtt_url:
        click.echo("ONEMAP_MQTT_URL is set: that broker is not ours to stop")
        return
    LocalBroker(settings).down()
    click.echo("local broker stopped")


@mqtt.command("status")
@click.pass_obj
@friendly
def mqtt_status(settings: Settings) -> None:
    """Say whether the broker is up, and where (exit 3 when it is not)."""
    from onemap.mqtt import LocalBroker, parse_url

    if settings.mqtt_url:
        address = parse_url(settings.mqtt_url)
        up = address.reachable()
        click.echo(f"external broker (ONEMAP_MQTT_URL): {address.url()} "
                   f"{'reachable' if up else 'not reachable'}")
        sys.exit(0 if up else 3)
    local = LocalBroker(settings)
    status = local.status()
    state = "running" if status.running else ("stopped" if status.configured else "not created")
    click.echo(f"local broker {state}: {status.root}")
    if status.running:
        click.echo(f"pid {status.pid}, port {status.port}: {local.address().url()}")
    sys.exit(0 if status.running else 3)


@main.command()
@click.option("--client-id", default="onemap-listener", show_default=True,
              help="the persistent session's id: a listener started again with the same id "
                   "gets what came meanwhile")
@click.option("--batch", "batch_size", type=click.IntRange(1, 30_000), default=2000,
              show_default=True, help="most messages written in one transaction")
@click.option("--batch-ms", type=click.IntRange(1, 60_000), default=200, show_default=True,
              help="longest a batch waits for more messages after its first")
@click.pass_obj
@friendly
def listen(settings: Settings, client_id: str, batch_size: int, batch_ms: int) -> None:
    """Take the devices' messages from the MQTT broker (onemap/iot/{device}/telemetry and
    …/alarm) and write them as IoT events, until stopped (Ctrl-C, SIGTERM). Invalid messages
    are kept in iot_dead_letter with their reason. Topics and payloads: docs/live.md."""
    import logging
    import threading

    from etl.listen import SUBSCRIPTION, Listener
    from onemap.mqtt import broker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    url = database_url(settings, start=True)
    migrate(url)
    address = broker(settings, start=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"listening to {SUBSCRIPTION} on {address.url()} as {client_id}")
    listener = Listener(url, address, settings.timezone, client_id=client_id,
                        batch_size=batch_size, batch_seconds=batch_ms / 1000)
    total = listener.run(stop)
    click.echo(f"stopped: {total.messages:,} messages, {total.events:,} new events, "
               f"{total.repeated:,} delivered again, {total.dead:,} dead letters")


@main.group()
def simulate() -> None:
    """Live feeds for the demo: the loaded city's devices publishing to the broker."""


@simulate.command("iot")
@click.option("--rate", type=click.FloatRange(0.1, 100_000), default=20, show_default=True,
              help="messages a second, about (status changes are never held back)")
@click.option("--seed", default=7, show_default=True)
@click.option("--duration", type=click.FloatRange(0), default=None,
              help="seconds to run (default: until Ctrl-C or SIGTERM)")
@click.pass_obj
@friendly
def simulate_iot(settings: Settings, rate: float, seed: int, duration: float | None) -> None:
    """Publish the loaded devices' messages: street lights switching at dusk and dawn, manhole
    covers and smoke detectors alarming rarely and in clusters, water levels rising with the
    rain, routine readings in between (topics and payloads: docs/live.md)."""
    import threading

    from democity.simulate import simulate as run_simulation
    from onemap.mqtt import broker

    url = database_url(settings, start=True)
    address = broker(settings, start=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"publishing the devices' messages to {address.url()} at about {rate:g}/s")
    try:
        sent = run_simulation(url, address, settings.timezone, rate, stop, seed=seed,
                              duration=duration)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"stopped: {sent:,} messages published")


# The kinds of etl.targets.TARGETS (kept here so that `onemap --help` imports no loader).
LOAD_KINDS = ["admin", "facilities", "iot", "iot-events", "cases", "roster"]


@main.command()
@click.argument("kind", type=click.Choice(LOAD_KINDS))
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--mapping", "mapping_path", required=True, type=click.Path(path_type=Path),
              help="YAML file mapping source columns to the model")
@click.option("--crs", default=None, help="CRS of the coordinates: EPSG code, gcj02 or bd09")
@click.option("--level", type=click.IntRange(1, 4), default=None,
              help="admin level: 1 district, 2 street, 3 community, 4 grid")
@click.option("--dry-run", is_flag=True, help="check and report, change nothing")
@click.pass_obj
@friendly
def load(settings: Settings, kind, paths, mapping_path, crs, level, dry_run) -> None:
    """Load files into PostGIS as one batch (all or nothing; every rejected row kept).

    The mapping file's keys, fields, value transforms and placement rules, with worked
    examples: docs/mapping.md."""
    from etl.load import load as run_load
    from etl.readers import count_hint
    from onemap.console import file_counter, print_load_report

    url = database_url(settings, start=True)
    with file_counter(kind, list(paths), count_hint) as advance:
        report = run_load(url, kind, list(paths), mapping_path, crs=crs, level=level,
                          timezone=settings.timezone, dry_run=dry_run, progress=advance)
    print_load_report(report)


def _as_of(ctx, param, value: str | None):
    """A reference time given as local wall-clock time (None: now)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=None)
    except ValueError:
        raise click.BadParameter(f"not a local time (YYYY-MM-DD HH:MM[:SS]): {value!r}") \
            from None


AS_OF = click.option(
    "--as-of", "as_of", callback=_as_of, default=None, metavar="'YYYY-MM-DD HH:MM[:SS]'",
    help="the moment the city stands at, local time (ONEMAP_TIMEZONE); default now: its "
         "newest cases and device reports are minutes old. The same time gives the same files")


@main.command()
@click.option("--size", type=click.Choice(["S", "M", "L"], case_sensitive=False), default="S",
              show_default=True, help="S ≈ 50k cases, M ≈ 1M, L ≈ 10M")
@click.option("--seed", default=7, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="folder (default .onemap/city/SIZE-seedN)")
@AS_OF
@click.pass_obj
@friendly
def generate(settings: Settings, size: str, seed: int, out: Path | None, as_of) -> None:
    """Generate the demo city (坪山区) as files, with the mappings to load them."""
    from democity.run import generate_with_progress

    city = generate_with_progress(size, seed, out, settings, as_of)
    when = str(city.as_of).replace("T", " ")
    click.echo(f"demo city {size.upper()} (seed {seed}) as of {when} written to {city.folder}")


@main.command()
@click.option("--size", type=click.Choice(["S", "M", "L"], case_sensitive=False), default="S",
              show_default=True)
@click.option("--seed", default=7, show_default=True)
@AS_OF
@click.pass_obj
@friendly
def demo(settings: Settings, size: str, seed: int, as_of) -> None:
    """Generate and load the demo city as of now (or --as-of) through the normal loads,
    replacing a demo city loaded before as of another time; the same city twice is loaded
    once."""
    from democity.run import demo_city
    from onemap.console import demo_users

    url = database_url(settings, start=True)
    demo_city(url, settings, size, seed, as_of)
    demo_users(url, settings)


@main.command()
@click.option("--limit", default=20, show_default=True)
@click.pass_obj
@friendly
def batches(settings: Settings, limit: int) -> None:
    """List recent load batches."""
    from onemap.console import print_batches

    print_batches(database_url(settings, start=True), limit, settings.timezone)


@main.command()
@click.argument("batch", type=int)
@click.option("--csv", "as_csv", is_flag=True, help="write CSV to standard output")
@click.pass_obj
@friendly
def rejects(settings: Settings, batch: int, as_csv: bool) -> None:
    """Show the rows a batch rejected, with file, row, field and reason."""
    from onemap.console import print_rejects

    print_rejects(database_url(settings, start=True), batch, as_csv)


@main.command()
@click.argument("layer")
@click.option("--scope", default=None, help="admin code: the unit and its subtree")
@click.option("--format", "fmt", default="geojson", show_default=True,
              help="geojson, gpkg, shp, csv, xlsx or html")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--crs", default="wgs84", show_default=True, help="wgs84, cgcs2000, gcj02, bd09")
@click.option("--range", "range_", default=None, help="today, 7d, 30d, 90d, year, all")
@click.option("--start", default=None)
@click.option("--end", default=None)
@click.option("--category", default=None, help="comma-separated, any level")
@click.option("--channel", default=None)
@click.option("--status", default=None, help="open, closed, overdue")
@click.option("--kind", default=None)
@click.option("--bbox", default=None, help="minx,miny,maxx,maxy")
@click.option("--personal", is_flag=True, help="include reporter names and phones")
@click.pass_obj
@friendly
def export(settings: Settings, layer, scope, fmt, out, crs, range_, personal,
           **filters) -> None:
    """Export a layer as the map shows it, with the admin codes and names on every row.
    The export is recorded in the audit log."""
    from layers.catalog import default_catalog
    from layers.exporting import ExportRequest, run_export
    from layers.freshness import Thresholds
    from onemap.console import step_counter
    from onemap.database import make_engine
    from onemap.principal import operator

    params = {k: v for k, v in {**filters, "scope": scope, "range": range_}.items() if v}
    engine = make_engine(database_url(settings, start=True))
    with step_counter("export") as tick:
        done = run_export(ExportRequest(operator(), layer, fmt, params, crs, personal), out,
                          engine=engine, writer=engine, catalog=default_catalog(),
                          zone=settings.timezone, thresholds=Thresholds.of(settings),
                          progress=lambda n: tick(layer, n), out=str(out))
    engine.dispose()
    click.echo(f"{done.result.rows:,} rows written to {done.result.path}")


@main.command()
@click.option("--scope", default=None, help="admin code of the unit (default: the district)")
@click.option("--period", required=True,
              help="2026-11 (月报), 2026-W47 (周报, Monday to Sunday) or "
                   "2026-11-01..2026-11-15 (自定义 days)")
@click.option("--format", "fmt", type=click.Choice(["pdf", "html"]), default="pdf",
              show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.pass_obj
@friendly
def report(settings: Settings, scope: str | None, period: str, fmt: str, out: Path,
           lang: str) -> None:
    """Write the 周报 / 月报 of a unit: its map coloured by cases, the key figures with 环比
    and 同比, top categories, hot grids, the overdue cases and the handling units' ranking.
    The file holds its font and map and fetches nothing. Recorded in the audit log."""
    from dashboard.report_file import write_report
    from onemap.database import make_engine
    from onemap.principal import operator

    engine = make_engine(database_url(settings, start=True))
    try:
        made = write_report(engine, engine, operator(), scope, period, fmt, lang, settings, out)
    finally:
        engine.dispose()
    click.echo(f"{made.title}, {made.period}: {made.size:,} bytes written to {out}")


@main.group()
def user() -> None:
    """People and kiosks who may sign in: add, list, disable, enable, passwd."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES),
              help="; ".join(f"{role}: {what}" for role, what in ROLE_HELP.items()))
@click.option("--scope", default=None, help="admin code the user is limited to (and below)")
@click.option("--personal-grant", is_flag=True, help="may see reporter names and phones")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_obj
@friendly
def user_add(settings: Settings, name, role, scope, personal_grant, password_stdin) -> None:
    """Create a user (a kiosk gets a token instead of a password, shown once)."""
    from onemap.accounts import add_user

    password = None if role in TOKEN_ROLES else _password(password_stdin)
    token = add_user(_accounts(settings), name, role, scope, password, personal_grant)
    click.echo(f"user '{name}' added as {role}" + (f" limited to {scope}" if scope else ""))
    if token:
        _show_token(settings, token, role)


@user.command("list")
@click.pass_obj
@friendly
def user_list(settings: Settings) -> None:
    """Users with role, scope, grant and state."""
    from onemap.accounts import list_users

    for row in list_users(_accounts(settings)):
        state = "disabled" if row.disabled else "active"
        grant = "personal" if row.personal_grant else "-"
        click.echo(f"{row.name:<24} {row.role:<16} {row.scope or '*':<14} {grant:<9} {state}")


@user.command("disable")
@click.argument("name")
@click.pass_obj
@friendly
def user_disable(settings: Settings, name: str) -> None:
    """Stop a user or kiosk from signing in (their open sessions end at once)."""
    _set_disabled(settings, name, True)


@user.command("enable")
@click.argument("name")
@click.pass_obj
@friendly
def user_enable(settings: Settings, name: str) -> None:
    """Let a disabled user sign in again."""
    _set_disabled(settings, name, False)


def _set_disabled(settings: Settings, name: str, disabled: bool) -> None:
    from onemap.accounts import set_disabled

    set_disabled(_accounts(settings), name, disabled)
    click.echo(f"user '{name}' {'disabled' if disabled else 'enabled'}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_obj
@friendly
def user_passwd(settings: Settings, name: str, password_stdin: bool) -> None:
    """A new password (a kiosk: a new token; the old one stops working)."""
    from onemap.accounts import list_users, set_password

    engine = _accounts(settings)
    role = next((u.role for u in list_users(engine) if u.name == name), None)
    token = set_password(engine, name, None if role in TOKEN_ROLES
                         else _password(password_stdin))
    click.echo(f"user '{name}': " + ("new token" if token else "password changed"))
    if token:
        _show_token(settings, token, role)


def _accounts(settings: Settings):
    from onemap.database import make_engine

    url = database_url(settings, start=True)
    migrate(url)
    return make_engine(url)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("password", hide_input=True, confirmation_prompt=True)


def _show_token(settings: Settings, token: str, role: str) -> None:
    click.echo(f"{role} token (shown once): {token}")
    if role == "feed":
        click.echo(f"post case events: POST {settings.base_url}/api/cases with "
                   f"Authorization: Bearer {token}")
    else:
        click.echo(f"big screen: {settings.base_url}/bigscreen?kiosk={token}")


@main.command()
@click.option("--host", default=None, help="interface to listen on (default 127.0.0.1)")
@click.option("--port", default=None, type=int, help="port (default 8050)")
@click.option("--debug/--no-debug", default=None)
@click.option("--prod", is_flag=True,
              help="production server: gunicorn with several worker processes")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="worker processes with --prod (default 4)")
@click.option("--access-log", is_flag=True, help="with --prod, log every request")
@click.option("--live", "live_rate", type=click.FloatRange(0.1, 100_000), default=None,
              metavar="RATE", help="the demo alive: run `onemap listen` and `onemap simulate "
              "iot --rate RATE` beside the dashboard (logs in HOME/live/), stopped with it")
@click.pass_obj
@friendly
def serve(settings: Settings, host: str | None, port: int | None, debug: bool | None,
          prod: bool, workers: int | None, access_log: bool, live_rate: float | None) -> None:
    """Start the dashboard at http://127.0.0.1:8050 (reads on DATABASE_READ_URL when set)."""
    with _live_feed(settings, live_rate):
        _serve(settings, host, port, debug, prod, workers, access_log)


@contextlib.contextmanager
def _live_feed(settings: Settings, rate: float | None):
    """``onemap listen`` and ``onemap simulate iot --rate RATE`` in the background while the
    block runs (nothing when ``rate`` is None); stopped with SIGTERM when it ends, so the
    listener writes and acknowledges what it holds."""
    if rate is None:
        yield
        return
    import subprocess

    from onemap.mqtt import broker

    database_url(settings, start=True)
    broker(settings, start=True)
    logs = settings.home / "live"
    logs.mkdir(parents=True, exist_ok=True)
    started = []
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so finally runs
    try:
        for name, args in (("listen", ["listen"]),
                           ("simulate", ["simulate", "iot", "--rate", f"{rate:g}"])):
            with (logs / f"{name}.log").open("a") as log:
                started.append(subprocess.Popen(
                    [sys.executable, "-m", "onemap.cli", *args], stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=_end_with_parent))
        click.echo(f"live: listener and simulator ({rate:g} messages/s) running, logs in {logs}")
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in reversed(started):
            process.terminate()
        for process in reversed(started):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def _end_with_parent() -> None:
    """In a child, before it runs: SIGTERM when its parent dies, however it dies (Linux)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _serve(settings: Settings, host: str | None, port: int | None, debug: bool | None,
           prod: bool, workers: int | None, access_log: bool) -> None:
    from dashboard.app import create_app

    if not prod and (workers or access_log):
        raise click.UsageError("--workers and --access-log go with --prod")
    if prod and debug:
        raise click.UsageError("--debug is for the development server, not --prod")
    url = database_url(settings, start=True)
    migrate(url)
    _warn_without_users(url)
    reads = read_url(settings, start=False)
    host, port = host or settings.host, port or settings.port
    settings = settings.model_copy(update={"host": host, "port": port})  # for base_url
    if prod:
        from web.auth import secret_key
        from web.serve import ServeOptions, serve_prod

        # Each worker's threads: four for requests, and one per screen's ask it holds.
        options = ServeOptions(host, port, workers or 4, threads=4 + settings.push_held,
                               access_log=access_log)
        secret_key(settings)  # made here, once, so no worker reads it half-written
        plural = "s" if options.workers > 1 else ""
        click.echo(f"onemap: http://{options.bind}/ with {options.workers} worker{plural}; "
                   f"reads from {_reads_from(settings)}")
        serve_prod(lambda: create_app(settings, url, reads, _case_feed(settings, url)).server,
                   options)
        return
    import logging

    from web.serve import RedactingFilter

    logging.getLogger("werkzeug").addFilter(RedactingFilter())  # its request log
    create_app(settings, url, reads, _case_feed(settings, url)).run(
        host=host, port=port, debug=settings.debug if debug is None else debug)


def _case_feed(settings: Settings, url: str):
    """What writes the events posted to POST /api/cases: the loader, on the primary."""
    from etl.feed import CaseFeed

    return CaseFeed(url, settings.timezone, settings.timezone)


def _reads_from(settings: Settings) -> str:
    if settings.database_read_url:
        return "DATABASE_READ_URL"
    if settings.database_url:
        return "the primary database"
    return f"the local cluster as the read-only role {settings.pg_read_user}"


def _warn_without_users(url: str) -> None:
    from onemap.accounts import list_users
    from onemap.database import make_engine

    engine = make_engine(url)
    if not list_users(engine):
        click.secho("no users yet: nobody can sign in. Create one with "
                    "`onemap user add NAME --role admin` (make demo does it for you)",
                    fg="yellow", err=True)
    engine.dispose()


if __name__ == "__main__":
    main()
