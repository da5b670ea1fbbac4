"""Hotspots a person can trust, on the demo city S: one verdict per grid whatever the
viewer's scope, no hot grid without a case, z-scores equal to esda's on the same weights
and q-values equal to scipy's Benjamini–Hochberg correction, all recomputed here from the
raw cases; and grids named by name in the desk's list and the map's hover."""

from __future__ import annotations

import json
import re
from datetime import date
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import connected, ensure_user, screenshot
from esda.getisord import G_Local
from libpysal.weights import W
from scipy.stats import false_discovery_control, norm
from sqlalchemy import event, text

from dashboard import ids
from layers.filters import parse_filters
from layers.hotspots import (
    ALPHA,
    CORE_ALPHA,
    MIN_CASES,
    TREND_ODDS,
    VERDICTS,
    Units,
    _features,
    fdr,
    getis_ord,
    hotspots,
    judge,
    p_values,
)
from layers.scope import resolve_scope
from onemap import aggregates as agg

pytestmark = [pytest.mark.db]

ZONE = "Asia/Shanghai"
START, END = "2025-11-21", "2026-11-20"  # the demo's whole year, in local days
# The period's halves meet at the Monday nearest its middle (Friday 2026-05-22).
MIDDLE = date(2026, 5, 25)
PERIOD = {"start": START, "end": END}


def sql(url: str, query: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def conn(city_db):
    yield from connected(city_db)


@pytest.fixture(scope="module")
def raw(city_db) -> pd.DataFrame:
    """The placed cases with their local day, read straight from case_event."""
    rows = sql(city_db, "SELECT grid_code, street_code, community_code, category_1, "
                        "category_2, channel, (reported_at AT TIME ZONE %s)::date "
                        "FROM case_event WHERE grid_code IS NOT NULL", ZONE)
    return pd.DataFrame(rows, columns=["grid_code", "street_code", "community_code", "category_1",
                                       "category_2", "channel", "day"])


@pytest.fixture(scope="module")
def grids(city_db) -> tuple[list[str], dict[str, list[str]]]:
    """The district's grids and each one's neighbours, from the tables."""
    codes = [r[0] for r in sql(city_db, "SELECT code FROM admin_unit WHERE level = 4 "
                                        "ORDER BY code")]
    near = {c: [] for c in codes}
    for grid, neighbour in sql(city_db, "SELECT grid_code, neighbour_code FROM grid_neighbour"):
        near[grid].append(neighbour)
    return codes, near


def in_period(raw: pd.DataFrame) -> pd.DataFrame:
    first, last = date.fromisoformat(START), date.fromisoformat(END)
    return raw[(raw["day"] >= first) & (raw["day"] <= last)]


def per_grid(cases: pd.DataFrame, codes: list[str]) -> np.ndarray:
    return cases.groupby("grid_code").size().reindex(codes, fill_value=0).to_numpy(dtype=float)


def expected(counts: np.ndarray, codes: list[str], near: dict) -> pd.DataFrame:
    """esda's Gi* (binary weights, the grid among its own neighbours) and scipy's BH
    q-values of two-sided normal p-values; hot: significant, with cases of its own, at
    least MIN_CASES around it, and its own count above the mean at CORE_ALPHA."""
    weights = W({c: near[c] for c in codes}, id_order=codes, silence_warnings=True)
    z = G_Local(counts, weights, transform="B", star=True, permutations=0).Zs
    q = false_discovery_control(2 * norm.sf(np.abs(z)), method="bh")
    n = pd.Series(counts, index=codes)
    around = np.array([n[c] + n[near[c]].sum() for c in codes])
    own = (counts - counts.mean()) / counts.std()
    own_q = false_discovery_control(2 * norm.sf(np.abs(own)), method="bh")
    hot = ((q <= ALPHA) & (z > 0) & (counts > 0) & (around >= MIN_CASES)
           & (own_q <= CORE_ALPHA) & (own > 0))
    return pd.DataFrame({"n": counts, "z": z, "q": q, "hot": hot}, index=codes)


def expected_trends(whole: pd.DataFrame, early: pd.DataFrame,
                    late: pd.DataFrame) -> dict[str, str]:
    """Each grid hot in the period or a half: its later half's share of its cases against
    the other grids' share, binomial z, BH over those grids, odds at least TREND_ODDS; kept
    where it is hot when its trend says (persistent: the period; emerging: the later half
    or the period; fading: the earlier half or the period)."""
    hot = whole["hot"] | early["hot"] | late["hot"]
    p0 = late.loc[~hot, "n"].sum() / whole.loc[~hot, "n"].sum()
    n, k = whole.loc[hot, "n"], late.loc[hot, "n"]
    z = (k - n * p0) / np.sqrt(n * p0 * (1 - p0))
    q = false_discovery_control(2 * norm.sf(np.abs(z)), method="bh")
    odds = ((k + 0.5) / (n - k + 0.5)) / (p0 / (1 - p0))
    changed = (q <= ALPHA) & (np.abs(np.log(odds.to_numpy())) >= np.log(TREND_ODDS))
    trend = {g: ("emerging" if z[g] > 0 else "fading") if changed[i] else "persistent"
             for i, g in enumerate(n.index)}
    hot_when = {"persistent": whole["hot"], "emerging": whole["hot"] | late["hot"],
                "fading": whole["hot"] | early["hot"]}
    return {g: kind for g, kind in trend.items() if hot_when[kind][g]}


def found(result: dict) -> dict[str, dict]:
    return {f["id"]: f["properties"] for f in result["features"]}


def test_a_grid_has_the_same_verdict_for_every_viewer(conn, city_db):
    """Each street's, community's and grid's view shows exactly the district's verdict on
    its own grids (before: Gi* among the scope's grids alone, so a grid was 持续热点 for the
    district and 消退热点 for its street's official)."""
    filters = parse_filters(PERIOD, ZONE)
    VERDICTS.clear()  # every view judges afresh here: none reads another's verdicts
    district = found(hotspots(conn, resolve_scope(conn, None), filters, "grid", 12, ZONE))
    hot = [g for g, p in district.items() if p["hot"]]
    assert hot and any(p["trend"] == "persistent" for p in district.values())
    streets = [r[0] for r in sql(city_db, "SELECT code FROM admin_unit WHERE level = 2")]
    hot_communities = sorted({r[0] for r in sql(
        city_db, "SELECT parent_code FROM admin_unit WHERE code = ANY(%s)", hot)})
    for code in [*streets, *hot_communities, hot[0], hot[-1]]:
        scope = resolve_scope(conn, code)
        VERDICTS.clear()
        mine = {r[0] for r in sql(city_db, "SELECT g.code FROM admin_unit g JOIN admin_unit c "
                                            "ON c.code = g.parent_code WHERE g.level = 4 AND "
                                            "%s IN (g.code, c.code, c.parent_code)", code)}
        seen = found(hotspots(conn, scope, filters, "grid", 12, ZONE))
        assert seen == {g: p for g, p in district.items() if g in mine}, code


@pytest.mark.parametrize("finer", [False, True], ids=["aggregates", "raw cases"])
def test_no_grid_without_a_case_is_hot_under_a_narrow_filter(conn, raw, grids, finer):
    """A top-level category and a channel with a few dozen cases in the period (the
    aggregates answer), or a second-level category and a channel (the raw cases do): every
    hot grid holds cases, as many as the raw table says, and the verdicts are esda's after
    the correction. Before, 43 grids were hot at 0.99 for 31 cases, 31 of them empty."""
    codes, near = grids
    cases = in_period(raw)
    column = "category_2" if finer else "category_1"
    sizes = cases.groupby([column, "channel"]).size()
    (category, channel), size = min(((k, n) for k, n in sizes.items() if n >= 20),
                                    key=lambda kn: kn[1])
    assert size < 100
    chosen = cases[(cases[column] == category) & (cases["channel"] == channel)]
    filters = parse_filters({**PERIOD, "category": category, "channel": channel}, ZONE)
    result = found(hotspots(conn, resolve_scope(conn, None), filters, "grid", 12, ZONE))
    want = expected(per_grid(chosen, codes), codes, near)
    for grid, props in result.items():
        assert props["n"] == want.at[grid, "n"], grid
        if props["hot"]:
            assert props["n"] > 0, grid
    significant = {g for g, p in result.items() if p["hot"] and p["confidence"]}
    assert significant == set(want.index[want["hot"]])


def test_z_scores_and_q_values_are_esdas_and_scipys(conn, raw, grids):
    """The district's grids over the year: every grid shown carries esda's Gi* z-score and
    scipy's BH q-value of the counts recomputed here; exactly the grids esda finds hot or
    cold at the false discovery rate are shown so; the trend is the verdict of each half."""
    codes, near = grids
    cases = in_period(raw)
    filters = parse_filters(PERIOD, ZONE)
    result = found(hotspots(conn, resolve_scope(conn, None), filters, "grid", 12, ZONE))
    whole = expected(per_grid(cases, codes), codes, near)
    early = expected(per_grid(cases[cases["day"] < MIDDLE], codes), codes, near)
    late = expected(per_grid(cases[cases["day"] >= MIDDLE], codes), codes, near)
    assert whole["hot"].sum() >= 2
    for grid, props in result.items():
        assert props["z"] == pytest.approx(whole.at[grid, "z"], abs=1e-3), grid
        assert props["q"] == pytest.approx(whole.at[grid, "q"], abs=1e-4), grid
        assert (props["n_early"], props["n_late"]) == (early.at[grid, "n"], late.at[grid, "n"])
    cold = (whole["q"] <= ALPHA) & (whole["z"] < 0)
    assert {g for g, p in result.items() if p["confidence"] and p["z"] > 0} == \
        set(whole.index[whole["hot"]])
    assert {g for g, p in result.items() if p["confidence"] and p["z"] < 0} == \
        set(whole.index[cold])
    trend = expected_trends(whole, early, late)
    assert {g: p["trend"] for g, p in result.items() if p["trend"]} == trend
    assert {g for g, p in result.items() if p["hot"]} == set(trend)
    assert "persistent" in trend.values()


def test_a_districts_verdicts_are_judged_once_until_a_load_commits(conn):
    """A second view under the same filters reads no case figures (the district's verdicts
    are shared by every viewer); once a load commits, the grids are judged again."""
    filters = parse_filters(PERIOD, ZONE)
    district = resolve_scope(conn, None)
    VERDICTS.clear()
    first = found(hotspots(conn, district, filters, "grid", 12, ZONE))
    statements: list[str] = []

    def note(_conn, _cursor, statement, *_):
        statements.append(statement)

    event.listen(conn, "before_cursor_execute", note)
    try:
        assert found(hotspots(conn, district, filters, "grid", 12, ZONE)) == first
    finally:
        event.remove(conn, "before_cursor_execute", note)
    assert statements and not any("case_" in s for s in statements)
    top = max((g for g, p in first.items() if p["hot"]), key=lambda g: first[g]["z"])
    try:  # the hottest grid loses its cases in a load (rolled back below)
        for table in agg.TABLE:
            conn.execute(text(f"DELETE FROM {table} WHERE unit_code = :grid"), {"grid": top})
        conn.execute(text("INSERT INTO load_batch (kind, source, status) "
                          "VALUES ('cases', 'test', 'committed')"))
        after = found(hotspots(conn, district, filters, "grid", 12, ZONE))
    finally:
        conn.rollback()
        VERDICTS.clear()
    assert top not in after or not after[top]["hot"]


def test_gi_star_and_the_correction_match_esda_and_scipy_on_a_lattice():
    """A 12 × 12 rook lattice with a hot corner and noise."""
    gen = np.random.default_rng(5)
    side = 12
    values = gen.poisson(20, side * side).astype(float)
    values[:9] += 40
    ids = list(range(side * side))
    near = {i: [j for j in (i - side, i + side, i - 1 if i % side else -1,
                            i + 1 if (i + 1) % side else -1) if 0 <= j < side * side]
            for i in ids}
    ours = getis_ord(values, [near[i] for i in ids])
    theirs = G_Local(values, W(near), transform="B", star=True, permutations=0).Zs
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    p = p_values(ours)
    np.testing.assert_allclose(p, 2 * norm.sf(np.abs(theirs)), atol=1e-12)
    np.testing.assert_allclose(fdr(p), false_discovery_control(p, method="bh"), atol=1e-12)


LATTICE = 15  # a 15 × 15 rook lattice of units, 10 cases a half each


def _lattice_block(row: int, col: int) -> list[int]:
    return [(row + dr) * LATTICE + col + dc for dr in (-1, 0, 1) for dc in (-1, 0, 1)]


@pytest.mark.parametrize("kind", ["emerging", "fading", None])
def test_a_unit_hot_in_one_half_alone_is_no_persistent_hotspot(kind):
    """A busy neighbourhood (4× the background, all period) and a hotspot that appears in
    the later half (or dies out after the earlier one): while the hotspot is quiet the
    family's spread is small and the neighbourhood stands out; over the period it does not
    (z about 0.5). It was shown as 持续热点 with that period's z and q 0.76 (the M city's
    公共安全 and 水务管理 views had three such grids); a persistent hotspot is hot over the
    period. Without the other hotspot the same neighbourhood is hot, and persistent."""
    ids = list(range(LATTICE * LATTICE))
    near = [[j for j in (i - LATTICE, i + LATTICE, i - 1 if i % LATTICE else -1,
                         i + 1 if (i + 1) % LATTICE else -1) if 0 <= j < len(ids)]
            for i in ids]
    busy, spot = _lattice_block(3, 3), _lattice_block(10, 10)
    gen = np.random.default_rng(3)
    rate = np.full(len(ids), 10.0)
    rate[busy] *= 4
    halves = [gen.poisson(rate).astype(float) for _ in range(2)]
    if kind:
        halves[kind == "emerging"][spot] += gen.poisson(600, len(spot))
    counts = {"all": halves[0] + halves[1], "early": halves[0], "late": halves[1]}
    shown = {int(f["id"]): f["properties"] for f in _features(Units(ids, None, near), counts,
                                                                  "grid")}
    trend = {i: shown[i]["trend"] if i in shown and shown[i]["hot"] else None for i in ids}
    if kind is None:
        assert sum(trend[i] == "persistent" for i in busy) >= 6
        return
    quiet = judge(counts["late" if kind == "fading" else "early"], near)
    assert quiet.hot[busy].sum() >= 5 and not judge(counts["all"], near).hot[busy].any()
    assert [trend[i] for i in spot] == [kind] * len(spot)
    assert "persistent" not in [trend[i] for i in busy]


@pytest.mark.browser
def test_hot_grids_are_named_in_the_list_and_the_map(city_db, serve, page):
    """The desk's hotspot list and the map's hover name each grid (六和社区第12网格), in the
    order and with the figures of /api/hotspots; a street official's list shows the
    district's verdict on her grids."""
    server = serve(city_db)
    names = dict(sql(city_db, "SELECT code, name FROM admin_unit WHERE level = 4"))
    query = f"start={START}&end={END}"
    api = found(json.load(server.open(f"/api/hotspots?{query}")))
    hot = [(g, p) for g, p in sorted(api.items(), key=lambda gp: -gp[1]["z"]) if p["hot"]][:30]
    assert len(hot) >= 3
    server.login(page)
    rows = _hotspot_list(page, server.url + f"/?{query}&layers=units,hotspots")
    assert [r[0] for r in rows] == [names[g] for g, _ in hot]
    assert [(r[1], r[3]) for r in rows] == [(str(p["n"]), f"{p['z']:.2f}") for _, p in hot]
    assert all(re.fullmatch(r".+社区第\d{2}网格", r[0]) for r in rows)
    assert not any(re.search(r"\d{9,}", " ".join(r)) for r in rows)
    hover = page.evaluate("() => document.querySelector('#map-box .js-plotly-plot').data"
                          ".filter(t => t.name === '热点网格').map(t => t.customdata.map("
                          "c => c[0]))")
    assert sorted(hover[0]) == sorted(names[g] for g, p in api.items() if p["hot"])
    screenshot(page, "hotspots-named-zh")

    street = sql(city_db, "SELECT street_code FROM case_event WHERE grid_code = %s LIMIT 1",
                 hot[0][0])[0][0]
    ensure_user(city_db, "hot.official", "street_official", street)
    page.context.clear_cookies()
    server.login(page, "hot.official")
    mine = _hotspot_list(page, server.url + f"/?{query}&layers=units,hotspots")
    by_name = {names[g]: p for g, p in api.items()}
    assert mine and names[hot[0][0]] in [r[0] for r in mine]
    for name, n, _trend, z in mine:
        assert (n, z) == (str(by_name[name]["n"]), f"{by_name[name]['z']:.2f}"), name
    assert page.errors == []


@pytest.mark.browser
def test_a_links_own_period_is_the_one_the_period_control_shows(city_db, serve, page):
    """A link naming start and end: the period control shows that period chosen (it showed
    近90天, a period the view did not use), the hotspot list counts that period's cases
    (recomputed here from case_event in local days), the period stays while other filters
    change, and it can be chosen again after another range."""
    server = serve(city_db)
    server.login(page)
    start, end = "2026-01-05", "2026-04-26"
    rows = _hotspot_list(page, server.url + f"/?start={start}&end={end}&layers=units,hotspots")
    assert _chosen_range(page) == f"自定义 {start} 至 {end}"
    screenshot(page, "hotspots-custom-period-zh")
    counts = dict(sql(city_db, "SELECT g.name, count(*) FROM case_event c JOIN admin_unit g "
                               "ON g.code = c.grid_code WHERE (c.reported_at AT TIME ZONE %s)"
                               "::date BETWEEN %s AND %s GROUP BY g.name",
                      ZONE, date.fromisoformat(start), date.fromisoformat(end)))
    assert rows and [int(n) for _, n, _, _ in rows] == [counts[name] for name, *_ in rows]

    page.get_by_label("已办结").check()  # another filter: the period stays
    page.wait_for_function("() => location.search.includes('status=closed')")
    query = parse_qs(urlparse(page.url).query)
    assert (query["start"], query["end"]) == ([start], [end]) and "range" not in query
    assert _chosen_range(page) == f"自定义 {start} 至 {end}"

    page.get_by_label("近30天").check()
    page.wait_for_function("() => location.search.includes('range=30d')")
    assert "start" not in parse_qs(urlparse(page.url).query)
    page.get_by_label(f"自定义 {start} 至 {end}").check()
    page.wait_for_function("() => location.search.includes('start=')")
    query = parse_qs(urlparse(page.url).query)
    assert (query["start"], query["end"]) == ([start], [end]) and "range" not in query
    assert page.errors == []


def _chosen_range(page) -> str:
    """The label of the period control's chosen option (one, and only one, is chosen)."""
    chosen = page.locator(f"#{ids.RANGE} input:checked")
    assert chosen.count() == 1
    return chosen.evaluate("input => input.closest('label').innerText").strip()


def _hotspot_list(page, url: str) -> list[tuple[str, str, str, str]]:
    """The rows of the desk's hotspot tab: name, cases, trend, z."""
    page.goto(url)
    page.locator(".tab", has_text=re.compile("^热点$")).click()
    page.wait_for_selector(".hotspot-name", timeout=30_000)
    return [tuple(cell.inner_text().strip() for cell in row.query_selector_all("td"))
            for row in page.query_selector_all(".hotspot-name >> xpath=..")]
