"""Reports (周报 / 月报): downloaded from a running server and made by ``onemap report``, then
read where a person reads them — the HTML parsed, the PDF's text (pdftotext), its fonts
(pdffonts) and its pages as pictures (pdftoppm, saved under tests/artifacts/ to be looked
at) — and held to the API's answers (/api/kpi, /api/workbench, /api/hotspots) for the same
scope and days, and to a recount in plain SQL written here.

Also: a report fetches nothing (no address in the HTML; the PDF's fetcher refuses all but
``data:``, checked against a local server that counts what it is asked), a scope the user
may not see is refused and audited, and the command line's mistakes are one clear line.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import pytest
from conftest import ARTIFACTS, DashServer, bluish_share, ensure_user, screenshot

pytestmark = [pytest.mark.db, pytest.mark.browser]

MONTH = ("2026-10", "2026-10-01", "2026-10-31")
WEEK = ("2026-W46", "2026-11-09", "2026-11-15")
TZ = "Asia/Shanghai"


# -- periods (no database) -------------------------------------------------------------------

def test_periods_are_named_exactly():
    from layers.errors import BadParameter
    from layers.report import parse_period

    week = parse_period("2026-W47")
    assert (week.kind, week.first, week.last) == ("week", date(2026, 11, 16), date(2026, 11, 22))
    assert week.first.weekday() == 0 and week.code == "2026-W47"
    assert parse_period("2026-w01").first == date(2025, 12, 29)  # ISO week 1 of 2026
    month = parse_period("2026-02")
    assert (month.kind, month.last, month.code) == ("month", date(2026, 2, 28), "2026-02")
    assert parse_period("2028-02").last == date(2028, 2, 29)
    assert parse_period("2026-12").last == date(2026, 12, 31)
    days = parse_period("2026-11-03..2026-11-12")
    assert (days.kind, days.days, days.code) == ("days", 10, "2026-11-03..2026-11-12")
    # Days that are exactly a week (from Monday) or a month are named so.
    assert parse_period("2026-11-16..2026-11-22").kind == "week"
    assert parse_period("2026-11-17..2026-11-23").kind == "days"  # Tuesday to Monday
    assert parse_period("2026-11-01/2026-11-30").kind == "month"
    for bad, words in (("2026-13", "month must be in 1..12"), ("2027-W53", "week"),
                       ("2026-11-31..2026-12-02", "day is out of range"),
                       ("2026-11-05..2026-11-01", "before the first"),
                       ("november", "YYYY-MM"), ("", "missing"), ("3026-01", "year")):
        with pytest.raises(BadParameter) as refused:
            parse_period(bad)
        assert "'period'" in str(refused.value) and words in str(refused.value), bad


def test_the_periods_words():
    from dashboard.report import period_words
    from layers.report import parse_period

    assert (period_words(parse_period("2026-W47"), "zh")
            == "2026年第47周（2026-11-16 周一 至 2026-11-22 周日）")
    assert period_words(parse_period("2026-11"), "zh") == "2026年11月（2026-11-01 至 2026-11-30）"
    assert (period_words(parse_period("2026-11-03..2026-11-09"), "zh")
            == "自定义 2026-11-03 至 2026-11-09（7天）")
    assert (period_words(parse_period("2026-W01"), "en")
            == "Week 1 of 2026 (Mon 2025-12-29 to Sun 2026-01-04)")


# -- a server on the demo city -----------------------------------------------------------------

def _sql(url: str, query: str, *args):
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


@pytest.fixture(scope="module")
def site(city_db):
    """A server on the demo city; an official of the street with the most cases, and a
    kiosk."""
    streets = [r[0] for r in _sql(city_db, "SELECT street_code FROM case_event GROUP BY 1 "
                                           "ORDER BY count(*) DESC")]
    ensure_user(city_db, "rp-street", "street_official", streets[0])
    ensure_user(city_db, "rp-kiosk", "kiosk")
    server = DashServer(city_db)
    yield server, streets[0], streets[1]
    server.stop()


def _get(server: DashServer, path: str, user: str = "tester", **headers) -> tuple[bytes, dict]:
    with server.open(path, name=user, headers=headers) as answer:
        return answer.read(), dict(answer.headers)


def _api(server: DashServer, path: str, **params) -> dict:
    return json.loads(_get(server, f"{path}?{urlencode(params)}")[0])


def _report(server: DashServer, fmt: str, period: str, scope: str | None = None,
            user: str = "tester") -> bytes:
    params = {"period": period, **({"scope": scope} if scope else {})}
    body, headers = _get(server, f"/report.{fmt}?{urlencode(params)}", user)
    assert "attachment" in headers["Content-Disposition"]
    assert f"-{period}.{fmt}" in headers["Content-Disposition"]
    return body


@pytest.fixture(scope="module")
def street_html(site) -> str:
    server, street, _ = site
    return _report(server, "html", MONTH[0], street).decode("utf-8")


@pytest.fixture(scope="module")
def district_pdf(site) -> bytes:
    server, _, _ = site
    pdf = _report(server, "pdf", WEEK[0])
    assert pdf.startswith(b"%PDF-")
    return pdf


# -- how the pages write figures (written here from the rules, not imported) ----------------

def _count(n) -> str:
    return f"{n:,}"


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _figure(key: str, value, approx: bool = False) -> str:
    if key in ("total", "closed"):
        return _count(value)
    if key == "median_hours":
        return "—" if value is None else f"{'≈ ' if approx else ''}{value:.1f} 小时"
    if key == "satisfaction":
        return "—" if value is None else f"{value:.2f}"
    return _pct(value)


def _hours_text(hours) -> str:
    if hours is None:
        return "—"
    if hours < 1:
        return f"{hours * 60:.0f} 分钟"
    return f"{hours:.1f} 小时" if hours < 48 else f"{hours / 24:.1f} 天"


def _change(found: dict, kind: str, key: str, now) -> str:
    if found["reason"]:
        return {"previous": "无上期数据", "year_before": "无同期数据"}[kind]
    change = found["changes"][key]
    by = change["by"]
    if by is None:
        if change["unit"] == "percent" and now is not None and found["figures"][key] == 0:
            return {"previous": "上期为 0", "year_before": "同期为 0"}[kind]
        return "无可比"
    digits = 2 if change["unit"] == "score" else 1
    if round(abs(by), digits) == 0:
        return "持平"
    amount = {"percent": f"{abs(by):.1f}%", "points": f"{abs(by):.1f}个百分点",
              "score": f"{abs(by):.2f}分"}[change["unit"]]
    return ("▲" if by > 0 else "▼") + amount


FLOWS = ("total", "closed", "on_time_rate", "same_day_rate", "within_3d_rate", "median_hours",
         "satisfaction")


def _cells(tree, rows: str) -> list[list[str]]:
    """The cells' text of the table rows at the XPath ``rows``."""
    return [[cell.text_content().strip() for cell in row.xpath("./td")]
            for row in tree.xpath(rows)]


def _text(tree, path: str) -> str:
    """The text of the one element at the XPath ``path``."""
    (found,) = tree.xpath(path)
    return found.text_content()


def _rows(section: str) -> str:
    return f'//*[@id="{section}"]//tbody/tr'



# -- the figures ---------------------------------------------------------------------------------

def test_the_html_reports_the_apis_figures(site, street_html, city_db):
    """A street's 月报: the key figures with 环比 and 同比, the backlog, the map's units, the
    categories, hot grids, overdue cases and handling units are the API's for the same
    days, written as the pages write them; a few recounted in SQL."""
    from lxml import html as lxml_html

    server, street, _ = site
    period, first, last = MONTH
    kpi = _api(server, "/api/kpi", scope=street, start=first, end=last)
    bench = _api(server, "/api/workbench", scope=street, start=first, end=last)
    grids = _api(server, "/api/hotspots", scope=street, start=first, end=last)
    tree = lxml_html.fromstring(street_html)
    name = kpi["scope"]["name"]
    assert _text(tree, '//*[@id="title"]') == f"{name} 月报"
    assert _text(tree, '//*[@id="period"]') == \
        "统计时段：2026年10月（2026-10-01 至 2026-10-31）"
    cases, compare = kpi["cases"], kpi["compare"]
    for key in FLOWS:
        row = _cells(tree, f'//tr[@id="kpi-{key}"]')[0]
        assert row[1] == _figure(key, cases[key], cases.get("median_approx")), (key, row)
        for column, kind in ((2, "previous"), (4, "year_before")):
            was = compare[kind]["figures"]
            assert row[column] == ("—" if was is None else _figure(key, was[key])), (key, row)
            assert row[column + 1] == _change(compare[kind], kind, key, cases[key]), (key, row)
    # 环比: the 31 days before; 同比: the same days a year before.
    assert compare["previous"]["period"]["start"][:10] == "2026-08-31"
    assert "环比：2026-08-31 至 2026-09-30" in street_html
    assert ("同比：2025-10-01 至 2025-10-31" + ("（无同期数据）" if compare["year_before"]["reason"]
                                               else "")) in street_html
    for key in ("open", "overdue", "due_soon"):
        shown = _text(tree, f'//*[@id="backlog-{key}"]/span')
        assert shown == _count(cases[key]), key
    # The map: every community, named, with its period's cases, in the legend's classes.
    labels = [[t.text_content() for t in text.xpath("./tspan")]
              for text in tree.xpath('//svg[@class="map"]/text[@class="label"]')]
    assert sorted(labels) == sorted([c["name"], _count(c["total"])] for c in kpi["children"])
    assert len(tree.xpath('//svg[@class="map"]/path[@fill]')) >= len(kpi["children"])
    assert tree.xpath('//g[@class="legend"]/text')[0].text_content() == "诉求量"
    categories = _cells(tree, _rows("categories"))
    assert [(r[0], r[1]) for r in categories] == [
        (c["key"], _count(c["n"])) for c in kpi["categories"]]
    assert categories[0][2] == _pct(kpi["categories"][0]["n"] / cases["total"])
    hot = [f["properties"] for f in grids["features"] if f["properties"]["hot"]]
    assert [r[0] for r in _cells(tree, _rows("hotspots"))] == [h["name"] for h in hot][:10]
    overdue = _cells(tree, _rows("overdue"))
    assert _text(tree, '//*[@id="overdue-count"]') == (
        f"显示 {len(overdue)} / 共 {_count(cases['overdue'])}"
        if cases["overdue"] > len(overdue) else f"共 {cases['overdue']:,} 条")
    units = _cells(tree, _rows("ranking-table"))
    assert len(units) == min(20, len(bench["units"]))
    for row, unit in zip(units, bench["units"], strict=False):
        assert row[1:] == [unit["unit"], _count(unit["received"]), _count(unit["closed"]),
                           _pct(unit["on_time_rate"]), _hours_text(unit["median_hours"]),
                           _count(unit["overdue"]), _pct(unit["satisfied_rate"]),
                           "—" if unit["satisfaction"] is None
                           else f"{unit['satisfaction']:.2f}"], row
    # Recounted from the cases themselves.
    days = ("SELECT {what} FROM case_event WHERE street_code = %s AND reported_at >= "
            "'2026-10-01 00:00+08' AND reported_at < '2026-11-01 00:00+08' {rest}")
    total = _sql(city_db, days.format(what="count(*)", rest=""), street)[0][0]
    assert _cells(tree, '//tr[@id="kpi-total"]')[0][1] == _count(total)
    by_community = dict(_sql(city_db, days.format(what="community_code, count(*)",
                                                  rest="GROUP BY 1"), street))
    names = dict(_sql(city_db, "SELECT code, name FROM admin_unit WHERE parent_code = %s",
                      street))
    assert sorted(labels) == sorted([names[c], _count(by_community.get(c, 0))] for c in names)
    top = _sql(city_db, days.format(what="category_1, count(*)",
                                    rest="GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3"), street)
    assert [(r[0], r[1]) for r in categories[:3]] == [(c, _count(n)) for c, n in top]
    received = _sql(city_db, days.format(
        what="handling_unit, count(*)", rest="AND handling_unit IS NOT NULL "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"), street)[0]
    assert units[0][1:3] == [received[0], _count(received[1])]
    open_, late, ids = _sql(city_db, "SELECT count(*), count(*) FILTER (WHERE deadline < "
                            "now()), (array_agg(id ORDER BY deadline, reported_at, id) "
                            "FILTER (WHERE deadline < now()))[1:15] FROM case_event "
                            "WHERE status = 'open' AND street_code = %s", street)[0]
    assert _text(tree, '//*[@id="backlog-open"]/span') == _count(open_)
    assert _text(tree, '//*[@id="backlog-overdue"]/span') == _count(late)
    assert [r[0] for r in overdue] == ids


def _pdftotext(pdf: bytes, mode: str = "-layout") -> str:
    """The PDF's text, laid out as on the page or (``-raw``) in the order it was written."""
    return subprocess.run(["pdftotext", mode, "-enc", "UTF-8", "-", "-"], input=pdf,
                          capture_output=True, check=True).stdout.decode("utf-8")


def test_the_pdf_reads_the_apis_figures_and_embeds_its_font(site, district_pdf, city_db):
    """The district's 周报 as PDF: its text holds the title, the exact week, each street
    with its cases, every key figure with its changes and the ranking's first units, as
    the API gives them; every font is embedded, the report's own face among them."""
    server, _, _ = site
    period, first, last = WEEK
    kpi = _api(server, "/api/kpi", start=first, end=last)
    bench = _api(server, "/api/workbench", start=first, end=last)
    text = _pdftotext(district_pdf)
    lines = text.splitlines()
    assert f"{kpi['scope']['name']} 周报" in text
    assert "2026年第46周（2026-11-09 周一 至 2026-11-15 周日）" in text
    words = " ".join(_pdftotext(district_pdf, "-raw").split())  # a label: name, then figure
    for child in kpi["children"]:
        assert f"{child['name']} {_count(child['total'])}" in words, child["name"]
    cases, compare = kpi["cases"], kpi["compare"]
    names = {"total": "诉求总量", "closed": "已办结", "on_time_rate": "按时办结率",
             "median_hours": "办理时长中位数", "satisfaction": "满意度"}
    for key, label in names.items():
        row = next(line for line in lines if line.strip().startswith(label))
        cells = row.split()
        assert _figure(key, cases[key], cases.get("median_approx")).replace(" ", "") in \
            "".join(cells), (key, row)
        assert _change(compare["previous"], "previous", key, cases[key]) in row, (key, row)
        assert _change(compare["year_before"], "year_before", key, cases[key]) in row
    for unit in bench["units"][:5]:
        row = next(line for line in lines if unit["unit"] in line)
        assert row.split()[1:4] == [unit["unit"], _count(unit["received"]),
                                    _count(unit["closed"])], row
    total = _sql(city_db, "SELECT count(*) FROM case_event WHERE reported_at >= "
                          "'2026-11-09 00:00+08' AND reported_at < '2026-11-16 00:00+08'")[0][0]
    assert cases["total"] == total
    path = ARTIFACTS / "report-district-week.pdf"
    ARTIFACTS.mkdir(exist_ok=True)
    path.write_bytes(district_pdf)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, check=True)
    table = fonts.stdout.decode().splitlines()[2:]
    assert table and all(line.split()[-5] == "yes" for line in table), table  # emb
    assert any("Onemap-Report-Sans" in line for line in table), table


def _pages(pdf: bytes, name: str, dpi: int = 90) -> list[Path]:
    """The PDF's pages as PNGs under tests/artifacts/ (``name``-N.png)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-", str(ARTIFACTS / name)],
                   input=pdf, check=True)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


def _margins_blank(png: Path, mm: float = 9) -> bool:
    """Whether the page's left and right margins (``mm`` wide, A4 210 mm) hold no ink:
    nothing runs off the text block."""
    from PIL import Image

    image = Image.open(png).convert("L")
    width, height = image.size
    strip = round(width * mm / 210)
    for left in (0, width - strip):
        box = image.crop((left, 0, left + strip, height))
        if min(box.get_flattened_data()) < 200:
            return False
    return True


def test_the_pdf_pages_as_pictures(site, district_pdf):
    """Page 1 holds the map (blue, the dashboard's scale) and every page keeps its margins;
    A4 pages, no more than 4. The pictures are kept for a person to look at."""
    from PIL import Image

    server, street, _ = site
    pages = _pages(district_pdf, "report-district-week")
    assert 2 <= len(pages) <= 4, pages
    assert bluish_share(pages[0].read_bytes()) > 0.08
    for png in pages:
        width, height = Image.open(png).size
        assert abs(height / width - 297 / 210) < 0.01, png
        assert _margins_blank(png), png
    street_pdf = _report(server, "pdf", MONTH[0], street)
    for png in _pages(street_pdf, "report-street-month"):
        assert _margins_blank(png), png


# -- nothing fetched ---------------------------------------------------------------------------

def test_a_report_names_no_address(street_html):
    """The HTML holds its style, font and map: no http(s) address, nothing to load."""
    assert not re.search(r"https?:", street_html, re.IGNORECASE)
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", street_html, re.I)
    for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", street_html):
        assert url.startswith("data:"), url
    for attribute in re.findall(r"\b(?:src|href)\s*=\s*['\"]?([^'\" >]+)", street_html):
        assert attribute.startswith("data:"), attribute
    assert "@font-face" in street_html and "data:font/woff;base64," in street_html


class _Counting(http.server.BaseHTTPRequestHandler):
    asked: list[str] = []

    def do_GET(self):  # noqa: N802 (the standard library's name)
        self.asked.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_pdf_fetches_nothing(street_html, tmp_path):
    """WeasyPrint's fetcher refuses every address but data: — an image, a style sheet or a
    font on a server (here a local one that counts what it is asked) or a local file stops
    the rendering, and nothing is asked; the real report fetches only its data: font."""
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    from dashboard.pdf import LocalOnly, pdf_bytes

    server = http.server.HTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }")
    try:
        for tag in (f'<img src="{base}/x.png">', f'<link rel="stylesheet" href="{base}/s.css">',
                    f"<style>@font-face {{ font-family: x; src: url({base}/f.woff) }}"
                    f" p {{ font-family: x }}</style><p>字</p>",
                    f'<link rel="stylesheet" href="{secret.as_uri()}">',
                    '<img src="file:///etc/hostname">'):
            with pytest.raises(FatalURLFetchingError):
                pdf_bytes(f"<html><body>{tag}</body></html>")
    finally:
        server.shutdown()
    assert _Counting.asked == []
    fetcher = LocalOnly()
    HTML(string=street_html, url_fetcher=fetcher).write_pdf(io.BytesIO())
    assert fetcher.refused == []


# -- who may have one ---------------------------------------------------------------------------

def _status(server: DashServer, path: str, user: str = "tester", **headers) -> tuple[int, str]:
    try:
        body, _ = _get(server, path, user, **headers)
        return 200, body[:5].decode("latin-1")
    except urllib.error.HTTPError as refusal:
        return refusal.code, refusal.read().decode("utf-8")


def test_a_scope_out_of_reach_is_refused_and_audited(site, city_db):
    server, street, other = site
    own = _status(server, f"/report.pdf?scope={street}&period={MONTH[0]}", "rp-street")
    assert own == (200, "%PDF-")
    for fmt in ("pdf", "html"):
        status, body = _status(server, f"/report.{fmt}?scope={other}&period={MONTH[0]}",
                               "rp-street")
        assert status == 403 and "outside your area" in body, (fmt, body)
    denied = _sql(city_db, "SELECT detail->>'what' FROM audit_log WHERE user_name = "
                           "'rp-street' AND action = 'denied' AND target = %s", other)
    assert [r[0] for r in denied] == ["report", "report"]
    made = _sql(city_db, "SELECT target, detail->>'period', detail->>'format' FROM audit_log "
                         "WHERE user_name = 'rp-street' AND action = 'report'")
    assert made == [(street, MONTH[0], "pdf")]
    # Naming no unit, she gets her street's; the district's is refused.
    assert _status(server, f"/report.html?period={MONTH[0]}", "rp-street")[0] == 200
    district = _sql(city_db, "SELECT code FROM admin_unit WHERE level = 1")[0][0]
    assert _status(server, f"/report.pdf?scope={district}&period={MONTH[0]}",
                   "rp-street")[0] == 403
    kiosk = ensure_user(city_db, "rp-kiosk", "kiosk")
    status, body = _status(server, f"/report.pdf?period={MONTH[0]}", "rp-kiosk",
                           Authorization=f"Bearer {kiosk}")
    assert status == 403 and "may not export" in body
    status, body = _status(server, "/report.pdf?period=2026-13")
    assert status == 400 and "'period'" in body and "month must be in 1..12" in body
    status, body = _status(server, "/report.pdf?period=2026-11&scope=%3Cb%3E")
    assert status == 400 and "not an admin code" in body
    status, body = _status(server, "/report.pdf?period=2026-11", **{
        "Sec-Fetch-Site": "cross-site"})
    assert status == 403 and "another site" in body
    denied = _sql(city_db, "SELECT detail->>'what' FROM audit_log WHERE user_name = "
                           "'rp-kiosk' AND action = 'denied'")
    assert denied == [("report",)]


# -- the command line ---------------------------------------------------------------------------

def _cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "onemap.cli", "report", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def test_the_command_line(city_db, tmp_path, site):
    server, street, _ = site
    out = tmp_path / "week.html"
    done = _cli(city_db, "--scope", street, "--period", WEEK[0], "--format", "html",
                "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"written to {out}" in done.stdout
    served = _report(server, "html", WEEK[0], street).decode("utf-8")
    # Apart from what depends on the moment it was made (the times, the backlog's heading,
    # how long each overdue case is over, and so the font's characters), the same page.
    strip = re.compile(r'id="made">.*?</div>|id="backlog-heading">.*?</p>|'
                       r'<section id="overdue">.*?</section>|data:font/woff;base64,[^"]+', re.S)
    assert strip.sub("", out.read_text("utf-8")) == strip.sub("", served)
    for args, message in (
            (("--scope", "999999", "--period", "2026-11"),
             "error: scope '999999' is not a loaded admin unit"),
            (("--period", "2026-W60"), "error: parameter 'period' = '2026-W60': not a date"),
            (("--period", "11/2026"), "error: parameter 'period' = '11/2026': expected "
                                      "YYYY-MM (a month), YYYY-Www (an ISO week)"),
            (("--period", "2026-11", "--out", str(tmp_path / "no" / "such" / "r.pdf")),
             "error: cannot write")):
        args = (*args, "--out", str(tmp_path / "r.pdf")) if "--out" not in args else args
        done = _cli(city_db, *args)
        assert done.returncode == 1 and done.stderr.startswith(message), done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "r.pdf").exists()


# -- the dashboard's button ----------------------------------------------------------------------

def test_the_workbench_downloads_the_report_of_its_view(site, page):
    server, street, _ = site
    server.login(page, "rp-street")
    page.goto(server.url + f"/workbench?start={MONTH[1]}&end={MONTH[2]}")
    page.wait_for_selector("#report-pdf", timeout=60_000)
    href = page.locator("#report-pdf").get_attribute("href")
    assert href == f"/report.pdf?scope={street}&period={MONTH[0]}"
    assert page.locator("#report-html").get_attribute("href") == \
        f"/report.html?scope={street}&period={MONTH[0]}"
    with page.context.expect_page() as opened:
        page.locator("#report-pdf").click()
    tab = opened.value
    answer = page.context.request.get(server.url + href)
    assert answer.status == 200 and answer.body().startswith(b"%PDF-")
    tab.close()
    screenshot(page, "workbench-report-button")
    page.goto(server.url + "/workbench?start=2026-11-16&end=2026-11-22")
    page.wait_for_selector("#report-pdf", timeout=60_000)
    assert page.locator("#report-pdf").get_attribute("href").endswith("period=2026-W47")
    page.goto(server.url + "/workbench?range=all")
    page.wait_for_selector("#wb-report", timeout=60_000)
    assert page.locator("#report-pdf").count() == 0
    assert "请选择一个时段" in page.locator("#wb-report").inner_text()
    # The desk offers the same beside its exports.
    page.goto(server.url + f"/?start={WEEK[1]}&end={WEEK[2]}")
    page.wait_for_selector("#desk-report #report-pdf", timeout=60_000)
    assert page.locator("#desk-report #report-pdf").get_attribute("href") == \
        f"/report.pdf?scope={street}&period={WEEK[0]}"
    page.locator("#desk-report").scroll_into_view_if_needed()
    screenshot(page, "desk-report-button")
    assert not page.errors and not page.external, (page.errors, page.external)
