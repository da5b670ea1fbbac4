"""Grid workers (网格员) of the demo city: a roster CSV like a street office's, and who of them
handles each grid-level case.

Every grid has one or two workers (a 专职网格员, and in about half the grids a 兼职网格员 as
well); every community's 工作站 has a 站长 (station head) who covers all of its grids, with a
row per grid, as rosters list them. Names, phones and who has a second worker follow the
seed alone, so the roster and the cases' 处置人 agree for a size, seed and moment. The
columns are those of the preset ``etl/presets/grid-roster.yaml``, which loads the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from democity import catalog
from democity.sampling import CsvSink, District, district, rng, text_schema

COLUMNS = ["工号", "姓名", "岗位", "联系电话", "网格编码"]
SCHEMA = text_schema(COLUMNS)
PRESET = Path(__file__).resolve().parents[1] / "etl" / "presets" / "grid-roster.yaml"
FULL_TIME, PART_TIME, STATION_HEAD = "专职网格员", "兼职网格员", "站长"
SECOND_WORKER_SHARE = 0.5      # grids with a 兼职网格员 beside their 专职网格员
# Given names: two characters from these, as common Chinese given names go.
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰文斌辉鹏海燕晓东梅琳"
MOBILE_PREFIXES = (133, 135, 136, 137, 138, 139, 150, 152, 158, 159, 177, 186, 188, 189)


@dataclass(frozen=True)
class Roster:
    """The workers of each grid: ``ids[first[g]:first[g] + count[g]]`` are grid ``g``'s own
    (station heads aside), its 专职网格员 first."""

    ids: np.ndarray
    first: np.ndarray
    count: np.ndarray
    rows: list[tuple[str, str, str, str, str]]   # the CSV's rows, in its column order

    def handler(self, grid: np.ndarray, pick: np.ndarray) -> np.ndarray:
        """One of each grid's own workers, the ``pick``-th (modulo how many it has)."""
        return self.ids[self.first[grid] + pick % self.count[grid]]


def build_roster(d: District, seed: int) -> Roster:
    """The roster of district ``d`` for ``seed``."""
    gen = rng(seed, "roster")
    n_grids = len(d.grid_code)
    count = 1 + (gen.random(n_grids) < SECOND_WORKER_SHARE).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    total = int(count.sum()) + len(d.comm_code)
    names = _names(total, gen)
    phones = _phones(total, gen)
    ids, rows = [], []
    for g in range(n_grids):
        for k in range(count[g]):
            n = len(ids)
            ids.append(f"WG{n + 1:05d}")
            rows.append((ids[-1], names[n], (FULL_TIME, PART_TIME)[k], phones[n],
                         str(d.grid_code[g])))
    for c in range(len(d.comm_code)):
        n = len(ids) + c
        head = f"ZZ{c + 1:04d}"
        rows += [(head, names[n], STATION_HEAD, phones[n], str(d.grid_code[g]))
                 for g in np.flatnonzero(d.grid_comm == c)]
    return Roster(np.array(ids, dtype=object), first, count, rows)


def _names(n: int, gen: np.random.Generator) -> list[str]:
    surnames = np.array(catalog.SURNAMES)[gen.integers(0, len(catalog.SURNAMES), n)]
    given = np.array(list(GIVEN))[gen.integers(0, len(GIVEN), (n, 2))]
    one = gen.random(n) < 0.25  # a one-character given name
    return [s + a + ("" if o else b) for s, (a, b), o in zip(surnames, given, one, strict=True)]


def _phones(n: int, gen: np.random.Generator) -> list[str]:
    prefix = np.array(MOBILE_PREFIXES)[gen.integers(0, len(MOBILE_PREFIXES), n)]
    rest = gen.integers(0, 100_000_000, n)
    return [f"{p}{r:08d}" for p, r in zip(prefix, rest, strict=True)]


def write_roster(grids, communities, streets, seed: int, path: str | Path) -> int:
    """Write the roster CSV; return its rows."""
    roster = build_roster(district(grids, communities, streets, seed), seed)
    with CsvSink(path, SCHEMA) as sink:
        sink.write({name: pa.array([r[i] for r in roster.rows], type=pa.string())
                    for i, name in enumerate(COLUMNS)})
    return len(roster.rows)
