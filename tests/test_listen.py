"""``onemap listen`` on a real broker and a real PostGIS: messages become IoT events and
device state, each once; a bad message is a dead letter with the field and reason a loaded
row would get, and never stops the listener; what the desk and the wall show follows."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import sql_rows
from live_helpers import Running, private_broker, publish, wait_for

from etl.listen import SCHEMA_DOC, schema_text
from etl.load import load

pytestmark = [pytest.mark.mqtt, pytest.mark.db]

TS = "2026-12-03T16:05:00+08:00"


@pytest.fixture(scope="module")
def broker():
    with private_broker(19000) as local:
        yield local


@pytest.fixture(scope="module")
def listening(live_db, broker):
    running = Running(live_db, broker.address())
    yield running
    running.stop()


def device(url: str, kind: str, status: str = "online", skip: int = 0) -> str:
    return sql_rows(url, "SELECT id FROM iot_device WHERE kind = %s AND status = %s "
                         "ORDER BY id OFFSET %s LIMIT 1", kind, status, skip)[0][0]


def events(url: str, device_id: str) -> list[tuple]:
    return sql_rows(url, "SELECT ts, event_type, status, metric, value FROM iot_event "
                         "WHERE device_id = %s ORDER BY ts, event_type", device_id)


def dead(url: str, topic: str) -> list[tuple]:
    return sql_rows(url, "SELECT field, reason FROM iot_dead_letter WHERE topic = %s "
                         "ORDER BY id", topic)


def test_messages_become_events_and_device_state(live_db, broker, listening):
    sensor = device(live_db, "水位传感器")
    smoke = device(live_db, "烟感")
    publish(broker.address(), [
        (f"onemap/iot/{sensor}/telemetry", {"ts": TS, "metric": "水位", "value": 0.12}),
        (f"onemap/iot/{sensor}/telemetry",
         {"ts": "2026-12-03 16:06:00", "metric": "水位", "value": 0.35, "device_id": sensor}),
        (f"onemap/iot/{smoke}/alarm", {"ts": TS, "status": "alarm"}),
    ])
    wait_for(lambda: len(events(live_db, sensor)) == 2 and events(live_db, smoke), 20,
             "the events")
    readings = events(live_db, sensor)
    assert [(r[1], r[3], r[4]) for r in readings] == [("reading", "水位", 0.12),
                                                      ("reading", "水位", 0.35)]
    # A time without an offset is local time (Asia/Shanghai), as in a loaded file.
    assert readings[1][0].isoformat() == "2026-12-03T08:06:00+00:00"
    status, seen = sql_rows(live_db, "SELECT status, last_seen FROM iot_device WHERE id = %s",
                            smoke)[0]
    assert status == "alarm" and seen.isoformat() == "2026-12-03T08:05:00+00:00"
    seen, = sql_rows(live_db, "SELECT last_seen FROM iot_device WHERE id = %s", sensor)[0]
    assert seen.isoformat() == "2026-12-03T08:06:00+00:00"


def test_a_message_delivered_again_is_counted_once(live_db, broker, listening):
    smoke = device(live_db, "烟感", skip=1)
    message = (f"onemap/iot/{smoke}/alarm", {"ts": TS, "status": "alarm"})
    publish(broker.address(), [message, message])
    publish(broker.address(), [message])  # again, in a later batch
    later = (f"onemap/iot/{smoke}/alarm", {"ts": "2026-12-03T16:09:00+08:00",
                                           "status": "online"})
    publish(broker.address(), [later])
    wait_for(lambda: len(events(live_db, smoke)) == 2, 20, "the second event")
    assert [e[2] for e in events(live_db, smoke)] == ["alarm", "online"]
    assert sql_rows(live_db, "SELECT status FROM iot_device WHERE id = %s", smoke)[0][0] \
        == "online"


def test_an_old_status_delivered_late_changes_nothing(live_db, broker, listening):
    smoke = device(live_db, "烟感", skip=2)
    publish(broker.address(), [(f"onemap/iot/{smoke}/alarm", {"ts": TS, "status": "alarm"})])
    wait_for(lambda: events(live_db, smoke), 20, "the alarm")
    publish(broker.address(), [(f"onemap/iot/{smoke}/alarm",
                                {"ts": "2026-12-03T15:00:00+08:00", "status": "online"})])
    wait_for(lambda: len(events(live_db, smoke)) == 2, 20, "the late event")
    status, seen = sql_rows(live_db, "SELECT status, last_seen FROM iot_device WHERE id = %s",
                            smoke)[0]
    assert status == "alarm" and seen.isoformat() == "2026-12-03T08:05:00+00:00"


# (payload, the field at fault, the reason) of messages a device sends wrong. ``None`` as the
# reason: the loader's own, checked against a loaded file's rejects below.
BAD = [
    (b"{not json", "payload", "is not JSON"),
    (b"\xff\xfe{}", "payload", "is not UTF-8 text"),
    (b"[1, 2]", "payload", "is not a JSON object but array"),
    (b'{"ts": "2026-12-03T16:05:00+08:00", "value": NaN}', "payload", "NaN is not a JSON"),
    ({"ts": TS, "value": 1, "temperature": 3}, "temperature", "is not a field of a telemetry"),
    ({"ts": TS, "value": "high"}, "value", '"high" is string, not number'),
    ({"ts": TS, "value": True}, "value", "true is boolean, not number"),
    ({"ts": TS, "value": 1, "device_id": "OTHER"}, "device_id", "is not the topic's device"),
    ({"ts": TS, "metric": "水\u0000位", "value": 1}, "metric", "NUL character"),
    ({"ts": "yesterday", "value": 1}, "ts", None),
    ({"value": 1}, "ts", None),
    ({"ts": TS}, "value", None),
    (b'{"ts": "2026-12-03T16:05:00+08:00", "value": 1e400}', "value", None),
]
BAD_ALARMS = [
    ({"ts": TS, "status": "broken"}, "status", None),
    ({"ts": TS}, "status", None),
]


def test_bad_messages_are_dead_letters_with_field_and_reason(live_db, broker, listening,
                                                             tmp_path):
    sensor = device(live_db, "水位传感器", skip=1)
    smoke = device(live_db, "烟感", skip=3)
    sent = [(f"onemap/iot/{sensor}/telemetry", p) for p, _, _ in BAD]
    sent += [(f"onemap/iot/{smoke}/alarm", p) for p, _, _ in BAD_ALARMS]
    sent += [("onemap/iot/NOPE-404/alarm", {"ts": TS, "status": "alarm"}),
             (f"onemap/iot/{sensor}/status", {"ts": TS, "status": "alarm"}),
             (f"onemap/iot/{sensor}/telemetry", {"ts": TS, "metric": "水位", "value": 0.05})]
    publish(broker.address(), sent)
    wait_for(lambda: events(live_db, sensor), 20, "the good message after the bad ones")
    got = dead(live_db, f"onemap/iot/{sensor}/telemetry")
    assert len(got) == len(BAD)
    for (field, reason), (_, want_field, want) in zip(got, BAD, strict=True):
        assert field == want_field, (field, reason)
        assert want is None or want in reason, (field, reason)
    alarms = dead(live_db, f"onemap/iot/{smoke}/alarm")
    assert [f for f, _ in alarms] == ["status", "status"]
    assert dead(live_db, "onemap/iot/NOPE-404/alarm") == [
        ("device_id", "unknown device 'NOPE-404' (load devices first)")]
    assert dead(live_db, f"onemap/iot/{sensor}/status")[0][0] == "topic"
    raw, = sql_rows(live_db, "SELECT payload FROM iot_dead_letter WHERE topic = %s "
                             "AND reason LIKE 'is not UTF-8%%'", sent[1][0])[0]
    assert raw == "\\xff\\xfe{}"
    # The loader's checks: a file of the same values gets the same field and reason per row.
    mine = [(sensor, "reading", p) for p, _, r in BAD if r is None]
    rows = mine + [(smoke, "status", p) for p, _, _ in BAD_ALARMS] + \
        [("NOPE-404", "status", {"ts": TS, "status": "alarm"})]
    dead_letters = [g for g, (_, _, r) in zip(got, BAD, strict=True) if r is None] + alarms + \
        dead(live_db, "onemap/iot/NOPE-404/alarm")
    assert _loaded_rejects(live_db, rows, tmp_path) == dead_letters


def _loaded_rejects(url: str, rows, tmp_path) -> list[tuple]:
    """Load the same values as a CSV file of iot-events: its rejects' (field, reason)."""
    import csv

    path = tmp_path / "events.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["device_id", "ts", "event_type", "status", "metric", "value"])
        for device_id, kind, payload in rows:
            p = json.loads(payload) if isinstance(payload, bytes) else payload
            value = p.get("value")
            out.writerow([device_id, p.get("ts", ""), kind, p.get("status", ""),
                          p.get("metric", ""), "" if value is None else repr(value)])
    mapping = tmp_path / "events.yaml"
    mapping.write_text("kind: iot-events\ntimezone: Asia/Shanghai\nfields:\n" + "".join(
        f"  {n}: {n}\n" for n in ("device_id", "ts", "event_type", "status", "metric",
                                  "value")), encoding="utf-8")
    report = load(url, "iot-events", [path], mapping)
    assert report.rejected == len(rows) and report.inserted == 0
    return sql_rows(url, "SELECT field, reason FROM rejected_row WHERE batch_id = %s "
                         "ORDER BY row_number", report.batch_id)


def test_the_published_schema_is_the_one_checked():
    assert SCHEMA_DOC.read_text(encoding="utf-8") == schema_text(), (
        "docs/iot-message.schema.json is not etl.listen.MESSAGE_SCHEMA: run "
        "`python -m etl.listen` and commit it")
    schema = json.loads(schema_text())
    assert set(schema["$defs"]) == {"telemetry", "alarm"}


def test_the_desk_and_the_wall_show_an_ingested_alarm(live_db, broker, listening, serve):
    """An alarm that came by MQTT is in the alarm list (with its start) and on the device's
    map item, as the dashboard reads them; and cleared when the device says so."""
    from layers.alarms import active_alarms
    from layers.filters import Filters
    from layers.scope import resolve_scope
    from onemap.database import make_engine

    cover = device(live_db, "井盖传感器")
    publish(broker.address(), [(f"onemap/iot/{cover}/alarm",
                                {"ts": "2026-12-03T16:07:00+08:00", "status": "alarm"})])
    wait_for(lambda: events(live_db, cover), 20, "the alarm")
    engine = make_engine(live_db)
    with engine.connect() as conn:
        listed = active_alarms(conn, resolve_scope(conn, None), Filters(), 10_000)
    engine.dispose()
    mine = [f for f in listed["features"] if f["id"] == cover]
    assert mine and str(mine[0]["properties"]["alarm_since"]).startswith("2026-12-03")
    server = serve(live_db)
    item = json.load(server.open(f"/collections/iot-devices/items/{cover}"))
    assert item["properties"]["status"] == "alarm"


def test_the_simulators_messages_are_all_taken(live_db, broker, listening):
    """What ``onemap simulate iot`` publishes passes every check: no dead letter, each
    message an event (or one written already: delivered again)."""
    from democity.simulate import simulate

    total = listening.listener.total
    before = (total.messages, total.events, total.repeated, total.dead)
    sent = simulate(live_db, broker.address(), "Asia/Shanghai", 300, threading.Event(),
                    duration=3)
    assert sent > 600
    wait_for(lambda: total.messages - before[0] >= sent, 30, "every message taken")
    assert total.dead == before[3]
    assert total.events - before[1] + total.repeated - before[2] == sent
    assert total.events - before[1] > 0.95 * sent


def test_serve_live_runs_and_stops_listener_and_simulator(live_db, broker, serve, tmp_path):
    """``make demo``'s ``onemap serve --live RATE``: the devices' messages arrive while the
    dashboard runs, and both helpers stop with it."""
    address = broker.address()
    url = f"mqtt://{address.username}:{address.password}@{address.host}:{address.port}"
    count = "SELECT count(*) FROM iot_event WHERE ts > now() - interval '1 minute'"
    before = sql_rows(live_db, count)[0][0]
    server = serve(live_db, "--live", "100", ONEMAP_MQTT_URL=url, ONEMAP_HOME=str(tmp_path))
    wait_for(lambda: sql_rows(live_db, count)[0][0] > before + 100, 60, "live events")
    server.stop()
    logs = tmp_path / "live"
    listen_log = (logs / "listen.log").read_text()
    assert "stopped:" in listen_log, listen_log
    assert "stopped:" in (logs / "simulate.log").read_text()


def test_a_payload_that_breaks_the_checks_is_a_dead_letter(live_db, broker, monkeypatch):
    """Should the checks themselves fail on some payload (a fault of ours, not the
    device's), the batch goes a message at a time: that message is a dead letter naming the
    error, the rest of its batch is written, and the listener carries on."""
    import etl.listen

    real = etl.listen.transform

    def fragile(chunk, ctx):
        if (chunk.frame["metric"] == "poison").any():
            raise RuntimeError("the checks broke")
        return real(chunk, ctx)

    monkeypatch.setattr(etl.listen, "transform", fragile)
    running = Running(live_db, broker.address(), client_id="test-fragile")
    try:
        sensor = device(live_db, "水位传感器", skip=2)
        topic = f"onemap/iot/{sensor}/telemetry"
        publish(broker.address(), [
            (topic, {"ts": "2026-12-03T17:00:00+08:00", "metric": "水位", "value": 0.1}),
            (topic, {"ts": "2026-12-03T17:00:01+08:00", "metric": "poison", "value": 0.2}),
            (topic, {"ts": "2026-12-03T17:00:02+08:00", "metric": "水位", "value": 0.3}),
        ])
        def mine():  # (the simulator's test may have made the sensor report too)
            return [e for e in events(live_db, sensor)
                    if e[0].isoformat().startswith("2026-12-03T09:00:0")]

        wait_for(lambda: len(mine()) == 2, 20, "the two good messages")
        assert dead(live_db, topic) == [
            (None, "could not be written: RuntimeError: the checks broke")]
        publish(broker.address(), [
            (topic, {"ts": "2026-12-03T17:00:03+08:00", "metric": "水位", "value": 0.4})])
        wait_for(lambda: len(mine()) == 3, 20, "a message after it")
    finally:
        running.stop()
