"""Live IoT ingest: how many device messages a second ``onemap listen`` writes, sustained,
with the broker, the listener, the publisher and PostgreSQL on this one machine.

The demo city S's devices (8.5k, admin units and devices loaded into a scratch database)
publish readings, each with a key of its own, through a private broker (so no other listener
sees them) to ``onemap listen`` running as its own process with its default batches
(a batch: what came while the one before was written, or within 200 ms of its first
message; checked and transformed in parts while the batch before is written):

1. *offered rate*: a publisher process offers ``BENCH_LIVE_RATE`` messages a second
   (default 2,000, the target) for ``BENCH_LIVE_SECONDS`` (default 40). Every second the
   bench counts what the broker acknowledged to the publisher and what is written; the
   backlog is their difference. Reported: the written rate over the steady part (the first
   5 s left out), the backlog's growth over it (a listener that keeps up holds it flat: the
   backlog is what its batches hold in flight, not a queue that grows), its largest, and
   how long after the publisher's start everything was written.
2. *drain*: with the listener stopped, ``BENCH_LIVE_BURST`` messages (default 30,000) are
   queued in its persistent session; started again, how fast it writes them all.

Target (issue 18): at least 2,000 messages a second with no backlog growth. The machine is
shared with other workers' tests and benchmarks: its load average is recorded beside the
figures.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from bench.common import ROOT, metric, print_table, scratch_database, write_results

RATE = float(os.environ.get("BENCH_LIVE_RATE", 2000))
SECONDS = float(os.environ.get("BENCH_LIVE_SECONDS", 40))
BURST = int(os.environ.get("BENCH_LIVE_BURST", 30_000))
TARGET = 2000.0
WARMUP = 5.0
BASE = datetime(2026, 12, 1, tzinfo=UTC)


def _length(n: int) -> bytes:
    """MQTT's variable-length integer."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (128 if n else 0))
        if not n:
            return bytes(out)


def _text(value: str) -> bytes:
    data = value.encode()
    return struct.pack("!H", len(data)) + data


def publish(address, devices: list[str], first: int, count: int, rate: float | None,
            acked, done) -> None:
    """In a child process: ``count`` readings numbered from ``first`` (metric ``bench``),
    at ``rate`` a second (None: as fast as it goes), QoS 1, at most 1,000 unacknowledged;
    ``acked`` counts the broker's PUBACKs. MQTT 3.1.1 written on a plain socket: a Python
    MQTT client spends more per message than the listener does, and the bench measures the
    listener."""
    sock = socket.create_connection((address.host, address.port))
    body = (_text("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60)
            + _text(f"bench-publisher-{first}") + _text(address.username)
            + _text(address.password))
    sock.sendall(b"\x10" + _length(len(body)) + body)
    if sock.recv(4)[3] != 0:
        raise RuntimeError("the broker refused the publisher")
    window = threading.Semaphore(1000)

    def read_acks():
        buffer = b""
        while acked.value < count:
            data = sock.recv(65536)
            if not data:
                return
            buffer += data
            whole = len(buffer) // 4 * 4  # PUBACKs only: 4 bytes each
            n = whole // 4
            buffer = buffer[whole:]
            with acked.get_lock():
                acked.value += n
            for _ in range(n):
                window.release()

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    started = time.monotonic()
    for k in range(first, first + count):
        if rate and k % 20 == 0:
            pause = started + (k - first) / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        device = devices[k % len(devices)]
        ts = (BASE + timedelta(seconds=k // len(devices))).isoformat()
        payload = f'{{"ts": "{ts}", "metric": "bench", "value": {k}}}'.encode()
        packet = (_text(f"onemap/iot/{device}/telemetry") + struct.pack("!H", k % 65535 + 1)
                  + payload)
        window.acquire()
        sock.sendall(b"\x32" + _length(len(packet)) + packet)
    reader.join(count / (rate or 1000) + 120)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    done.set()


def written(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM iot_event WHERE metric = 'bench'"
                            ).fetchone()[0]


def listener(url: str, broker_url: str, home, name: str) -> subprocess.Popen:
    """``onemap listen`` in its own process, once it has subscribed (log: HOME/NAME.log)."""
    env = {**os.environ, "DATABASE_URL": url, "ONEMAP_MQTT_URL": broker_url,
           "ONEMAP_HOME": str(home), "PYTHONPATH": str(ROOT)}
    path = home / f"{name}.log"
    with path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "onemap.cli", "listen",
                                    "--client-id", "bench-listener"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while "subscribed to" not in path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(path.read_text()[-2000:])
        time.sleep(0.1)
    return process


def load_devices(url: str, city) -> None:
    """The city's admin units and devices (not their history, nor its cases)."""
    from democity.city import ADMIN_LAYERS
    from etl.load import load

    for level in ADMIN_LAYERS:
        load(url, "admin", [city.admin], city.mapping(f"admin-{level}"), level=level)
    load(url, "iot", [city.csv("iot")], city.mapping("iot"))


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(60)


def offered(url, address, devices) -> dict:
    acked, done = mp.Value("l", 0), mp.Event()
    child = mp.Process(target=publish, args=(address, devices, 0, int(RATE * SECONDS), RATE,
                                             acked, done))
    start_count = written(url)
    started = time.monotonic()
    child.start()
    samples = []  # (seconds, acknowledged, written)
    while not done.is_set() and time.monotonic() - started < SECONDS + 120:
        time.sleep(1.0)
        samples.append((time.monotonic() - started, acked.value, written(url) - start_count))
    child.join(30)
    total = int(RATE * SECONDS)
    deadline = time.monotonic() + 120
    while written(url) - start_count < total and time.monotonic() < deadline:
        time.sleep(0.5)
    drained = time.monotonic() - started
    steady = [s for s in samples if WARMUP <= s[0] <= SECONDS]
    t, a, w = (np.array(col, dtype=float) for col in zip(*steady, strict=True))
    backlog = a - w
    return {"written_rate": float(np.polyfit(t, w, 1)[0]),
            "acked_rate": float(np.polyfit(t, a, 1)[0]),
            "backlog_growth": float(np.polyfit(t, backlog, 1)[0]),
            "backlog_max": int(backlog.max()), "backlog_mean": float(backlog.mean()),
            "all_written_after": drained, "written": written(url) - start_count,
            "sent": total}


def drain(url, address, devices, broker_url, home) -> dict:
    process = listener(url, broker_url, home, "drain-1")
    stop(process)  # the session exists; now it is away
    acked, done = mp.Value("l", 0), mp.Event()
    first = 10_000_000
    first_written = written(url)
    child = mp.Process(target=publish, args=(address, devices, first, BURST, None, acked,
                                             done))
    child.start()
    child.join(600)
    process = listener(url, broker_url, home, "drain-2")
    before = written(url)  # timed from its subscription (not its start-up)
    started = time.monotonic()
    while written(url) < BURST + first_written and time.monotonic() - started < 600:
        time.sleep(0.2)
    seconds = time.monotonic() - started
    stop(process)
    return {"rate": (written(url) - before) / seconds, "seconds": seconds,
            "written": written(url) - before, "queued": BURST}


def main() -> None:
    from democity.city import PINNED_AS_OF, default_folder, generate
    from onemap.mqtt import LocalBroker
    from onemap.settings import get_settings

    load_before = os.getloadavg()
    home = ROOT / ".onemap" / "bench-live"
    home.mkdir(parents=True, exist_ok=True)
    city_dir = default_folder(ROOT / ".onemap", "S", 7)
    city = generate("S", 7, city_dir, as_of=PINNED_AS_OF)
    local = LocalBroker(get_settings(home=home, mqtt_port=19500, mqtt_url=None))
    local.down()
    shutil.rmtree(local.root, ignore_errors=True)  # a fresh broker: no session of a run before
    local.up()
    address = local.address()
    broker_url = f"mqtt://{address.username}:{address.password}@{address.host}:{address.port}"
    try:
        with scratch_database("onemap_bench_live") as url:
            load_devices(url, city)
            with psycopg.connect(url) as conn:
                devices = [r[0] for r in conn.execute("SELECT id FROM iot_device ORDER BY id")]
            process = listener(url, broker_url, home, "offered")
            try:
                steady = offered(url, address, devices)
            finally:
                stop(process)
            burst = drain(url, address, devices, broker_url, home)
            with psycopg.connect(url) as conn:
                dead = conn.execute("SELECT reason, count(*) FROM iot_dead_letter GROUP BY 1 "
                                    "ORDER BY 2 DESC").fetchall()
            load_after = os.getloadavg()
            metrics = [
                metric(f"sustained ingest, {RATE:,.0f} messages/s offered for {SECONDS:.0f} s",
                       steady["written_rate"], "messages/s",
                       "acknowledged by the broker", steady["acked_rate"],
                       steady["written_rate"] / steady["acked_rate"], f">= {TARGET:,.0f}",
                       steady["written_rate"] >= TARGET
                       and steady["backlog_growth"] < 0.01 * RATE),
                metric("backlog growth while offered", steady["backlog_growth"],
                       "messages/s", target="~0 (< 1% of the rate)",
                       met=steady["backlog_growth"] < 0.01 * RATE),
                metric("backlog (acknowledged, not yet written), largest", steady["backlog_max"],
                       "messages"),
                metric("every message written, after the flow's nominal end",
                       steady["all_written_after"] - SECONDS, "s"),
                metric("drain of a queued burst", burst["rate"], "messages/s",
                       target=f">= {TARGET:,.0f}", met=burst["rate"] >= TARGET),
                metric("dead letters", sum(n for _, n in dead), "messages", target="0",
                       met=not dead),
            ]
            if dead:
                print("dead letters:", dead[:5])
            print_table(metrics)
            print(write_results("live", metrics, url, {
                "devices": len(devices), "offered": steady, "burst": burst,
                "listener": "onemap listen in its own process with its defaults (a batch: "
                            "what came while the one before was written, or within 200 ms "
                            "of its first message); a private Mosquitto; the publisher in "
                            "another process (MQTT 3.1.1, QoS 1)",
                "note": "measured on a 2-core machine shared with other workers' tests and "
                        "benchmarks; its load average (1, 5, 15 min) was "
                        f"{', '.join(f'{x:.1f}' for x in load_before)} before and "
                        f"{', '.join(f'{x:.1f}' for x in load_after)} after"}))
    finally:
        local.down()


if __name__ == "__main__":
    main()
