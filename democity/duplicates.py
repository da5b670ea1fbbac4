"""Duplicates planted in the demo city's cases: one event reported again through another
channel (并案's truth).

About ``SHARE`` of the cases are a second (or third) report of an event reported earlier:
the same category (all four levels), the same case type, a point within ``JITTER_CUT_M``
metres of the first report's, reported ``LAG_MEAN_HOURS`` later on average (at most
``LAG_MAX_HOURS``), through another channel, naming the same address — as written, or with
a word of place added (附近, 对面, …), or without the district's name. Both reports carry
coordinates. Everything else of the later report (its lifecycle, handling unit, reporter,
the rest of its wording) is its own.

The truth goes beside the cases file, in ``<stem>.duplicates.csv`` (工单编号, 事件编号: the
id of the event's first report), which nothing loads: a detector never sees it. A planted
row the generator spoils on purpose (``democity.cases._spoil``), or the row before one, is
never picked, so every id in the truth names a row the loader accepts.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from democity import catalog
from democity.sampling import KM_PER_DEG_LAT, District, grids_near, locate

SHARE = 0.01
LAG_MEAN_HOURS = 5.0
LAG_MAX_HOURS = 36.0
JITTER_SIGMA_M = 20.0
JITTER_CUT_M = 60.0
# How the later report names the place: as written, with a word of place after it, or
# without the district's name in front (a caller who does not say it).
PLACE_WORDS = ("附近", "旁边", "门口", "对面")
FORMS = (0.6, 0.25, 0.15)            # as written, a word added, the district left out
HOUR = 3600
COLUMNS = ("工单编号", "事件编号")


@dataclass(frozen=True)
class Planted:
    """The rows of a chunk that repeat an earlier row's event: ``rows`` (ascending), the
    row each repeats (``origin``, earlier in the chunk), and how each names the place
    (``form``: an index of ``FORMS``; ``word``: an index of ``PLACE_WORDS``)."""

    rows: np.ndarray
    origin: np.ndarray
    form: np.ndarray
    word: np.ndarray

    def same_as(self, n: int) -> np.ndarray:
        """For each of ``n`` rows the row whose place it names, -1 for its own."""
        out = np.full(n, -1, np.int64)
        out[self.rows] = self.origin
        return out


def plant(d: District, t0: np.ndarray, spoiled: np.ndarray, gen: np.random.Generator,
          *, leaf, channel, case_type, comp, code_only, grid, x, y) -> Planted:
    """Pick the repeating rows of a chunk (``t0`` ascending; ``spoiled``: rows never picked)
    and make each repeat its origin, in place in the other arrays."""
    n = len(t0)
    picks = np.flatnonzero(gen.random(n) < SHARE)
    lag = np.minimum(gen.exponential(LAG_MEAN_HOURS * HOUR, len(picks)), LAG_MAX_HOURS * HOUR)
    origin = np.searchsorted(t0, t0[picks] - lag.astype(np.int64))
    form = np.searchsorted(np.cumsum(FORMS), gen.random(len(picks)) * sum(FORMS), "right")
    word = gen.integers(0, len(PLACE_WORDS), len(picks))
    other = gen.random(len(picks))
    dx, dy = gen.normal(0, JITTER_SIGMA_M, len(picks)), gen.normal(0, JITTER_SIGMA_M, len(picks))
    keep = (origin < picks) & ~spoiled[picks] & ~spoiled[np.minimum(origin, n - 1)]
    shares = np.array(list(catalog.CHANNELS.values()))
    rows, origins = [], []
    for k in np.flatnonzero(keep):
        j, i = int(picks[k]), int(origin[k])
        leaf[j], case_type[j], comp[j], grid[j] = leaf[i], case_type[i], comp[i], grid[i]
        code_only[i] = code_only[j] = False
        # Another channel than the first report's, by the channels' shares.
        p = shares.copy()
        p[channel[i]] = 0
        channel[j] = min(int(np.searchsorted(np.cumsum(p) / p.sum(), other[k], "right")),
                         len(p) - 1)
        x[j], y[j] = _near(d, grid[i], x[i], y[i], dx[k], dy[k])
        rows.append(k)
        origins.append(i)
    chosen = np.array(rows, np.int64)
    return Planted(picks[chosen], np.array(origins, np.int64), form[chosen], word[chosen])


def _near(d: District, g: int, x: float, y: float, dx_m: float, dy_m: float):
    """A point ``(dx_m, dy_m)`` metres from (x, y) (cut at ``JITTER_CUT_M``), in grid ``g``;
    the point itself when that falls outside it."""
    scale = min(1.0, JITTER_CUT_M / max(float(np.hypot(dx_m, dy_m)), 1e-9))
    cx = np.round(x + dx_m * scale / 1000 / d.km_per_deg_lon, 6)
    cy = np.round(y + dy_m * scale / 1000 / KM_PER_DEG_LAT, 6)
    inside = locate(d, np.array([cx]), np.array([cy]), grids_near(d, x, y, 0.1))
    return (float(cx), float(cy)) if inside[0] == g else (x, y)


def named(address: pa.Array, planted: Planted) -> pa.Array:
    """The chunk's addresses with each repeating row's place named in its own way."""
    if not len(planted.rows):
        return address
    values = address.to_numpy(zero_copy_only=False).astype(object)
    for j, form, word in zip(planted.rows, planted.form, planted.word, strict=True):
        if form == 1:
            values[j] = f"{values[j]}{PLACE_WORDS[word]}"
        elif form == 2:
            values[j] = values[j].removeprefix(catalog.DISTRICT)
    return pa.array(values, type=pa.string())


def pairs(ids: pa.Array, planted: Planted, event: dict[str, str]) -> list[tuple[str, str]]:
    """(id, event id) of each repeating row of a chunk; ``event`` maps the chunk's ids
    already planted to their event and learns the new ones (a third report of an event
    names its first)."""
    names = ids.to_numpy(zero_copy_only=False)
    out = []
    for j, i in zip(planted.rows, planted.origin, strict=True):
        first = event.get(names[i], names[i])
        event[names[j]] = first
        out.append((str(names[j]), str(first)))
    return out


def write_truth(path: Path, rows: list[tuple[str, str]]) -> None:
    """The planted duplicates, one row per later report, in ``path``."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def truth_path(cases: str | Path) -> Path:
    cases = Path(cases)
    return cases.with_name(f"{cases.stem}.duplicates.csv")


def spoiled_rows(offset: int, n: int, every: int, first: int) -> np.ndarray:
    """Rows of a chunk (from global row ``offset``) that ``_spoil`` makes bad — every
    ``every``-th from ``first``, never a chunk's first row — and the row before each (a
    spoiled id repeats it)."""
    g = offset + np.arange(n)
    bad = ((g - first) % every == 0) & (g >= first) & (np.arange(n) > 0)
    return bad | np.append(bad[1:], False)
