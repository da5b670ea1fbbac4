"""``onemap simulate iot``: the demo city's devices, live. Reads the devices loaded in the
database and publishes their messages to the broker (the topics and payloads of
:mod:`etl.listen`) at about ``rate`` messages a second, until stopped.

What they say, in the city's local time:

- 智能路灯 switch on at dusk and off at dawn (each a few minutes apart from its neighbours)
  and report their power: about 100 W lit, nothing by day.
- 井盖传感器 and 烟感 raise alarms rarely and in clusters: an incident picks a grid (smoke
  detectors: a community) and sets off a few of its devices within a minute; each alarm is
  cleared some minutes later. Their routine reports are a tilt angle and a smoke density.
- 水位传感器 follow the rain: showers come and go, each sensor's level rises with the rain
  on its catchment and drains after it; a level above ``WATER_ALARM_M`` raises the sensor's
  alarm, one below ``WATER_CLEAR_M`` clears it.
- 视频监控 report their bit rate.

Status changes go first; routine readings fill the rest of each second's messages.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from democity.catalog import WATER_ALARM_M, WATER_CLEAR_M, WATER_METRIC
from etl.listen import TOPIC_ROOT
from onemap.database import libpq_url
from onemap.mqtt import Broker, new_client

LIGHT, COVER, SMOKE, WATER, CAMERA = "智能路灯", "井盖传感器", "烟感", "水位传感器", "视频监控"
DUSK, DAWN = 17.9, 6.8              # hours, local: 坪山 in winter, give or take
INCIDENTS_PER_HOUR = {COVER: 3.0, SMOKE: 2.0}
ALARM_MINUTES = {COVER: (3, 25), SMOKE: (2, 15)}
RAIN_PER_HOUR = 0.5                 # showers starting, on average
TICK = 0.1                          # seconds between publishing rounds


@dataclass
class Devices:
    ids: np.ndarray
    kind: np.ndarray
    grid: np.ndarray
    community: np.ndarray
    status: np.ndarray


def read_devices(url: str) -> Devices:
    """The devices loaded in the database (the demo city's, or any)."""
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute("SELECT id, kind, grid_code, community_code, status "
                            "FROM iot_device ORDER BY id").fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
    return Devices(*(np.array(c, dtype=object) for c in columns))


@dataclass
class Simulation:
    """The devices' state and what they say next; :meth:`step` is pure but for its random
    generator, so a seed gives the same messages for the same times."""

    devices: Devices
    zone: ZoneInfo
    seed: int = 7
    gen: np.random.Generator = field(init=False)
    alarms: dict[str, datetime] = field(init=False, default_factory=dict)  # id -> clears at
    lit: np.ndarray = field(init=False)
    rain: float = 0.0                      # mm/h now
    rain_until: datetime | None = None

    def __post_init__(self) -> None:
        self.gen = np.random.default_rng(self.seed)
        n = len(self.devices.ids)
        self.offset = self.gen.normal(0, 0.08, n)         # hours: lights switch apart
        self.lit = np.zeros(n, dtype=bool)
        self.started = False
        water = self.devices.kind == WATER
        self.level = np.where(water, self.gen.uniform(0.0, 0.08, n), 0.0)
        self.catchment = np.where(water, self.gen.lognormal(0, 0.4, n), 0.0)
        self.by_kind = {k: np.flatnonzero(self.devices.kind == k)
                        for k in (LIGHT, COVER, SMOKE, WATER, CAMERA)}
        self.alarmed_water = set(self.devices.ids[water & (self.devices.status == "alarm")])
        self.second: datetime | None = None
        self.reported: set[int] = set()   # devices whose routine metric was sent this second

    def step(self, now: datetime, seconds: float, budget: int) -> list[tuple[str, dict]]:
        """The messages of the ``seconds`` up to ``now`` (aware, local): every status
        change, then routine readings up to ``budget`` messages in all. Times are whole
        seconds, as an event keeps them: a device reports a metric at most once a second
        (a second reading would be the same event)."""
        second = now.replace(microsecond=0)
        if second != self.second:
            self.second, self.reported = second, set()
        stamp = second.isoformat()
        urgent = self._lights(now, stamp) + self._incidents(now, seconds, stamp)
        urgent += self._clearings(now, stamp) + self._water(now, seconds, stamp)
        return urgent + self._routine(max(0, budget - len(urgent)), stamp)

    # -- street lights -------------------------------------------------------------------------
    def _lights(self, now: datetime, stamp: str) -> list:
        idx = self.by_kind[LIGHT]
        hour = now.hour + now.minute / 60 + now.second / 3600
        local = hour + self.offset[idx]
        lit = (local >= DUSK) | (local < DAWN)
        switched = idx[lit != self.lit[idx]] if self.started else idx[:0]
        self.lit[idx] = lit
        self.started = True
        return [self._reading(i, "亮灯", float(self.lit[i]), stamp) for i in switched]

    # -- covers and smoke detectors --------------------------------------------------------------
    def _incidents(self, now: datetime, seconds: float, stamp: str) -> list:
        out = []
        for kind, per_hour in INCIDENTS_PER_HOUR.items():
            idx = self.by_kind[kind]
            if not len(idx) or self.gen.random() >= per_hour * seconds / 3600:
                continue
            where = self.devices.community if kind == SMOKE else self.devices.grid
            place = where[self.gen.choice(idx)]
            near = idx[where[idx] == place]
            hit = self.gen.choice(near, size=min(len(near), int(self.gen.integers(1, 5))),
                                  replace=False)
            low, high = ALARM_MINUTES[kind]
            for i in hit:
                device = self.devices.ids[i]
                if device not in self.alarms:
                    self.alarms[device] = now + timedelta(minutes=float(self.gen.uniform(low,
                                                                                         high)))
                    out.append(self._status(i, "alarm", stamp))
        return out

    def _clearings(self, now: datetime, stamp: str) -> list:
        done = [d for d, until in self.alarms.items() if until <= now]
        index = {d: i for i, d in enumerate(self.devices.ids)} if done else {}
        for device in done:
            del self.alarms[device]
        return [self._status(index[d], "online", stamp) for d in done]

    # -- water levels ----------------------------------------------------------------------------
    def _water(self, now: datetime, seconds: float, stamp: str) -> list:
        if self.rain_until is None and self.gen.random() < RAIN_PER_HOUR * seconds / 3600:
            self.rain = float(self.gen.lognormal(2.0, 0.6))          # mm/h
            self.rain_until = now + timedelta(minutes=float(self.gen.uniform(15, 90)))
        elif self.rain_until is not None and now >= self.rain_until:
            self.rain, self.rain_until = 0.0, None
        idx = self.by_kind[WATER]
        hours = seconds / 3600
        # Rain fills the low points (metres per mm of rain, by catchment); they drain with a
        # half-life of about 40 minutes.
        self.level[idx] += self.rain * hours * 0.02 * self.catchment[idx]
        self.level[idx] *= 0.5 ** (hours / (40 / 60))
        out = []
        for i in idx:
            device = self.devices.ids[i]
            if self.level[i] > WATER_ALARM_M and device not in self.alarmed_water:
                self.alarmed_water.add(device)
                self.reported.add(int(i))
                out += [self._reading(i, WATER_METRIC, self.level[i], stamp),
                        self._status(i, "alarm", stamp)]
            elif self.level[i] < WATER_CLEAR_M and device in self.alarmed_water:
                self.alarmed_water.discard(device)
                self.reported.add(int(i))
                out += [self._reading(i, WATER_METRIC, self.level[i], stamp),
                        self._status(i, "online", stamp)]
        return out

    # -- routine readings --------------------------------------------------------------------------
    def _routine(self, budget: int, stamp: str) -> list:
        if not budget or not len(self.devices.ids):
            return []
        fresh = [int(i) for i in self.gen.permutation(len(self.devices.ids))
                 if int(i) not in self.reported][:budget]
        self.reported.update(fresh)
        return [self._routine_one(i, stamp) for i in fresh]

    def _routine_one(self, i: int, stamp: str) -> tuple[str, dict]:
        kind, g = self.devices.kind[i], self.gen
        if kind == LIGHT:
            return self._reading(i, "功率", round(g.normal(100, 8), 1) if self.lit[i] else 0.0,
                                 stamp)
        if kind == COVER:
            tilt = g.uniform(20, 60) if self.devices.ids[i] in self.alarms else g.normal(0.5, 0.2)
            return self._reading(i, "倾角", round(abs(tilt), 2), stamp)
        if kind == SMOKE:
            alarmed = self.devices.ids[i] in self.alarms
            return self._reading(i, "烟雾浓度", round(g.uniform(0.2, 0.6) if alarmed
                                                     else abs(g.normal(0.01, 0.005)), 3), stamp)
        if kind == WATER:
            return self._reading(i, WATER_METRIC, self.level[i], stamp)
        return self._reading(i, "码率", round(g.normal(4.0, 0.3), 2), stamp)

    # -- messages ----------------------------------------------------------------------------------
    def _reading(self, i: int, metric: str, value: float, stamp: str) -> tuple[str, dict]:
        return (f"{TOPIC_ROOT}/{self.devices.ids[i]}/telemetry",
                {"ts": stamp, "metric": metric, "value": round(float(value), 3)})

    def _status(self, i: int, status: str, stamp: str) -> tuple[str, dict]:
        return f"{TOPIC_ROOT}/{self.devices.ids[i]}/alarm", {"ts": stamp, "status": status}


def simulate(url: str, address: Broker, zone: str, rate: float, stop: threading.Event, *,
             seed: int = 7, duration: float | None = None,
             on_tick: Callable[[int], None] | None = None) -> int:
    """Publish the devices' messages at about ``rate`` a second (QoS 1) until ``stop`` is set
    or ``duration`` seconds passed; return how many the broker acknowledged."""
    devices = read_devices(url)
    if not len(devices.ids):
        raise ValueError("no IoT devices are loaded: load the demo city first (make data)")
    tz = ZoneInfo(zone)
    sim = Simulation(devices, tz, seed)
    client = new_client(address, f"onemap-simulator-{seed}")
    client.max_inflight_messages_set(1000)
    client.connect(address.host, address.port)
    client.loop_start()
    pending, total, started, owed = [], 0, time.monotonic(), 0.0
    last = started
    try:
        while not stop.is_set() and (duration is None or last - started < duration):
            stop.wait(max(0.0, last + TICK - time.monotonic()))
            now_mono = time.monotonic()
            seconds, last = now_mono - last, now_mono
            owed += rate * seconds
            messages = sim.step(datetime.now(tz), seconds, int(owed))
            owed -= len(messages)
            owed = max(owed, 0.0)
            for topic, payload in messages:
                pending.append(client.publish(topic, json.dumps(payload, ensure_ascii=False),
                                              qos=1))
            total += len(messages)
            pending = [p for p in pending if not p.is_published()]
            if on_tick:
                on_tick(len(messages))
        for info in pending:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()
    return total - sum(1 for p in pending if not p.is_published())
