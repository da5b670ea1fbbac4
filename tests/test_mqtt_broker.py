"""The embedded broker's life cycle (``onemap mqtt up|down|status``) and ONEMAP_MQTT_URL, on a
real Mosquitto. A missing Mosquitto fails these tests: it is never skipped."""

from __future__ import annotations

import os
import queue
import socket
import stat
import subprocess
import sys

import pytest
from live_helpers import private_broker

from onemap.mqtt import Broker, LocalBroker, broker, new_client, session_properties
from onemap.settings import get_settings

pytestmark = pytest.mark.mqtt


@pytest.fixture(scope="module")
def local():
    with private_broker(18900) as local:
        yield local


def _connect(address: Broker, client_id: str = "", clean: bool = True):
    """A connected client with its loop running, and the reason code of its CONNACK."""
    client = new_client(address, client_id)
    answers: queue.Queue = queue.Queue()
    client.on_connect = lambda c, u, f, reason, p: answers.put(reason)
    client.connect(address.host, address.port, clean_start=clean,
                   properties=None if clean else session_properties())
    client.loop_start()
    reason = answers.get(timeout=10)
    return client, reason


def test_up_twice_is_harmless(local):
    first, second = local.up(), local.up()
    assert first.running and (first.pid, first.port) == (second.pid, second.port)
    assert local.port_file.read_text().strip() == str(first.port)


def test_password_is_private_and_required(local):
    credentials = local.credentials
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert credentials.parent != local.root  # not in the folder the server user owns
    address = local.address()
    assert address.password and address.password not in (local.root / "passwd").read_text()
    client, reason = _connect(address)
    assert not reason.is_failure
    client.loop_stop()
    client.disconnect()
    for wrong in (Broker(address.host, address.port, None, None),
                  Broker(address.host, address.port, address.username, "wrong")):
        client, reason = _connect(wrong)
        client.loop_stop()
        assert reason.is_failure, f"{wrong.url()} was let in"


def test_listens_on_localhost_only(local):
    config = local.config.read_text()
    assert f"listener {local.port} 127.0.0.1" in config
    other = _an_address_not_loopback()
    if other:
        with pytest.raises(OSError), socket.create_connection((other, local.port), timeout=1):
            pass


def test_runs_unprivileged(local):
    pid = local.running_pid()
    uid = os.stat(f"/proc/{pid}").st_uid
    assert uid != 0 or os.geteuid() != 0


def test_a_queued_message_survives_a_restart(local):
    """A persistent session's QoS 1 message, queued while its client was away, is still
    there after the broker stopped and started again (persistence on)."""
    address = local.address()
    client, _ = _connect(address, "keeper", clean=False)
    subscribed = queue.Queue()
    client.on_subscribe = lambda *a: subscribed.put(True)
    client.subscribe("onemap/test/keep", qos=1)
    subscribed.get(timeout=10)
    client.disconnect()
    client.loop_stop()
    publisher, _ = _connect(address)
    publisher.publish("onemap/test/keep", b"kept", qos=1).wait_for_publish(10)
    publisher.disconnect()
    publisher.loop_stop()
    local.down()
    assert not local.status().running
    local.up()
    got: queue.Queue = queue.Queue()
    client = new_client(local.address(), "keeper")
    client.on_message = lambda c, u, message: got.put(message.payload)
    client.connect(address.host, local.port, clean_start=False,
                   properties=session_properties())
    client.loop_start()
    try:
        assert got.get(timeout=10) == b"kept"
    finally:
        client.disconnect()
        client.loop_stop()


def test_taken_port_means_another_port(local):
    old = local.port
    local.down()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", old))
        holder.listen()
        status = local.up()
    assert status.running and status.port != old
    assert local.port == status.port


def test_mqtt_url_names_another_broker(local, tmp_path):
    address = local.address()
    url = f"mqtt://{address.username}:{address.password}@127.0.0.1:{address.port}"
    settings = get_settings(home=tmp_path, mqtt_url=url)
    assert broker(settings) == address
    assert not LocalBroker(settings).config.exists()  # nothing of ours was made or started


def test_cli_up_status_down(tmp_path_factory):
    with private_broker(18950) as local:
        env = {**os.environ, "ONEMAP_HOME": str(local.settings.home),
               "ONEMAP_MQTT_PORT": "18950"}
        env.pop("ONEMAP_MQTT_URL", None)

        def cli(*args):
            return subprocess.run([sys.executable, "-m", "onemap.cli", "mqtt", *args],
                                  capture_output=True, text=True, env=env)

        assert cli("status").returncode == 0
        assert cli("down").returncode == 0
        stopped = cli("status")
        assert stopped.returncode == 3 and "stopped" in stopped.stdout
        up = cli("up")
        assert up.returncode == 0, up.stderr
        assert f":{local.port}" in up.stdout and local.address().password not in up.stdout


def _an_address_not_loopback() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address

