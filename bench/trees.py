"""Another commit's source tree beside this one, for benchmarks that compare two trees
(bench_request_path, bench_before_after)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "740fe0b"  # main just before issue 17's restructuring (aggregates, layering, schema)


def commit_of(tree: Path, rev: str = "HEAD") -> str:
    return subprocess.run(["git", "-C", str(tree), "rev-parse", rev], capture_output=True,
                          text=True, check=True).stdout.strip()


@contextmanager
def tree_at(given: Path | None, commit: str = BEFORE):
    """``given`` when named; else a temporary git worktree of ``commit``, removed after."""
    if given is not None:
        yield given.resolve()
        return
    folder = Path(tempfile.mkdtemp(prefix="onemap-tree-")) / commit
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(folder),
                    commit], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
                       check=False)
        shutil.rmtree(folder.parent, ignore_errors=True)
