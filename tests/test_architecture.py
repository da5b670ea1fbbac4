"""The layering is enforced, not only described: the import contract of ``pyproject.toml``
(what ``make lint`` runs) holds on the code, and breaks — naming the import — when a module
imports the wrong way; and the read API is served without Dash.

Each wrong-way import is written into a throwaway copy of the packages, so the checked-in
code is never touched; the linter runs on that copy as ``make lint`` runs it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import test_auth
from conftest import PASSWORD, ensure_user

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("onemap", "etl", "democity", "layers", "web", "dashboard")
LINT = Path(sys.executable).parent / "lint-imports"


def lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` as ``make lint`` runs it, on the packages and contract in ``root``."""
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    """The packages' Python files and the contract, copied."""
    root = tmp_path_factory.mktemp("layering")
    shutil.copy(ROOT / "pyproject.toml", root)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__", "assets", "migrations",
                                                      "presets"))
    return root


def test_the_checked_in_code_keeps_the_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_only_the_cli_entry_point_is_exempt():
    """The one composition root is the only exemption of every contract."""
    from importlinter.api import read_configuration

    contracts = read_configuration(str(ROOT / "pyproject.toml"))["contracts_options"]
    assert len(contracts) >= 5
    ignored = {i for c in contracts for i in c.get("ignore_imports", [])}
    assert ignored == {"onemap.cli -> **"}


# (module written, its import, the importer the linter must name, the imported it must name)
WRONG_WAY = [
    ("layers/wrong_way.py", "from dashboard import ids", "layers.wrong_way", "dashboard.ids"),
    ("layers/wrong_way.py", "import web.api", "layers.wrong_way", "web.api"),
    ("layers/wrong_way.py", "import dash", "layers.wrong_way", "dash"),
    ("layers/wrong_way.py", "from etl import load", "layers.wrong_way", "etl.load"),
    ("web/wrong_way.py", "from dashboard import outage", "web.wrong_way", "dashboard.outage"),
    ("web/wrong_way.py", "import plotly", "web.wrong_way", "plotly"),
    ("onemap/wrong_way.py", "from layers import view", "onemap.wrong_way", "layers.view"),
    ("onemap/wrong_way.py", "from etl import load", "onemap.wrong_way", "etl.load"),
    # The CLI's own helpers are plumbing: only onemap.cli itself may reach up.
    ("onemap/wrong_way.py", "from democity import city", "onemap.wrong_way", "democity.city"),
    ("etl/wrong_way.py", "from layers import kpi", "etl.wrong_way", "layers.kpi"),
    ("etl/wrong_way.py", "from democity import city", "etl.wrong_way", "democity.city"),
    ("democity/wrong_way.py", "from web import app", "democity.wrong_way", "web.app"),
    ("dashboard/wrong_way.py", "from democity import run", "dashboard.wrong_way",
     "democity.run"),
]


@pytest.mark.parametrize(("path", "line", "importer", "imported"), WRONG_WAY,
                         ids=[f"{i}->{m}" for _, _, i, m in WRONG_WAY])
def test_a_wrong_way_import_breaks_the_contract(copy, path, line, importer, imported):
    module = copy / path
    module.write_text(f'"""A throwaway module importing the wrong way."""\n\n{line}\n')
    try:
        result = lint(copy)
    finally:
        module.unlink()
    report = result.stdout + result.stderr
    assert result.returncode != 0, report
    assert "BROKEN" in report and importer in report and imported in report, report


def test_the_cli_may_import_every_package(copy):
    """The exemption works: the composition root imports every package and the contract
    holds (the copy is the checked-in code, whose CLI imports the dashboard)."""
    assert "from dashboard.app import create_app" in (copy / "onemap" / "cli.py").read_text()
    result = lint(copy)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the read API without Dash ---------------------------------------------------------------
# A small district (2 streets, 8 grids, 300 cases) loaded through the ETL, as the sign-in
# tests have it.
district = test_auth.district


API_ONLY = """
import base64, json, sys
from web.app import create_api_app
from onemap.settings import get_settings

settings = get_settings()
client = create_api_app(settings, settings.database_url).test_client()
basic = {"Authorization": "Basic " + base64.b64encode(b"api.reader:%s").decode()}
nobody = client.get("/collections/cases/items")
items = client.get("/collections/cases/items?limit=1", headers=basic)
export = client.get("/export/cases.csv", headers=basic)
print(json.dumps({
    "nobody": [nobody.status_code, nobody.headers.get("WWW-Authenticate"),
               nobody.get_json()],
    "items": [items.status_code, items.get_json()["numberMatched"]],
    "export": [export.status_code, export.get_data().decode("utf-8-sig")],
    "openapi": client.get("/openapi.json").status_code,
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in
                      ("dash", "plotly", "dashboard")),
}))
"""


def test_the_api_is_served_without_dash(district, tmp_path):
    """The OGC API, the exports and the sign-in gate on a server built by ``web`` alone,
    in a fresh interpreter: Dash, plotly and the dashboard are never imported, and the
    answers are the database's (counted here in plain SQL)."""
    ensure_user(district, "api.reader", "analyst")
    script = API_ONLY.replace("%s", PASSWORD)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": district,
           "ONEMAP_HOME": str(tmp_path), "ONEMAP_SECRET_KEY": "test-" + "k" * 32}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    with psycopg.connect(district) as conn:
        cases = conn.execute("SELECT count(*) FROM case_event").fetchone()[0]
        audited = conn.execute("SELECT count(*), max(target) FROM audit_log WHERE "
                               "action = 'export' AND user_name = 'api.reader'").fetchone()
    assert answers["modules"] == []
    status, challenge, body = answers["nobody"]
    assert (status, challenge) == (401, 'Basic realm="onemap"')
    assert body == {"error": "sign in first (session cookie, HTTP Basic or a bearer token)"}
    assert answers["items"] == [200, cases] and cases > 0
    status, text = answers["export"]
    assert status == 200 and len(list(csv.DictReader(io.StringIO(text)))) == cases
    assert audited == (1, "cases")
    assert answers["openapi"] == 200
