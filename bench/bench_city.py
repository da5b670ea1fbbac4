"""Demo city at sizes M and L: generation and load time, and peak memory of each process.

Run: ``python -m bench.bench_city`` (``BENCH_SIZES=M`` to run one size). Each size is
generated into a temporary home and loaded through ``onemap demo`` into a scratch database,
both at the pinned reference time (so ``onemap demo`` loads the files ``onemap generate``
wrote, and every run makes the same city).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench.common import BIN, metric, print_table, run_measured, scratch_database, write_results
from democity.city import PINNED_AS_OF

MEMORY_TARGET_MB = 1500
AS_OF = str(PINNED_AS_OF).replace("T", " ")


def measure(size: str) -> list[dict]:
    home = Path(tempfile.mkdtemp(prefix=f"onemap-city-{size}-"))
    try:
        keep = os.environ.get("BENCH_KEEP") == "1"  # bench_read reads the city afterwards
        with scratch_database(f"onemap_bench_city_{size.lower()}", keep=keep) as url:
            env = {**os.environ, "DATABASE_URL": url, "ONEMAP_HOME": str(home)}
            generated = run_measured(f"generate-{size}", [str(BIN / "onemap"), "generate",
                                                          "--size", size, "--as-of", AS_OF],
                                     env=env)
            loaded = run_measured(f"load-{size}", [str(BIN / "onemap"), "demo", "--size", size,
                                                   "--as-of", AS_OF], env=env)
            cases = (home / "city" / f"{size}-seed7" / "cases.csv").stat().st_size
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return [
        metric(f"generate {size}: seconds", generated.seconds, "s"),
        metric(f"generate {size}: peak memory", generated.peak_mb, "MB",
               target=f"< {MEMORY_TARGET_MB}", met=generated.peak_mb < MEMORY_TARGET_MB),
        metric(f"load {size}: seconds", loaded.seconds, "s"),
        metric(f"load {size}: peak memory (loader)", loaded.peak_mb, "MB",
               target=f"< {MEMORY_TARGET_MB}", met=loaded.peak_mb < MEMORY_TARGET_MB),
        metric(f"{size}: cases CSV size", cases / 1e6, "MB"),
    ]


def main() -> None:
    sizes = os.environ.get("BENCH_SIZES", "M,L").split(",")
    metrics = [m for size in sizes for m in measure(size.strip().upper())]
    print_table(metrics)
    print(write_results("city-" + "-".join(s.strip().upper() for s in sizes), metrics))


if __name__ == "__main__":
    main()
