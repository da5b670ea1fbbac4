"""Helpers of the live tests: a private broker per test module (restarted, killed and
stopped without disturbing anyone else's). A missing Mosquitto fails, never skips."""

from __future__ import annotations

import contextlib
import shutil
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
