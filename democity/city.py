"""The whole demo city as files (GeoPackage + CSVs + mappings), and its load through the
normal ETL path: ``onemap generate`` and ``onemap demo`` (what ``make data`` runs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from democity import catalog
from democity.admin import build_admin, write_admin
from democity.cases import write_cases
from democity.facilities import write_facilities
from democity.iot import write_device_events, write_devices
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


def default_folder(home: Path, size: str, seed: int) -> Path:
    return home / "city" / f"{size.upper()}-seed{seed}"


def generate(size: str, seed: int, out: Path, progress: Progress | None = None) -> City:
    """Write a complete city; deterministic for a size and seed."""
    size = size.upper()
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    tick = progress or (lambda step, n: None)
    city = City(Path(out))
    (city.folder / "mappings").mkdir(parents=True, exist_ok=True)
    (city.folder / DONE).unlink(missing_ok=True)
    admin = build_admin(seed)
    write_admin(admin, city.admin)
    tick("admin", len(admin))
    units = [admin[admin["level"] == level] for level in (4, 3, 2)]
    write_facilities(*units, seed, city.csv("facilities"), lambda n: tick("facilities", n))
    write_devices(*units, seed, city.csv("iot"), lambda n: tick("iot", n))
    write_device_events(*units, size, seed, city.csv("iot-events"),
                        lambda n: tick("iot-events", n))
    write_cases(*units, size, seed, city.csv("cases"), lambda n: tick("cases", n))
    _write_mappings(city)
    cases_hash = file_hash([city.csv("cases")])
    (city.folder / DONE).write_text(json.dumps({"size": size, "seed": seed,
                                                "cases_sha256": cases_hash}))
    return city


def _write_mappings(city: City) -> None:
    for level, layer in ADMIN_LAYERS.items():
        parent = "  parent_code: parent_code\n" if level > 1 else ""
        city.mapping(f"admin-{level}").write_text(
            ADMIN_MAPPING.format(level=level, layer=layer, parent=parent), encoding="utf-8")
    for kind, text in catalog.mappings().items():
        city.mapping(kind).write_text(text, encoding="utf-8")


def load_city(url: str, city: City, timezone: str = "Asia/Shanghai",
              progress: Callable[[str, int], None] | None = None) -> list[LoadReport]:
    """Load every file through the ETL, levels first, cases last."""
    tick = progress or (lambda step, n: None)
    reports = []
    for level in ADMIN_LAYERS:
        reports.append(load(url, "admin", [city.admin], city.mapping(f"admin-{level}"),
                            level=level, timezone=timezone))
    for kind in ("facilities", "iot", "iot-events", "cases"):
        reports.append(load(url, kind, [city.csv(kind)], city.mapping(kind), timezone=timezone,
                            progress=lambda n, _p, k=kind: tick(k, n)))
    return reports


def is_loaded(url: str, city: City) -> bool:
    """True when this city's cases file (by content) has a committed batch."""
    digest = json.loads((city.folder / DONE).read_text())["cases_sha256"]
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT 1 FROM load_batch WHERE kind = 'cases' AND file_hash = %s "
                           "AND status = 'committed' LIMIT 1", (digest,))
        return row.fetchone() is not None
