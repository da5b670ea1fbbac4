"""Public facilities of the demo city: 垃圾投放点, 公交站, 图书馆, 卫生院 (社康中心), 公共卫生间,
社区服务中心 (党群服务中心), 学校, 派出所, 公园 — as a CSV of id, kind, name, address, lon, lat.

Counts follow ``catalog.FACILITY_KINDS`` (per km², per community, per street); places follow
the grids' density weights, except that each community's 党群服务中心 and each street's
派出所 sit in its densest grid, the way service centres cluster where people live.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from democity import catalog
from democity.sampling import (
    CsvSink,
    District,
    Gazetteer,
    choice,
    district,
    gazetteer,
    place_prefix,
    points_in_grids,
    rng,
    text_schema,
)

COLUMNS = ["id", "kind", "name", "address", "lon", "lat"]
SCHEMA = text_schema(COLUMNS, {"lon": pa.float64(), "lat": pa.float64()})


def facility_counts(d: District) -> dict[str, int]:
    """How many facilities of each kind a district of this size and make-up has."""
    real_comms = int(np.sum(d.comm_label != d.street_label[d.comm_street]))
    real_streets = int(sum("保税" not in s for s in d.street_label))
    return {kind: int(round(km2 * d.area_km2 + per_comm * real_comms
                            + per_street * real_streets + fixed))
            for kind, (_, km2, per_comm, per_street, fixed) in catalog.FACILITY_KINDS.items()}


def write_facilities(grids, communities, streets, seed: int, path: str | Path,
                     progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write the facilities CSV; return the count of each kind."""
    d = district(grids, communities, streets, seed)
    gaz = gazetteer(d, seed)
    gen = rng(seed, "facilities")
    counts = facility_counts(d)
    rows: list[tuple[str, str, str, str, int]] = []   # kind, name, address, grid
    for kind, n in counts.items():
        rows += _facilities(kind, n, d, gaz, gen)
    grid = np.array([r[3] for r in rows], dtype=np.int64)
    x, y = points_in_grids(d, grid, gen)
    ids, seen = [], dict.fromkeys(catalog.FACILITY_KINDS, 0)
    for kind, *_ in rows:
        seen[kind] += 1
        ids.append(f"{catalog.FACILITY_KINDS[kind][0]}{seen[kind]:05d}")
    with CsvSink(path, SCHEMA) as sink:
        sink.write({"id": ids, "kind": [r[0] for r in rows], "name": [r[1] for r in rows],
                    "address": [r[2] for r in rows], "lon": x, "lat": y})
    if progress:
        progress(len(rows))
    return counts


def _grids_for(kind: str, n: int, d: District, gen: np.random.Generator):
    """Grids and roles of ``n`` facilities of a kind.

    Fixed ones come first: the district's at its densest grid, each street's and each
    (non-virtual) community's at its densest grid; the rest are weighted draws ("extra").
    """
    _, _, per_comm, per_street, fixed = catalog.FACILITY_KINDS[kind]
    w = d.weight
    placed: list[tuple[int, str]] = [(int(np.argmax(w)), "district")] * fixed
    if per_street >= 1:
        for s in range(len(d.street_code)):
            mine = np.flatnonzero(d.grid_street == s)
            if len(mine) and "保税" not in d.street_label[s]:
                placed.append((int(mine[np.argmax(w[mine])]), "street"))
    if per_comm >= 1:
        for c in range(len(d.comm_code)):
            mine = np.flatnonzero(d.grid_comm == c)
            if len(mine) and d.comm_label[c] != d.street_label[d.comm_street[c]]:
                placed.append((int(mine[np.argmax(w[mine])]), "community"))
    exponent = {"公交站": 0.6, "公共卫生间": 0.7, "公园": 0.3}.get(kind, 1.0)
    weights = w ** exponent * (d.grid_area_km2 ** 0.7 if kind == "公园" else 1.0)
    extra = choice(weights, max(n - len(placed), 0), gen)
    return placed[:n] + [(int(g), "extra") for g in extra]


def _facilities(kind: str, n: int, d: District, gaz: Gazetteer, gen: np.random.Generator):
    """(kind, name, address, grid) of each facility of a kind."""
    out = []
    for g, role in _grids_for(kind, n, d, gen):
        name, addr = NAMERS[kind](role, int(d.grid_comm[g]), d, gaz, gen)
        out.append((kind, name, addr, g))
    return out


def _pick(items, gen):
    return items[int(gen.integers(len(items)))]


def _road_address(c, d, gaz, gen, number=True):
    """A road of community ``c`` and an address on it ('…社区龙勤路18号')."""
    road = _pick(gaz.roads[c], gen)
    if number:
        road = f"{road}{gen.integers(1, 300)}号"
    return road, f"{place_prefix(d, c)}{road}"


def _garbage(role, c, d, gaz, gen):
    if gen.random() < 0.6:
        site = f"{_pick(gaz.estates[c] + gaz.villages[c], gen)}{gen.integers(1, 30)}栋"
        return f"{site}垃圾分类集中投放点", f"{place_prefix(d, c)}{site}旁"
    number, addr = _road_address(c, d, gaz, gen)
    return f"{number}垃圾投放点", addr


def _bus_stop(role, c, d, gaz, gen):
    road, addr = _road_address(c, d, gaz, gen, number=False)
    form = gen.random()
    if form < 0.5:
        return f"{road}站", addr
    if form < 0.75:
        return f"{_pick(gaz.estates[c], gen)}站", addr
    if form < 0.9:
        return f"{_pick(gaz.villages[c], gen)}站", addr
    return f"{road}口站", addr


def _library(role, c, d, gaz, gen):
    _, addr = _road_address(c, d, gaz, gen)
    if role == "district":
        return f"{catalog.DISTRICT}图书馆", addr
    if role == "street":
        return f"{catalog.DISTRICT}图书馆{d.street_label[d.comm_street[c]]}分馆", addr
    if role == "community":
        return f"{d.comm_label[c]}图书馆", addr
    return f"{_pick(gaz.estates[c], gen)}自助图书馆", addr


def _health(role, c, d, gaz, gen):
    _, addr = _road_address(c, d, gaz, gen)
    hospital = f"{catalog.DISTRICT}{'人民医院' if gen.random() < 0.7 else '中医院'}"
    if role == "community":
        return f"{hospital}{d.comm_label[c]}健康服务中心", addr
    return f"{hospital}{_pick(gaz.estates[c] + gaz.villages[c], gen)}社康站", addr


def _toilet(role, c, d, gaz, gen):
    form = gen.random()
    if form < 0.4:
        road, addr = _road_address(c, d, gaz, gen, number=False)
        return f"{road}公厕", f"{addr}{gen.integers(1, 300)}号旁"
    site = _pick(gaz.parks[c] if form < 0.65 else gaz.villages[c], gen)
    return f"{site}公厕", f"{place_prefix(d, c)}{site}"


def _service(role, c, d, gaz, gen):
    _, addr = _road_address(c, d, gaz, gen)
    if role == "community":
        return f"{d.comm_label[c]}党群服务中心", addr
    return f"{_pick(gaz.estates[c] + gaz.villages[c], gen)}党群服务站", addr


def _school(role, c, d, gaz, gen):
    _, addr = _road_address(c, d, gaz, gen)
    kinds, p = zip(*catalog.SCHOOL_KINDS, strict=True)
    kind = kinds[choice(np.array(p), 1, gen)[0]]
    stem = _pick(catalog.PLACE_STEMS, gen) if gen.random() < 0.7 else \
        d.comm_label[c].removesuffix("社区")
    prefix = "" if kind == "幼儿园" and gen.random() < 0.5 else f"深圳市{catalog.DISTRICT}"
    return f"{prefix}{stem}{kind}", addr


def _police(role, c, d, gaz, gen):
    _, addr = _road_address(c, d, gaz, gen)
    street = d.street_label[d.comm_street[c]].removesuffix("街道")
    return f"深圳市公安局{catalog.DISTRICT.removesuffix('区')}分局{street}派出所", addr


def _park(role, c, d, gaz, gen):
    form = gen.random()
    if form < 0.45:
        name = _pick(gaz.parks[c], gen)
    elif form < 0.7:
        name = f"{d.comm_label[c]}公园"
    elif form < 0.95:
        name = f"{_pick(gaz.roads[c], gen)}口袋公园"
    else:
        name = f"{_pick(catalog.PLACE_STEMS, gen)}湿地公园"
    roads = gaz.roads[c]
    j = int(gen.integers(len(roads)))
    return name, f"{place_prefix(d, c)}{roads[j]}与{roads[(j + 1) % len(roads)]}交汇处"


NAMERS: dict[str, Callable] = {
    "垃圾投放点": _garbage, "公交站": _bus_stop, "图书馆": _library, "卫生院": _health,
    "公共卫生间": _toilet, "社区服务中心": _service, "学校": _school, "派出所": _police,
    "公园": _park,
}
