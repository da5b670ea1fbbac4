"""docs/mapping.md says what the loader does: its field tables are the targets' fields, and its
worked examples load. The YAML and the commands are taken from the page itself; the samples
are written by the test (the page's own rows among them), loaded through the page's mapping,
and the per-street, closed and on-time figures /api/kpi serves equal pandas over the file."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import yaml
from test_etl_mappings import box

from etl.load import load
from etl.targets import TARGETS

pytestmark = [pytest.mark.db]

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "mapping.md"
PINGSHAN = ROOT / "data" / "pingshan"


def block(marker: str) -> str:
    """The fenced block right after ``<!-- marker -->`` in the page."""
    found = re.search(rf"<!-- {re.escape(marker)} -->\n```\w+\n(.*?)```", DOC.read_text(
        encoding="utf-8"), re.S)
    assert found, marker
    return found.group(1)


def test_every_field_of_every_kind_is_in_the_page_with_its_type():
    text = DOC.read_text(encoding="utf-8")
    for kind, target in TARGETS.items():
        section = re.search(rf"### `{re.escape(kind)}`.*?\n\n(\|.*?)\n\n", text, re.S)
        assert section, kind
        rows = [[c.strip(" `") for c in line.strip("|").split("|")]
                for line in section.group(1).splitlines()[2:]]
        listed = {r[0]: (r[1], r[2]) for r in rows}
        want = {f.name: (f.type, "yes" if f.required else "no") for f in target.fields}
        assert listed == want, kind


def test_the_readme_and_the_load_help_link_the_page():
    assert "docs/mapping.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    help_text = subprocess.run([sys.executable, "-m", "onemap.cli", "load", "--help"],
                               capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "docs/mapping.md" in help_text


def pingshan_units(folder: Path, url: str) -> pd.DataFrame:
    """坪山's real street and community codes and names (data/pingshan) as boxes: the
    district 0.7° wide, a street a 0.1° column of it, its communities stacked in it."""
    streets = pd.read_csv(PINGSHAN / "streets.csv", dtype=str)
    communities = pd.read_csv(PINGSHAN / "communities.csv", dtype=str)
    levels = {1: [("440310", "坪山区", None, box(114.0, 22.0, 0.1 * len(streets), 0.5))],
              2: [], 3: []}
    for i, s in streets.iterrows():
        levels[2].append((s.street_code, s.street_name, "440310", box(114.0 + 0.1 * i, 22.0,
                                                                      0.1, 0.5)))
        mine = communities[communities.street_code == s.street_code].reset_index(drop=True)
        for j, c in mine.iterrows():
            levels[3].append((c.community_code, c.community_name, s.street_code,
                              box(114.0 + 0.1 * i, 22.0 + 0.5 * j / len(mine), 0.1,
                                  0.5 / len(mine))))
    for level, rows in levels.items():
        features = [{"type": "Feature", "geometry": g,
                     "properties": {"code": c, "name": n, "parent": p}} for c, n, p, g in rows]
        path = folder / f"pingshan{level}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        mapping = folder / f"pingshan{level}.yaml"
        mapping.write_text(f"kind: admin\nlevel: {level}\nfields:\n  code: code\n  name: name\n"
                           + ("  parent_code: parent\n" if level > 1 else ""), encoding="utf-8")
        assert load(url, "admin", [path], mapping).rejected == 0
    return communities.merge(streets, on="street_code")


def names_export(communities: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """The page's sample rows and ``n`` more like them: names as offices write them (with or
    without 居委会 and 办事处), some rows with only a street, some with nothing."""
    gen = np.random.default_rng(seed)
    sample = pd.read_csv(io.StringIO(block("sample: names")), dtype=str,
                         keep_default_na=False)
    rows = []
    for i in range(n):
        c = communities.iloc[gen.integers(len(communities))]
        how = gen.choice(["community", "street", "nothing"], p=[0.6, 0.3, 0.1])
        status = gen.choice(["已办结", "已归档", "处理中", "待受理"])
        closed = status in ("已办结", "已归档")
        rows.append({
            "工单编号": f"G{i:05d}", "来源渠道": gen.choice(["12345", "@坪山", ""]),
            "诉求大类": gen.choice(["市容环卫", "交通运输"]), "诉求小类": "",
            "诉求时间": f"2026-11-{gen.integers(1, 29):02d} {gen.integers(0, 24):02d}:15",
            "办结时间": "", "办理状态": status,
            "是否超时": gen.choice(["是", "否"], p=[0.15, 0.85]) if closed else "",
            "所属街道": (c.street_name + gen.choice(["", "办事处"])) if how != "nothing" else "",
            "所属社区": (c.community_name.removesuffix("居委会") + gen.choice(["", "居委会"])
                     if how == "community" else ""),
            "诉求内容": "…"})
    return pd.concat([sample, pd.DataFrame(rows)], ignore_index=True)


def figures(rows: pd.DataFrame, closed: pd.Series, on_time: pd.Series) -> dict:
    """total, closed and on-time rate of ``rows`` (``closed``, ``on_time``: per row; on_time
    NaN where unknown)."""
    known = on_time[closed].dropna()
    return {"total": len(rows), "closed": int(closed.sum()),
            "on_time_rate": round(float(known.mean()), 6) if len(known) else None}


def test_the_names_example_loads(fresh_db, serve, tmp_path):
    url = fresh_db()
    communities = pingshan_units(tmp_path, url)
    export = names_export(communities, 300, seed=9)
    csv = tmp_path / "names.csv"
    export.to_csv(csv, index=False, encoding="utf-8")
    mapping = tmp_path / "names.yaml"
    mapping.write_text(block("example: names"), encoding="utf-8")
    report = load(url, "cases", [csv], mapping)
    assert (report.read, report.loaded, report.rejected) == (len(export), len(export), 0)
    # Pandas: the community named (suffixes aside) gives the street, else the street named.
    by_name = {c.community_name.removesuffix("居委会"): c.street_code
               for c in communities.itertuples()}
    streets = {c.street_name: c.street_code for c in communities.itertuples()}
    street = export["所属社区"].str.removesuffix("居委会").map(by_name).fillna(
        export["所属街道"].str.removesuffix("办事处").map(streets))
    closed = export["办理状态"].isin(["已办结", "已归档"])
    on_time = export["是否超时"].map({"是": 0.0, "否": 1.0})
    server = serve(url)
    data = json.load(server.open("/api/kpi?scope=440310&range=all"))
    assert {k: data["cases"][k] for k in ("total", "closed", "on_time_rate")} == \
        figures(export, closed, on_time)
    assert data["cases"]["above_grid"] == len(export)  # no coordinates: none in a grid
    for child in data["children"]:
        mine = street == child["code"]
        assert {k: child[k] for k in ("total", "closed", "on_time_rate")} == \
            figures(export[mine], closed[mine], on_time[mine]), child["code"]
    # The page's own rows land where it says.
    with psycopg.connect(url) as conn:
        placed = dict(conn.execute(
            "SELECT c.id, u.name FROM case_event c JOIN admin_unit u ON u.code = "
            "coalesce(c.community_code, c.street_code, c.district_code) "
            "WHERE c.id LIKE 'PS%'").fetchall())
        flags = dict(conn.execute("SELECT id, on_time FROM case_event WHERE id LIKE 'PS%'"
                                  ).fetchall())
    assert placed == {"PS0001": "六联社区居委会", "PS0002": "六和社区居委会",
                      "PS0003": "马峦街道", "PS0004": "坪山区"}
    assert flags == {"PS0001": True, "PS0002": None, "PS0003": False, "PS0004": None}


def test_the_311_example_and_the_nyc_commands_load(fresh_db, serve, shared_data, tmp_path):
    """The page's 311 mapping is the preset; the page's commands load NYC's four levels and a
    311 sample through it. The sample is the real export without coordinates (so the board,
    else the borough, places each row) and with some closed requests turned Pending."""
    example = yaml.safe_load(block("example: 311"))
    preset = yaml.safe_load((ROOT / "etl" / "presets" / "nyc" / "nyc311.yaml").read_text(
        encoding="utf-8"))
    assert example == preset
    source = pd.read_csv(shared_data / "real" / "nyc311_2011_sample.csv", dtype=str)
    source[["Latitude", "Longitude", "Location"]] = None
    pending = source.index[source["Status"] == "Closed"][::25]
    source.loc[pending, "Status"] = "Pending"  # they keep their Closed Date
    csv = tmp_path / "nyc311.csv"
    source.to_csv(csv, index=False)
    url = fresh_db()
    commands = block("commands: nyc").replace("nyc311.csv", str(csv))
    env = {**os.environ, "DATABASE_URL": url, "ONEMAP_TIMEZONE": "America/New_York",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    with psycopg.connect(url) as conn:
        parents = dict(conn.execute("SELECT code, parent_code FROM admin_unit WHERE level = 2"
                                    ).fetchall())
        boroughs = dict(conn.execute("SELECT upper(name), code FROM admin_unit WHERE level = 1"
                                     ).fetchall())
        levels = dict(conn.execute("SELECT level, count(*) FROM admin_unit GROUP BY 1").fetchall())
    assert sorted(levels) == [1, 2, 3, 4]
    board = source["Community Board"].str.replace(r"^(\d{2}) (.+)$", r"\2 \1", regex=True)
    street = board.where(board.isin(parents.keys()))
    borough = street.map(parents).fillna(source["Borough"].map(boroughs))
    closed = source["Status"] == "Closed"
    stamp = "%m/%d/%Y %I:%M:%S %p"
    closed_at = pd.to_datetime(source["Closed Date"], format=stamp)
    due = pd.to_datetime(source["Due Date"], format=stamp)
    on_time = (closed_at <= due).astype(float).where(closed_at.notna() & due.notna())
    assert (~closed & closed_at.notna()).sum() == len(pending)
    server = serve(url)
    for code in boroughs.values():
        data = json.load(server.open(f"/api/kpi?scope={code}&range=all"))
        mine = borough == code
        assert {k: data["cases"][k] for k in ("total", "closed", "on_time_rate")} == \
            figures(source[mine], closed[mine], on_time[mine]), code
        for child in data["children"]:
            ours = street == child["code"]
            assert {k: child[k] for k in ("total", "closed", "on_time_rate")} == \
                figures(source[ours], closed[ours], on_time[ours]), child["code"]
