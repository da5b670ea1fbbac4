"""The whole demo city as files (GeoPackage + CSVs + mappings), and its load through the
normal ETL path: ``onemap generate`` and ``onemap demo`` (what ``make data`` runs).

A city stands at a reference time ``as_of`` (naive local wall-clock time): its newest cases
and device reports are minutes older, its backlog is the one open then. The files are the
same for the same size, seed and ``as_of``; the commands pass now, tests and benches pin it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from democity import catalog
from democity.admin import build_admin, write_admin
from democity.cases import write_cases
from democity.facilities import write_facilities
from democity.iot import write_device_events, write_devices
from democity.roster import PRESET as ROSTER_MAPPING
from democity.roster import write_roster
from etl.load import LoadReport, file_hash, load
from onemap.database import libpq_url

SIZES = ("S", "M", "L")
ADMIN_LAYERS = {1: "district", 2: "street", 3: "community", 4: "grid"}
ADMIN_MAPPING = """\
# Level {level} of the demo city: layer '{layer}' of admin.gpkg.
kind: admin
level: {level}
layer: {layer}
fields:
  code: code
  name: name
{parent}"""
DONE = "complete.json"
Progress = Callable[[str, int], None]
POINT_KINDS = ("facilities", "iot", "iot-events", "cases")
# A fixed reference time for cities that must be the same in every run (the tests' city and
# the benches'): the figures recorded in bench/results and the README were measured on it.
PINNED_AS_OF = np.datetime64("2026-11-21T00:00:00", "s")


def local_now(zone: str) -> np.datetime64:
    """The wall-clock time now in ``zone``, to the second (a city as of now)."""
    return np.datetime64(datetime.now(ZoneInfo(zone)).replace(tzinfo=None), "s")


@dataclass(frozen=True)
class City:
    """The files of one generated city."""

    folder: Path

    @property
    def admin(self) -> Path:
        return self.folder / "admin.gpkg"

    def csv(self, kind: str) -> Path:
        return self.folder / f"{kind}.csv"

    def mapping(self, kind: str) -> Path:
        return self.folder / "mappings" / f"{kind}.yaml"

    @property
    def complete(self) -> bool:
        """Every file written (the marker is written last, with the cases file's hash)."""
        marker = self.folder / DONE
        return marker.exists() and "cases_sha256" in json.loads(marker.read_text())

    @property
    def as_of(self) -> np.datetime64 | None:
        """The reference time of a complete city (None: none, or written before it was
        recorded, i.e. as of a time nobody knows)."""
        if not self.complete:
            return None
        recorded = json.loads((self.folder / DONE).read_text()).get("as_of")
        return None if recorded is None else np.datetime64(recorded, "s")


def default_folder(home: Path, size: str, seed: int) -> Path:
    return home / "city" / f"{size.upper()}-seed{seed}"


def generate(size: str, seed: int, out: Path, progress: Progress | None = None, *,
             as_of: np.datetime64) -> City:
    """Write a complete city standing at ``as_of`` (naive local time); deterministic for a
    size, seed and ``as_of``."""
    size = size.upper()
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    tick = progress or (lambda step, n: None)
    as_of = np.datetime64(as_of, "s")
    city = City(Path(out))
    (city.folder / "mappings").mkdir(parents=True, exist_ok=True)
    (city.folder / DONE).unlink(missing_ok=True)
    admin = build_admin(seed)
    write_admin(admin, city.admin)
    tick("admin", len(admin))
    units = [admin[admin["level"] == level] for level in (4, 3, 2)]
    tick("roster", write_roster(*units, seed, city.csv("roster")))
    write_facilities(*units, seed, city.csv("facilities"), lambda n: tick("facilities", n))
    write_devices(*units, seed, city.csv("iot"), lambda n: tick("iot", n), as_of=as_of)
    write_device_events(*units, size, seed, city.csv("iot-events"),
                        lambda n: tick("iot-events", n), as_of=as_of)
    write_cases(*units, size, seed, city.csv("cases"), lambda n: tick("cases", n), as_of=as_of)
    _write_mappings(city)
    cases_hash = file_hash([city.csv("cases")])
    (city.folder / DONE).write_text(json.dumps({"size": size, "seed": seed,
                                                "as_of": str(as_of).replace("T", " "),
                                                "cases_sha256": cases_hash}))
    return city


def _write_mappings(city: City) -> None:
    for level, layer in ADMIN_LAYERS.items():
        parent = "  parent_code: parent_code\n" if level > 1 else ""
        city.mapping(f"admin-{level}").write_text(
            ADMIN_MAPPING.format(level=level, layer=layer, parent=parent), encoding="utf-8")
    for kind, text in catalog.mappings().items():
        city.mapping(kind).write_text(text, encoding="utf-8")
    city.mapping("roster").write_text(ROSTER_MAPPING.read_text(encoding="utf-8"),
                                      encoding="utf-8")


def load_city(url: str, city: City, timezone: str = "Asia/Shanghai",
              progress: Callable[[str, int], None] | None = None) -> list[LoadReport]:
    """Load every file through the ETL, levels first, cases last. Each point load replaces
    what an earlier city loaded from the same file: a city loaded again as of a later time
    leaves no case, device report or alarm of the earlier one behind."""
    tick = progress or (lambda step, n: None)
    reports = []
    for level in ADMIN_LAYERS:
        reports.append(load(url, "admin", [city.admin], city.mapping(f"admin-{level}"),
                            level=level, timezone=timezone))
    reports.append(load(url, "roster", [city.csv("roster")], city.mapping("roster"),
                        timezone=timezone, replace=True))
    for kind in POINT_KINDS:
        reports.append(load(url, kind, [city.csv(kind)], city.mapping(kind), timezone=timezone,
                            replace=True, progress=lambda n, _p, k=kind: tick(k, n)))
    return reports


def is_loaded(url: str, city: City) -> bool:
    """True when the newest committed load of this city's cases file was of these very
    contents (cases load last: the rest of the city is loaded too; a city loaded after it
    from the same folder replaced it)."""
    digest = json.loads((city.folder / DONE).read_text())["cases_sha256"]
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT file_hash FROM load_batch WHERE kind = 'cases' "
                           "AND source = %s AND status = 'committed' ORDER BY id DESC LIMIT 1",
                           (str(city.csv("cases")),)).fetchone()
        return row is not None and row[0] == digest
