"""The live IoT feed: ``onemap listen`` takes device messages from the MQTT broker and writes
them as IoT events, the same rows ``onemap load iot-events`` writes.

Topics (``TOPICS``): ``onemap/iot/{device_id}/telemetry`` carries a reading, ``…/alarm`` a
status (``alarm`` raises an alarm, ``online`` clears it, ``offline``). Payloads are JSON
objects described by :data:`MESSAGE_SCHEMA` (published as docs/iot-message.schema.json).

Every message is checked in two steps: its envelope here (topic, UTF-8, JSON, the schema's
fields and JSON types), then its fields exactly as a loaded row's, by the loader's own code —
:func:`etl.transform.transform` types and checks the values, :func:`etl.places.place`
rejects an unknown device, a status event without a status and a reading without a value.
A message that fails either step is kept in ``iot_dead_letter`` with its topic, payload,
field and reason; none ends the listener.

Delivery is at least once and counting exactly once: the subscription is QoS 1 in a
persistent session (a fixed client id, ``clean_start`` false, a session that never expires),
a message is acknowledged to the broker only after the transaction holding it committed, and
the writes are idempotent — an event's key is its device, time, kind and metric
(``ON CONFLICT DO NOTHING``), a dead letter's its topic and payload — so a message delivered
again after a crash, a lost connection or a database outage is never counted twice. Messages
are written in batches, each one transaction that also brings its devices' state up to date:
what arrives within ``batch_seconds`` (0.2 s) of a batch's first message, at most
``batch_size`` (2,000) — but a status message (``…/alarm``), which the screens wait for,
ends the wait at once: its batch takes what waited already and goes. At a few messages a
second a batch is a few messages; when messages come faster than a batch is written, the
next batch takes what waited meanwhile, so batches grow with the rate instead of a backlog.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import psycopg

from etl import places, staging
from etl.mapping import Mapping
from etl.readers import Chunk
from etl.targets import TARGETS
from etl.transform import Context, transform
from onemap.database import libpq_url
from onemap.mqtt import Broker, new_client, session_properties

log = logging.getLogger("onemap.listen")

TOPIC_ROOT = "onemap/iot"
SUBSCRIPTION = f"{TOPIC_ROOT}/+/+"
# The last level of a device's topic → the kind of event its messages are.
TOPICS = {"telemetry": "reading", "alarm": "status"}
CLIENT_ID = "onemap-listener"
SOURCE = "mqtt"  # what stands for the file in a staged row

TARGET = TARGETS["iot-events"]
# The payload's fields: each is the iot-events field of the same name, with its JSON type.
PAYLOAD_FIELDS = {
    "telemetry": {"ts": "string", "metric": "string", "value": "number",
                  "device_id": "string"},
    "alarm": {"ts": "string", "status": "string", "device_id": "string"},
}
REQUIRED = {"telemetry": ["ts", "value"], "alarm": ["ts", "status"]}
EXAMPLES = {
    "telemetry": {"ts": "2026-12-03T16:05:00+08:00", "metric": "水位", "value": 0.12},
    "alarm": {"ts": "2026-12-03T16:05:00+08:00", "status": "alarm"},
}
DESCRIPTIONS = {
    "ts": "when the device measured or changed, ISO 8601; without an offset it is local "
          "time (ONEMAP_TIMEZONE). Kept to the second, as a loaded event's: a device's "
          "second message of one kind and metric in the same second is the same event",
    "metric": "what is measured (the demo city's water sensors: 水位, metres above the road)",
    "value": "the reading, a finite number",
    "status": "the device's status from now on: alarm raises an alarm, online clears it",
    "device_id": "optional; when given it must be the topic's device",
}


def _schema_of(kind: str) -> dict:
    fields = PAYLOAD_FIELDS[kind]
    properties = {name: {"type": kind_of, "description": DESCRIPTIONS[name]}
                  for name, kind_of in fields.items()}
    if "status" in properties:
        properties["status"]["enum"] = list(TARGET.value_sets["status"])
    return {"type": "object", "properties": properties, "required": REQUIRED[kind],
            "additionalProperties": False, "examples": [EXAMPLES[kind]]}


MESSAGE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "onemap IoT message",
    "description": "The payload of a message on onemap/iot/{device_id}/telemetry (a reading) "
                   "or onemap/iot/{device_id}/alarm (a status change). UTF-8 JSON, QoS 1.",
    "$defs": {kind: _schema_of(kind) for kind in PAYLOAD_FIELDS},
}


@dataclass(frozen=True)
class Message:
    """One message as received: acknowledged to the broker once it is written."""

    topic: str
    payload: bytes
    received_at: datetime
    mid: int = 0
    qos: int = 0
    connection: int = 0  # which connection brought it (its mid means nothing on another)
    arrived: float = 0.0  # time.monotonic() when it came


@dataclass
class Written:
    """What writing a batch did."""

    messages: int = 0
    events: int = 0       # new events
    repeated: int = 0     # events already written (a message delivered again)
    dead: int = 0         # dead letters written (a dead letter delivered again: repeated)
    devices: int = 0      # devices whose state changed

    def add(self, other: Written) -> None:
        for name in ("messages", "events", "repeated", "dead", "devices"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


# -- checking ----------------------------------------------------------------------------------
@dataclass
class Checked:
    """A batch's messages as rows for the loader's checks, and those that failed before."""

    rows: list[dict] = field(default_factory=list)
    row_messages: list[Message] = field(default_factory=list)
    dead: list[tuple[Message, str | None, str]] = field(default_factory=list)


def envelope(message: Message) -> tuple[dict | None, str | None, str | None]:
    """The message as an iot-events source row, or (None, field, reason)."""
    parts = message.topic.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != TOPIC_ROOT or parts[3] not in TOPICS \
            or not parts[2]:
        return None, "topic", (f"'{message.topic}' is not {TOPIC_ROOT}/{{device_id}}/"
                               f"{' or …/'.join(TOPICS)}")
    device, kind = parts[2], parts[3]
    try:
        text = message.payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "payload", f"is not UTF-8 text ({exc.reason} at byte {exc.start})"
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        return None, "payload", f"is not JSON ({exc})"
    if not isinstance(data, dict):
        return None, "payload", f"is not a JSON object but {_json_type(data)}"
    allowed = PAYLOAD_FIELDS[kind]
    for name, value in data.items():
        if name not in allowed:
            return None, name, (f"is not a field of a {kind} message (its fields: "
                                f"{', '.join(allowed)})")
        if value is not None and _json_type(value) != allowed[name]:
            return None, name, f"{_shown(value)} is {_json_type(value)}, not {allowed[name]}"
    if data.get("device_id") not in (None, device):
        return None, "device_id", (f"'{data['device_id']}' is not the topic's device "
                                   f"'{device}'")
    row = {"device_id": device, "event_type": TOPICS[kind]}
    for name in ("ts", "status", "metric", "value"):
        value = data.get(name)
        row[name] = None if value is None else (repr(value) if isinstance(value, float)
                                                else str(value))
    return row, None, None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", dict: "object", list: "array", type(None): "null"}[type(value)]


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def _status(message: Message) -> bool:
    """Whether ``message`` came on a status topic (an alarm raised or cleared, a device
    offline or online: what the screens show)."""
    return message.topic.endswith("/alarm")


def check(messages: list[Message]) -> Checked:
    """Envelopes checked; a message delivered twice in one batch (same topic and payload)
    taken once."""
    checked, seen = Checked(), set()
    for message in messages:
        if (message.topic, message.payload) in seen:
            continue
        seen.add((message.topic, message.payload))
        row, name, reason = envelope(message)
        if row is None:
            checked.dead.append((message, name, reason))
        else:
            checked.rows.append(row)
            checked.row_messages.append(message)
    return checked


def mapping(timezone: str) -> Mapping:
    """The iot-events mapping a message's row is read with: each field from the column of
    its own name, times without an offset in ``timezone``."""
    names = ["device_id", "ts", "event_type", "status", "metric", "value"]
    return Mapping(kind="iot-events", timezone=timezone,
                   fields={name: {"column": name} for name in names})


# -- writing -----------------------------------------------------------------------------------
INSERT_EVENTS = """
WITH new AS (
    INSERT INTO iot_event (device_id, ts, event_type, status, metric, value, properties,
                           grid_code, community_code, street_code, district_code)
    SELECT s.device_id, s.ts, s.event_type, s.status, COALESCE(s.metric, ''), s.value,
           COALESCE(s.properties, '{}'::jsonb), p.grid_code, p.community_code,
           p.street_code, p.district_code
    FROM stage s JOIN placed p USING (row_number, source_file)
    WHERE NOT EXISTS (SELECT 1 FROM stage_reject r WHERE r.row_number = s.row_number)
    ON CONFLICT (device_id, ts, event_type, metric) DO NOTHING
    RETURNING device_id, ts, event_type, status
), heard AS (
    SELECT device_id, max(ts) AS ts FROM new GROUP BY device_id
), told AS (
    SELECT DISTINCT ON (device_id) device_id, ts, status FROM new
    WHERE event_type = 'status' ORDER BY device_id, ts DESC
), changed AS (
    UPDATE iot_device d
    SET last_seen = greatest(d.last_seen, h.ts),
        status = CASE WHEN t.ts IS NOT NULL AND NOT EXISTS (
                          SELECT 1 FROM iot_event e WHERE e.device_id = d.id
                          AND e.event_type = 'status' AND e.ts > t.ts)
                      THEN t.status ELSE d.status END,
        updated_at = now()
    FROM heard h LEFT JOIN told t USING (device_id)
    WHERE d.id = h.device_id
    RETURNING 1
), bumped AS (
    UPDATE data_change SET version = version + 1, changed_at = now()
    WHERE feed = 'iot' AND EXISTS (SELECT 1 FROM told)
    RETURNING 1
)
SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM changed)
"""
# A device's state: last heard of at its newest report, whatever its kind; its status that of
# its newest status event (an older one delivered late changes nothing). The statement sees
# the events as they were before it, so "newer" means newer than every earlier one. A batch
# holding a new status event (an alarm raised or cleared, a device offline or online) moves
# the IoT feed's version (``data_change``), which the screens watch to redraw.

INSERT_DEAD = """
INSERT INTO iot_dead_letter (received_at, topic, payload, field, reason)
VALUES (%s, %s, %s, %s, %s) ON CONFLICT (digest) DO NOTHING
"""


@dataclass
class Prepared:
    """A batch checked as far as it can be without the database: its envelopes, and its
    rows typed by the loader's transform (the rows it rejected are dead letters already)."""

    messages: list[Message]
    checked: Checked
    rows: pd.DataFrame | None
    dead: list[tuple[Message, str | None, str]]
    failed: bool = False  # the checks themselves failed: written a message at a time


def joined(parts: list[Prepared]) -> Prepared:
    """Batches prepared apart, as one (their rows numbered on)."""
    if len(parts) == 1:
        return parts[0]
    messages, checked, frames, dead, offset = [], Checked(), [], [], 0
    if any(part.failed for part in parts):
        return Prepared([m for p in parts for m in p.messages], checked, None, [], failed=True)
    for part in parts:
        messages += part.messages
        checked.rows += part.checked.rows
        checked.row_messages += part.checked.row_messages
        checked.dead += part.checked.dead
        dead += part.dead
        if part.rows is not None:
            frames.append(part.rows.assign(row_number=part.rows["row_number"] + offset))
        offset += len(part.checked.rows)
    rows = pd.concat(frames, ignore_index=True) if frames else None
    return Prepared(messages, checked, rows, dead)


def prepare(messages: list[Message], ctx: Context) -> Prepared:
    """Check the envelopes and transform the rows (no database needed)."""
    checked = check(messages)
    dead = list(checked.dead)
    if not checked.rows:
        return Prepared(messages, checked, None, dead)
    result = transform(Chunk(Path(SOURCE), 1, pd.DataFrame(checked.rows, dtype=object),
                             None, None), ctx)
    for row_number, name, reason in zip(result.rejects["row_number"], result.rejects["field"],
                                        result.rejects["reason"], strict=True):
        dead.append((checked.row_messages[row_number - 1], name, reason))
    rows = result.rows
    rows.insert(1, "source_file", SOURCE)
    rows.insert(2, "file_no", 0)
    return Prepared(messages, checked, rows, dead)


def write_prepared(conn: psycopg.Connection, ready: Prepared) -> Written:
    """Write a prepared batch in one transaction: its events (each once), its devices'
    state and its dead letters. A database error propagates, nothing written. ``conn``: in
    autocommit mode (so the transaction is not a savepoint of another), TimeZone UTC."""
    done = Written(messages=len(ready.messages))
    dead = list(ready.dead)
    with conn.transaction():
        if ready.rows is not None:
            staging.create(conn, TARGET)
            staging.copy_frame(conn, "stage", ready.rows)
            places.place(conn, TARGET, [])
            refused = conn.execute("SELECT row_number, field, reason FROM stage_reject "
                                   "ORDER BY 1").fetchall()
            for row_number, name, reason in refused:
                dead.append((ready.checked.row_messages[row_number - 1], name, reason))
            done.events, done.devices = conn.execute(INSERT_EVENTS).fetchone()
            done.repeated = len(ready.rows) - len(refused) - done.events
        order = {id(m): i for i, m in enumerate(ready.messages)}
        done.dead = _write_dead(conn, sorted(dead, key=lambda d: order[id(d[0])]))
    return done


def write_batch(conn: psycopg.Connection, messages: list[Message], ctx: Context) -> Written:
    """:func:`prepare` then :func:`write_prepared`."""
    return write_prepared(conn, prepare(messages, ctx))


def _write_dead(conn: psycopg.Connection, dead: list[tuple[Message, str | None, str]]) -> int:
    if not dead:
        return 0
    with conn.cursor() as cur:
        written = 0
        for message, name, reason in dead:
            cur.execute(INSERT_DEAD, (message.received_at, message.topic,
                                      payload_text(message.payload), name, reason))
            written += cur.rowcount
    return written


def _problem(exc: Exception) -> str:
    if isinstance(exc, psycopg.Error):
        return exc.diag.message_primary or str(exc)
    return f"{type(exc).__name__}: {exc}"


def payload_text(payload: bytes) -> str:
    """The payload as text: bytes that are not UTF-8 as ``\\xNN``, and NUL (which text cannot
    hold) as the visible ``\\x00``."""
    return payload.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


def write_one_by_one(conn: psycopg.Connection, messages: list[Message], ctx: Context
                     ) -> Written:
    """A batch that failed for a reason other than an unreachable database, a message at a
    time: the one that still fails becomes a dead letter with the reason."""
    done = Written()
    for message in messages:
        try:
            done.add(write_batch(conn, [message], ctx))
        except psycopg.OperationalError:
            raise
        except Exception as exc:  # a payload must never stop the listener
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            reason = f"could not be written: {_problem(exc)}"
            with conn.transaction():
                done.dead += _write_dead(conn, [(message, None, reason)])
            done.messages += 1
    return done


# -- listening ---------------------------------------------------------------------------------
class Listener:
    """Subscribes to the device topics and writes what comes, batch by batch, until stopped.

    The broker's connection and the database's are each re-made by themselves when lost: the
    network loop reconnects to the broker (the session and its unacknowledged messages are
    the broker's to keep), and a batch the database could not take is tried again, unacked,
    until it can."""

    def __init__(self, db_url: str, address: Broker, timezone: str, *,
                 client_id: str = CLIENT_ID, batch_size: int = 2000,
                 batch_seconds: float = 0.2, receive_maximum: int | None = None,
                 on_batch: Callable[[Written], None] | None = None):
        self.db_url, self.address = libpq_url(db_url), address
        self.ctx = Context(mapping(timezone), None, timezone, None, None)
        self.client_id, self.batch_size, self.batch_seconds = client_id, batch_size, batch_seconds
        # The broker sends at most this many messages not yet acknowledged: two batches'.
        self.receive_maximum = receive_maximum or min(65535, 2 * batch_size)
        self.on_batch = on_batch or (lambda written: None)
        self.total = Written()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._inbox: queue.Queue[Message] = queue.Queue()
        self._connection = 0          # connections made to the broker so far
        self.outages = 0              # times the database could not be reached
        self._lock = threading.Lock()
        self._client = None
        self._conn: psycopg.Connection | None = None

    # -- the broker's side (paho's network thread) -------------------------------------------
    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        with self._lock:
            self._connection += 1
        client.subscribe(SUBSCRIPTION, qos=1)
        self.connected.set()
        log.info("connected to %s (session %s)", self.address.url(),
                 "resumed" if flags.session_present else "new")

    def _on_subscribe(self, client, userdata, mid, reasons, properties) -> None:
        if any(r.is_failure for r in reasons):
            log.warning("the broker refused the subscription to %s: %s", SUBSCRIPTION,
                        ", ".join(str(r) for r in reasons))
            return
        self.subscribed.set()
        log.info("subscribed to %s (QoS 1)", SUBSCRIPTION)

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self.connected.clear()
        log.warning("connection to the broker lost (%s); reconnecting", reason)

    def _on_message(self, client, userdata, message) -> None:
        self._inbox.put(Message(message.topic, bytes(message.payload), datetime.now(UTC),
                                message.mid, message.qos, self._connection, time.monotonic()))

    @property
    def connections(self) -> int:
        """How many times the listener connected to the broker."""
        return self._connection

    def _acknowledge(self, messages: list[Message]) -> None:
        """PUBACK each message, on the connection it came by: a message of an earlier
        connection is delivered again by the broker (and found written)."""
        with self._lock:
            for message in messages:
                if message.qos and message.connection == self._connection:
                    self._client.ack(message.mid, message.qos)

    # -- the writing side (the caller's thread) -----------------------------------------------
    def run(self, stop: threading.Event) -> Written:
        """Listen until ``stop`` is set; write what was received by then; return the totals."""
        client = new_client(self.address, self.client_id, manual_ack=True)
        client.on_connect, client.on_disconnect = self._on_connect, self._on_disconnect
        client.on_message, client.on_subscribe = self._on_message, self._on_subscribe
        self._client = client
        client.connect_async(self.address.host, self.address.port, keepalive=15,
                             clean_start=False,
                             properties=session_properties(receive_maximum=self.receive_maximum))
        client.loop_start()
        # Messages are checked and transformed here, a part at a time, while the batch before
        # is written (and acknowledged) by the writer thread: the CPU work and the
        # database's overlap, and what came during a write is the next batch, whole.
        parts: list[Prepared] = []
        writing = None
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="writer") as writer:
                while True:
                    part = self._gather(stop, wait=not stop.is_set())
                    if part:
                        parts.append(self._prepare(part))
                    elif stop.is_set() and not parts:
                        break
                    size = sum(len(p.messages) for p in parts)
                    busy = writing is not None and not writing.done()
                    if not parts or (busy and size < self.batch_size and part):
                        continue
                    if writing is not None:
                        writing.result()
                    writing = writer.submit(self._write, joined(parts), stop)
                    parts = []
                if writing is not None:
                    writing.result()
        finally:
            client.disconnect()
            client.loop_stop()
            if self._conn is not None:
                self._conn.close()
        return self.total

    def _gather(self, stop: threading.Event, wait: bool = True) -> list[Message]:
        """The next part of a batch: the messages that arrived within ``batch_seconds`` of
        the first (up to a status message: then only those waiting), at most
        ``batch_size``. Messages that waited meanwhile are late already
        and taken at once; parts gathered while a batch is written make the next batch, so
        batches grow with the rate and a busy listener keeps up rather than falling behind
        by each batch's fixed costs."""
        batch: list[Message] = []
        try:
            batch.append(self._inbox.get(timeout=self.batch_seconds if wait else 0.001))
        except queue.Empty:
            return batch
        deadline = batch[0].arrived + self.batch_seconds
        while len(batch) < self.batch_size:
            if _status(batch[-1]):  # a screen waits for it: what waited already, no more
                deadline = 0.0
            left = deadline - time.monotonic()
            try:
                batch.append(self._inbox.get(timeout=left) if left > 0
                             else self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _prepare(self, batch: list[Message]) -> Prepared:
        try:
            return prepare(batch, self.ctx)
        except Exception as exc:  # a payload must never stop the listener
            log.warning("a batch could not be checked (%s): it goes a message at a time",
                        _problem(exc))
            return Prepared(batch, Checked(), None, [], failed=True)

    def _write(self, ready: Prepared, stop: threading.Event) -> None:
        """Write the batch, trying again while the database is unreachable; then ack it."""
        batch = ready.messages
        delay = 0.2
        while True:
            try:
                conn = self._database()
                try:
                    if ready.failed:
                        raise ValueError("the batch could not be checked as a whole")
                    done = write_prepared(conn, ready)
                except psycopg.OperationalError:
                    raise
                except Exception as exc:  # a payload must never stop the listener
                    log.warning("a batch failed (%s): writing it a message at a time",
                                _problem(exc))
                    done = write_one_by_one(conn, batch, self.ctx)
                break
            except psycopg.OperationalError as exc:
                self.outages += 1
                self._drop_database()
                log.warning("database unreachable (%s); trying again in %.1f s",
                            str(exc).strip().splitlines()[0] if str(exc) else exc, delay)
                if stop.wait(delay):
                    return  # stopped meanwhile: unacknowledged, the broker keeps the batch
                delay = min(delay * 2, 5.0)
        self._acknowledge(batch)
        self.total.add(done)
        self.on_batch(done)

    def _database(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            # Autocommit: each batch's ``transaction()`` is a transaction of its own.
            self._conn = psycopg.connect(self.db_url, connect_timeout=5, autocommit=True)
            self._conn.execute("SET TimeZone = 'UTC'")
        return self._conn

    def _drop_database(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None



SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "iot-message.schema.json"


def schema_text() -> str:
    """:data:`MESSAGE_SCHEMA` as docs/iot-message.schema.json holds it."""
    return json.dumps(MESSAGE_SCHEMA, ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":  # python -m etl.listen: write the published schema again
    SCHEMA_DOC.write_text(schema_text(), encoding="utf-8")
    print(SCHEMA_DOC)
