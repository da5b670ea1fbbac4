"""A database migrated by one source tree's own code, holding the demo city at the pinned
reference time (2026-11-21 00:00): the same city for benchmarks that compare two trees.

Run by path with the tree to use first on PYTHONPATH (the tree's own migrations and ETL do
the work), e.g. for the tree before the restructuring of issue 17::

    git worktree add /work/wt-before 740fe0b
    PYTHONPATH=/work/wt-before python bench/tree_city.py --size S --database onemap_before_s

An existing database that already holds this city's cases (same file hash; with ``--keep``,
any loaded city) is kept and migrated; anything else under that name is dropped and made
again. Prints one JSON line: the database, the
tree, the cases file's hash and the rows loaded.

Trees differ in where the generator lives: ``democity.city`` (with an ``as_of`` parameter)
or, before issue 17, ``etl.demo.city`` (whose generator always stood at 2026-11-21 00:00).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

SEED = 7
AS_OF = "2026-11-21T00:00:00"


def tree_root() -> Path:
    import layers

    return Path(layers.__file__).resolve().parent.parent


def city_module():
    """The tree's demo-city module, and whether its generator takes ``as_of``."""
    spec = importlib.util.find_spec("democity")
    if spec is not None and Path(spec.origin).is_relative_to(tree_root()):
        from democity import city

        return city, True
    from etl.demo import city

    return city, False


def generate(size: str, folder: Path):
    city, takes_as_of = city_module()
    if takes_as_of:
        import numpy as np

        return city.generate(size, SEED, folder, as_of=np.datetime64(AS_OF, "s"))
    from etl.demo import catalog

    assert str(catalog.END) == AS_OF, f"this tree's demo city ends at {catalog.END}"
    return city.generate(size, SEED, folder)


def cases_hash(folder: Path) -> str:
    return json.loads((folder / "complete.json").read_text())["cases_sha256"]


def make_database(name: str) -> str:
    """A fresh database ``name`` migrated by this tree; its URL."""
    from sqlalchemy.engine import make_url

    from bench.common import server_admin_url, server_url, with_database
    from onemap.migrate import migrate
    from onemap.roles import create_database

    admin = server_admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
    create_database(admin, name, make_url(server_url()).username)
    url = with_database(server_url(), name)
    migrate(url)
    return url


def loaded_hash(url: str) -> str | None:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT file_hash FROM load_batch WHERE kind = 'cases' AND "
                               "status = 'committed' ORDER BY id DESC LIMIT 1").fetchone()
    except psycopg.Error:
        return None
    return row[0] if row else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="S")
    parser.add_argument("--database", required=True)
    parser.add_argument("--keep", action="store_true",
                        help="keep a database that holds any loaded city (the same city for "
                             "a tree whose generator has changed since), migrated by this tree")
    args = parser.parse_args()
    from bench.common import server_url, with_database

    city, _ = city_module()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="onemap-tree-city-") as tmp:
        folder = Path(tmp) / f"{args.size}-seed{SEED}"
        made = generate(args.size, folder)
        digest = cases_hash(folder)
        url = with_database(server_url(), args.database)
        held = loaded_hash(url)
        kept = held == digest or (args.keep and held is not None)
        digest = held if kept else digest
        if kept:  # migrations the tree gained since are applied
            from onemap.migrate import migrate

            migrate(url)
        else:
            url = make_database(args.database)
            city.load_city(url, made)
    with psycopg.connect(url) as conn:
        cases = conn.execute("SELECT count(*) FROM case_event").fetchone()[0]
    print(json.dumps({"database": args.database, "tree": str(tree_root()), "size": args.size,
                      "seed": SEED, "as_of": AS_OF, "cases_sha256": digest, "cases": cases,
                      "kept": kept, "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
