"""The street fence covers the lists too: a category, subcategory or channel that exists only
in another street is not offered to a street official — not in the filter dropdowns of the
page, not in the subcategory callback, not in any API list — while an analyst sees all.

A district of two streets gets ordinary cases everywhere, and in the second street only a
top-level category, a channel, and a subcategory under a category both streets share."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import PASSWORD, DashServer, ensure_user, screenshot, sql_rows
from test_etl_bad_files import CASES_MAPPING, build_hierarchy
from test_etl_kill import cases_frame

from etl.load import load

pytestmark = [pytest.mark.db, pytest.mark.browser]

OWN, OTHER = "440310001", "440310002"
ONLY_THERE = {"category": "别街独有类", "channel": "别街独有渠道", "sub": "别街城管子类"}
SHARED_TOP = "城市管理"
MAPPING = CASES_MAPPING.replace("  category_1: 类别\n", "  category_1: 类别\n  category_2: 子类\n")


@pytest.fixture(scope="module")
def district(fresh_db, tmp_path_factory) -> str:
    url = fresh_db()
    folder = tmp_path_factory.mktemp("vocabulary")
    area = build_hierarchy(url, folder / "hierarchy")
    (folder / "cases.yaml").write_text(MAPPING, encoding="utf-8")
    common = cases_frame(area, 200).assign(子类="一般")
    _load(url, common, folder / "common.csv", folder / "cases.yaml")
    # Ten more cases at the places of cases that fell in the other street.
    there = sql_rows(url, "SELECT ST_X(geom), ST_Y(geom) FROM case_event WHERE street_code = %s "
                     "ORDER BY id LIMIT 10", OTHER)
    assert len(there) == 10
    extra = common.head(10).assign(
        编号=[f"F{i:03d}" for i in range(10)],
        类别=[ONLY_THERE["category"]] * 5 + [SHARED_TOP] * 5,
        子类=["其他"] * 5 + [ONLY_THERE["sub"]] * 5,
        渠道=ONLY_THERE["channel"],
        经度=[f"{x:.6f}" for x, _ in there], 纬度=[f"{y:.6f}" for _, y in there])
    _load(url, extra, folder / "extra.csv", folder / "cases.yaml")
    # The set-up itself, in plain SQL: each word exists in the other street only.
    for column, word in (("category_1", ONLY_THERE["category"]),
                         ("channel", ONLY_THERE["channel"]),
                         ("category_2", ONLY_THERE["sub"])):
        streets = sql_rows(url, f"SELECT DISTINCT street_code FROM case_event WHERE {column} = %s",
                      word)
        assert streets == [(OTHER,)], (column, streets)
    return url


def _load(url: str, frame: pd.DataFrame, path, mapping) -> None:
    frame.to_csv(path, index=False)
    report = load(url, "cases", [path], mapping)
    assert (report.status, report.rejected) == ("committed", 0)


@pytest.fixture(scope="module")
def site(district):
    ensure_user(district, "official", "street_official", OWN)
    ensure_user(district, "analyst", "analyst")
    server = DashServer(district)
    yield server
    server.stop()


def own_words(url: str, column: str) -> set[str]:
    return {r[0] for r in sql_rows(url, f"SELECT DISTINCT {column} FROM case_event "
                                   f"WHERE street_code = %s AND {column} IS NOT NULL", OWN)}


def dropdown_options(page, component: str) -> set[str]:
    """The options a person sees after opening the dropdown ``component``."""
    page.click(f"#{component}")
    menu = ".dash-dropdown-content .dash-dropdown-option"
    page.wait_for_selector(menu, timeout=10_000)
    page.wait_for_timeout(300)
    texts = page.evaluate(
        "menu => Array.from(document.querySelectorAll(menu))"
        ".map(e => e.innerText.trim()).filter(t => t)", menu)
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    return set(texts)


def test_a_street_officials_dropdowns_hold_only_their_streets_words(site, district, page):
    site.login(page, "official", PASSWORD)
    page.goto(site.url + "/?range=all")
    page.wait_for_selector("#filter-category", timeout=30_000)
    categories = dropdown_options(page, "filter-category")
    assert categories == own_words(district, "category_1")
    assert ONLY_THERE["category"] not in categories
    channels = dropdown_options(page, "filter-channel")
    assert channels == own_words(district, "channel")
    assert ONLY_THERE["channel"] not in channels
    # The shared top-level category: its subcategories are those of the own street only.
    page.goto(f"{site.url}/?range=all&category={SHARED_TOP}")
    page.wait_for_selector("#filter-subcategory", timeout=30_000)
    page.wait_for_timeout(1_500)  # the subcategory options arrive by callback
    subs = dropdown_options(page, "filter-subcategory")
    screenshot(page, "official-vocabulary")
    want = {r[0] for r in sql_rows(district, "SELECT DISTINCT category_2 FROM case_event WHERE "
                                        "street_code = %s AND category_1 = %s", OWN, SHARED_TOP)}
    assert subs == want and ONLY_THERE["sub"] not in subs


def test_the_analyst_still_sees_every_word(site, district, page):
    site.login(page, "analyst", PASSWORD)
    page.goto(site.url + "/?range=all")
    page.wait_for_selector("#filter-category", timeout=30_000)
    everywhere = {r[0] for r in sql_rows(district, "SELECT DISTINCT category_1 FROM case_event")}
    assert dropdown_options(page, "filter-category") == everywhere
    assert ONLY_THERE["category"] in everywhere


def test_no_api_list_names_another_streets_words(site, district, page):
    """The callback that fills the subcategories, asked by hand for the other street's
    categories, and the read API's category and channel lists."""
    site.login(page, "official", PASSWORD)
    body = {"output": "filter-subcategory.options",
            "outputs": {"id": "filter-subcategory", "property": "options"},
            "inputs": [{"id": "filter-category", "property": "value",
                        "value": [ONLY_THERE["category"], SHARED_TOP]}],
            "state": [{"id": "filter-subcategory", "property": "value", "value": []}],
            "changedPropIds": ["filter-category.value"]}
    answer = page.request.post(site.url + "/_dash-update-component", data=body,
                               headers={"Origin": site.url})
    assert answer.status == 200
    offered = set(answer.json()["response"]["filter-subcategory"]["options"])
    assert offered == {r[0] for r in sql_rows(
        district, "SELECT DISTINCT category_2 FROM case_event WHERE street_code = %s "
                  "AND category_1 = ANY(%s)", OWN, [ONLY_THERE["category"], SHARED_TOP])}
    kpi = json.load(site.open("/api/kpi?range=all", "official", PASSWORD))
    text = json.dumps(kpi, ensure_ascii=False)
    for word in ONLY_THERE.values():
        assert word not in text
    assert {c["key"] for c in kpi["channels"]} == own_words(district, "channel")
