"""The case table in headless Chromium: the newest cases of the view, and a click anywhere on
a row opens that case's lifecycle."""

from __future__ import annotations

import psycopg
import pytest
from conftest import screenshot

from dashboard.components import CASE_ROWS

pytestmark = [pytest.mark.db, pytest.mark.browser]

ROWS = "#case-table tbody tr"


def newest(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT id FROM case_event ORDER BY reported_at DESC LIMIT %s", (CASE_ROWS,))]


def test_row_click_opens_the_lifecycle(city_db, serve, page):
    server = serve(city_db)
    server.login(page)
    page.goto(server.url + "/?range=all")
    page.wait_for_selector(ROWS, timeout=30_000)
    assert page.locator(ROWS).count() == CASE_ROWS
    assert page.locator(f"{ROWS} .case-link").first.inner_text() in newest(city_db)
    row = page.locator(ROWS).nth(2)
    case_id = row.locator(".case-link").inner_text()
    row.locator("td").nth(2).click()  # the category cell: the whole row takes the click
    page.wait_for_selector("#case-detail .timeline", timeout=30_000)
    assert case_id in page.inner_text("#case-detail h3")
    screenshot(page, "case-detail-zh")
    assert page.errors == [] and page.external == []
