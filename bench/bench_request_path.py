"""How far one request travels through the project's code, in two source trees side by side
(issue 17's "one request zig-zags"): for one ``/api/kpi`` request and one cold dashboard
drill-down, the distinct project files and functions entered, the project calls made and
the SQL statements sent.

What is measured (each case in a fresh process of the tree under test, through entry points
every tree has: ``dashboard.app.create_app`` and its Flask test client, signed in with HTTP
Basic as an admin, as tests/test_auth.py does it):

* ``kpi district`` / ``kpi street`` / ``… + category``: ``GET /api/kpi?scope=…&range=30d``
  (``&category=…``: the city's most frequent top-level category).
* ``drill-down street`` / ``… + category``: the home page's view callback (the one whose
  inputs are the URL's search and the refresh tick) answering a URL that changed to a street,
  ``?scope=…&range=30d``, posted to ``/_dash-update-component`` as the page posts it, with
  the view cache empty (cold).

Before the measured request each process answers the same warm-up, so that what is counted
is one request of a running server, not its start: ``/healthz`` (Dash sets its callbacks up),
``/api/kpi`` of another street over 7 days (credentials checked and cached, a pooled
connection), and the district's view over 7 days (the page the drill-down starts from). The
measured requests ask for 30 days, so no answer of the warm-up can be reused.

Counting: ``sys.setprofile`` sees every Python function entered; a function counts when its
file lies in the tree's product packages (not tests/, bench/ or the virtualenv); a generator
counts when it starts, not at each resumption; comprehensions and module bodies do not
count. Statements are counted at the driver: every ``execute``/``executemany``/``copy``/
``stream`` of a psycopg cursor (SQLAlchemy's and direct psycopg use alike); the implicit
BEGINs psycopg sends are not counted, commits and rollbacks are counted apart;
``answer_statements`` leaves out the sign-in's (sent from onemap/accounts.py: a pool ping, a
lock, the failure count, the user) and the pool's pings (``;``) before each checkout.

Run (both trees, each on a database migrated by its own code and holding the pinned S city,
made by bench/tree_city.py; ONEMAP_HOME or DATABASE_URL naming the server)::

    python bench/bench_request_path.py     # before: a temporary worktree of 740fe0b
    python bench/bench_request_path.py --before /work/wt-before --after /work/wt-after \
        --lines-at d461129 80dc2f6

writes ``bench/results/request-path.json``. ``python bench/bench_request_path.py one --case
NAME --database DB`` measures one case in the tree on PYTHONPATH and prints it as JSON.
"""

from __future__ import annotations

import argparse
import base64
import dis
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("layers", "etl", "dashboard", "web", "onemap", "democity")
USER = "request_path_bench"
PASSWORD = "request-path-bench-1"
RANGE = "30d"
WARM_RANGE = "7d"
CASES = ("kpi district", "kpi district + category", "kpi street", "kpi street + category",
         "drill-down street", "drill-down street + category")
RESUME = dis.opmap["RESUME"]
SIGN_IN = "onemap/accounts.py"  # checks the Basic credentials (the same in both trees)
NOT_FUNCTIONS = {"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<module>"}


# -- in the tree under test ------------------------------------------------------------------
def tree_root() -> Path:
    import layers

    return Path(layers.__file__).resolve().parent.parent


def check_imports(root: Path) -> None:
    """Every product module loaded comes from ``root`` (a package a tree lacks must not be
    found in another checkout through an installed path)."""
    stray = {name: m.__file__ for name, m in list(sys.modules.items())
             if name.split(".")[0] in PACKAGES and getattr(m, "__file__", None)
             and not Path(m.__file__).resolve().is_relative_to(root)}
    if stray:
        raise SystemExit(f"modules from outside {root}: {stray}")


class Tracer:
    """Project functions entered (setprofile) and statements sent (psycopg cursors)."""

    def __init__(self, root: Path):
        self.prefixes = tuple(f"{root / p}{os.sep}" for p in PACKAGES)
        self.root = root
        self.calls: Counter = Counter()
        self.statements: list[str] = []
        self.transactions: Counter = Counter()
        self.on = False
        self._known: dict = {}
        self._patch()

    def _project(self, code) -> tuple | None:
        found = self._known.get(code, False)
        if found is False:
            found = None
            if code.co_filename.startswith(self.prefixes) and code.co_name not in NOT_FUNCTIONS:
                found = (str(Path(code.co_filename).relative_to(self.root)),
                         f"{code.co_qualname}:{code.co_firstlineno}")
            self._known[code] = found
        return found

    def _profile(self, frame, event, _arg) -> None:
        if event != "call":
            return
        key = self._project(frame.f_code)
        if key is None:
            return
        code, at = frame.f_code.co_code, frame.f_lasti
        if at < 0 or (code[at] == RESUME and code[at + 1] == 0):  # entered, not resumed
            self.calls[key] += 1

    def _patch(self) -> None:
        import psycopg

        tracer = self

        def counted(cls, name):
            real = getattr(cls, name)

            def wrapper(self, query, *args, **kwargs):
                if tracer.on:
                    tracer.statements.append((tracer.sender(), _statement_text(query, self)))
                return real(self, query, *args, **kwargs)

            wrapper.__wrapped__ = real
            setattr(cls, name, wrapper)

        def ended(cls, name):
            real = getattr(cls, name)

            def wrapper(self, *args, **kwargs):
                if tracer.on:
                    tracer.transactions[name] += 1
                return real(self, *args, **kwargs)

            setattr(cls, name, wrapper)

        for cls in {psycopg.Cursor, psycopg.ServerCursor}:
            for name in ("execute", "executemany", "stream", "copy"):
                if name in vars(cls):
                    counted(cls, name)
        for name in ("commit", "rollback"):
            ended(psycopg.Connection, name)

    def sender(self) -> str:
        """The innermost project file on the stack (the code that sent a statement)."""
        frame = sys._getframe(2)
        while frame is not None:
            if self._project(frame.f_code) is not None:
                return str(Path(frame.f_code.co_filename).relative_to(self.root))
            frame = frame.f_back
        return "(none)"

    def __enter__(self):
        self.calls.clear()
        self.statements.clear()
        self.transactions.clear()
        self.on = True
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)
        self.on = False

    def summary(self) -> dict:
        files = Counter()
        for (path, _), n in self.calls.items():
            files[path] += n
        return {
            "files": len(files), "functions": len(self.calls),
            "calls": sum(self.calls.values()), "statements": len(self.statements),
            "answer_statements": sum(1 for f, q in self.statements
                                     if f != SIGN_IN and q.strip() != ";"),
            "commits": self.transactions["commit"], "rollbacks": self.transactions["rollback"],
            "files_entered": dict(sorted(files.items())),
            "functions_entered": {f"{p}::{f}": n for (p, f), n in sorted(self.calls.items())},
            "statements_by_file": dict(sorted(Counter(f for f, _ in self.statements).items())),
            "statements_sent": [f"{f}: {q}" for f, q in self.statements],
        }


def _statement_text(query, cursor) -> str:
    if not isinstance(query, str | bytes):
        try:
            query = query.as_string(cursor.connection)
        except Exception:  # a Composed that cannot be rendered: say what it is
            query = repr(query)
    if isinstance(query, bytes):
        query = query.decode(errors="replace")
    return " ".join(query.split())[:160]


def choose(url: str) -> dict:
    """The units and category the cases ask for (the same in every tree's copy of the city)."""
    import psycopg

    with psycopg.connect(url) as conn:
        district = conn.execute("SELECT code FROM admin_unit WHERE level = 1 ORDER BY code "
                                "LIMIT 1").fetchone()[0]
        streets = [c for (c,) in conn.execute(
            "SELECT code FROM admin_unit WHERE level = 2 ORDER BY code")]
        category = conn.execute("SELECT category_1 FROM case_event GROUP BY 1 "
                                "ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()[0]
    return {"district": district, "street": streets[0], "warm_street": streets[-1],
            "category": category}


def make_user(url: str) -> None:
    import psycopg

    from onemap.accounts import add_user
    from onemap.database import make_engine

    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM app_user WHERE name = %s", (USER,))
        conn.execute("DELETE FROM login_failure WHERE name = %s", (USER,))
    engine = make_engine(url)
    try:
        add_user(engine, USER, "admin", None, PASSWORD)
    finally:
        engine.dispose()


def render_request(app, search: str) -> dict:
    """The view callback's request for a page at ``?search``, as the page sends it."""
    from dashboard import ids

    for key, entry in app.callback_map.items():
        inputs = [(i["id"], i["property"]) for i in entry.get("inputs", [])]
        if (ids.URL, "search") in inputs and key.startswith(".."):
            break
    else:
        raise SystemExit("no multi-output callback takes the URL's search as input")
    outputs = []
    for part in key.strip(".").split("..."):
        component, prop = part.rsplit(".", 1)
        outputs.append({"id": component, "property": prop})
    values = {(ids.URL, "search"): search, (ids.REFRESH, "n_intervals"): 0}
    return {"output": key, "outputs": outputs,
            "inputs": [{"id": i, "property": p, "value": values.get((i, p))}
                       for i, p in inputs],
            "state": [{"id": s["id"], "property": s["property"], "value": None}
                      for s in entry.get("state", [])],
            "changedPropIds": [f"{ids.URL}.search"]}


def query(scope: str, range_: str, category: str | None) -> str:
    from urllib.parse import urlencode

    params = {"scope": scope, "range": range_}
    if category:
        params["category"] = category
    return "?" + urlencode(params)


def measure_one(case: str, database: str) -> dict:
    from bench.common import server_url, with_database

    root = tree_root()
    url = with_database(server_url(), database)
    tracer = Tracer(root)
    make_user(url)
    units = choose(url)
    from dashboard.app import create_app
    from onemap.settings import get_settings

    app = create_app(get_settings(), url)
    client = app.server.test_client()
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Basic {token}"

    def ok(answer):
        if answer.status_code != 200:
            raise SystemExit(f"{case}: {answer.status_code} {answer.get_data(as_text=True)[:500]}")
        return answer

    ok(client.get("/healthz"))
    ok(client.get("/api/kpi" + query(units["warm_street"], WARM_RANGE, None)))
    ok(client.post("/_dash-update-component",
                   json=render_request(app, query(units["district"], WARM_RANGE, None))))
    category = units["category"] if case.endswith("+ category") else None
    scope = units["street" if "street" in case else "district"]
    if case.startswith("kpi"):
        def request():
            return client.get("/api/kpi" + query(scope, RANGE, category))
    else:
        body = render_request(app, query(scope, RANGE, category))
        views = app.server.extensions["onemap"].views
        views._entries.clear()  # cold: no view kept

        def request():
            return client.post("/_dash-update-component", json=body)
    for module in PACKAGES:  # everything a tree has is imported before counting starts
        spec = importlib.util.find_spec(module)
        if spec and spec.origin and Path(spec.origin).resolve().is_relative_to(root):
            importlib.import_module(module)
    started = time.perf_counter()
    with tracer:
        answer = request()
    seconds = time.perf_counter() - started
    ok(answer)
    check_imports(root)
    body = answer.get_json()
    shape = sorted(body["response"]) if "response" in body else sorted(body)
    app.server.extensions["onemap"].engine.dispose()
    asked = query(scope, RANGE, category)
    return {"case": case, "tree": str(root), "database": database, "units": units,
            "request": (f"GET /api/kpi{asked}" if case.startswith("kpi")
                        else f"POST /_dash-update-component (the view of {asked})"),
            "answer_keys": shape, "traced_seconds": round(seconds, 3), **tracer.summary()}


# -- the two trees -----------------------------------------------------------------------------
def python_lines(tree: Path, folders: tuple[str, ...], rev: str = "HEAD") -> dict:
    """Lines of the Python files git tracks under ``folders`` at commit ``rev``."""
    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True,
                              check=True).stdout

    files = [f for f in git("ls-tree", "-r", "--name-only", rev, "--", *folders).split()
             if f.endswith(".py")]
    total = blank = 0
    for name in files:
        lines = git("show", f"{rev}:{name}").splitlines()
        total += len(lines)
        blank += sum(1 for line in lines if not line.strip())
    return {"files": len(files), "lines": total, "non_blank": total - blank}


LINE_GROUPS = {
    "layers + etl + dashboard": ("layers", "etl", "dashboard"),
    "layers": ("layers",), "etl": ("etl",), "dashboard": ("dashboard",),
    "web": ("web",), "onemap": ("onemap",), "democity": ("democity",),
    "etl/demo (the demo city before it became democity/)": ("etl/demo",),
    "all product packages (layers, etl, dashboard, web, onemap, democity)": PACKAGES,
}


def run_tree(label: str, tree: Path, database: str, size: str, keep: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    made = subprocess.run([sys.executable, str(HERE / "tree_city.py"), "--size", size,
                           "--database", database, *(["--keep"] if keep else [])], env=env,
                          cwd=tree, capture_output=True, text=True)
    if made.returncode:
        raise SystemExit(f"{label}: the city could not be made:\n{made.stderr[-3000:]}")
    city = json.loads(made.stdout.strip().splitlines()[-1])
    print(f"{label}: {city}", flush=True)
    cases = {}
    for case in CASES:
        done = subprocess.run([sys.executable, __file__, "one", "--case", case, "--database",
                               database], env=env, cwd=tree, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{label} {case}:\n{done.stderr[-3000:]}")
        cases[case] = json.loads(done.stdout.strip().splitlines()[-1])
        found = cases[case]
        print(f"   {label:6} {case:28} files {found['files']:3}  functions "
              f"{found['functions']:4}  calls {found['calls']:5}  statements "
              f"{found['statements']:3} ({found['answer_statements']} of the answer)",
              flush=True)
    lines = {name: python_lines(tree, folders) for name, folders in LINE_GROUPS.items()}
    from bench.trees import commit_of

    return {"tree": str(tree), "commit": commit_of(tree), "city": city, "cases": cases,
            "lines": lines}


def compare(before: dict, after: dict) -> list[dict]:
    from bench.common import metric

    metrics = []
    for case in CASES:
        for field, unit in (("files", "files"), ("functions", "functions"),
                            ("calls", "calls"), ("statements", "statements"),
                            ("answer_statements", "statements")):
            old, new = before["cases"][case][field], after["cases"][case][field]
            metrics.append(metric(f"{case}: {field}", new, unit, "before (740fe0b)" if
                                  before["commit"].startswith("740fe0b") else "before",
                                  old, new / old if old else None))
    for group in LINE_GROUPS:
        for field in ("lines", "non_blank"):
            old, new = before["lines"][group][field], after["lines"][group][field]
            metrics.append(metric(f"lines of Python in {group}: {field.replace('_', '-')}",
                                  new, "lines", "before", old, new / old if old else None))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("one", help="measure one case in the tree on PYTHONPATH")
    one.add_argument("--case", choices=CASES, required=True)
    one.add_argument("--database", required=True)
    parser.add_argument("--before", type=Path,
                        help="the older tree (default: a temporary worktree of 740fe0b)")
    parser.add_argument("--after", type=Path, default=HERE.parent)
    parser.add_argument("--keep-city", action="store_true",
                        help="keep each tree's database when it holds any city (see "
                             "bench/tree_city.py --keep)")
    parser.add_argument("--size", default="S")
    parser.add_argument("--lines-at", nargs="*", default=[], metavar="COMMIT",
                        help="commits whose lines to count too (e.g. the first and the last "
                             "of the restructuring)")
    args = parser.parse_args()
    if args.command == "one":
        print(json.dumps(measure_one(args.case, args.database)))
        return
    sys.path.insert(0, str(HERE.parent))
    from bench.common import write_results
    from bench.trees import tree_at

    with tree_at(args.before) as old:
        before = run_tree("before", old, "onemap_request_path_before", args.size,
                          args.keep_city)
    after = run_tree("after", args.after.resolve(), "onemap_request_path_after", args.size,
                     args.keep_city)
    if before["city"]["cases_sha256"] != after["city"]["cases_sha256"]:
        print("note: the two trees generated different cases files", flush=True)
    lines_at = {}
    for rev in args.lines_at:
        commit = subprocess.run(["git", "-C", str(args.after), "log", "-1", "--format=%H %s",
                                 rev], capture_output=True, text=True, check=True).stdout
        lines_at[commit.strip()[:100]] = {name: python_lines(args.after, folders, rev)
                                          for name, folders in LINE_GROUPS.items()}
    path = write_results("request-path", compare(before, after), extra={
        "notes": "Counts, not times: the machine was shared (2 cores, other work running), "
                 "which changes no count. See bench/bench_request_path.py for what each "
                 "case asks and what counts as a file, a function, a call and a statement.",
        "before": before, "after": after, "lines_at_other_commits": lines_at})
    print(f"   → {path}")


if __name__ == "__main__":
    main()
