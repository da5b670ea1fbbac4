"""IoT devices of the demo city (智能路灯, 井盖传感器, 烟感, 水位传感器, 视频监控) and their
last ~90 days of status changes and water-level readings, up to the reference time
``as_of`` (naive local): devices were last heard of minutes before it, and the sensors
report on their own schedules, so the newest reading is about a minute old.

Current status is ~93 % online, 5.5 % offline, 1.5 % alarm, and alarms cluster: water-level
sensors and manhole sensors in a few low-lying grids, smoke detectors in one old-village
cluster. The event history ends in each device's current status: a device now offline went
offline at its ``last_seen``; a water-level sensor in alarm has a reading above
``catalog.WATER_ALARM_M`` at the moment its alarm was raised, and its earlier alarms are the
storms its readings show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from democity import catalog
from democity.sampling import (
    CsvSink,
    District,
    choice,
    district,
    epoch,
    gazetteer,
    points_in_grids,
    rng,
    text_schema,
    time_text,
)

DEVICE_COLUMNS = ["id", "kind", "name", "status", "last_seen", "lon", "lat"]
EVENT_COLUMNS = ["device_id", "ts", "event_type", "status", "metric", "value"]
DEVICE_SCHEMA = text_schema(DEVICE_COLUMNS, {"lon": pa.float64(), "lat": pa.float64()})
EVENT_SCHEMA = text_schema(EVENT_COLUMNS, {"value": pa.float64()})
HISTORY_DAYS = 90
READING_INTERVAL_S = {"S": 3600, "M": 1200, "L": 300}    # water-level readings, by size
HOUR = 3600
DAY = 86400
# Past episodes per device in the window: kind -> (offline rate, alarm rate).
EPISODE_RATES = {"智能路灯": (0.4, 0.15), "井盖传感器": (0.1, 0.2), "烟感": (0.15, 0.3),
                 "水位传感器": (0.0, 0.0), "视频监控": (0.5, 0.0)}
VILLAGE_SMOKE_ALARM_RATE = 1.5      # false and real smoke alarms in the old-village cluster
# Shares of the alarms that sit in the clusters; the rest are scattered.
ALARM_SPLIT = {("烟感", "village"): 0.35, ("水位传感器", "low"): 0.20, ("井盖传感器", "low"): 0.15}


@dataclass(frozen=True)
class Devices:
    """Every device's identity, place and current state (epoch seconds, local time)."""

    id: np.ndarray
    kind: np.ndarray
    name: np.ndarray
    grid: np.ndarray
    x: np.ndarray
    y: np.ndarray
    status: np.ndarray
    status_at: np.ndarray       # when the current non-online status began
    last_seen: np.ndarray
    zone: np.ndarray            # "low", "village" or ""
    low_grids: np.ndarray
    village_grids: np.ndarray
    now: int                    # the reference time they stand at


def plan_devices(d: District, seed: int, as_of: np.datetime64) -> Devices:
    """Devices, their places and their status at ``as_of`` for ``seed``."""
    gen = rng(seed, "iot")
    low, village = _zones(d, rng(seed, "iot-zones"))
    gaz = gazetteer(d, seed)
    kinds, grids, zones = [], [], []
    for kind, (_, per_km2) in catalog.DEVICE_KINDS.items():
        n = int(round(per_km2 * d.area_km2))
        g, z = _device_grids(kind, n, d, low, village, gen)
        kinds += [kind] * n
        grids.append(g)
        zones.append(z)
    grid = np.concatenate(grids)
    zone = np.concatenate(zones)
    kind = np.array(kinds, dtype=object)
    x, y = points_in_grids(d, grid, gen)
    ids, names = _identities(kind, grid, d, gaz, gen)
    status = _statuses(kind, zone, rng(seed, "iot-status"))
    status_at, last_seen = _times(kind, status, epoch(as_of), rng(seed, "iot-times"))
    return Devices(ids, kind, names, grid, x, y, status, status_at, last_seen, zone, low, village,
                   epoch(as_of))


def _zones(d: District, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A low-lying cluster of 3 grids and an old-village cluster of 4 grids elsewhere."""
    low = d.nearest_grids(int(choice(d.weight, 1, gen)[0]), 3)
    w = d.weight.copy()
    w[np.isin(d.grid_comm, d.grid_comm[low])] = 0
    if not w.any():
        w = d.weight.copy()
        w[low] = 0
    order = d.nearest_grids(int(choice(w, 1, gen)[0]), len(d.grid_code))
    village = order[~np.isin(order, low)][:4]
    return low, village


def _device_grids(kind, n, d: District, low, village, gen):
    w, area = d.weight, d.grid_area_km2
    zone_share, zone_grids, zone_name = {
        "井盖传感器": (0.15, low, "low"), "水位传感器": (0.40, low, "low"),
        "烟感": (0.25, village, "village"),
    }.get(kind, (0.0, low[:0], ""))
    weights = {"智能路灯": w ** 0.5 * area ** 0.5, "井盖传感器": w ** 0.7, "烟感": w,
               "水位传感器": w ** 0.3 * area ** 0.5, "视频监控": w ** 0.8}[kind]
    k = int(round(zone_share * n))
    in_zone = zone_grids[choice(w[zone_grids], k, gen)] if k else np.zeros(0, dtype=np.int64)
    rest = choice(weights, n - k, gen)
    zone = np.where(np.isin(rest, zone_grids), zone_name, "") if zone_name else \
        np.full(n - k, "", dtype=object)
    return (np.concatenate([in_zone, rest]).astype(np.int64),
            np.concatenate([np.full(k, zone_name, dtype=object), zone.astype(object)]))


def _identities(kind, grid, d: District, gaz, gen):
    ids, names = [], []
    counters: dict[str, int] = {}
    for k, g in zip(kind, grid, strict=True):
        prefix = catalog.DEVICE_KINDS[k][0]
        counters[k] = counters.get(k, 0) + 1
        ids.append(f"{prefix}{counters[k]:06d}")
        names.append(_name(k, int(d.grid_comm[g]), gaz, gen))
    return np.array(ids, dtype=object), np.array(names, dtype=object)


def _name(kind: str, c: int, gaz, gen) -> str:
    roads = gaz.roads[c]
    road = roads[int(gen.integers(len(roads)))]
    n = int(gen.integers(1, 400))
    if kind == "智能路灯":
        return f"{road}{n:03d}号智能路灯"
    if kind == "井盖传感器":
        use = ("污水", "雨水", "通信", "电力", "给水")[int(gen.integers(5))]
        return f"{road}{use}井盖{n:03d}"
    if kind == "烟感":
        sites = gaz.villages[c] + gaz.estates[c]
        site = sites[int(gen.integers(len(sites)))]
        return f"{site}{int(gen.integers(1, 40))}栋{int(gen.integers(1, 9))}楼烟感"
    if kind == "水位传感器":
        spot = ("下穿通道", "低洼路段", "桥底", "排水口", "隧道口")[int(gen.integers(5))]
        return f"{road}{spot}水位监测点"
    other = roads[(roads.index(road) + 1) % len(roads)]
    form = gen.random()
    if form < 0.5:
        return f"{road}与{other}路口监控"
    if form < 0.75:
        return f"{gaz.estates[c][int(gen.integers(len(gaz.estates[c])))]}出入口监控"
    return f"{gaz.villages[c][int(gen.integers(len(gaz.villages[c])))]}{n % 30 + 1}巷监控"


def _statuses(kind: np.ndarray, zone: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Current status: clustered alarms, scattered offline devices, the rest online."""
    n = len(kind)
    n_alarm = int(round(catalog.DEVICE_STATUS_SHARES["alarm"] * n))
    n_offline = int(round(catalog.DEVICE_STATUS_SHARES["offline"] * n))
    status = np.full(n, "online", dtype=object)
    left = n_alarm
    for (k, z), share in ALARM_SPLIT.items():
        pool = np.flatnonzero((kind == k) & (zone == z))
        take = min(int(round(share * n_alarm)), len(pool) // 2, left)
        status[gen.choice(pool, take, replace=False)] = "alarm"
        left -= take
    scattered = np.flatnonzero((status == "online") & (zone == "") & (kind != "水位传感器"))
    status[gen.choice(scattered, min(left, len(scattered)), replace=False)] = "alarm"
    online = np.flatnonzero(status == "online")
    status[gen.choice(online, min(n_offline, len(online)), replace=False)] = "offline"
    return status


def _times(kind, status, now: int, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """When each current status began, and when each device was last heard of (before
    ``now``, local epoch seconds)."""
    n = len(status)
    alarm_age = np.clip(gen.exponential(10 * HOUR, n), 300, 7 * DAY)
    alarm_age = np.where(kind == "水位传感器", gen.uniform(HOUR, 20 * HOUR, n), alarm_age)
    offline_age = np.clip(gen.exponential(4 * DAY, n), HOUR, 80 * DAY)
    age = np.select([status == "alarm", status == "offline"], [alarm_age, offline_age], 0)
    status_at = now - age.astype(np.int64)
    heard = now - gen.integers(5, 600, n)
    last_seen = np.where(status == "offline", status_at, heard)
    return status_at, last_seen.astype(np.int64)


def write_devices(grids, communities, streets, seed: int, path: str | Path,
                  progress: Callable[[int], None] | None = None, *,
                  as_of: np.datetime64) -> dict:
    """Write the devices CSV as they stand at ``as_of``; return counts by kind and status
    and the alarm clusters."""
    d = district(grids, communities, streets, seed)
    dev = plan_devices(d, seed, as_of)
    with CsvSink(path, DEVICE_SCHEMA) as sink:
        sink.write({"id": dev.id, "kind": dev.kind, "name": dev.name, "status": dev.status,
                    "last_seen": time_text(dev.last_seen), "lon": dev.x, "lat": dev.y})
    if progress:
        progress(len(dev.id))
    frame = pd.DataFrame({"kind": dev.kind, "status": dev.status})
    return {
        "devices": len(dev.id),
        "by_kind": frame["kind"].value_counts().to_dict(),
        "by_status": frame["status"].value_counts().to_dict(),
        "low_lying_grids": [str(c) for c in d.grid_code[dev.low_grids]],
        "old_village_grids": [str(c) for c in d.grid_code[dev.village_grids]],
        "alarms_in_clusters": int(np.sum((dev.status == "alarm") & (dev.zone != ""))),
    }


def write_device_events(grids, communities, streets, size: str, seed: int, path: str | Path,
                        progress: Callable[[int], None] | None = None, *,
                        as_of: np.datetime64) -> dict:
    """Write status changes and water-level readings of the 90 days before ``as_of``;
    return counts.

    Readings come every hour at size S, every 20 minutes at M and every 5 minutes at L
    (~250k, ~750k and ~3M rows for the real district).
    """
    d = district(grids, communities, streets, seed)
    dev = plan_devices(d, seed, as_of)
    interval = READING_INTERVAL_S[size.upper()]
    water = np.flatnonzero(dev.kind == "水位传感器")
    readings = _Readings(dev, water, interval, seed)
    status_events = _status_events(dev, readings, rng(seed, "iot-episodes"))
    n_readings = 0
    with CsvSink(path, EVENT_SCHEMA) as sink:
        sink.write(status_events)
        if progress:
            progress(len(status_events["ts"]))
        for chunk in readings.chunks():
            sink.write(chunk)
            n_readings += len(chunk["ts"])
            if progress:
                progress(len(chunk["ts"]))
    return {"status_events": len(status_events["ts"]), "readings": n_readings,
            "interval_s": interval}


class _Readings:
    """Water levels of every 水位传感器: storms for everyone, more in the low-lying grids,
    and a rising level from the moment an alarm was raised for the sensors now in alarm."""

    def __init__(self, dev: Devices, sensors: np.ndarray, interval: int, seed: int):
        self.dev, self.sensors, self.interval, self.seed = dev, sensors, interval, seed
        gen = rng(seed, "iot-water")
        self.now = int(dev.now)
        self.start = self.now - HISTORY_DAYS * DAY
        self.hours = np.arange(HISTORY_DAYS * 24 + 1)
        self.storm = self._storms(gen)
        low = dev.zone[sensors] == "low"
        self.sens = np.where(low, gen.uniform(0.06, 0.12, len(sensors)),
                             gen.uniform(0.01, 0.04, len(sensors)))
        self.base = gen.uniform(0.02, 0.08, len(sensors))

    def _storms(self, gen: np.random.Generator) -> np.ndarray:
        """Hourly district-wide runoff, none in the last 36 hours (the alarms now are local)."""
        rain = np.zeros(len(self.hours))
        for _ in range(gen.poisson(15)):
            first = int(gen.integers(0, len(self.hours) - 36 - 18))
            hours = int(np.clip(round(gen.lognormal(np.log(4), 0.5)), 1, 18))
            rain[first:first + hours] += gen.lognormal(0, 0.5)
        runoff = np.zeros_like(rain)
        decay = np.exp(-1 / 4)
        for i in range(len(rain)):
            runoff[i] = (runoff[i - 1] * decay if i else 0.0) + rain[i]
        return runoff

    def series(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Times and levels of sensor ``j`` (an index into ``sensors``)."""
        i = self.sensors[j]
        gen = rng(self.seed, "iot-water", int(j))
        # Each sensor keeps its own schedule: together they report every minute or so, and
        # each one's newest reading is less than an interval old.
        phase = int(gen.integers(0, self.interval))
        n = (HISTORY_DAYS * DAY - phase - 1) // self.interval + 1
        jitter = gen.integers(0, max(self.interval // 40, 1), n)
        t = self.start + phase + np.arange(n, dtype=np.int64) * self.interval + jitter
        t = t[t < self.now]
        status, at = self.dev.status[i], int(self.dev.status_at[i])
        if status == "offline":
            t = t[t < at]
        if status == "alarm":
            t = np.union1d(t[t != at], [at])
        level = (self.base[j] + self.sens[j] * np.interp((t - self.start) / HOUR, self.hours,
                                                         self.storm)
                 + gen.normal(0, 0.004, len(t)))
        if status == "alarm":
            since = np.maximum(t - at, 0) / (2 * HOUR)
            rise = catalog.WATER_ALARM_M + 0.02 + 0.25 * (1 - np.exp(-since))
            level = np.where(t >= at, np.maximum(level, rise), level)
        return t, np.round(np.clip(level, 0, None), 3)

    def chunks(self, rows: int = 100_000):
        """Event-file columns of the readings, ~``rows`` at a time."""
        buf: list[tuple[np.ndarray, np.ndarray, str]] = []
        size = 0
        for j in range(len(self.sensors)):
            t, v = self.series(j)
            buf.append((t, v, self.dev.id[self.sensors[j]]))
            size += len(t)
            if size >= rows:
                yield _reading_columns(buf)
                buf, size = [], 0
        if buf:
            yield _reading_columns(buf)


def _reading_columns(buf) -> dict:
    t = np.concatenate([b[0] for b in buf])
    n = len(t)
    return {"device_id": np.concatenate([np.full(len(b[0]), b[2], dtype=object) for b in buf]),
            "ts": time_text(t), "event_type": np.full(n, "reading", dtype=object),
            "status": pa.nulls(n, pa.string()), "metric": np.full(n, catalog.WATER_METRIC),
            "value": np.concatenate([b[1] for b in buf])}


def _status_events(dev: Devices, readings: _Readings, gen: np.random.Generator) -> dict:
    """Status changes of every device, ending in its current status."""
    start, now = readings.start, readings.now
    water_at = {int(i): j for j, i in enumerate(readings.sensors)}
    device, ts, status = [], [], []
    for i in range(len(dev.id)):
        events = [(start - int(gen.integers(60, HOUR)), "online")]
        current, at = dev.status[i], int(dev.status_at[i])
        limit = at if current != "online" else now
        if i in water_at:
            events += _crossings(*readings.series(water_at[i]), limit)
        else:
            events += _episodes(dev.kind[i], dev.zone[i], events[0][0] + HOUR, limit - HOUR, gen)
        if current != "online":
            events.append((at, current))
        device += [dev.id[i]] * len(events)
        ts += [e[0] for e in events]
        status += [e[1] for e in events]
    n = len(ts)
    return {"device_id": np.array(device, dtype=object), "ts": time_text(np.array(ts)),
            "event_type": np.full(n, "status", dtype=object),
            "status": np.array(status, dtype=object), "metric": np.full(n, "", dtype=object),
            "value": pa.nulls(n, pa.float64())}


def _episodes(kind: str, zone: str, lo: int, hi: int, gen: np.random.Generator) -> list:
    """Past offline/alarm episodes that were resolved, without overlaps, within [lo, hi]."""
    off_rate, alarm_rate = EPISODE_RATES[kind]
    if kind == "烟感" and zone == "village":
        alarm_rate += VILLAGE_SMOKE_ALARM_RATE
    spans = []
    for status, rate, median, cap in (("offline", off_rate, 6 * HOUR, 3 * DAY),
                                      ("alarm", alarm_rate, 1800, 12 * HOUR)):
        for _ in range(gen.poisson(rate)):
            dur = int(np.clip(gen.lognormal(np.log(median), 1.0), 120, cap))
            if hi - lo <= dur + 120:
                continue
            begin = int(gen.integers(lo, hi - dur))
            spans.append((begin, begin + dur, status))
    events, last_end = [], lo
    for begin, end, status in sorted(spans):
        if begin > last_end + 60:
            events += [(begin, status), (end, "online")]
            last_end = end
    return events


def _crossings(t: np.ndarray, level: np.ndarray, limit: int) -> list:
    """Alarm raised at ``WATER_ALARM_M``, cleared below ``WATER_CLEAR_M`` (before ``limit``)."""
    keep = t < limit
    t, level = t[keep], level[keep]
    state = pd.Series(np.where(level >= catalog.WATER_ALARM_M, 1.0,
                               np.where(level < catalog.WATER_CLEAR_M, 0.0, np.nan)))
    state = state.ffill().fillna(0.0).to_numpy()
    change = np.flatnonzero(np.diff(np.concatenate([[0.0], state])) != 0)
    return [(int(t[k]), "alarm" if state[k] else "online") for k in change]
