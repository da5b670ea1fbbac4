"""The app's own CJK web font: small enough, covering what the pages print, fetched from the
app itself and used by both pages in headless Chromium (no system font, no CDN)."""

from __future__ import annotations

import psycopg
import pytest
from conftest import ensure_user, screenshot

from dashboard.figures import FONT_FAMILY
from dashboard.messages import MESSAGES
from onemap.settings import PROJECT_ROOT

FONTS = PROJECT_ROOT / "dashboard" / "assets" / "fonts"
FONT = FONTS / "onemap-sans-sc.woff2"
FAMILY = "Onemap Sans SC"
# Characters no CJK text font draws (the warning sign, the alarm dot): the last
# font of the stack, the system's, takes them.
SYMBOLS = set("⚠🔴")
NAMES = ["SELECT name FROM admin_unit", "SELECT DISTINCT category_1 FROM case_event",
         "SELECT DISTINCT category_2 FROM case_event", "SELECT DISTINCT channel FROM case_event",
         "SELECT DISTINCT kind FROM facility", "SELECT DISTINCT kind FROM iot_device"]
LOCAL = ("http://127.0.0.1", "data:", "blob:", "about:")  # as the page fixture counts
FONT_STATE = f"""() => {{
    const face = [...document.fonts].find(f => f.family.replace(/"/g, '') === '{FAMILY}');
    return face ? [face.status, document.fonts.check('16px "{FAMILY}"', '一张图')] : null; }}"""


def cmap() -> set[int]:
    from fontTools.ttLib import TTFont

    return set(TTFont(FONT).getBestCmap())


def missing(text: set[str], covered: set[int]) -> set[str]:
    return {c for c in text if ord(c) > 0x7E and ord(c) not in covered} - SYMBOLS


def test_font_is_small_and_licensed():
    assert FONT.stat().st_size < 3 * 1024 * 1024
    assert "SIL OPEN FONT LICENSE Version 1.1" in (FONTS / "OFL.txt").read_text()
    assert FAMILY in FONT_FAMILY and FAMILY in (FONT.parent.parent / "style.css").read_text()


def test_font_covers_the_message_table():
    pytest.importorskip("fontTools")
    text = {c for pair in MESSAGES.values() for words in pair.values() for c in words}
    assert missing(text, cmap()) == set()


@pytest.mark.db
def test_font_covers_the_demo_city(city_db):
    pytest.importorskip("fontTools")
    with psycopg.connect(city_db) as conn:
        text = {c for query in NAMES for (name,) in conn.execute(query) if name for c in name}
    assert missing(text, cmap()) == set()


@pytest.mark.db
@pytest.mark.browser
def test_pages_use_the_served_font(city_db, serve, page, browser):
    server = serve(city_db)
    fonts: list = []
    page.on("response", lambda r: fonts.append((r.url, r.status)) if ".woff2" in r.url else None)
    server.login(page)
    page.goto(server.url + "/?range=all")
    page.wait_for_function(f"({FONT_STATE})()?.[0] === 'loaded'", timeout=30_000)
    assert page.evaluate(FONT_STATE) == ["loaded", True]
    assert fonts and all(url.startswith(server.url + "/assets/fonts/") and status in (200, 304)
                         for url, status in fonts), fonts
    assert page.evaluate("() => getComputedStyle(document.body).fontFamily").startswith(
        f'"{FAMILY}"')
    page.wait_for_selector("#kpi-total", timeout=30_000)
    page.wait_for_timeout(1500)
    screenshot(page, "font-main-zh")
    assert page.errors == [] and page.external == []
    _bigscreen_uses_the_font(server, browser, city_db)


def _bigscreen_uses_the_font(server, browser, db_url: str) -> None:
    token = ensure_user(db_url, "wall-font", "kiosk")
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    wall = context.new_page()
    external: list[str] = []
    wall.on("request", lambda r: None if r.url.startswith(LOCAL) else external.append(r.url))
    wall.goto(server.url + f"/bigscreen?tour=off&kiosk={token}")
    wall.wait_for_function("() => document.querySelector('#bs-kpi-cards .card')",
                           timeout=30_000)
    wall.wait_for_function(f"({FONT_STATE})()?.[0] === 'loaded'", timeout=30_000)
    family = wall.evaluate("() => getComputedStyle(document.querySelector('.bs-header h1'))"
                           ".fontFamily")
    assert family.startswith(f'"{FAMILY}"')
    wall.wait_for_timeout(1500)
    screenshot(wall, "font-bigscreen-1920x1080")
    assert external == []
    context.close()
