"""Maps updated in place keep up with their views: the big screen's tour moves its map from
street to street (the map once kept the first view's shapes while the rest followed)."""

from __future__ import annotations

import time

import psycopg
import pytest
from conftest import ensure_user

pytestmark = [pytest.mark.db, pytest.mark.browser]

# The units the map holds once plotly has handed them to MapLibre (a choropleth's points get
# their centres then), and the breadcrumb's last place.
SHOWN = """() => { const gd = document.querySelector('#bs-map .js-plotly-plot');
    if (!gd || !gd.calcdata || !gd.calcdata.length) return null;
    const units = gd.calcdata[0];
    return {handed: units.some(p => p.ct !== undefined), units: units.length,
            where: document.querySelector('#bs-breadcrumb').innerText}; }"""


def communities(url: str) -> dict[str, int]:
    """Each street's name and its number of communities."""
    with psycopg.connect(url) as conn:
        return dict(conn.execute(
            "SELECT s.name, count(c.code) FROM admin_unit s JOIN admin_unit c "
            "ON c.parent_code = s.code WHERE s.level = 2 GROUP BY s.name").fetchall())


def test_bigscreen_map_follows_the_tour(city_db, serve, browser):
    server = serve(city_db)
    token = ensure_user(city_db, "wall-tour", "kiosk")
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.goto(server.url + f"/bigscreen?tour=5&kiosk={token}")
    page.wait_for_function("() => (document.querySelector('#bs-breadcrumb') || {innerText: ''})"
                           ".innerText.includes('›')", timeout=60_000)  # the tour's first street
    # The map follows its breadcrumb from street to street. On a busy machine the breadcrumb
    # may name the next street a moment before the map has drawn it, so the map is given
    # time to catch up; it must be seen showing two different streets whole (the bug this
    # guards against kept the first view's shapes for good).
    sizes, deadline, shown, seen = communities(city_db), time.monotonic() + 60, None, set()
    while len(seen) < 2 and time.monotonic() < deadline:
        shown = page.evaluate(SHOWN)
        if shown and shown["handed"] and "›" in shown["where"]:
            street = shown["where"].split("›")[-1].strip()
            if shown["units"] == sizes[street]:
                seen.add(street)
        page.wait_for_timeout(200)
    assert len(seen) == 2, f"the map showed its breadcrumb's street only for {seen}: {shown}"
    context.close()
