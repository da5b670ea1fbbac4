"""``onemap simulate iot``: what the demo city's devices say, and when (pure, on a made-up
set of devices), and that the listener takes every message it publishes."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from democity.catalog import WATER_ALARM_M
from democity.simulate import (
    COVER,
    INCIDENTS_PER_HOUR,
    LIGHT,
    SMOKE,
    WATER,
    Devices,
    Simulation,
)

ZONE = ZoneInfo("Asia/Shanghai")


def city(n_per_kind: int = 40) -> Devices:
    kinds = [LIGHT, COVER, SMOKE, WATER, "视频监控"]
    kind = np.array([k for k in kinds for _ in range(n_per_kind)], dtype=object)
    n = len(kind)
    ids = np.array([f"D{i:05d}" for i in range(n)], dtype=object)
    grid = np.array([f"G{i % 10}" for i in range(n)], dtype=object)
    community = np.array([f"C{i % 3}" for i in range(n)], dtype=object)
    return Devices(ids, kind, grid, community, np.full(n, "online", dtype=object))


def run(sim: Simulation, start: datetime, minutes: float, every: float = 10.0,
        budget: int = 0) -> list[tuple[datetime, str, dict]]:
    out, t = [], start
    while t < start + timedelta(minutes=minutes):
        t += timedelta(seconds=every)
        out += [(t, topic, payload) for topic, payload in sim.step(t, every, budget)]
    return out


def test_street_lights_switch_on_at_dusk_and_off_at_dawn():
    devices = city()
    lights = set(devices.ids[devices.kind == LIGHT])
    sim = Simulation(devices, ZONE)
    evening = run(sim, datetime(2026, 12, 3, 17, 0, tzinfo=ZONE), 120)
    on = [(t, topic.split("/")[2]) for t, topic, p in evening
          if p.get("metric") == "亮灯" and p["value"] == 1.0]
    assert {device for _, device in on} == lights          # every light, once
    assert len(on) == len(lights)
    hours = [t.hour + t.minute / 60 for t, _ in on]
    assert min(hours) > 17.4 and max(hours) < 18.4          # at dusk, a few minutes apart
    morning = run(sim, datetime(2026, 12, 4, 6, 0, tzinfo=ZONE), 120)
    off = [p for _, _, p in morning if p.get("metric") == "亮灯"]
    assert len(off) == len(lights) and all(p["value"] == 0.0 for p in off)


def test_covers_and_smoke_alarm_rarely_and_in_clusters():
    devices = city()
    sim = Simulation(devices, ZONE, seed=3)
    day = run(sim, datetime(2026, 12, 3, 9, 0, tzinfo=ZONE), 12 * 60, every=30)
    raised = [(t, topic.split("/")[2]) for t, topic, p in day if p.get("status") == "alarm"]
    index = {d: i for i, d in enumerate(devices.ids)}
    for kind, where in ((COVER, devices.grid), (SMOKE, devices.community)):
        mine = [(t, d) for t, d in raised if devices.kind[index[d]] == kind]
        # Alarms raised in the same step (an incident) share their grid / community.
        by_time: dict = {}
        for t, d in mine:
            by_time.setdefault(t, set()).add(where[index[d]])
        assert all(len(places) == 1 for places in by_time.values()), by_time
        # Rare: a few incidents an hour in the whole city (12 hours here), of 1-4 devices.
        expected = INCIDENTS_PER_HOUR[kind] * 12
        assert 0.4 * expected < len(by_time) < 1.6 * expected, (kind, len(by_time))
        assert len(mine) <= 4 * len(by_time)
    cleared = [p for _, _, p in day if p.get("status") == "online"]
    assert cleared  # alarms end


def test_water_levels_rise_with_rain_and_fall_after():
    devices = city()
    sim = Simulation(devices, ZONE, seed=5)
    water = devices.kind == WATER
    start = datetime(2026, 12, 3, 12, 0, tzinfo=ZONE)
    sim.rain, sim.rain_until = 40.0, start + timedelta(minutes=60)   # a downpour
    storm = run(sim, start, 60, every=30)
    peak = sim.level[water].copy()
    assert peak.mean() > 0.2
    sensors = set(devices.ids[water])
    raised = {topic.split("/")[2] for _, topic, p in storm
              if p.get("status") == "alarm" and topic.split("/")[2] in sensors}
    assert raised
    # Each sensor's alarm comes with the reading that crossed the line.
    crossing = {(t, topic.split("/")[2]): p["value"] for t, topic, p in storm
                if p.get("metric") == "水位"}
    for t, topic, p in storm:
        if p.get("status") == "alarm" and topic.split("/")[2] in sensors:
            assert crossing[(t, topic.split("/")[2])] >= WATER_ALARM_M  # (3 decimals)
    after = run(sim, start + timedelta(minutes=60), 240, every=60)
    assert (sim.level[water] < 0.5 * peak).all()
    cleared = {topic.split("/")[2] for _, topic, p in after if p.get("status") == "online"}
    assert raised <= cleared  # (a later shower may raise and clear others)


def test_routine_readings_fill_the_rate():
    sim = Simulation(city(), ZONE)
    got = sim.step(datetime(2026, 12, 3, 12, 0, tzinfo=ZONE), 1.0, 150)
    assert len(got) == 150
    assert all(t.endswith("/telemetry") and np.isfinite(p["value"]) for t, p in got)
