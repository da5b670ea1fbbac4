"""Faults during a flow of device messages, on a real broker and a real PostGIS: the broker
restarted, the listener killed with SIGKILL, the database stopped for a while. Each time
every message the broker acknowledged to its publisher is written exactly once, and the
listener carries on by itself (or, killed, its successor with the same session does)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from conftest import sql_rows
from live_helpers import Running, load_devices, private_broker, wait_for

from onemap.cluster import LocalCluster
from onemap.migrate import migrate
from onemap.mqtt import new_client, session_properties
from onemap.settings import PROJECT_ROOT, get_settings

pytestmark = [pytest.mark.mqtt, pytest.mark.db]

DEVICES = 50


@pytest.fixture(scope="module")
def broker():
    with private_broker(19100) as local:
        yield local


class Flow:
    """A publisher sending ``count`` readings at about ``rate`` a second in a thread, each
    with a key of its own (device, time, metric ``metric``; its value is its number), from a
    persistent session that rides out a broker restart. ``acked``: the numbers of the
    messages the broker acknowledged."""

    def __init__(self, broker, devices: list[str], metric: str, count: int, rate: float):
        self.address, self.devices, self.metric = broker.address(), devices, metric
        self.count, self.rate = count, rate
        self.base = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
        self.mids: list[int] = []         # message number -> its packet id
        self.acked_mids: set[int] = set()  # PUBACKs received (a publication queued while
        #                                    the broker was away is sent when it is back)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.client = new_client(self.address, f"flow-{metric}")
        self.client.max_inflight_messages_set(500)
        self.client.on_publish = lambda c, u, mid, reason, p: self.acked_mids.add(mid)
        self.client.connect(self.address.host, self.address.port, clean_start=False,
                            properties=session_properties(600))
        self.client.loop_start()
        self.thread.start()

    def message(self, k: int) -> tuple[str, str]:
        device = self.devices[k % len(self.devices)]
        ts = self.base + timedelta(seconds=k // len(self.devices))
        return (f"onemap/iot/{device}/telemetry",
                f'{{"ts": "{ts.isoformat()}", "metric": "{self.metric}", "value": {k}}}')

    def _run(self) -> None:
        started = time.monotonic()
        for k in range(self.count):
            pause = started + k / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.mids.append(self.client.publish(*self.message(k), qos=1).mid)

    @property
    def sent(self) -> int:
        return len(self.mids)

    def finish(self, timeout: float = 60) -> set[int]:
        """Wait for the last publication and the acknowledgements; the acknowledged."""
        self.thread.join(timeout)
        wait_for(lambda: set(self.mids) <= self.acked_mids, timeout,
                 "the broker's acknowledgements")
        self.client.disconnect()
        self.client.loop_stop()
        return {k for k, mid in enumerate(self.mids) if mid in self.acked_mids}


def written(url: str, metric: str) -> dict[int, int]:
    """Each message number written, with how many events hold it."""
    rows = sql_rows(url, "SELECT value::int, count(*) FROM iot_event WHERE metric = %s "
                         "GROUP BY 1", metric)
    return {int(k): n for k, n in rows}


def devices(url: str) -> list[str]:
    return [r[0] for r in sql_rows(url, "SELECT id FROM iot_device ORDER BY id LIMIT %s",
                                   DEVICES)]


def assert_each_once(url: str, flow: Flow, acked: set[int]) -> None:
    assert len(acked) > 0.9 * flow.count, f"only {len(acked)} of {flow.count} acknowledged"
    try:
        got = wait_for(lambda: (w := written(url, flow.metric)) and acked <= set(w) and w, 90,
                       "every acknowledged message written")
    except AssertionError:
        missing = sorted(acked - set(written(url, flow.metric)))
        raise AssertionError(f"{len(missing)} acknowledged messages not written: "
                             f"{missing[:20]}") from None
    assert set(got) <= set(range(flow.sent))
    assert set(got.values()) == {1}, "a message counted twice"
    # The devices' last report is their newest written event.
    newest = flow.base + timedelta(seconds=max(got) // DEVICES)
    seen = sql_rows(url, "SELECT max(last_seen) FROM iot_device WHERE id = ANY(%s)",
                    flow.devices)[0][0]
    assert seen == newest


def test_broker_restart_during_a_flow(live_db, broker):
    running = Running(live_db, broker.address(), client_id="faults-broker")
    flow = Flow(broker, devices(live_db), "restart", 3000, 300)
    try:
        wait_for(lambda: written(live_db, "restart"), 30, "the flow under way")
        broker.down()
        time.sleep(2)
        broker.up()
        acked = flow.finish()
        assert_each_once(live_db, flow, acked)
        assert running.thread.is_alive() and running.listener.connected.is_set()
        assert running.listener.connections >= 2  # it reconnected by itself
    finally:
        running.stop()


def test_listener_killed_during_a_flow(live_db, broker, tmp_path):
    """``onemap listen`` killed with SIGKILL mid-flow; started again with the same client
    id, it gets what its predecessor had not acknowledged and what came meanwhile."""
    address = broker.address()
    env = {**os.environ, "DATABASE_URL": live_db, "ONEMAP_HOME": str(tmp_path),
           "ONEMAP_MQTT_URL": f"mqtt://{address.username}:{address.password}@"
                              f"{address.host}:{address.port}"}

    def listener(log: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "onemap.cli", "listen", "--client-id",
                                 "faults-kill"], env=env, stdout=(tmp_path / log).open("w"),
                                stderr=subprocess.STDOUT)

    first = listener("first.log")
    wait_for(lambda: "subscribed to" in (tmp_path / "first.log").read_text(), 60,
             "the first listener's subscription")
    flow = Flow(broker, devices(live_db), "killed", 3000, 300)
    second = None
    try:
        wait_for(lambda: len(written(live_db, "killed")) > 300, 60, "the flow under way")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        time.sleep(2)  # messages come and wait for the session meanwhile
        second = listener("second.log")
        acked = flow.finish()
        assert_each_once(live_db, flow, acked)
    finally:
        for process in (first, second):
            if process and process.poll() is None:
                process.terminate()
                process.wait(30)
    assert "stopped:" in (tmp_path / "second.log").read_text()


@pytest.fixture(scope="module")
def own_cluster(city):
    """A PostGIS cluster of its own, to be stopped and started (in the checkout: the server
    user must reach its folder), with the demo city's devices."""
    home = PROJECT_ROOT / ".onemap" / "test-clusters" / uuid.uuid4().hex[:8]
    cluster = LocalCluster(get_settings(home=home, pg_port=55600, database_url=None))
    cluster.up()
    migrate(cluster.url())
    load_devices(cluster.url(), city)
    yield cluster
    cluster.down()
    shutil.rmtree(home, ignore_errors=True)


def test_database_stopped_during_a_flow(own_cluster, broker):
    url = own_cluster.url()
    running = Running(url, broker.address(), client_id="faults-db")
    flow = Flow(broker, devices(url), "outage", 3000, 300)
    try:
        wait_for(lambda: written(url, "outage"), 30, "the flow under way")
        own_cluster.down()
        time.sleep(4)  # messages keep coming; the listener holds its batch, unacknowledged
        assert running.thread.is_alive()
        own_cluster.up()
        acked = flow.finish()
        assert_each_once(url, flow, acked)
        assert running.thread.is_alive() and running.listener.outages >= 1
    finally:
        running.stop()
