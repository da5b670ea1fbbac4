"""Helpers of the live tests: a private broker per test module (restarted, killed and
stopped without disturbing anyone else's). A missing Mosquitto fails, never skips."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import uuid

import pytest

from onemap.errors import OnemapError
from onemap.mqtt import LocalBroker
from onemap.settings import PROJECT_ROOT, get_settings


@contextlib.contextmanager
def private_broker(port: int):
    """A broker of its own in the checkout (the server user must reach its folder), trying
    ports from ``port``; stopped and removed afterwards."""
    home = PROJECT_ROOT / ".onemap" / "test-brokers" / uuid.uuid4().hex[:8]
    local = LocalBroker(get_settings(home=home, mqtt_port=port, mqtt_url=None))
    try:
        local.up()
    except OnemapError as exc:
        shutil.rmtree(home, ignore_errors=True)
        pytest.fail(f"the MQTT broker is required: {exc}", pytrace=False)
    try:
        yield local
    finally:
        with contextlib.suppress(OnemapError):
            local.down()
        shutil.rmtree(home, ignore_errors=True)


def load_devices(url: str, city) -> None:
    """The demo city's admin units and devices (not their history, nor cases) in ``url``."""
    from democity.city import ADMIN_LAYERS
    from etl.load import load

    for level in ADMIN_LAYERS:
        load(url, "admin", [city.admin], city.mapping(f"admin-{level}"), level=level)
    load(url, "iot", [city.csv("iot")], city.mapping("iot"))


def publish(address, messages, client_id: str = "") -> None:
    """Publish ``(topic, payload)`` pairs at QoS 1, each acknowledged by the broker."""
    from onemap.mqtt import new_client

    client = new_client(address, client_id)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload if isinstance(payload, bytes)
                                else json.dumps(payload, ensure_ascii=False), qos=1)
                 for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def wait_for(predicate, timeout: float = 30.0, what: str = "the condition"):
    """``predicate()`` once it is truthy, polling; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not hold within {timeout:.0f} s (last: {value!r})")


class Running:
    """A :class:`etl.listen.Listener` in a thread, stopped by ``stop()``."""

    def __init__(self, db_url: str, address, client_id: str = "test-listener", **options):
        from etl.listen import Listener

        self.listener = Listener(db_url, address, "Asia/Shanghai", client_id=client_id,
                                 **options)
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.listener.run, args=(self.halt,),
                                       daemon=True)
        self.thread.start()
        wait_for(self.listener.subscribed.is_set, 20, "the listener's subscription")

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the listener did not stop"
